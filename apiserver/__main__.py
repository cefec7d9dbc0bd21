"""`python -m apiserver`: the Kubernetes API over gRPC, stored in etcd."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import component_base

from ._allocators import parse_port_range
from ._server import APIServer, ServerOptions


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m apiserver",
        description="Serve the Kubernetes API over gRPC, with the cluster state in etcd.")
    p.add_argument("--etcd-servers", default="http://127.0.0.1:2379",
                   help="comma-separated etcd client URLs (default %(default)s)")
    p.add_argument("--bind-address", default="127.0.0.1", help="address to serve on (default %(default)s)")
    p.add_argument("--port", type=int, default=6443, help="port to serve on; 0 picks a free one (default %(default)s)")
    p.add_argument("--unix-socket", default="", metavar="PATH", help="also serve on this unix socket")
    p.add_argument("--advertise-address", default="",
                   help="address the `kubernetes` Service's endpoints point at (default: the bind address)")
    p.add_argument("--service-cluster-ip-range", default="10.96.0.0/12", help="CIDR ClusterIPs come from")
    p.add_argument("--service-node-port-range", default="30000-32767", help="range NodePorts come from")
    p.add_argument("--tls-cert-file", default="", help="serve TLS with this certificate (PEM)")
    p.add_argument("--tls-private-key-file", default="", help="the key for --tls-cert-file (PEM)")
    p.add_argument("--client-ca-file", default="",
                   help="require client certificates signed by this CA (PEM); CN is the user, O the groups")
    p.add_argument("--token-auth-file", default="", help="static bearer tokens: token,user,uid[,\"groups\"]")
    p.add_argument("--anonymous-auth", default="true", choices=["true", "false"],
                   help="whether calls without credentials are served as system:anonymous")
    p.add_argument("--authorization-mode", default="AlwaysAllow",
                   help="comma-separated authorizers, tried in order: AlwaysAllow, AlwaysDeny")
    p.add_argument("--disable-admission-plugins", default="",
                   help="comma-separated admission plugins to turn off")
    p.add_argument("--default-not-ready-toleration-seconds", type=int, default=300,
                   help="tolerationSeconds added to pods for not-ready and unreachable nodes")
    p.add_argument("--max-requests-inflight", type=int, default=400,
                   help="read-only requests served at once before TooManyRequests; 0 is unlimited")
    p.add_argument("--max-mutating-requests-inflight", type=int, default=200,
                   help="mutating requests served at once before TooManyRequests; 0 is unlimited")
    p.add_argument("--watch-cache-size", type=int, default=10_000, help="events each watch cache keeps")
    p.add_argument("--watch-buffer", type=int, default=10_000,
                   help="events buffered per watcher before a watcher that does not keep up is closed (each is a "
                        "reference to the watch cache's shared event, a few bytes)")
    p.add_argument("--watch-bookmark-interval", type=float, default=60.0, help="seconds between watch bookmarks")
    p.add_argument("--etcd-compaction-interval", type=float, default=300.0,
                   help="seconds between compactions of etcd's history; 0 disables")
    component_base.add_common_flags(p, metrics_default="127.0.0.1:6444")
    return p


def options_from(args: argparse.Namespace) -> ServerOptions:
    return ServerOptions(
        etcd_servers=[s for s in args.etcd_servers.split(",") if s],
        bind_address=args.bind_address, port=args.port, unix_socket=args.unix_socket,
        advertise_address=args.advertise_address, service_cluster_ip_range=args.service_cluster_ip_range,
        service_node_port_range=parse_port_range(args.service_node_port_range),
        tls_cert_file=args.tls_cert_file, tls_private_key_file=args.tls_private_key_file,
        client_ca_file=args.client_ca_file, token_auth_file=args.token_auth_file,
        anonymous_auth=args.anonymous_auth == "true", authorization_mode=args.authorization_mode,
        disable_admission_plugins=tuple(p for p in args.disable_admission_plugins.split(",") if p),
        default_toleration_seconds=args.default_not_ready_toleration_seconds,
        max_requests_inflight=args.max_requests_inflight,
        max_mutating_requests_inflight=args.max_mutating_requests_inflight,
        watch_cache_size=args.watch_cache_size, watch_buffer=args.watch_buffer,
        watch_bookmark_interval=args.watch_bookmark_interval,
        etcd_compaction_interval=args.etcd_compaction_interval)


def main(argv: Sequence[str] | None = None) -> None:
    args = component_base.parse(build_parser(), argv)
    component_base.setup_logging("apiserver", args.log_level, args.log_format)
    try:
        options = options_from(args)
    except ValueError as err:
        sys.exit(f"apiserver: {err}")
    component_base.start_metrics_server(args.metrics_bind_address)

    async def serve(stop: asyncio.Event) -> None:
        server = APIServer(options)
        await server.start()
        await stop.wait()
        await server.stop()

    component_base.run(serve)


if __name__ == "__main__":
    main()
