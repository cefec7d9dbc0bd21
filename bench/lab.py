"""`python -m bench.lab`: how long `kubelab up --nodes 3` and `kubelab down` take.

Runs the real CLI as a user would (`kubelab up --nodes N --proxy-mode M`
then `kubelab down`), in a state directory and with a namespace prefix of
its own (kl-b<hex>), so a lab the developer runs is never touched, and a
config file of its own, so theirs is neither. `up` returns once every Node
is Ready, so its wall time is the figure; the milestones inside it come
from the moments `up`'s progress lines arrive (read as they are printed):

* control plane: etcd, apiserver, controller-manager, scheduler, cluster
  DNS and the pod network agent healthy;
* registry: the lab's images built (cached after the first run) and
  pushed to the registry in the control plane;
* nodes Ready: every node's `kubelab join` has started its shim, kubelet,
  proxy and pod network, and the Node reports Ready.

`down` is timed to its exit: processes stopped, containers, pod
namespaces, mounts and cgroups removed, namespaces deleted. Each run is
taken down even when `up` fails or the benchmark is interrupted.

    python -m bench.lab                      # 3 runs, 3 nodes, iptables
    python -m bench.lab --runs 5 --proxy-mode nftables
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from ._stats import load_average

REPO = Path(__file__).resolve().parent.parent

# (milestone, the component column and the start of the message of the
# progress line that marks it)
MILESTONES = [
    ("control plane", "podnetwork", "ready"),
    ("registry", "registry", "serving"),
    ("nodes Ready", "nodes", ""),
]


@dataclass
class Run:
    milestones: dict[str, float] = field(default_factory=dict)  # seconds since `up` started
    up: float = float("nan")
    down: float = float("nan")
    error: str = ""


def _kubelab(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "kubelab", *args], env=env, cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def one_run(nodes: int, proxy_mode: str, console: Console) -> Run:
    workdir = Path(tempfile.mkdtemp(prefix="kubelab-bench-lab-"))
    state = workdir / "state"
    env = {**os.environ, "KUBELAB_CONFIG": str(workdir / "config")}
    run = Run()
    output: list[str] = []
    try:
        began = time.monotonic()
        up = _kubelab(env, "up", "--nodes", str(nodes), "--proxy-mode", proxy_mode,
                      "--prefix", f"kl-b{secrets.token_hex(2)}", "--state-dir", str(state))
        assert up.stdout is not None
        for line in up.stdout:
            output.append(line)
            parts = line.split(maxsplit=2)
            for name, component, message in MILESTONES:
                if len(parts) >= 2 and parts[1] == component and (len(parts) > 2 and parts[2].startswith(message)):
                    run.milestones.setdefault(name, time.monotonic() - began)
        if up.wait() != 0:
            run.error = "kubelab up failed: " + "".join(output[-5:]).strip()
        else:
            run.up = time.monotonic() - began
    finally:
        began = time.monotonic()
        down = _kubelab(env, "down", "--state-dir", str(state))
        down.communicate(timeout=180)
        if not run.error:
            run.down = time.monotonic() - began
        shutil.rmtree(workdir, ignore_errors=True)
    console.log(f"up {run.up:.1f}s, down {run.down:.1f}s" + (f" ({run.error})" if run.error else ""))
    return run


def _s(value: float | None) -> str:
    return "—" if value is None or value != value else f"{value:.1f} s"


def report(runs: list[Run], nodes: int, proxy_mode: str, console: Console) -> None:
    table = Table(title=f"kubelab up --nodes {nodes} --proxy-mode {proxy_mode}, then kubelab down",
                  box=box.SIMPLE_HEAVY, caption_justify="left",
                  caption=f"{os.cpu_count()} CPUs, load average {'/'.join(f'{x:.1f}' for x in load_average())}; "
                          "milestones are seconds "
                          "from the start of `up`; images are cached after the first run")
    table.add_column("Run")
    for name, _, _ in MILESTONES:
        table.add_column(name, justify="right")
    table.add_column("up (to exit)", justify="right")
    table.add_column("down", justify="right")
    for i, run in enumerate(runs, 1):
        table.add_row(str(i), *(_s(run.milestones.get(name)) for name, _, _ in MILESTONES), _s(run.up),
                      _s(run.down) if not run.error else f"[red]{run.error[:60]}[/red]")
    good = [r for r in runs if not r.error]
    if len(good) > 1:
        def median(values: list[float]) -> float:
            return statistics.median(values) if values else float("nan")
        table.add_row("median", *(_s(median([r.milestones[n] for r in good if n in r.milestones]))
                                  for n, _, _ in MILESTONES),
                      _s(median([r.up for r in good])), _s(median([r.down for r in good])), style="bold")
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="how many up/down cycles (default 3)")
    parser.add_argument("--nodes", type=int, default=3, help="nodes per lab (default 3)")
    parser.add_argument("--proxy-mode", default="iptables", choices=["iptables", "nftables", "ipvs"])
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("the lab needs root (network namespaces, netfilter, runc)")
    console = Console(stderr=True)
    runs = []
    for i in range(args.runs):
        console.log(f"run {i + 1} of {args.runs}")
        runs.append(one_run(args.nodes, args.proxy_mode, console))
    report(runs, args.nodes, args.proxy_mode, Console())
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
