"""controller_manager/replicaset.py on the in-memory clientset with a fake
clock: exact replica counts through creates and deletes, the pods it
makes, slow-start batches and the ReplicaFailure condition, expectations
holding back a second create while the watch lags, adoption and release,
Kubernetes' deletion order, availability after minReadySeconds, finished
pods replaced, and the ReplicationController flavour."""

from __future__ import annotations

import pytest

from api import new_error, rfc3339
from controller_manager.replicaset import (
    ReplicaSetController,
    ReplicationControllerController,
    pods_to_delete,
    slow_start_batch,
)
from proto import apps_pb2, core_pb2

from ._workloads import FakeKubelet, Harness, orphan_pod, replica_set, set_ready, settle

Pod = core_pb2.Pod
RS = apps_pb2.ReplicaSet


def owned_by(pod: Pod, uid: str) -> bool:
    return any(r.uid == uid and r.controller for r in pod.metadata.ownerReferences)


async def test_creates_exactly_replicas_and_reports_status() -> None:
    async with Harness(ReplicaSetController) as h, FakeKubelet(h.cs, h.clock):
        rs = await h.cs.resource(RS, "ns").create(replica_set("web", 3))
        await settle()
        pods = h.pods()
        assert len(pods) == 3
        for pod in pods:
            assert pod.metadata.name.startswith("web-") and pod.metadata.generateName == "web-"
            assert dict(pod.metadata.labels) == {"app": "web"}
            ref = pod.metadata.ownerReferences[0]
            assert (ref.apiVersion, ref.kind, ref.name, ref.uid) == ("apps/v1", "ReplicaSet", "web", rs.metadata.uid)
            assert ref.controller and ref.blockOwnerDeletion
        status = h.cs.objects(RS)[0].status
        assert (status.replicas, status.fullyLabeledReplicas, status.readyReplicas, status.availableReplicas,
                status.observedGeneration) == (3, 3, 3, 3, 1)

        # Deleted pods come back; a scale down deletes the difference.
        for pod in pods[:2]:
            await h.cs.resource(Pod, "ns").delete(pod.metadata.name)
        await settle()
        assert len(h.pods()) == 3
        stored = h.cs.objects(RS)[0]
        stored.spec.replicas = 1
        await h.cs.resource(RS, "ns").update(stored)
        await settle()
        assert len(h.pods()) == 1
        assert h.cs.objects(RS)[0].status.observedGeneration == 2
        assert h.cs.count("create", "pods") == 5 and h.cs.count("delete", "pods") == 4


async def test_a_lagging_watch_never_causes_a_second_create() -> None:
    async with Harness(ReplicaSetController) as h:
        controller = h.controller(ReplicaSetController)
        h.cs.hold_watches("pods")  # the pod informer stops seeing anything
        await h.cs.resource(RS, "ns").create(replica_set("web", 4))
        await settle()
        # The RS is seen, so a sync created 4; the pods are not seen yet.
        assert h.cs.count("create", "pods") == 4
        assert controller.expectations.pending("ns/web") == (4, 0)
        for _ in range(3):
            controller.queue.add("ns/web")
            await settle()
        assert h.cs.count("create", "pods") == 4  # expectations hold the line
        h.cs.release_watches()
        await settle()
        assert controller.expectations.satisfied("ns/web")
        controller.queue.add("ns/web")
        await settle()
        assert len(h.pods()) == 4 and h.cs.count("create", "pods") == 4

        # Deletions likewise: a pod counts once though it is seen twice.
        stored = h.cs.objects(RS)[0]
        stored.spec.replicas = 1
        h.cs.hold_watches("pods")
        await h.cs.resource(RS, "ns").update(stored)
        await settle()
        assert h.cs.count("delete", "pods") == 3
        for _ in range(3):
            controller.queue.add("ns/web")
            await settle()
        assert h.cs.count("delete", "pods") == 3 and h.cs.count("create", "pods") == 4
        h.cs.release_watches()
        await settle()
        assert len(h.pods()) == 1 and h.cs.count("delete", "pods") == 3


