"""controller_manager/deployment/util.py, the Deployment arithmetic as pure
functions: maxSurge/maxUnavailable from ints and percentages with
Kubernetes' rounding, Go's rounding, revisions, the annotations copied to
ReplicaSets and the revision history, how far the new ReplicaSet may grow
(counting pods a ReplicaSet has not yet deleted), conditions, and the
progress deadline."""

from __future__ import annotations

import pytest

from api import rfc3339
from controller_manager.deployment import util
from proto import apps_pb2

from ._workloads import deployment, replica_set


@pytest.mark.parametrize(("replicas", "surge", "unavailable", "expected"), [
    (10, "25%", "25%", (3, 2)),    # surge rounds up, unavailable down
    (1, "25%", "25%", (1, 0)),
    (4, "25%", "25%", (1, 1)),
    (10, 0, 0, (0, 1)),            # both 0 would never progress
    (10, "0%", "10%", (0, 1)),
    (10, 2, "50%", (2, 5)),
    (3, "100%", "34%", (3, 1)),
])
def test_fenceposts(replicas: int, surge: int | str, unavailable: int | str, expected: tuple[int, int]) -> None:
    d = deployment("web", replicas, max_surge=surge, max_unavailable=unavailable)
    assert util.resolve_fenceposts(d) == expected
    assert util.max_surge(d) == expected[0]


def test_max_unavailable_edges() -> None:
    assert util.max_unavailable(deployment("web", 0)) == 0
    assert util.max_unavailable(deployment("web", 2, max_unavailable=5)) == 2  # capped at replicas
    assert util.max_unavailable(deployment("web", 10, strategy="Recreate")) == 0
    assert util.max_surge(deployment("web", 10, strategy="Recreate")) == 0


def test_go_rounding() -> None:
    assert [util.round_half_away(x) for x in (2.5, 3.5, -2.5, 1.49, -1.5, 0.0)] == [3, 4, -3, 1, -2, 0]


def rs_with(name: str, revision: int | None = None, *, spec: int = 0, status: int = 0, available: int = 0,
            annotations: dict[str, str] | None = None) -> apps_pb2.ReplicaSet:
    rs = replica_set(name, spec)
    rs.status.replicas, rs.status.availableReplicas = status, available
    if revision is not None:
        rs.metadata.annotations[util.REVISION] = str(revision)
    rs.metadata.annotations.update(annotations or {})
    return rs


def test_revisions() -> None:
    rss = [rs_with("a", 3), rs_with("b", 7), rs_with("c", 5), rs_with("d")]
    assert util.max_revision(rss) == 7 and util.last_revision(rss) == 5
    assert util.last_revision([rs_with("a", 1)]) == 0
    d = deployment("web", 1)
    assert util.rollback_revision(d) is None
    d.metadata.annotations[util.ROLLBACK_TO] = "0"
    assert util.rollback_revision(d) == 0
    d.metadata.annotations[util.ROLLBACK_TO] = "x"
    assert util.rollback_revision(d) is None


def test_new_replica_set_annotations() -> None:
    d = deployment("web", 10)
    d.metadata.annotations.update({util.CHANGE_CAUSE: "kubelab set image", util.REVISION: "4",
                                   util.LAST_APPLIED: "{}", "team": "a"})
    rs = rs_with("web-1")
    assert util.set_new_replica_set_annotations(d, rs, 1, exists=False)
    assert dict(rs.metadata.annotations) == {util.CHANGE_CAUSE: "kubelab set image", "team": "a",
                                             util.REVISION: "1", util.DESIRED_REPLICAS: "10",
                                             util.MAX_REPLICAS: "13"}
    assert not util.set_new_replica_set_annotations(d, rs, 1, exists=True)  # nothing to do
    assert util.set_new_replica_set_annotations(d, rs, 5, exists=True)  # an undo brings it back as 5
    assert rs.metadata.annotations[util.REVISION] == "5"
    assert rs.metadata.annotations[util.REVISION_HISTORY] == "1"
    util.set_new_replica_set_annotations(d, rs, 8, exists=True)
    assert rs.metadata.annotations[util.REVISION_HISTORY] == "1,5"


def test_rollback_takes_the_replica_set_annotations() -> None:
    d = deployment("web", 1)
    d.metadata.annotations.update({util.CHANGE_CAUSE: "new", util.REVISION: "3", "mine": "x"})
    rs = rs_with("web-old", 1, annotations={util.CHANGE_CAUSE: "old", util.DESIRED_REPLICAS: "1"})
    util.set_annotations_from(d, rs)
    assert dict(d.metadata.annotations) == {util.CHANGE_CAUSE: "old", util.REVISION: "3"}


def test_new_replica_set_growth_counts_pods_not_yet_deleted() -> None:
    d = deployment("web", 10)  # surge 3: at most 13 pods
    old = rs_with("old", spec=8, status=10)  # told to shrink, pods still there
    new = rs_with("new", spec=3, status=3)
    assert util.new_rs_replicas(d, [old, new], new) == 3  # 10 + 3 pods exist already
    old.status.replicas = 8
    assert util.new_rs_replicas(d, [old, new], new) == 5
    assert util.new_rs_replicas(deployment("web", 10, strategy="Recreate"), [old, new], new) == 10
    # Availability counts at most spec per ReplicaSet.
    old.status.availableReplicas = 10
    assert util.safely_available([old, new]) == 8


def test_conditions_keep_transition_times() -> None:
    status = apps_pb2.DeploymentStatus()
    util.set_condition(status, util.new_condition(util.AVAILABLE, "True", "A", "m", 100))
    util.set_condition(status, util.new_condition(util.AVAILABLE, "True", "B", "m", 200))
    cond = util.get_condition(status, util.AVAILABLE)
    assert cond is not None and cond.reason == "B" and cond.lastTransitionTime == rfc3339(100)
    util.set_condition(status, util.new_condition(util.AVAILABLE, "False", "C", "m", 300))
    cond = util.get_condition(status, util.AVAILABLE)
    assert cond is not None and cond.lastTransitionTime == rfc3339(300)
    util.remove_condition(status, util.AVAILABLE)
    assert not status.conditions


def test_progress_and_deadline() -> None:
    d = deployment("web", 3, deadline=60)
    d.metadata.generation = 2
    status = apps_pb2.DeploymentStatus(observedGeneration=2, replicas=3, updatedReplicas=3, availableReplicas=3)
    assert util.deployment_complete(d, status)
    status.observedGeneration = 1
    assert not util.deployment_complete(d, status)
    d.status.CopyFrom(apps_pb2.DeploymentStatus(replicas=4, updatedReplicas=1))
    assert util.deployment_progressing(d, apps_pb2.DeploymentStatus(replicas=4, updatedReplicas=2))
    assert util.deployment_progressing(d, apps_pb2.DeploymentStatus(replicas=3, updatedReplicas=1))  # fewer old
    assert not util.deployment_progressing(d, apps_pb2.DeploymentStatus(replicas=4, updatedReplicas=1))
    progressing = apps_pb2.DeploymentStatus()
    util.set_condition(progressing, util.new_condition(util.PROGRESSING, "True", util.RS_UPDATED, "m", 1000))
    assert not util.deployment_timed_out(d, progressing, 1060)
    assert util.deployment_timed_out(d, progressing, 1061)
    done = apps_pb2.DeploymentStatus()
    util.set_condition(done, util.new_condition(util.PROGRESSING, "True", util.NEW_RS_AVAILABLE, "m", 0))
    assert not util.deployment_timed_out(d, done, 10_000)
