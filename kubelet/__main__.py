"""`python -m kubelet`: the node agent, on the CRI shim's socket; or with
`--hollow N`, N hollow nodes on the in-memory runtime in this one process
(kubemark's hollow kubelets), sharing one clientset and one pod, node and
service informer."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import component_base
from api import RealClock
from client import Clientset, EventBroadcaster, Informer
from proto import core_pb2

from ._app import NodeAgent, PodDispatcher
from ._config import DEFAULT_EVICTION_HARD, KubeletConfig, parse_eviction_hard
from ._env import ClientGetter
from ._hollow import HollowRuntime
from ._kuberuntime import EnvSources, NoVolumes, Volumes
from ._network import RealNetwork
from ._runtime import CRIError, RemoteRuntime

log = logging.getLogger("kubelet")

HOLLOW_NODE_IPS = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544 benchmarking space: never routed anywhere


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kubelet",
                                description="The node agent: run the pods bound to this node through the CRI shim.")
    component_base.add_client_flags(p)
    p.add_argument("--hostname-override", "--node-name", dest="node_name", default="", metavar="NAME",
                   help="the Node's name (default: this host's name)")
    p.add_argument("--node-ip", default="", metavar="IP",
                   help="the node's InternalIP (default: this host's first non-loopback IPv4 address)")
    p.add_argument("--node-labels", default="", metavar="K=V,...", help="labels to register the Node with")
    p.add_argument("--container-runtime-endpoint", default="unix:///run/kubelab/crishim.sock", metavar="URL",
                   help="the CRI shim's socket (default %(default)s)")
    p.add_argument("--root-dir", default="/var/lib/kubelet", type=Path, help="pods, volumes (default %(default)s)")
    p.add_argument("--pod-logs-dir", default="/var/log/pods", type=Path,
                   help="where container logs are written (default %(default)s)")
    p.add_argument("--pod-manifest-path", default=None, type=Path, metavar="DIR",
                   help="a directory of static pod manifests")
    p.add_argument("--file-check-frequency", default=20.0, type=float, metavar="SECONDS",
                   help="how often the static pod directory is read (default %(default)s)")
    p.add_argument("--cluster-dns", default="10.96.0.10", metavar="IP,...", help="DNS servers for ClusterFirst pods")
    p.add_argument("--cluster-domain", default="cluster.local", help="the cluster's DNS domain (default %(default)s)")
    p.add_argument("--resolv-conf", default="/etc/resolv.conf",
                   help="the resolver file of dnsPolicy Default pods; empty for none")
    p.add_argument("--cpu", default="", help="cpu capacity (default: this machine's cores)")
    p.add_argument("--memory", default="", help="memory capacity, e.g. 8Gi (default: this machine's)")
    p.add_argument("--ephemeral-storage", default="", help="ephemeral-storage capacity (default: --root-dir's disk)")
    p.add_argument("--max-pods", default=110, type=int, help="pods capacity (default %(default)s)")
    p.add_argument("--node-status-update-frequency", default=10.0, type=float, metavar="SECONDS",
                   help="how often the node status is computed and written if changed (default %(default)s)")
    p.add_argument("--node-lease-duration-seconds", default=40, type=int, metavar="SECONDS",
                   help="the Lease's duration; renewed every quarter of it (default %(default)s)")
    p.add_argument("--eviction-hard", default=DEFAULT_EVICTION_HARD, metavar="SIGNAL<VALUE,...",
                   help="hard eviction thresholds (default %(default)s)")
    p.add_argument("--address", default="0.0.0.0", help="where the kubelet API listens (default %(default)s)")
    p.add_argument("--port", default=10250, type=int,
                   help="the kubelet API's port (logs, exec, stats); 0 disables it (default %(default)s)")
    p.add_argument("--health-bind-address", default="127.0.0.1:10248", metavar="HOST:PORT",
                   help="the gRPC health service (HOST:PORT or unix:///path); empty disables it")
    p.add_argument("--hollow", default=0, type=int, metavar="N",
                   help="run N hollow nodes on the in-memory runtime instead of one real node")
    p.add_argument("--name-prefix", default="hollow-", help="hollow nodes are named PREFIX0, PREFIX1, ...")
    component_base.add_common_flags(p, metrics_default="127.0.0.1:10255")
    return p


def default_node_ip() -> str:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # UDP connect sends nothing; it only picks the outgoing address
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def make_config(args: argparse.Namespace, name: str, node_ip: str, *, hollow: bool) -> KubeletConfig:
    labels: dict[str, str] = {}
    for item in filter(None, args.node_labels.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--node-labels {item!r}: want KEY=VALUE")
        labels[key.strip()] = value.strip()
    return KubeletConfig(
        node_name=name, node_ip=node_ip, root_dir=args.root_dir, pod_logs_dir=args.pod_logs_dir,
        cluster_dns=[s.strip() for s in args.cluster_dns.split(",") if s.strip()],
        cluster_domain=args.cluster_domain, resolv_conf=Path(args.resolv_conf) if args.resolv_conf else None,
        cpu=args.cpu or ("4" if hollow else ""), memory=args.memory or ("16Gi" if hollow else ""),
        ephemeral_storage=args.ephemeral_storage or ("100Gi" if hollow else ""), max_pods=args.max_pods,
        # Hollow nodes serve no kubelet API: port 0 tells the apiserver not to dial them.
        port=0 if hollow else args.port, node_status_update_frequency=args.node_status_update_frequency,
        node_lease_duration=args.node_lease_duration_seconds,
        pod_manifest_path=args.pod_manifest_path,
        file_check_frequency=args.file_check_frequency, eviction_hard=parse_eviction_hard(args.eviction_hard),
        labels=labels, hollow=hollow)


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = component_base.parse(parser, argv)
    component_base.setup_logging("kubelet", args.log_level, args.log_format)
    if args.hollow < 0:
        sys.exit("kubelet: --hollow must not be negative")
    try:
        if args.hollow:
            configs = [make_config(args, f"{args.name_prefix}{i}", str(HOLLOW_NODE_IPS[i + 1]), hollow=True)
                       for i in range(args.hollow)]
        else:
            name = args.node_name or socket.gethostname()
            configs = [make_config(args, name.lower(), args.node_ip or default_node_ip(), hollow=False)]
    except ValueError as err:
        sys.exit(f"kubelet: {err}")
    client_config = component_base.client_config(args)
    component_base.start_metrics_server(args.metrics_bind_address)

    async def serve(stop: asyncio.Event) -> None:
        clientset = Clientset.connect(client_config)
        watches = Clientset.connect(client_config)
        health = await component_base.HealthServer().start(args.health_bind_address)
        try:
            if args.hollow:
                await run_hollow(args, configs, clientset, watches, health, stop)
            else:
                await run_node(args, configs[0], clientset, watches, health, stop)
        finally:
            await health.stop()
            await watches.close()
            await clientset.close()

    component_base.run(serve)


def _shared_informers(watches: Clientset, pod_selector: str,
                      node_selector: str) -> tuple[Informer[core_pb2.Pod], Informer[core_pb2.Node],
                                                   Informer[core_pb2.Service]]:
    """The pod, node and service informers (one each, however many nodes)."""
    pods: Informer[core_pb2.Pod] = Informer(watches.resource(core_pb2.Pod), field_selector=pod_selector)
    nodes: Informer[core_pb2.Node] = Informer(watches.resource(core_pb2.Node), field_selector=node_selector)
    services: Informer[core_pb2.Service] = Informer(watches.resource(core_pb2.Service))
    return pods, nodes, services


async def run_node(args: argparse.Namespace, config: KubeletConfig, clientset: Clientset, watches: Clientset,
                   health: component_base.HealthServer, stop: asyncio.Event) -> None:
    from ._server import KubeletServer
    from .volumes import VolumeManager

    clock = RealClock()
    try:
        runtime = RemoteRuntime(args.container_runtime_endpoint)
    except ValueError as err:
        sys.exit(f"kubelet: {err}")
    runtime_name = "kubelab-crishim"
    try:
        runtime_name = (await runtime.version()).runtime_name
    except CRIError as err:
        log.warning("the container runtime at %s does not answer yet: %s", args.container_runtime_endpoint, err)
    pods, nodes, services = _shared_informers(watches, f"spec.nodeName={config.node_name}",
                                                    f"metadata.name={config.node_name}")
    service_lister = services.lister()
    volumes: Volumes = VolumeManager(config.pods_dir, clientset, node_name=config.node_name, clock=clock,
                                     node_allocatable=config.allocatable())
    env = EnvSources(ClientGetter(clientset, core_pb2.Secret), ClientGetter(clientset, core_pb2.ConfigMap),
                     lambda: service_lister.list())
    broadcaster = EventBroadcaster(clientset, "kubelet", host=config.node_name)
    agent = NodeAgent(config, clientset, runtime, clock=clock, broadcaster=broadcaster, network=RealNetwork(),
                      volumes=volumes, env=env, runtime_name=runtime_name)
    dispatcher = PodDispatcher(pods, nodes)
    dispatcher.add(agent)
    server = None
    if args.port:
        server = await KubeletServer(agent.kubelet, agent.eviction.stats).start(f"{args.address}:{args.port}")
    for informer in (services, nodes, pods):
        informer.start()
    await agent.start()
    await health.set("", component_base.SERVING)
    if not await pods.wait_for_sync(60):
        log.warning("the pod informer has not synced after 60s; waiting for it before cleaning up orphans")
        await pods.wait_for_sync()
    agent.mark_sources_ready()
    log.info("kubelet %s running (runtime %s, node IP %s)", config.node_name, args.container_runtime_endpoint,
             config.node_ip)
    await stop.wait()
    await health.set("", component_base.NOT_SERVING)
    if server is not None:
        await server.stop()
    await agent.stop()
    await broadcaster.shutdown(2.0)
    for informer in (pods, nodes, services):
        await informer.stop()
    await runtime.close()


async def run_hollow(args: argparse.Namespace, configs: list[KubeletConfig], clientset: Clientset,
                     watches: Clientset, health: component_base.HealthServer, stop: asyncio.Event) -> None:
    clock = RealClock()
    pods, nodes, services = _shared_informers(watches, "spec.nodeName!=", "")
    service_lister = services.lister()
    env = EnvSources(ClientGetter(clientset, core_pb2.Secret), ClientGetter(clientset, core_pb2.ConfigMap),
                     lambda: service_lister.list())
    dispatcher = PodDispatcher(pods, nodes)
    agents: list[NodeAgent] = []
    broadcasters: list[EventBroadcaster] = []
    volumes = NoVolumes()
    for config in configs:
        runtime = HollowRuntime(clock=clock, images=("registry.k8s.io/pause:3.9",))
        broadcaster = EventBroadcaster(clientset, "kubelet", host=config.node_name, queue_size=100)
        broadcasters.append(broadcaster)
        agent = NodeAgent(config, clientset, runtime, clock=clock, broadcaster=broadcaster, network=runtime,
                          volumes=volumes, env=env, runtime_name="hollow")
        agents.append(agent)
        dispatcher.add(agent)
    for informer in (services, nodes, pods):
        informer.start()
    gate = asyncio.Semaphore(32)  # registrations in flight at once

    async def start(agent: NodeAgent) -> None:
        async with gate:
            await agent.start()

    await asyncio.gather(*(start(a) for a in agents))
    await pods.wait_for_sync()
    for agent in agents:
        agent.mark_sources_ready()
    await health.set("", component_base.SERVING)
    log.info("%d hollow nodes running (%s0 .. %s%d)", len(agents), args.name_prefix, args.name_prefix,
             len(agents) - 1)
    await stop.wait()
    await health.set("", component_base.NOT_SERVING)
    await asyncio.gather(*(a.stop() for a in agents))
    await asyncio.gather(*(b.shutdown(1.0) for b in broadcasters))
    for informer in (pods, nodes, services):
        await informer.stop()


if __name__ == "__main__":
    main()
