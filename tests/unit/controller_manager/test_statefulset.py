"""controller_manager/statefulset.py (with _stateful_identity.py and
_history.py) on the in-memory clientset with a fake clock: stable names
and identities; OrderedReady creation 0..N-1 and scale down N-1..0, each
step waiting for the previous; Parallel; a claim per ordinal from the
volumeClaimTemplates that outlives its pod; RollingUpdate from the highest
ordinal, partitions, OnDelete; failed pods recreated."""

from __future__ import annotations

from api import parse_quantity
from controller_manager.statefulset import StatefulSetController
from proto import apps_pb2, core_pb2

from ._workloads import FakeKubelet, Harness, settle, template

Pod = core_pb2.Pod
STS = apps_pb2.StatefulSet
Claim = core_pb2.PersistentVolumeClaim


def stateful_set(replicas: int, *, name: str = "web", policy: str = "OrderedReady", image: str = "nginx:1",
                 strategy: str = "RollingUpdate", partition: int | None = None, claims: bool = False) -> STS:
    sts = STS()
    sts.metadata.name, sts.metadata.namespace = name, "ns"
    sts.spec.replicas = replicas
    sts.spec.selector.matchLabels["app"] = name
    sts.spec.template.CopyFrom(template({"app": name}, image))
    sts.spec.serviceName = "nginx"
    sts.spec.podManagementPolicy = policy
    sts.spec.updateStrategy.type = strategy
    if strategy == "RollingUpdate":
        sts.spec.updateStrategy.rollingUpdate.partition = partition or 0
    sts.spec.revisionHistoryLimit = 10
    sts.spec.persistentVolumeClaimRetentionPolicy.whenDeleted = "Retain"
    sts.spec.persistentVolumeClaimRetentionPolicy.whenScaled = "Retain"
    if claims:
        t = sts.spec.volumeClaimTemplates.add()
        t.metadata.name = "data"
        t.spec.accessModes.append("ReadWriteOnce")
        t.spec.resources.requests["storage"].value = "1Gi"
        sts.spec.template.spec.containers[0].volumeMounts.add(name="data", mountPath="/data")
    return sts


def names(h: Harness) -> list[str]:
    return sorted(p.metadata.name for p in h.pods())


def image_of(h: Harness, name: str) -> str:
    return next(p for p in h.pods() if p.metadata.name == name).spec.containers[0].image


async def make_ready(kubelet: FakeKubelet, h: Harness, name: str) -> None:
    await kubelet.set_ready("ns", name, True)
    await settle()


async def scale(h: Harness, replicas: int) -> None:
    sts = h.cs.objects(STS)[0]
    sts.spec.replicas = replicas
    await h.cs.resource(STS, "ns").update(sts)
    await settle()


async def set_image(h: Harness, image: str) -> None:
    sts = h.cs.objects(STS)[0]
    sts.spec.template.spec.containers[0].image = image
    await h.cs.resource(STS, "ns").update(sts)
    await settle()


async def test_ordered_ready_creates_one_at_a_time_with_identity() -> None:
    async with Harness(StatefulSetController) as h, FakeKubelet(h.cs, h.clock, ready=lambda _p: False) as kubelet:
        sts = await h.cs.resource(STS, "ns").create(stateful_set(3))
        await settle()
        assert names(h) == ["web-0"]
        await h.advance(10)
        assert names(h) == ["web-0"]  # web-1 waits for web-0 to be ready
        await make_ready(kubelet, h, "web-0")
        assert names(h) == ["web-0", "web-1"]
        await make_ready(kubelet, h, "web-1")
        assert names(h) == ["web-0", "web-1", "web-2"]
        await make_ready(kubelet, h, "web-2")
        pod = next(p for p in h.pods() if p.metadata.name == "web-1")
        assert (pod.spec.hostname, pod.spec.subdomain) == ("web-1", "nginx")
        assert pod.metadata.labels["statefulset.kubernetes.io/pod-name"] == "web-1"
        assert pod.metadata.labels["apps.kubernetes.io/pod-index"] == "1"
        ref = pod.metadata.ownerReferences[0]
        assert (ref.kind, ref.uid, ref.controller) == ("StatefulSet", sts.metadata.uid, True)
        status = h.cs.objects(STS)[0].status
        assert (status.replicas, status.readyReplicas, status.availableReplicas, status.currentReplicas,
                status.updatedReplicas) == (3, 3, 3, 3, 3)
        assert status.currentRevision == status.updateRevision == pod.metadata.labels["controller-revision-hash"]
        assert status.currentRevision.startswith("web-")


async def test_ordered_scale_down_from_the_highest_ordinal() -> None:
    async with Harness(StatefulSetController) as h, FakeKubelet(h.cs, h.clock) as kubelet:
        await h.cs.resource(STS, "ns").create(stateful_set(3))
        await settle()
        assert names(h) == ["web-0", "web-1", "web-2"]
        # web-0 becomes unready: the scale down waits for it, it does not
        # delete past an unhealthy predecessor
        await kubelet.set_ready("ns", "web-0", False)
        await settle()
        await scale(h, 1)
        assert names(h) == ["web-0", "web-1", "web-2"]
        await make_ready(kubelet, h, "web-0")
        assert names(h) == ["web-0"]
        deletes = [a.name for a in h.cs.actions if a.verb == "delete" and a.resource == "pods"]
        assert deletes == ["web-2", "web-1"]


async def test_parallel_creates_and_deletes_at_once() -> None:
    async with Harness(StatefulSetController) as h, FakeKubelet(h.cs, h.clock, ready=lambda _p: False):
        await h.cs.resource(STS, "ns").create(stateful_set(3, policy="Parallel"))
        await settle()
        assert names(h) == ["web-0", "web-1", "web-2"]  # nobody waited for readiness
        await scale(h, 0)
        assert names(h) == []


