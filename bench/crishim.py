"""`python -m bench.crishim`: how long the CRI shim takes for a pod's
lifecycle on this machine, with real runc, CNI and overlayfs.

Starts a shim in a scratch network namespace (with the busybox and pause
images the integration tests build, imported without a registry), then for
N pods in a row: RunPodSandbox, CreateContainer + StartContainer, an
ExecSync, StopPodSandbox + RemovePodSandbox; and ListContainers /
ListContainerStats with all N pods running. Prints p50/p99 per step. Run
from the repository root, as root; everything is removed at the end.

    python -m bench.crishim            # 20 pods
    python -m bench.crishim --pods 50
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from proto import cri_pb2
from tests.support.crishim import Shim, container_config, sandbox_config, scratch_netns


def _timed(samples: dict[str, list[float]], step: str, call: Callable[[], object]) -> object:
    start = time.perf_counter()
    result = call()
    samples.setdefault(step, []).append(time.perf_counter() - start)
    return result


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.crishim")
    parser.add_argument("--pods", type=int, default=20)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {}
    with scratch_netns() as netns:
        shim = Shim(netns, Path(tempfile.mkdtemp(prefix="crishim-bench-")))
        try:
            shim.start()
            rt = shim.runtime
            pods = []
            for i in range(args.pods):
                config = sandbox_config(f"bench-{i}", shim.logs)
                def run_pod(c: cri_pb2.PodSandboxConfig = config) -> str:
                    return str(rt.RunPodSandbox(cri_pb2.RunPodSandboxRequest(config=c)).pod_sandbox_id)
                sid = _timed(samples, "RunPodSandbox", run_pod)
                cc = container_config("app", ["sleep", "100000"])

                def create_start(s: object = sid, c: cri_pb2.ContainerConfig = cc) -> str:
                    request = cri_pb2.CreateContainerRequest(pod_sandbox_id=str(s), config=c)
                    cid = rt.CreateContainer(request).container_id
                    rt.StartContainer(cri_pb2.StartContainerRequest(container_id=cid))
                    return str(cid)
                cid = str(_timed(samples, "CreateContainer + StartContainer", create_start))

                def exec_true(c: str = cid) -> object:
                    return rt.ExecSync(cri_pb2.ExecSyncRequest(container_id=c, cmd=["true"]))
                _timed(samples, "ExecSync (true)", exec_true)
                pods.append(str(sid))
            for _ in range(10):
                _timed(samples, f"ListContainers ({args.pods} running)",
                       lambda: rt.ListContainers(cri_pb2.ListContainersRequest()))
                _timed(samples, f"ListContainerStats ({args.pods} running)",
                       lambda: rt.ListContainerStats(cri_pb2.ListContainerStatsRequest()))
            for sid in pods:
                def teardown(s: str = sid) -> None:
                    rt.StopPodSandbox(cri_pb2.StopPodSandboxRequest(pod_sandbox_id=s))
                    rt.RemovePodSandbox(cri_pb2.RemovePodSandboxRequest(pod_sandbox_id=s))
                _timed(samples, "StopPodSandbox + RemovePodSandbox", teardown)
        finally:
            shim.cleanup()
    table = Table(title=f"crishim: {args.pods} pods, one at a time")
    for column in ("step", "n", "p50", "p99", "mean"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for step, values in samples.items():
        table.add_row(step, str(len(values)), f"{_p(values, 0.5) * 1000:.0f} ms", f"{_p(values, 0.99) * 1000:.0f} ms",
                      f"{statistics.mean(values) * 1000:.0f} ms")
    Console().print(table)


if __name__ == "__main__":
    main()
