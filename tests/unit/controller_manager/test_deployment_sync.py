"""deployment/sync.py with the ReplicaSet controller and a fake kubelet:
the ReplicaSet a Deployment makes (name, hash label and selector,
ownerReference, revision and replicas annotations, change-cause), the
Deployment's status and revision, adoption of a matching orphan
ReplicaSet, proportional scaling of a stalled rollout, clean-up beyond
revisionHistoryLimit, a hash collision bumping collisionCount, and a
Deployment that selects everything."""

from __future__ import annotations

from controller_manager.deployment import DeploymentController, util
from controller_manager.replicaset import ReplicaSetController
from proto import apps_pb2, core_pb2

from ._workloads import FakeKubelet, Harness, deployment, replica_set, settle

Deployment = apps_pb2.Deployment
RS = apps_pb2.ReplicaSet


def stored(h: Harness, name: str = "web") -> Deployment:
    return next(d for d in h.cs.objects(Deployment, "ns") if d.metadata.name == name)


def replica_sets(h: Harness) -> dict[str, RS]:
    return {rs.spec.template.spec.containers[0].image: rs for rs in h.cs.objects(RS, "ns")}


async def edit(h: Harness, name: str, **changes: object) -> None:
    client = h.cs.resource(Deployment, "ns")
    d = await client.get(name)
    if "image" in changes:
        d.spec.template.spec.containers[0].image = str(changes["image"])
    if "replicas" in changes:
        d.spec.replicas = int(changes["replicas"])  # type: ignore[call-overload]
    if "paused" in changes:
        d.spec.paused = bool(changes["paused"])
    if "cause" in changes:
        d.metadata.annotations[util.CHANGE_CAUSE] = str(changes["cause"])
    await client.update(d)


async def test_a_new_deployment() -> None:
    async with Harness(ReplicaSetController, DeploymentController) as h, FakeKubelet(h.cs, h.clock):
        d = deployment("web", 3)
        d.metadata.annotations[util.CHANGE_CAUSE] = "first"
        created = await h.cs.resource(Deployment, "ns").create(d)
        await settle()
        [rs] = h.cs.objects(RS, "ns")
        template_hash = rs.spec.template.metadata.labels["pod-template-hash"]
        assert rs.metadata.name == f"web-{template_hash}"
        assert dict(rs.spec.selector.matchLabels) == {"app": "web", "pod-template-hash": template_hash}
        assert dict(rs.metadata.labels) == {"app": "web", "pod-template-hash": template_hash}
        assert rs.metadata.ownerReferences[0].uid == created.metadata.uid
        assert dict(rs.metadata.annotations) == {util.REVISION: "1", util.DESIRED_REPLICAS: "3",
                                                 util.MAX_REPLICAS: "4", util.CHANGE_CAUSE: "first"}
        assert all(p.metadata.labels["pod-template-hash"] == template_hash for p in h.pods())
        d = stored(h)
        assert d.metadata.annotations[util.REVISION] == "1"
        s = d.status
        assert (s.observedGeneration, s.replicas, s.updatedReplicas, s.readyReplicas, s.availableReplicas,
                s.unavailableReplicas) == (1, 3, 3, 3, 3, 0)
        conditions = {c.type: (c.status, c.reason) for c in s.conditions}
        assert conditions == {"Available": ("True", "MinimumReplicasAvailable"),
                              "Progressing": ("True", "NewReplicaSetAvailable")}
        assert [e.message for e in h.events("ScalingReplicaSet")] == [
            f"Scaled up replica set {rs.metadata.name} from 0 to 3"]


async def test_rollout_revisions_and_history_limit() -> None:
    async with Harness(ReplicaSetController, DeploymentController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Deployment, "ns").create(deployment("web", 2, history=1))
        await settle()
        for version in (2, 3, 4):
            await edit(h, "web", image=f"nginx:{version}", cause=f"v{version}")
            await settle()
        rss = replica_sets(h)
        assert set(rss) == {"nginx:3", "nginx:4"}  # the oldest went beyond revisionHistoryLimit 1
        assert rss["nginx:4"].metadata.annotations[util.REVISION] == "4"
        assert rss["nginx:4"].metadata.annotations[util.CHANGE_CAUSE] == "v4"
        assert rss["nginx:3"].spec.replicas == 0
        assert stored(h).metadata.annotations[util.REVISION] == "4"