async def test_each_ordinal_keeps_its_claim_across_recreation() -> None:
    async with Harness(StatefulSetController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(STS, "ns").create(stateful_set(2, claims=True))
        await settle()
        claims = {c.metadata.name: c for c in h.cs.objects(Claim, "ns")}
        assert sorted(claims) == ["data-web-0", "data-web-1"]
        assert claims["data-web-0"].metadata.labels["app"] == "web"
        assert parse_quantity(claims["data-web-0"].spec.resources.requests["storage"].value).value() == 2**30
        assert not claims["data-web-0"].metadata.ownerReferences  # Retain: nobody owns it
        pod = next(p for p in h.pods() if p.metadata.name == "web-1")
        volume = next(v for v in pod.spec.volumes if v.name == "data")
        assert volume.persistentVolumeClaim.claimName == "data-web-1"
        # the pod goes (a node died, someone deleted it): it comes back with the same claim
        await h.cs.resource(Pod, "ns").delete("web-1")
        await settle()
        again = next(p for p in h.pods() if p.metadata.name == "web-1")
        assert again.metadata.uid != pod.metadata.uid
        assert next(v for v in again.spec.volumes if v.name == "data").persistentVolumeClaim.claimName == "data-web-1"
        assert h.cs.objects(Claim, "ns")[1].metadata.uid == claims["data-web-1"].metadata.uid
        # scaling down keeps the claims (whenScaled: Retain)
        await scale(h, 0)
        assert names(h) == [] and len(h.cs.objects(Claim, "ns")) == 2


async def test_retention_policy_delete_sets_owners_on_claims() -> None:
    async with Harness(StatefulSetController) as h, FakeKubelet(h.cs, h.clock):
        sts = stateful_set(2, claims=True)
        sts.spec.persistentVolumeClaimRetentionPolicy.whenDeleted = "Delete"
        sts.spec.persistentVolumeClaimRetentionPolicy.whenScaled = "Delete"
        created = await h.cs.resource(STS, "ns").create(sts)
        await settle()
        claim = next(c for c in h.cs.objects(Claim, "ns") if c.metadata.name == "data-web-1")
        assert [(r.kind, r.uid) for r in claim.metadata.ownerReferences] == [("StatefulSet", created.metadata.uid)]
        pod = next(p for p in h.pods() if p.metadata.name == "web-1")
        await scale(h, 1)
        claim = next(c for c in h.cs.objects(Claim, "ns") if c.metadata.name == "data-web-1")
        assert ("Pod", pod.metadata.uid) in [(r.kind, r.uid) for r in claim.metadata.ownerReferences]


async def test_rolling_update_goes_down_from_the_highest_ordinal() -> None:
    async with Harness(StatefulSetController) as h, FakeKubelet(h.cs, h.clock, ready=lambda _p: False) as kubelet:
        await h.cs.resource(STS, "ns").create(stateful_set(3))
        await settle()
        for name in ("web-0", "web-1", "web-2"):
            await make_ready(kubelet, h, name)
        await set_image(h, "nginx:2")
        assert image_of(h, "web-2") == "nginx:2" and image_of(h, "web-1") == "nginx:1"
        await h.advance(10)
        assert image_of(h, "web-1") == "nginx:1"  # waits for web-2 to be ready again
        await make_ready(kubelet, h, "web-2")
        assert image_of(h, "web-1") == "nginx:2" and image_of(h, "web-0") == "nginx:1"
        await make_ready(kubelet, h, "web-1")
        await make_ready(kubelet, h, "web-0")
        assert [image_of(h, n) for n in ("web-0", "web-1", "web-2")] == ["nginx:2"] * 3
        status = h.cs.objects(STS)[0].status
        assert status.currentRevision == status.updateRevision and status.updatedReplicas == 3
        assert len(h.cs.objects(apps_pb2.ControllerRevision, "ns")) == 2


async def test_partition_keeps_lower_ordinals_on_the_current_revision() -> None:
    async with Harness(StatefulSetController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(STS, "ns").create(stateful_set(3, partition=2))
        await settle()
        await set_image(h, "nginx:2")
        assert [image_of(h, n) for n in ("web-0", "web-1", "web-2")] == ["nginx:1", "nginx:1", "nginx:2"]
        # a pod below the partition that is deleted comes back at the current revision
        await h.cs.resource(Pod, "ns").delete("web-0")
        await settle()
        assert image_of(h, "web-0") == "nginx:1"
        status = h.cs.objects(STS)[0].status
        assert status.currentRevision != status.updateRevision
        assert (status.currentReplicas, status.updatedReplicas) == (2, 1)


async def test_on_delete_leaves_pods_until_they_are_deleted() -> None:
    async with Harness(StatefulSetController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(STS, "ns").create(stateful_set(2, strategy="OnDelete"))
        await settle()
        await set_image(h, "nginx:2")
        await h.advance(10)
        assert [image_of(h, n) for n in ("web-0", "web-1")] == ["nginx:1", "nginx:1"]
        await h.cs.resource(Pod, "ns").delete("web-1")
        await settle()
        assert [image_of(h, n) for n in ("web-0", "web-1")] == ["nginx:1", "nginx:2"]


async def test_failed_pod_is_recreated_under_its_name() -> None:
    async with Harness(StatefulSetController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(STS, "ns").create(stateful_set(1))
        await settle()
        pod = h.pods()[0]
        pod.status.phase = "Failed"
        await h.cs.resource(Pod, "ns").update_status(pod)
        await settle()
        again = h.pods()
        assert [p.metadata.name for p in again] == ["web-0"] and again[0].metadata.uid != pod.metadata.uid
        assert again[0].status.phase == "Running"
