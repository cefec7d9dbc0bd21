"""A DaemonSet's RollingUpdate: which old pods to delete and where to start
new pods, given each node's pods. A pure function of its inputs.

Without surge (maxSurge 0), the update deletes old pods and lets the
manage loop create their replacements, keeping the number of eligible
nodes without an available pod at or below maxUnavailable: old pods that
are not available anyway go first, then available ones while the budget
lasts. With surge (maxSurge > 0, maxUnavailable 0), the update starts the
new pod next to the old one on up to maxSurge nodes at a time (at once
where the old pod is not available), and deletes the old pod when its
replacement is available, so the DaemonSet never has fewer available pods
than nodes. Both numbers may be percentages of the nodes that should run
the pod, rounded up; when both come out 0, maxUnavailable is 1.
"""

from __future__ import annotations

from api import scaled_value
from proto import apps_pb2, core_pb2

from ._daemon_nodes import Fit
from ._history import HASH_LABEL
from ._podutil import creation_time, is_pod_available


def _updated_and_old(pods: list[core_pb2.Pod], digest: str) -> tuple[core_pb2.Pod | None, core_pb2.Pod | None, bool]:
    """(the new pod, the old pod, whether the node has at most one of each)."""
    new = old = None
    for pod in sorted(pods, key=lambda p: (creation_time(p), p.metadata.name)):
        if pod.metadata.deletionTimestamp:
            continue
        if pod.metadata.labels.get(HASH_LABEL) == digest:
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def budgets(ds: apps_pb2.DaemonSet, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as numbers of nodes."""
    ru = ds.spec.updateStrategy.rollingUpdate
    surge = scaled_value(ru.maxSurge, desired, True) if ru.HasField("maxSurge") else 0
    unavailable = scaled_value(ru.maxUnavailable, desired, True) if ru.HasField("maxUnavailable") else 1
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def rolling_update(ds: apps_pb2.DaemonSet, fits: dict[str, Fit], by_node: dict[str, list[core_pb2.Pod]],
                   digest: str, now: float) -> tuple[list[core_pb2.Pod], list[str]]:
    """(old pods to delete, nodes to start a new pod on)."""
    desired = sum(1 for f in fits.values() if f.should_run)
    max_surge, max_unavailable = budgets(ds, desired)
    min_ready = ds.spec.minReadySeconds
    nodes = sorted(n for n in by_node if n in fits and fits[n].should_continue_running)
    if max_surge == 0:
        # A node that should have a pod and has none yet is short of one.
        unavailable = sum(1 for n, f in fits.items() if f.should_run and n not in by_node)
        replace: list[core_pb2.Pod] = []
        candidates: list[core_pb2.Pod] = []
        for node in nodes:
            new, old, ok = _updated_and_old(by_node[node], digest)
            if not ok or (new is None and old is None) or (new is not None and old is not None):
                unavailable += 1  # the manage loop settles this node first
            elif new is not None:
                if not is_pod_available(new, min_ready, now):
                    unavailable += 1
            elif old is not None:
                if not is_pod_available(old, min_ready, now):
                    replace.append(old)
                elif unavailable < max_unavailable:
                    candidates.append(old)
        room = max(0, min(max_unavailable - unavailable, len(candidates)))
        return replace + candidates[:room], []
    surging = 0
    delete: list[core_pb2.Pod] = []
    create_now: list[str] = []
    candidates_nodes: list[str] = []
    for node in nodes:
        new, old, ok = _updated_and_old(by_node[node], digest)
        if not ok:
            surging += 1
            continue
        if old is None:
            continue  # up to date, or the manage loop creates its pod
        if new is None:
            if not is_pod_available(old, min_ready, now):
                create_now.append(node)
            elif fits[node].should_run and surging < max_surge:
                candidates_nodes.append(node)
            continue
        if not is_pod_available(new, min_ready, now):
            surging += 1  # waiting for the new pod
            continue
        delete.append(old)
    room = max(0, min(max_surge - surging, len(candidates_nodes)))
    return delete, create_now + candidates_nodes[:room]
