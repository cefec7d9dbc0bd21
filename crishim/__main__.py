"""`python -m crishim`: the node's CRI shim, serving RuntimeService and
ImageService (proto/cri.proto) on a unix socket for the kubelet.

Run it in the node's network namespace but the host's mount namespace
(`nsenter --net=/run/netns/<node> python -m crishim ...`, not `ip netns
exec`, which gives the process a private mount namespace): the overlay
mounts and pod netns pins it makes must outlive it for a restart to find
them. SIGTERM stops serving and exits; containers keep running.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc.aio
from grpc_health.v1 import health, health_pb2_grpc

import component_base
from proto import cri_pb2_grpc

from ._runtime import Options, Runtime
from ._service import ImageService, RuntimeService

log = logging.getLogger("crishim")
_SIZE = re.compile(r"^(\d+)(Ki|Mi|Gi|K|M|G)?$")
_UNITS = {None: 1, "K": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def quantity(text: str) -> int:
    match = _SIZE.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: want a number with an optional Ki, Mi or Gi")
    return int(match.group(1)) * _UNITS[match.group(2)]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m crishim",
                                description="Run pod sandboxes and containers with runc and CNI for the kubelet.")
    p.add_argument("--listen", default="unix:///run/kubelab-crishim/crishim.sock", metavar="unix:///PATH",
                   help="the CRI socket the kubelet dials (default %(default)s)")
    p.add_argument("--node-name", default="", help="the node this shim serves (logs and cgroup paths)")
    p.add_argument("--root", type=Path, default=Path("/var/lib/kubelab-crishim"),
                   help="persistent state: records, images, container upper layers (default %(default)s)")
    p.add_argument("--state-dir", type=Path, default=Path("/run/kubelab-crishim"),
                   help="runtime state: runc's state, exec pid files (default %(default)s)")
    p.add_argument("--runc", default="runc", help="the runc binary")
    p.add_argument("--skopeo", default="skopeo", help="the skopeo binary")
    p.add_argument("--cni-bin-dir", type=Path, default=Path("/usr/lib/cni"), help="CNI plugin binaries")
    p.add_argument("--cni-conf-dir", type=Path, default=None,
                   help="use the first *.conflist/*.conf here ({{.PodCIDR}} is replaced) instead of the built-in "
                        "loopback + bridge + host-local + portmap network")
    p.add_argument("--cni-bridge", default="cni0", help="the built-in network's bridge (default %(default)s)")
    p.add_argument("--cni-ip-masq", type=component_base.boolean, default=False, metavar="BOOL",
                   help="masquerade pod traffic leaving the pod CIDR (default false: the lab routes pod CIDRs)")
    p.add_argument("--pod-cidr", default="", help="the node's pod CIDR until UpdateRuntimeConfig says otherwise")
    p.add_argument("--pod-infra-container-image", default="registry.k8s.io/pause:3.10",
                   help="the sandbox (pause) image, pulled when missing (default %(default)s)")
    p.add_argument("--registry-config-path", type=Path, default=None,
                   help="containerd-style certs.d directory: <host>/hosts.toml lists mirrors and insecure hosts")
    p.add_argument("--cgroup-root", default="",
                   help="cgroup under which pods go (default /kubelab/<node-name>, or /kubelab)")
    p.add_argument("--container-log-max-size", type=quantity, default=10 * 1024**2, metavar="SIZE",
                   help="rotate a container's log past this size, e.g. 10Mi (default 10Mi)")
    p.add_argument("--container-log-max-files", type=int, default=5, metavar="N",
                   help="log files kept per container, the current one included (default %(default)s)")
    p.add_argument("--health-bind-address", default="", metavar="HOST:PORT",
                   help="also serve gRPC health on TCP (it is always served on the CRI socket)")
    component_base.add_common_flags(p, metrics_default="")
    return p


def options_from(args: argparse.Namespace) -> Options:
    cgroup_root = args.cgroup_root or ("/kubelab/" + args.node_name if args.node_name else "/kubelab")
    return Options(root=args.root.resolve(), state_dir=args.state_dir.resolve(), node_name=args.node_name,
                   runc=args.runc, skopeo=args.skopeo, cni_bin_dir=args.cni_bin_dir, cni_conf_dir=args.cni_conf_dir,
                   cni_bridge=args.cni_bridge, cni_ip_masq=args.cni_ip_masq, pod_cidr=args.pod_cidr,
                   pod_infra_image=args.pod_infra_container_image, registry_config=args.registry_config_path,
                   cgroup_root="/" + cgroup_root.strip("/"), log_max_size=args.container_log_max_size,
                   log_max_files=args.container_log_max_files)


def _prepare(socket_path: Path, recreate: bool = True) -> None:
    if recreate:
        socket_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = component_base.parse(parser, argv)
    component_base.setup_logging("crishim", args.log_level, args.log_format)
    if not args.listen.startswith("unix://"):
        parser.error(f"--listen {args.listen!r}: want unix:///path/to/socket")
    if os.geteuid() != 0:
        sys.exit("crishim: must run as root (runc, mounts, network namespaces)")
    socket_path = Path(args.listen[len("unix://"):])
    options = options_from(args)
    component_base.start_metrics_server(args.metrics_bind_address)

    async def serve(stop: asyncio.Event) -> None:
        runtime = Runtime(options)
        await runtime.start()
        server = grpc.aio.server()
        cri_pb2_grpc.add_RuntimeServiceServicer_to_server(RuntimeService(runtime), server)
        cri_pb2_grpc.add_ImageServiceServicer_to_server(ImageService(runtime), server)
        health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        _prepare(socket_path)
        server.add_insecure_port(f"unix://{socket_path}")
        await server.start()
        tcp_health = await component_base.HealthServer().start(args.health_bind_address)
        await health_servicer.set("", component_base.SERVING)
        await tcp_health.set("", component_base.SERVING)
        log.info("serving the CRI on %s (node %s, root %s)", socket_path, options.node_name or "-", options.root)
        await stop.wait()
        log.info("shutting down; containers keep running")
        await health_servicer.enter_graceful_shutdown()
        await tcp_health.stop()
        await server.stop(5)
        _prepare(socket_path, recreate=False)

    component_base.run(serve)


if __name__ == "__main__":
    main()
