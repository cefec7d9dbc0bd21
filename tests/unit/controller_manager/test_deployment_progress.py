"""deployment/progress.py and rollback.py with the ReplicaSet controller, a
fake kubelet and a fake clock: the progress deadline turns Progressing
False (ProgressDeadlineExceeded) when a rollout stalls, and only then;
minReadySeconds holds availability back; pause stops a rollout and
reports DeploymentPaused, resume continues it; the rollback annotation
restores an old template, which gets a new revision; ReplicaSet failures
surface as the Deployment's ReplicaFailure condition."""

from __future__ import annotations

from api import new_error
from controller_manager.deployment import DeploymentController, util
from controller_manager.replicaset import ReplicaSetController
from proto import apps_pb2

from ._workloads import FakeKubelet, Harness, deployment, settle
from .test_deployment_sync import edit, replica_sets, stored

Deployment = apps_pb2.Deployment


def progressing(h: Harness) -> tuple[str, str]:
    cond = util.get_condition(stored(h).status, util.PROGRESSING)
    assert cond is not None
    return cond.status, cond.reason


async def test_progress_deadline() -> None:
    async with Harness(ReplicaSetController, DeploymentController) as h, \
            FakeKubelet(h.cs, h.clock, ready=lambda p: p.spec.containers[0].image != "broken"):
        await h.cs.resource(Deployment, "ns").create(deployment("web", 2, deadline=30))
        await settle()
        assert progressing(h) == ("True", "NewReplicaSetAvailable")
        await edit(h, "web", image="broken")
        await settle()
        assert progressing(h) == ("True", "ReplicaSetUpdated")
        await h.advance(25)
        assert progressing(h) == ("True", "ReplicaSetUpdated")
        await h.advance(10)  # nothing moved for 30 s: the controller looked again by itself
        status, reason = progressing(h)
        assert (status, reason) == ("False", "ProgressDeadlineExceeded")
        cond = util.get_condition(stored(h).status, util.PROGRESSING)
        assert cond is not None and "has timed out progressing" in cond.message
        # A fix makes progress again.
        await edit(h, "web", image="nginx:2")
        await settle()
        assert progressing(h) == ("True", "NewReplicaSetAvailable")
        assert stored(h).status.availableReplicas == 2


async def test_min_ready_seconds() -> None:
    async with Harness(ReplicaSetController, DeploymentController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Deployment, "ns").create(deployment("web", 2, min_ready=20))
        await settle()
        s = stored(h).status
        assert (s.readyReplicas, s.availableReplicas) == (2, 0)
        cond = util.get_condition(s, util.AVAILABLE)
        assert cond is not None and cond.status == "False"
        await h.advance(22)
        s = stored(h).status
        assert s.availableReplicas == 2 and progressing(h) == ("True", "NewReplicaSetAvailable")


async def test_pause_and_resume() -> None:
    async with Harness(ReplicaSetController, DeploymentController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Deployment, "ns").create(deployment("web", 2, deadline=30))
        await settle()
        await edit(h, "web", paused=True)
        await settle()
        assert progressing(h) == ("Unknown", "DeploymentPaused")
        await edit(h, "web", image="nginx:2")
        await settle()
        assert set(replica_sets(h)) == {"nginx:1.25"}  # no rollout while paused
        await h.advance(60)  # paused time does not count against the deadline
        assert progressing(h) == ("Unknown", "DeploymentPaused")
        await edit(h, "web", paused=False)
        await settle()
        assert progressing(h) == ("True", "NewReplicaSetAvailable")
        rss = replica_sets(h)
        assert rss["nginx:2"].spec.replicas == 2 and rss["nginx:1.25"].spec.replicas == 0


async def test_rollback_annotation() -> None:
    async with Harness(ReplicaSetController, DeploymentController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Deployment, "ns").create(deployment("web", 2))
        await settle()
        await edit(h, "web", image="nginx:2", cause="upgrade")
        await settle()
        client = h.cs.resource(Deployment, "ns")
        d = await client.get("web")
        d.metadata.annotations[util.ROLLBACK_TO] = "0"  # the previous revision
        await client.update(d)
        await settle()
        d = stored(h)
        assert d.spec.template.spec.containers[0].image == "nginx:1.25"
        assert util.ROLLBACK_TO not in d.metadata.annotations
        assert util.CHANGE_CAUSE not in d.metadata.annotations  # revision 1 had none
        rss = replica_sets(h)
        assert rss["nginx:1.25"].metadata.annotations[util.REVISION] == "3"
        assert rss["nginx:1.25"].metadata.annotations[util.REVISION_HISTORY] == "1"
        assert rss["nginx:1.25"].spec.replicas == 2 and rss["nginx:2"].spec.replicas == 0
        assert d.metadata.annotations[util.REVISION] == "3"
        assert [e.message for e in h.events("DeploymentRollback")] == ['Rolled back deployment "web" to revision 1']

        # A revision that does not exist: an event, and the request is dropped.
        d.metadata.annotations[util.ROLLBACK_TO] = "9"
        await client.update(d)
        await settle()
        assert util.ROLLBACK_TO not in stored(h).metadata.annotations
        assert h.events("DeploymentRollbackRevisionNotFound")


async def test_replica_failures_surface_on_the_deployment() -> None:
    async with Harness(ReplicaSetController, DeploymentController) as h, FakeKubelet(h.cs, h.clock):
        h.cs.inject("create", "pods", new_error("Forbidden", "exceeded quota: pods"), times=100)
        await h.cs.resource(Deployment, "ns").create(deployment("web", 2))
        await settle()
        cond = util.get_condition(stored(h).status, util.REPLICA_FAILURE)
        assert cond is not None and cond.reason == "FailedCreate" and "exceeded quota" in cond.message
        h.cs.inject("create", "pods", new_error("Forbidden", "x"), times=0)
        h.cs._injections.clear()
        await h.advance(2)
        assert util.get_condition(stored(h).status, util.REPLICA_FAILURE) is None
        assert stored(h).status.availableReplicas == 2
