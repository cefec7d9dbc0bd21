"""controller_manager/_owner.py: controller references, the controller-uid
index, claim (adopt matching orphans, release non-matching pods, leave
others' objects and terminating ones alone, refuse to adopt when the owner
is gone or going, uid preconditions), pods from templates, and the
pod-template-hash."""

from __future__ import annotations

from typing import Any, cast

import pytest

from api import SCHEME, FakeClock, StatusError, parse_selector
from client import Indexer, Lister, ResourceClient
from controller_manager._owner import (
    CONTROLLER_UID_INDEX,
    claim,
    compute_hash,
    controller_ref,
    controller_uid_index,
    equal_ignore_hash,
    new_controller_ref,
    owned_and_orphans,
    pod_from_template,
    recheck_owner,
)
from proto import apps_pb2, core_pb2
from tests.support.fakeclient import FakeClientset

from ._workloads import orphan_pod, replica_set, template

Pod = core_pb2.Pod
RS_KIND = SCHEME.for_message(apps_pb2.ReplicaSet)


def real(client: object) -> ResourceClient[Any]:
    """The fake client, typed as the real one it stands in for."""
    return cast(ResourceClient[Any], client)


@pytest.fixture
async def owner_and_cs() -> tuple[apps_pb2.ReplicaSet, FakeClientset]:
    cs = FakeClientset(clock=FakeClock())
    rs = await cs.resource(apps_pb2.ReplicaSet, "ns").create(replica_set("web", 2))
    return rs, cs


def test_references_and_index() -> None:
    owner = replica_set("web", 1)
    owner.metadata.uid = "u1"
    ref = new_controller_ref(owner, RS_KIND)
    assert (ref.apiVersion, ref.kind, ref.name, ref.uid, ref.controller, ref.blockOwnerDeletion) == \
        ("apps/v1", "ReplicaSet", "web", "u1", True, True)
    pod = orphan_pod("a", {})
    assert controller_ref(pod) is None and controller_uid_index(pod) == ["orphan/ns"]
    pod.metadata.ownerReferences.add(kind="Node", name="n", uid="n1")  # not a controller
    pod.metadata.ownerReferences.append(ref)
    assert controller_ref(pod) == ref and controller_uid_index(pod) == ["u1"]
    indexer: Indexer[Pod] = Indexer({CONTROLLER_UID_INDEX: controller_uid_index})
    other = orphan_pod("b", {})
    elsewhere = orphan_pod("c", {}, namespace="other")
    for p in (pod, other, elsewhere):
        indexer.add(p)
    lister = Lister(indexer, SCHEME.for_message(Pod))
    assert [p.metadata.name for p in owned_and_orphans(lister, "ns", "u1")] == ["a", "b"]


async def test_claim_adopts_releases_and_ignores(owner_and_cs: tuple[Any, FakeClientset]) -> None:
    rs, cs = owner_and_cs
    pods = real(cs.resource(Pod, "ns"))
    mine_matching = orphan_pod("mine", {"app": "web"})
    mine_matching.metadata.ownerReferences.append(new_controller_ref(rs, RS_KIND))
    mine_not_matching = orphan_pod("drifted", {"app": "other"})
    mine_not_matching.metadata.ownerReferences.append(new_controller_ref(rs, RS_KIND))
    theirs = orphan_pod("theirs", {"app": "web"})
    theirs.metadata.ownerReferences.add(apiVersion="apps/v1", kind="ReplicaSet", name="x", uid="x",
                                        controller=True)
    orphan = orphan_pod("orphan", {"app": "web"})
    stranger = orphan_pod("stranger", {"app": "db"})
    created = [await pods.create(p) for p in (mine_matching, mine_not_matching, theirs, orphan, stranger)]
    claimed = await claim(rs, RS_KIND, parse_selector("app=web"), created, pods, recheck_owner(
        rs, real(cs.resource(apps_pb2.ReplicaSet, "ns"))))
    assert sorted(p.metadata.name for p in claimed) == ["mine", "orphan"]
    stored = {p.metadata.name: p for p in cs.objects(Pod)}
    assert controller_ref(stored["orphan"]).uid == rs.metadata.uid  # type: ignore[union-attr]
    assert not stored["drifted"].metadata.ownerReferences
    assert controller_ref(stored["theirs"]).uid == "x"  # type: ignore[union-attr]
    assert not stored["stranger"].metadata.ownerReferences
    assert cs.count("patch", "pods") == 2 and cs.count("get", "replicasets.apps") == 1


async def test_no_adoption_by_an_owner_that_is_gone(owner_and_cs: tuple[Any, FakeClientset]) -> None:
    rs, cs = owner_and_cs
    pods = real(cs.resource(Pod, "ns"))
    orphan = await pods.create(orphan_pod("orphan", {"app": "web"}))
    await cs.resource(apps_pb2.ReplicaSet, "ns").delete("web")
    recreated = await cs.resource(apps_pb2.ReplicaSet, "ns").create(replica_set("web", 2))
    assert recreated.metadata.uid != rs.metadata.uid
    with pytest.raises(StatusError) as err:
        await claim(rs, RS_KIND, parse_selector("app=web"), [orphan], pods,
                    recheck_owner(rs, real(cs.resource(apps_pb2.ReplicaSet, "ns"))))
    assert "is gone" in err.value.message
    assert not cs.objects(Pod)[0].metadata.ownerReferences


async def test_adoption_is_pinned_to_the_pod_uid(owner_and_cs: tuple[Any, FakeClientset]) -> None:
    rs, cs = owner_and_cs
    pods = real(cs.resource(Pod, "ns"))
    stale = await pods.create(orphan_pod("orphan", {"app": "web"}))
    await pods.delete("orphan")
    await pods.create(orphan_pod("orphan", {"app": "web"}))  # same name, new uid
    with pytest.raises(StatusError) as err:
        await claim(rs, RS_KIND, parse_selector("app=web"), [stale], pods)
    assert err.value.reason == "Invalid"
    assert not cs.objects(Pod)[0].metadata.ownerReferences
    terminating = orphan_pod("going", {"app": "web"})
    terminating.metadata.deletionTimestamp = "2024-01-01T00:00:00Z"
    assert await claim(rs, RS_KIND, parse_selector("app=web"), [terminating], pods) == []


def test_pod_from_template() -> None:
    owner = replica_set("web", 1)
    owner.metadata.uid = "u1"
    t = template({"app": "web"})
    t.metadata.annotations["a"] = "b"
    pod = pod_from_template(t, owner, new_controller_ref(owner, RS_KIND))
    assert pod.metadata.generateName == "web-" and not pod.metadata.name and pod.metadata.namespace == "ns"
    assert dict(pod.metadata.labels) == {"app": "web"} and dict(pod.metadata.annotations) == {"a": "b"}
    assert pod.spec == t.spec and pod.metadata.ownerReferences[0].uid == "u1"


def test_pod_template_hash() -> None:
    a, b = template({"app": "web"}, "nginx:1"), template({"app": "web"}, "nginx:2")
    h = compute_hash(a)
    assert h == compute_hash(template({"app": "web"}, "nginx:1"))  # stable
    assert h != compute_hash(b) and h != compute_hash(a, 0) and compute_hash(a, 0) != compute_hash(a, 1)
    assert h.isalnum() and not set(h) & set("aeiou013")
    labelled = cast(core_pb2.PodTemplateSpec, core_pb2.PodTemplateSpec())
    labelled.CopyFrom(a)
    labelled.metadata.labels["pod-template-hash"] = h
    assert equal_ignore_hash(a, labelled) and not equal_ignore_hash(a, b)