async def test_slow_start_stops_at_the_first_refusal() -> None:
    calls = 0

    async def create() -> None:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise new_error("Forbidden", "exceeded quota")

    done, error = await slow_start_batch(20, 1, create)
    # batches of 1, 2, 4: the fifth call fails, the rest of its batch runs, nothing after
    assert (calls, done) == (7, 6) and error is not None and "quota" in str(error)


async def test_refused_creates_are_reported_and_retried() -> None:
    async with Harness(ReplicaSetController) as h:
        refusal = new_error("Forbidden", 'pods "web-x" is forbidden: exceeded quota: compute')
        h.cs.inject("create", "pods", refusal, times=2)
        await h.cs.resource(RS, "ns").create(replica_set("web", 5))
        await settle()
        # Each sync's first create (a batch of one) failed and nothing else
        # was tried: one sync, and one more woken by the status change.
        assert h.cs.count("create", "pods") == 2 and h.pods() == []
        failure = [c for c in h.cs.objects(RS)[0].status.conditions if c.type == "ReplicaFailure"]
        assert failure and failure[0].reason == "FailedCreate" and "exceeded quota" in failure[0].message
        controller = h.controller(ReplicaSetController)
        assert controller.expectations.satisfied("ns/web")  # lowered: nothing to wait for
        await h.advance(1)  # the rate-limited retry
        assert len(h.pods()) == 5
        assert not [c for c in h.cs.objects(RS)[0].status.conditions if c.type == "ReplicaFailure"]
        assert h.events("FailedCreate")[0].count == 2 and len(h.events("SuccessfulCreate")) == 5
        # Events name the controller, as kube-controller-manager's do.
        assert {e.source.component for e in h.events("SuccessfulCreate")} == {"replicaset-controller"}
        assert h.events("FailedCreate")[0].reportingComponent == "replicaset-controller"


async def test_adopts_orphans_and_releases_pods_that_stop_matching() -> None:
    async with Harness(ReplicaSetController) as h:
        pods = h.cs.resource(Pod, "ns")
        await pods.create(orphan_pod("orphan-1", {"app": "web"}))
        await pods.create(orphan_pod("orphan-2", {"app": "web"}))
        other = orphan_pod("theirs", {"app": "web"})
        other.metadata.ownerReferences.add(apiVersion="apps/v1", kind="ReplicaSet", name="x", uid="other-uid",
                                           controller=True)
        await pods.create(other)
        await pods.create(orphan_pod("unrelated", {"app": "db"}))
        rs = await h.cs.resource(RS, "ns").create(replica_set("web", 3))
        await settle()
        by_name = {p.metadata.name: p for p in h.pods()}
        assert owned_by(by_name["orphan-1"], rs.metadata.uid) and owned_by(by_name["orphan-2"], rs.metadata.uid)
        assert not owned_by(by_name["theirs"], rs.metadata.uid)
        assert not by_name["unrelated"].metadata.ownerReferences
        assert len(h.pods()) == 5  # 2 adopted + 1 created + theirs + unrelated

        await pods.patch("orphan-1", {"metadata": {"labels": {"app": "debug"}}})
        await settle()
        released = next(p for p in h.pods() if p.metadata.name == "orphan-1")
        assert not released.metadata.ownerReferences
        mine = [p for p in h.pods() if owned_by(p, rs.metadata.uid)]
        assert len(mine) == 3  # a replacement was made


