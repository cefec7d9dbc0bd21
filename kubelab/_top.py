"""`kubelab top pods` and `kubelab top nodes`: CPU and memory in use.

kubectl reads the resource metrics API that metrics-server serves from the
kubelets' Summary API; kubelab has no metrics-server, so `top` asks the
kubelets' summaries itself, through the apiserver's node proxy (one call
per node involved, concurrently), and prints kubectl's columns:
CPU(cores) in millicores (rounded up, as a Quantity's MilliValue is),
MEMORY(bytes) as the working set in Mi (rounded down), and for nodes CPU%
and MEMORY% of the node's allocatable.

A node whose kubelet cannot be asked (not serving its API, unreachable)
shows `<unknown>`, as kubectl shows a node metrics-server has no figures
for; its pods are left out of `top pods`. CPU usage is a rate between two
of the runtime's samples, so right after a container (or the kubelet)
starts it can read 0m until the next sample.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from ._printers import format_table
from ._session import CLIError, Session, echo, global_options

if TYPE_CHECKING:
    from client import Clientset
    from proto import core_pb2, kubelet_pb2

UNKNOWN = "<unknown>"
MI = 1024 * 1024


@dataclass(frozen=True)
class Usage:
    """CPU in nanocores, memory (working set) in bytes."""

    cpu_nano: int
    memory: int

    @property
    def millicores(self) -> int:
        return -(-self.cpu_nano // 1_000_000)


def cpu_cell(usage: Usage) -> str:
    return f"{usage.millicores}m"


def memory_cell(usage: Usage) -> str:
    return f"{usage.memory // MI}Mi"


def percent(used_milli: int, allocatable_milli: int) -> str:
    """kubectl's truncated percentage of allocatable."""
    if allocatable_milli <= 0:
        return UNKNOWN
    return f"{int(used_milli / allocatable_milli * 100)}%"


def pod_rows(pods: Sequence[tuple[str, str, kubelet_pb2.PodStats]], *, all_namespaces: bool,
             containers: bool) -> tuple[list[str], list[list[str]]]:
    """kubectl top pod's header and rows for (namespace, name, stats)."""
    header = ["NAMESPACE"] if all_namespaces else []
    header += ["POD", "NAME"] if containers else ["NAME"]
    header += ["CPU(cores)", "MEMORY(bytes)"]
    rows: list[list[str]] = []
    for namespace, name, stats in pods:
        lead = [namespace] if all_namespaces else []
        if containers:
            for c in sorted(stats.containers, key=lambda c: c.name):
                usage = Usage(c.cpu.usage_nano_cores, c.memory.working_set_bytes)
                rows.append([*lead, name, c.name, cpu_cell(usage), memory_cell(usage)])
        else:
            usage = pod_usage(stats)
            rows.append([*lead, name, cpu_cell(usage), memory_cell(usage)])
    return header, rows


def pod_usage(stats: kubelet_pb2.PodStats) -> Usage:
    """The sum over the pod's containers, as metrics-server reports a pod."""
    return Usage(sum(c.cpu.usage_nano_cores for c in stats.containers),
                 sum(c.memory.working_set_bytes for c in stats.containers))


def node_row(node: core_pb2.Node, summary: kubelet_pb2.Summary | None) -> list[str]:
    """kubectl top node's row: NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%)."""
    from api import QuantityError, parse_quantity
    if summary is None:
        return [node.metadata.name, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN]
    usage = Usage(summary.node.cpu.usage_nano_cores, summary.node.memory.working_set_bytes)

    def allocatable(name: str) -> int:
        quantity = node.status.allocatable.get(name)
        try:
            return parse_quantity(quantity.value).milli_value() if quantity is not None else 0
        except (QuantityError, ValueError):
            return 0
    return [node.metadata.name, cpu_cell(usage), percent(usage.millicores, allocatable("cpu")),
            memory_cell(usage), percent(usage.memory * 1000, allocatable("memory"))]


def sort_rows(rows: list[list[str]], sort_by: str, header: list[str]) -> None:
    if not sort_by:
        return
    column = header.index("CPU(cores)" if sort_by == "cpu" else "MEMORY(bytes)")

    def amount(row: list[str]) -> int:
        cell = row[column]
        return int(cell.rstrip("mMi")) if cell != UNKNOWN else -1
    rows.sort(key=amount, reverse=True)


async def summaries(cs: Clientset, nodes: Sequence[str], namespace: str = "") -> dict[str, Any]:
    """node -> its Summary, or the error asking for it raised."""
    from api import StatusError
    from client import NodeProxyClient
    proxy = NodeProxyClient(cs)

    async def one(node: str) -> Any:
        try:
            return await proxy.summary(node, namespace)
        except StatusError as err:
            return err
    answers = await asyncio.gather(*(one(n) for n in nodes))
    return dict(zip(nodes, answers, strict=True))


