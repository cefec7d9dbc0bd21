"""The e2e suite's lab: one real multi-node `kubelab up` per proxy mode.

Every test in tests/e2e takes the session-scoped `lab` fixture, which is
parametrized over the proxy modes this kernel supports (iptables and
nftables here; ipvs where the kernel has ip_vs, skipped otherwise with the
reason), so pytest runs every flow once per mode, one lab at a time. A lab
has a prefix of its own (kl-e2e<hex>), so a lab the developer runs is never
touched, and its state under the session's tmp directory.

Before `up` the host is snapshotted (tests/e2e/_host.py); `down` runs in
the fixture's finalizer even when a test or `up` itself failed, and then
the snapshot is compared: test_teardown.py asserts it, and the finalizer
raises too if anything was left, so a run where that test was deselected
still notices. The controller-manager runs with a short
--node-monitor-grace-period, so the node-death flow waits seconds, not a
minute.

Every test works in a namespace of its own (`namespace` fixture), deleted
afterwards. The tests need root (namespaces, netfilter, runc); without it,
or without the tools, they are skipped with the reason.

KUBELAB_E2E_PROXY_MODES=iptables (comma-separated) narrows the modes.
KUBELAB_E2E_LAB=<state dir> runs the tests against a lab that is already
up (`kubelab up --state-dir ...`), in its proxy mode only, and leaves it
running: for working on a test without waiting for a lab each time (the
teardown flow is skipped then).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from proto import core_pb2

from ._agent import Agent, daemonset
from ._host import LabNames, Snapshot, leftovers, pod_netns_names, summary
from ._lab import FIGURES, NODES, Lab

ALL_MODES = ["iptables", "nftables", "ipvs"]
TOOLS = ["runc", "nsenter", "busybox", "ip", "etcd", "skopeo", "umoci", "iptables-restore", "nft"]
# The kubelet renews its Lease every 10 s (a quarter of 40 s); twice that
# is the shortest grace that does not make a busy node flap.
CONTROLLER_MANAGER_ARGS = ("--node-monitor-grace-period", "20", "--node-monitor-period", "1")


# The flows in the order they run for each lab: the one that disturbs the
# cluster (a node dies) late, and the one that takes the lab down last.
FLOW_ORDER = ["test_services", "test_readiness", "test_rollout", "test_statefulset", "test_node_lifecycle",
              "test_teardown"]


@pytest.hookimpl(trylast=True)  # after pytest has grouped the tests by lab
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    mine = [i for i in items if here in Path(str(i.fspath)).parents]
    for item in mine:
        item.add_marker(pytest.mark.e2e)

    def key(item: pytest.Item) -> tuple[int, int]:
        callspec = getattr(item, "callspec", None)
        mode = callspec.params.get("lab_session", "") if callspec else ""
        module = Path(str(item.fspath)).stem
        return (ALL_MODES.index(mode) if mode in ALL_MODES else -1,
                FLOW_ORDER.index(module) if module in FLOW_ORDER else len(FLOW_ORDER) - 1)
    # Last in a whole-suite run (`make test`): the slowest tests after the
    # quick ones. sorted() is stable: the order within a module is kept.
    chosen = set(mine)
    items[:] = [i for i in items if i not in chosen] + sorted(mine, key=key)


def _unsupported(mode: str) -> str | None:
    """Why this host cannot run a lab in `mode`, or None."""
    if os.geteuid() != 0:
        return "the e2e lab needs root"
    missing = [t for t in TOOLS if shutil.which(t) is None and not (t == "etcd" and _etcd())]
    if missing:
        return f"the e2e lab needs {', '.join(missing)}"
    if mode == "ipvs":
        from proxy._ipvs import IPVSUnavailable, check_available
        try:
            check_available()
        except IPVSUnavailable as err:
            return str(err)
    if mode == "nftables" and subprocess.run(["nft", "list", "tables"], capture_output=True).returncode != 0:
        return "this kernel has no nf_tables"
    return None


def _etcd() -> bool:
    from deploy.local import etcd_binary
    try:
        return bool(etcd_binary())
    except Exception:
        return False


def _modes() -> list[str]:
    wanted = os.environ.get("KUBELAB_E2E_PROXY_MODES")
    return [m.strip() for m in wanted.split(",")] if wanted else ALL_MODES


@dataclass
class LabSession:
    """A lab and the host as it was before it: `down()` stops the lab and
    returns what it left behind (once; later calls repeat the answer)."""

    lab: Lab
    before: Snapshot
    left: list[str] | None = None
    others: list[str] = field(default_factory=list)
    reused: bool = False  # a lab someone else started: never taken down here

    def down(self) -> list[str]:
        if self.left is None:
            lab = self.lab
            names = LabNames(lab.prefix, str(lab.state_dir), tuple(lab.nodes), pod_netns_names(lab.state_dir))
            lab.stop()
            self.left, self.others = leftovers(self.before, Snapshot.take(lab.state_dir), names)
            if self.others:
                FIGURES.append(f"[{lab.proxy_mode}] changed on the host meanwhile, not by the lab: "
                               + summary(self.others))
        return self.left


@pytest.fixture(scope="session", params=_modes())
def lab_session(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabSession]:
    mode: str = request.param
    reuse = os.environ.get("KUBELAB_E2E_LAB")
    if reuse:
        yield _existing_lab(Path(reuse), mode)
        return
    reason = _unsupported(mode)
    if reason:
        pytest.skip(f"proxy mode {mode}: {reason}")
    root = tmp_path_factory.mktemp(f"e2e-{mode}")
    lab = Lab(root / "state", mode, controller_manager_args=CONTROLLER_MANAGER_ARGS)
    session = LabSession(lab, Snapshot.take(lab.state_dir))
    try:
        lab.start()
        FIGURES.append(f"[{mode}] lab up with {len(lab.nodes)} nodes Ready in {lab.up_seconds:.1f}s")
        yield session
    finally:
        left = session.down()
    if left:
        raise AssertionError(f"the {mode} lab left behind:\n  " + "\n  ".join(left))


def _existing_lab(state_dir: Path, mode: str) -> LabSession:
    from deploy.lab import LabState

    state = LabState.load(state_dir)
    if state is None:
        pytest.fail(f"KUBELAB_E2E_LAB={state_dir}: no lab there")
    if state.proxy_mode != mode:
        pytest.skip(f"KUBELAB_E2E_LAB={state_dir} runs proxy mode {state.proxy_mode}")
    if state.nodes != NODES:
        pytest.fail(f"KUBELAB_E2E_LAB={state_dir} has {state.nodes} nodes; the flows need {NODES}")
    return LabSession(Lab(state_dir, mode, prefix=state.prefix), Snapshot(), reused=True)


@pytest.fixture
def lab(lab_session: LabSession) -> Lab:
    if lab_session.left is not None:
        pytest.fail("the lab was already taken down by an earlier test")
    return lab_session.lab


@pytest.fixture
def namespace(lab: Lab, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of the test's own, deleted afterwards (not waited for:
    the lab goes away at the end of the session anyway)."""
    name = f"e2e-{request.node.originalname.removeprefix('test_')[:30].replace('_', '-')}-{secrets.token_hex(2)}"
    lab.kubelab("create", "namespace", name)
    yield name
    try:
        lab.clientset.resource(core_pb2.Namespace).delete(name)
    except Exception as err:  # the test's failure matters more than this one
        print(f"deleting namespace {name}: {err}")


CLIENTS_NAMESPACE = "e2e-clients"


@dataclass
class Clients:
    """The client pods, one per node (a DaemonSet of agents, see _agent.py),
    shared by every test of a lab. `each()` reads them afresh: a client pod
    replaced after a node's death has a new address."""

    lab: Lab

    def each(self) -> list[Agent]:
        pods = self.lab.running_pods(CLIENTS_NAMESPACE, "app=client", len(self.lab.nodes))
        agents = [Agent(self.lab, p.metadata.name, p.status.podIP, p.spec.nodeName) for p in pods]
        return sorted(agents, key=lambda a: self.lab.nodes.index(a.node))

    def on(self, node: str) -> Agent:
        return next(a for a in self.each() if a.node == node)


@pytest.fixture(scope="session")
def clients(lab_session: LabSession) -> Clients:
    lab = lab_session.lab
    lab.apply(CLIENTS_NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CLIENTS_NAMESPACE}},
              daemonset())
    found = Clients(lab)
    assert sorted(a.node for a in found.each()) == sorted(lab.nodes), "a client pod on every node"
    return found


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("e2e figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
