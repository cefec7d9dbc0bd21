"""kubelab's CRI shim (`python -m crishim`): the node's container runtime.

The kubelet asks it, over the CRI-shaped gRPC API in proto/cri.proto, to run
pod sandboxes and containers and to pull images; the shim does it with runc
(OCI bundles on overlayfs), the CNI plugins (bridge, host-local, loopback,
portmap) and skopeo. The kubelet never calls runc or CNI itself.

Everything the shim knows lives on disk (JSON per sandbox and container
under --root, runc's own state under --state-dir), and each container has a
small detached monitor process that copies its output into the CRI log file,
holds its stdin and terminal for attach, and records its exit status; so a
shim that crashes or restarts loses nothing, and running containers keep
running.

This module stays import-light on purpose: the per-container monitor runs
as a plain script and must not pull in gRPC.
"""

VERSION = "0.1.0"
RUNTIME_NAME = "kubelab-crishim"
RUNTIME_API_VERSION = "v1"
