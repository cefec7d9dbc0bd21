"""`python -m deploy.images build|names|registry|push|mirrors|up|down`.

Every command prints what it did, one line per image, file or process, and
exits non-zero with a message naming what failed. Defaults keep everything
under one cache directory (/var/cache/kubelab as root, ~/.cache/kubelab
otherwise; KUBELAB_IMAGES_DIR overrides): the OCI layout in images/, the
registry's data in registry/. The mirror configuration goes to
/etc/kubelab/certs.d as root (~/.config/kubelab/certs.d otherwise), where
the CRI shim's --registry-config-path is pointed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from api import InvalidReference

from ._mirrors import InvalidMirror, write_mirrors
from ._names import PushPlan, plan_pushes, scan_manifests
from ._recipes import BuildResult, build
from ._registry import LocalRegistry, RegistryError, push
from ._rootfs import BuildError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MANIFESTS = REPO / "tests" / "data" / "k8s-examples"


def cache_dir() -> Path:
    env = os.environ.get("KUBELAB_IMAGES_DIR")
    if env:
        return Path(env)
    return Path("/var/cache/kubelab") if os.geteuid() == 0 else Path.home() / ".cache" / "kubelab"


def default_config_path() -> Path:
    return Path("/etc/kubelab/certs.d") if os.geteuid() == 0 else Path.home() / ".config" / "kubelab" / "certs.d"


def _say(text: str) -> None:
    print(text, flush=True)


def _human(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KiB"


def cmd_build(args: argparse.Namespace) -> BuildResult:
    started = time.monotonic()
    result = build(args.out, only=set(args.only) if args.only else None, install=not args.no_install, warn=_say)
    for image in result.images:
        size = sum(layer.blob.size for layer in image.layers) + image.manifest.size
        _say(f"{image.name:<11} {image.manifest.digest[:19]}  {_human(size):>9} compressed, {len(image.layers)} layers")
    _say(f"built {len(result.images)} images into {args.out} in {time.monotonic() - started:.1f}s "
         f"({result.layers_built} layers written, {result.layers_cached} from cache)")
    return result


def _plan(args: argparse.Namespace) -> PushPlan:
    plan = plan_pushes(scan_manifests(args.manifests))
    for use, why in plan.unmapped:
        print(f"cannot map image {use.text!r} ({use.where}): {why}", file=sys.stderr)
    return plan


def cmd_names(args: argparse.Namespace) -> None:
    plan = _plan(args)
    for target in plan.targets:
        ref = target.reference
        _say(f"{ref.familiar():<50} -> {target.image:<11} (mirror path {ref.mirror_path}:{ref.tag})")


def cmd_push(args: argparse.Namespace) -> None:
    registry = LocalRegistry(args.data, args.port)
    started = time.monotonic()
    done, absent = push(args.out, _plan(args), registry)
    for outcome in done:
        _say(f"{outcome.action:<10} {outcome.target.reference.familiar():<50} -> {outcome.destination}")
    for target, why in absent:
        print(f"cannot push {target.reference.familiar()}: {why}", file=sys.stderr)
    pushed = sum(1 for o in done if o.action == "pushed")
    _say(f"{pushed} pushed, {len(done) - pushed} up to date in {time.monotonic() - started:.1f}s")


def cmd_registry(args: argparse.Namespace) -> int:
    registry = LocalRegistry(args.data, args.port)
    if args.action == "start":
        _say(registry.start().detail)
    elif args.action == "stop":
        _say("stopped" if registry.stop() else "not running")
    else:
        status = registry.status()
        _say(status.detail)
        return 0 if status.running else 3
    return 0


def cmd_mirrors(args: argparse.Namespace) -> None:
    for f in write_mirrors(args.config_path, args.registry, force=args.force, offline=args.offline):
        _say(f"{f.action:<10} {f.path}")


def cmd_up(args: argparse.Namespace) -> None:
    started = time.monotonic()
    cmd_build(args)
    registry = LocalRegistry(args.data, args.port)
    _say(registry.start().detail)
    cmd_push(args)
    args.registry = args.registry or registry.url
    cmd_mirrors(args)
    _say(f"images ready in {time.monotonic() - started:.1f}s; "
         f"point the CRI shim's registry config at {args.config_path}")


def cmd_down(args: argparse.Namespace) -> None:
    _say("registry stopped" if LocalRegistry(args.data, args.port).stop() else "registry was not running")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m deploy.images", description=__doc__.split("\n\n")[0])
    sub = root.add_subparsers(dest="command", required=True)
    cache = cache_dir()

    def out(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", type=Path, default=cache / "images", help="the OCI layout directory")

    def reg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--port", type=int, default=5000, help="registry port on 127.0.0.1")
        p.add_argument("--data", type=Path, default=cache / "registry", help="registry data directory")

    def manifests(p: argparse.ArgumentParser) -> None:
        p.add_argument("--manifests", type=Path, action="append", help="YAML file or directory to scan for image:"
                       f" (repeatable; default {DEFAULT_MANIFESTS})")

    def build_flags(p: argparse.ArgumentParser) -> None:
        out(p)
        p.add_argument("--only", action="append", help="build only this image (repeatable)")
        p.add_argument("--no-install", action="store_true", help="do not apt-get install missing packages")

    def mirror_flags(p: argparse.ArgumentParser, required: bool) -> None:
        p.add_argument("--config-path", type=Path, default=None if required else default_config_path(),
                       required=required, help="hosts.toml directory tree (containerd's certs.d layout)")
        p.add_argument("--registry", required=required, default=None, help="mirror URL, e.g. http://127.0.0.1:5000")
        p.add_argument("--force", action="store_true", help="also replace hosts.toml files edited by hand")
        p.add_argument("--offline", action="store_true",
                       help="make the mirror each registry's only server: never fall back to the public registry")

    build_flags(sub.add_parser("build", help="build the OCI layout from Debian packages"))
    manifests(sub.add_parser("names", help="list the public names to push and their local image"))
    p = sub.add_parser("registry", help="run the local registry")
    p.add_argument("action", choices=["start", "stop", "status"])
    reg(p)
    p = sub.add_parser("push", help="push the layout's images under their public names")
    for add in (out, reg, manifests):
        add(p)
    mirror_flags(sub.add_parser("mirrors", help="write hosts.toml files pointing public registries at a mirror"),
                 True)
    p = sub.add_parser("up", help="build, start the registry, push, write mirrors")
    for add in (build_flags, reg, manifests):
        add(p)
    mirror_flags(p, False)
    reg(sub.add_parser("down", help="stop the local registry"))
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "manifests", "absent") is None:
        args.manifests = [DEFAULT_MANIFESTS]
    commands = {"build": cmd_build, "names": cmd_names, "registry": cmd_registry, "push": cmd_push,
                "mirrors": cmd_mirrors, "up": cmd_up, "down": cmd_down}
    try:
        code = commands[args.command](args)
    except (BuildError, RegistryError, InvalidMirror, InvalidReference, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