class TopGroup(click.Group):
    """`top pods`, `top po`, `top nodes`, `top no`: kubectl's aliases."""

    ALIASES = {"pods": "pod", "po": "pod", "nodes": "node", "no": "node"}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.ALIASES.get(cmd_name, cmd_name))


@click.group("top", cls=TopGroup)
@global_options
def top() -> None:
    """Display resource (CPU/memory) usage of pods or nodes, read from the kubelets."""


_SORT = click.Choice(["cpu", "memory"])


@top.command("pod")
@click.argument("name", required=False)
@click.option("-A", "--all-namespaces", is_flag=True, help="Pods in every namespace.")
@click.option("-l", "--selector", default="", help="Only pods with these labels (e.g. app=web).")
@click.option("--containers", is_flag=True, help="A row per container.")
@click.option("--sort-by", type=_SORT, default=None, help="Order by cpu or memory, largest first.")
@click.option("--no-headers", is_flag=True, help="Print no header line.")
@global_options
def top_pod(name: str | None, all_namespaces: bool, selector: str, containers: bool, sort_by: str | None,
            no_headers: bool) -> None:
    """CPU and memory of pods (all in the namespace, or NAME).

    \b
      kubelab top pods -A
      kubelab top pod web-0 --containers
    """
    if name and selector:
        raise CLIError("only one of NAME or --selector can be provided")
    session = Session.current()
    namespace = "" if all_namespaces else session.namespace

    async def work(cs: Clientset) -> tuple[list[core_pb2.Pod], dict[str, Any]]:
        from proto import core_pb2
        client = cs.resource(core_pb2.Pod, namespace)
        pods = [await client.get(name)] if name else (await client.list(label_selector=selector)).items
        nodes = sorted({p.spec.nodeName for p in pods if p.spec.nodeName})
        return pods, await summaries(cs, nodes, namespace)

    pods, answers = session.run(work)
    where = "" if all_namespaces else f" in {namespace} namespace"
    if not pods:
        echo(f"No resources found{where}.", err=True)
        return
    stats: dict[str, Any] = {}
    for answer in answers.values():
        if not isinstance(answer, BaseException):
            stats.update({p.pod_ref.uid: p for p in answer.pods})
    found = [(p.metadata.namespace, p.metadata.name, stats[p.metadata.uid]) for p in pods if p.metadata.uid in stats]
    found.sort(key=lambda t: (t[0], t[1]))
    if not found:
        failures = sorted({str(a) for a in answers.values() if isinstance(a, BaseException)})
        what = f"pod {pods[0].metadata.namespace}/{pods[0].metadata.name}" if name else f"pods{where}"
        raise CLIError(f"metrics not available yet for {what}" + (f": {failures[0]}" if failures else ""))
    header, rows = pod_rows(found, all_namespaces=all_namespaces, containers=containers)
    sort_rows(rows, sort_by or "", header)
    echo(format_table(None if no_headers else header, rows), nl=False)


@top.command("node")
@click.argument("name", required=False)
@click.option("-l", "--selector", default="", help="Only nodes with these labels.")
@click.option("--sort-by", type=_SORT, default=None, help="Order by cpu or memory, largest first.")
@click.option("--no-headers", is_flag=True, help="Print no header line.")
@global_options
def top_node(name: str | None, selector: str, sort_by: str | None, no_headers: bool) -> None:
    """CPU and memory of nodes (all, or NAME), and their share of allocatable.

    \b
      kubelab top nodes
      kubelab top node kl-node-1
    """
    if name and selector:
        raise CLIError("only one of NAME or --selector can be provided")
    session = Session.current()

    async def work(cs: Clientset) -> tuple[list[core_pb2.Node], dict[str, Any]]:
        from proto import core_pb2
        client = cs.resource(core_pb2.Node)
        nodes = [await client.get(name)] if name else (await client.list(label_selector=selector)).items
        return nodes, await summaries(cs, [n.metadata.name for n in nodes])

    nodes, answers = session.run(work)
    if not nodes:
        echo("No resources found", err=True)
        return
    if all(isinstance(a, BaseException) for a in answers.values()):
        raise CLIError(f"metrics not available yet: {sorted({str(a) for a in answers.values()})[0]}")
    rows = [node_row(n, None if isinstance(answers[n.metadata.name], BaseException) else answers[n.metadata.name])
            for n in sorted(nodes, key=lambda n: n.metadata.name)]
    header = ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    sort_rows(rows, sort_by or "", header)
    echo(format_table(None if no_headers else header, rows), nl=False)

