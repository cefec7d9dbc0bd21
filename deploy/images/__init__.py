"""Local container images for labs without a public registry.

`python -m deploy.images up` builds OCI images from this machine's Debian
packages (pause, busybox, nginx, an agnhost-like test server, perl, redis),
starts Debian's docker-registry on 127.0.0.1:5000, pushes the images under
the public names the Kubernetes documentation's manifests use
(`busybox:1.28`, `nginx:1.14.2`, `registry.k8s.io/pause:3.10`, ...) and
writes containerd-style hosts.toml files that point those public registries
at it. A second `up` with nothing changed rebuilds nothing and pushes
nothing. A user with a real registry changes only the hosts.toml files.

Image names are normalised by api.parse_image_reference. Modules: _names (the public name ->
local image table and the manifest scan), _rootfs and _layout (building OCI
layouts), _recipes (what is in each image), _scripts (the programs inside),
_registry (the registry process and push), _mirrors (hosts.toml).
"""

from ._layout import Layout
from ._mirrors import hosts_toml, write_mirrors
from ._names import ALWAYS_PUSHED, REPOSITORIES, PushPlan, plan_pushes, scan_manifests
from ._recipes import RECIPES, BuildResult, build
from ._registry import LocalRegistry, RegistryError, manifest_digest, push
from ._rootfs import BuildError

__all__ = [
    "ALWAYS_PUSHED", "RECIPES", "REPOSITORIES", "BuildError", "BuildResult",
    "Layout", "LocalRegistry", "PushPlan", "RegistryError", "build", "hosts_toml", "manifest_digest",
    "plan_pushes", "push", "scan_manifests", "write_mirrors",
]