async def test_adopts_a_matching_orphan_replica_set() -> None:
    async with Harness(ReplicaSetController, DeploymentController) as h, FakeKubelet(h.cs, h.clock):
        orphan = replica_set("legacy", 2, {"app": "web"})
        orphan.spec.template.spec.containers[0].image = "nginx:0"
        orphan.metadata.labels["app"] = "web"  # a Deployment claims by the ReplicaSet's own labels
        await h.cs.resource(RS, "ns").create(orphan)
        await settle()
        d = await h.cs.resource(Deployment, "ns").create(deployment("web", 2))
        await settle()
        rss = replica_sets(h)
        assert rss["nginx:0"].metadata.ownerReferences[0].uid == d.metadata.uid
        assert rss["nginx:0"].spec.replicas == 0 and rss["nginx:1.25"].spec.replicas == 2


async def test_scaling_a_stalled_rollout_is_proportional() -> None:
    async with Harness(ReplicaSetController, DeploymentController) as h, \
            FakeKubelet(h.cs, h.clock, ready=lambda p: p.spec.containers[0].image != "broken"):
        await h.cs.resource(Deployment, "ns").create(deployment("web", 10))
        await settle()
        await edit(h, "web", image="broken")
        await settle()
        rss = replica_sets(h)
        # 13 pods at most, 8 available at least: 8 old, 5 new (none ready).
        assert (rss["nginx:1.25"].spec.replicas, rss["broken"].spec.replicas) == (8, 5)
        await edit(h, "web", paused=True)
        await settle()
        await edit(h, "web", replicas=30)  # 38 allowed with the surge: 25 more
        await settle()
        rss = replica_sets(h)
        # 8 * 38/13 = 23.4 -> 23 and 5 * 38/13 = 14.6 -> 15, in proportion.
        assert (rss["nginx:1.25"].spec.replicas, rss["broken"].spec.replicas) == (23, 15)
        assert all(rs.metadata.annotations[util.DESIRED_REPLICAS] == "30" for rs in rss.values())
        cond = util.get_condition(stored(h).status, util.PROGRESSING)
        assert cond is not None and (cond.status, cond.reason) == ("Unknown", "DeploymentPaused")


async def test_scaling_a_finished_rollout_scales_the_new_replica_set_only() -> None:
    async with Harness(ReplicaSetController, DeploymentController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Deployment, "ns").create(deployment("web", 2))
        await settle()
        await edit(h, "web", image="nginx:2")
        await settle()
        await edit(h, "web", replicas=5)
        await settle()
        rss = replica_sets(h)
        assert (rss["nginx:1.25"].spec.replicas, rss["nginx:2"].spec.replicas) == (0, 5)
        assert stored(h).status.availableReplicas == 5


async def test_hash_collision_bumps_the_collision_count() -> None:
    async with Harness(ReplicaSetController, DeploymentController) as h, FakeKubelet(h.cs, h.clock):
        from controller_manager._owner import compute_hash
        d = deployment("web", 1)
        squatter = replica_set(f"web-{compute_hash(d.spec.template)}", 0, {"other": "x"})
        await h.cs.resource(RS, "ns").create(squatter)
        await h.cs.resource(Deployment, "ns").create(d)
        await settle()
        await h.advance(1)  # the retry after the collision
        assert stored(h).status.collisionCount == 1
        names = sorted(rs.metadata.name for rs in h.cs.objects(RS, "ns"))
        assert names == sorted([squatter.metadata.name, f"web-{compute_hash(d.spec.template, 1)}"])
        assert stored(h).status.availableReplicas == 1


async def test_a_deployment_selecting_everything_does_nothing() -> None:
    async with Harness(ReplicaSetController, DeploymentController) as h:
        d = deployment("web", 1)
        d.spec.selector.Clear()
        await h.cs.resource(Deployment, "ns").create(d)
        await settle()
        assert h.cs.objects(RS, "ns") == [] and stored(h).status.observedGeneration == 1
        assert [e.reason for e in h.cs.objects(core_pb2.Event)] == ["SelectingAll"]
