"""`kubelab top`: kubectl's columns and figures from kubelet summaries -
millicores rounded up, working-set Mi rounded down, truncated percentages
of allocatable, `<unknown>` for a node without figures, sorting."""

from __future__ import annotations

from api import from_dict
from kubelab._printers import format_table
from kubelab._top import Usage, cpu_cell, memory_cell, node_row, percent, pod_rows, sort_rows
from proto import core_pb2, kubelet_pb2

MI = 1024 * 1024


def pod_stats(name: str, *containers: tuple[str, int, int]) -> kubelet_pb2.PodStats:
    stats = kubelet_pb2.PodStats()
    stats.pod_ref.name = name
    for cname, nano, working_set in containers:
        c = stats.containers.add(name=cname)
        c.cpu.usage_nano_cores = nano
        c.memory.working_set_bytes = working_set
    return stats


def test_cells_round_like_kubectl() -> None:
    assert cpu_cell(Usage(1, 0)) == "1m"  # any use shows as at least 1m (MilliValue rounds up)
    assert cpu_cell(Usage(250_000_000, 0)) == "250m"
    assert cpu_cell(Usage(250_000_001, 0)) == "251m"
    assert cpu_cell(Usage(0, 0)) == "0m"
    assert memory_cell(Usage(0, 64 * MI - 1)) == "63Mi"
    assert memory_cell(Usage(0, 3 * 1024 * MI)) == "3072Mi"
    assert percent(500, 4000) == "12%" and percent(3999, 4000) == "99%" and percent(1, 0) == "<unknown>"


def test_pod_rows_sum_containers_and_add_columns() -> None:
    web = pod_stats("web", ("app", 120_000_000, 30 * MI), ("sidecar", 5_000_000, 2 * MI))
    header, rows = pod_rows([("default", "web", web)], all_namespaces=False, containers=False)
    assert format_table(header, rows) == ("NAME   CPU(cores)   MEMORY(bytes)\n"
                                          "web    125m         32Mi\n")
    header, rows = pod_rows([("default", "web", web)], all_namespaces=True, containers=True)
    assert format_table(header, rows) == ("NAMESPACE   POD   NAME      CPU(cores)   MEMORY(bytes)\n"
                                          "default     web   app       120m         30Mi\n"
                                          "default     web   sidecar   5m           2Mi\n")


def node(name: str, cpu: str, memory: str) -> core_pb2.Node:
    return from_dict(core_pb2.Node, {"metadata": {"name": name},
                                     "status": {"allocatable": {"cpu": cpu, "memory": memory}}})


def test_node_row_shows_shares_of_allocatable_or_unknown() -> None:
    summary = kubelet_pb2.Summary()
    summary.node.cpu.usage_nano_cores = 500_000_000
    summary.node.memory.working_set_bytes = 1024 * MI
    assert node_row(node("n1", "2", "4Gi"), summary) == ["n1", "500m", "25%", "1024Mi", "25%"]
    assert node_row(node("n2", "1500m", "3Gi"), summary) == ["n2", "500m", "33%", "1024Mi", "33%"]
    assert node_row(node("n3", "2", "4Gi"), None) == ["n3"] + ["<unknown>"] * 4


def test_sort_by_cpu_or_memory_largest_first_unknown_last() -> None:
    header = ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    rows = [["a", "5m", "1%", "900Mi", "5%"], ["b"] + ["<unknown>"] * 4, ["c", "70m", "2%", "10Mi", "1%"]]
    sort_rows(rows, "cpu", header)
    assert [r[0] for r in rows] == ["c", "a", "b"]
    sort_rows(rows, "memory", header)
    assert [r[0] for r in rows] == ["a", "c", "b"]