def test_deletion_order() -> None:
    now = 1_700_000_000.0

    def pod(name: str, *, node: str = "n1", phase: str = "Running", ready: bool = True, ready_at: float = now,
            created: float = now, restarts: int = 0) -> Pod:
        p = orphan_pod(name, {}, node=node, phase=phase, ready=ready)
        p.metadata.creationTimestamp = rfc3339(created)
        if phase == "Running":
            set_ready(p, ready, ready_at)
        if restarts:
            p.status.containerStatuses.add(name="web", restartCount=restarts)
        return p

    pods = [
        pod("old-ready", node="n2", ready_at=now - 1000, created=now - 2000),
        pod("new-ready", node="n3", ready_at=now - 10, created=now - 100),
        pod("restarting", node="n4", ready_at=now - 1000, created=now - 2000, restarts=3),
        pod("not-ready", ready=False),
        pod("pending", phase="Pending"),
        pod("unscheduled", node="", phase="Pending"),
    ]
    order = [p.metadata.name for p in pods_to_delete(pods, pods, len(pods))]
    assert order == ["unscheduled", "pending", "not-ready", "new-ready", "restarting", "old-ready"]

    # Doubled up on a node goes before alone on one.
    a, b, c = pod("a", node="n1"), pod("b", node="n1"), pod("c", node="n2")
    assert {p.metadata.name for p in pods_to_delete([a, b, c], [a, b, c], 2)} == {"a", "b"}


async def test_scale_down_deletes_not_ready_pods_first() -> None:
    async with Harness(ReplicaSetController) as h:
        pods = h.cs.resource(Pod, "ns")
        for i in range(3):
            await pods.create(orphan_pod(f"ready-{i}", {"app": "web"}))
        await pods.create(orphan_pod("sick", {"app": "web"}, ready=False))
        await h.cs.resource(RS, "ns").create(replica_set("web", 2))
        await settle()
        assert sorted(p.metadata.name for p in h.pods()) in (["ready-0", "ready-1"], ["ready-0", "ready-2"],
                                                             ["ready-1", "ready-2"])


async def test_available_only_after_min_ready_seconds() -> None:
    async with Harness(ReplicaSetController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(RS, "ns").create(replica_set("web", 2, min_ready=10))
        await settle()
        status = h.cs.objects(RS)[0].status
        assert (status.readyReplicas, status.availableReplicas) == (2, 0)
        await h.advance(5)
        assert h.cs.objects(RS)[0].status.availableReplicas == 0
        await h.advance(7)  # the controller looked again by itself
        assert h.cs.objects(RS)[0].status.availableReplicas == 2


async def test_finished_pods_are_replaced() -> None:
    async with Harness(ReplicaSetController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(RS, "ns").create(replica_set("web", 2))
        await settle()
        victim = h.pods()[0]
        victim.status.phase = "Failed"
        await h.cs.resource(Pod, "ns").update_status(victim)
        await settle()
        running = [p for p in h.pods() if p.status.phase == "Running"]
        assert len(running) == 2 and len(h.pods()) == 3  # the failed one stays for inspection
        assert h.cs.objects(RS)[0].status.replicas == 2


async def test_replication_controller() -> None:
    async with Harness(ReplicationControllerController) as h, FakeKubelet(h.cs, h.clock):
        rc = core_pb2.ReplicationController()
        rc.metadata.name, rc.metadata.namespace = "legacy", "ns"
        rc.spec.replicas = 2
        rc.spec.selector.update({"app": "legacy"})
        rc.spec.template.metadata.labels.update({"app": "legacy", "extra": "x"})
        rc.spec.template.spec.containers.add(name="c", image="busybox")
        created = await h.cs.resource(core_pb2.ReplicationController, "ns").create(rc)
        await settle()
        pods = h.pods()
        assert len(pods) == 2
        ref = pods[0].metadata.ownerReferences[0]
        assert (ref.apiVersion, ref.kind, ref.uid) == ("v1", "ReplicationController", created.metadata.uid)
        status = h.cs.objects(core_pb2.ReplicationController)[0].status
        assert (status.replicas, status.readyReplicas, status.availableReplicas) == (2, 2, 2)


@pytest.mark.parametrize("kind", [ReplicaSetController])
async def test_deleted_owner_forgets_its_expectations(kind: type[ReplicaSetController]) -> None:
    async with Harness(kind) as h:
        controller = h.controller(kind)
        h.cs.hold_watches("pods")
        await h.cs.resource(RS, "ns").create(replica_set("web", 2))
        await settle()
        assert controller.expectations.pending("ns/web") == (2, 0)
        await h.cs.resource(RS, "ns").delete("web")
        await settle()
        assert controller.expectations.pending("ns/web") is None
