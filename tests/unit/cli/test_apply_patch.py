"""Client-side apply: the last-applied annotation and the three-way patch
kubelab apply sends, case by case (what the user changed, removed, never
set; what the server defaulted and others changed)."""

from __future__ import annotations

import json
from typing import Any

from api import decode_manifest, strategic_merge
from kubelab._apply import LAST_APPLIED, apply_patch, last_applied, with_last_applied
from kubelab._printers import manifest
from kubelab._resources import resolve_kind
from kubelab._session import descriptor

DEPLOY = resolve_kind("deploy")


def deployment(image: str = "nginx:1.27", replicas: int | None = 2, labels: dict[str, str] | None = None,
               containers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": containers or [{"name": "web", "image": image}]}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": labels or {"app": "web"}}, "spec": spec}


def normalised(doc: dict[str, Any]) -> dict[str, Any]:
    return manifest(decode_manifest(doc))


def live_after(applied: dict[str, Any], **server_side: Any) -> Any:
    """What the server would hold after applying `applied`: the manifest
    with its annotation plus server-set fields (defaults, others' edits)."""
    doc = json.loads(json.dumps(with_last_applied(normalised(applied))))
    doc["metadata"].update(uid="1234", resourceVersion="7", creationTimestamp="2024-01-01T00:00:00Z", generation=1)
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container.setdefault("imagePullPolicy", "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    doc["spec"].setdefault("strategy", {"type": "RollingUpdate"})
    doc["status"] = {"replicas": 2}
    for path, value in server_side.items():
        target = doc
        *parents, leaf = path.split("__")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value
    return decode_manifest(doc)


def patch_for(new: dict[str, Any], live: Any) -> dict[str, Any]:
    patch, had = apply_patch(DEPLOY, live, normalised(new))
    assert had
    return patch


def test_the_annotation_is_the_manifest_without_itself() -> None:
    doc = deployment()
    doc["metadata"]["annotations"] = {LAST_APPLIED: "old", "team": "a"}
    text = last_applied(doc)
    assert text.endswith("}\n") and "\n" not in text[:-1]
    stored = json.loads(text)
    assert stored["metadata"]["annotations"] == {"team": "a"}
    assert list(stored) == sorted(stored)
    assert with_last_applied(deployment())["metadata"]["annotations"][LAST_APPLIED] == last_applied(deployment())


def test_reapplying_the_same_manifest_sends_nothing() -> None:
    assert patch_for(deployment(), live_after(deployment())) == {}


def test_server_defaults_and_status_are_left_alone() -> None:
    patch = patch_for(deployment(), live_after(deployment(), spec__minReadySeconds=5))
    assert patch == {}


def test_a_changed_image_is_patched_by_container_name() -> None:
    patch = patch_for(deployment(image="nginx:1.28"), live_after(deployment()))
    assert patch["spec"]["template"]["spec"]["containers"] == [{"name": "web", "image": "nginx:1.28"}]
    assert json.loads(patch["metadata"]["annotations"][LAST_APPLIED])["spec"]["template"]["spec"][
        "containers"][0]["image"] == "nginx:1.28"


def test_a_field_removed_from_the_manifest_is_removed() -> None:
    patch = patch_for(deployment(replicas=None), live_after(deployment()))
    assert patch["spec"] == {"replicas": None}


def test_a_field_someone_else_set_survives_removals() -> None:
    live = live_after(deployment(), metadata__labels={"app": "web", "owner": "ops"})
    patch = patch_for(deployment(labels={"app": "web", "tier": "front"}), live)
    assert patch["metadata"]["labels"] == {"tier": "front"}
    patch = patch_for(deployment(labels={"tier": "front"}), live)
    assert patch["metadata"]["labels"] == {"tier": "front", "app": None}


def test_a_removed_container_is_deleted_by_its_merge_key() -> None:
    two = [{"name": "web", "image": "nginx"}, {"name": "log", "image": "busybox"}]
    live = live_after(deployment(containers=two))
    patch = patch_for(deployment(containers=[{"name": "web", "image": "nginx"}]), live)
    assert {"name": "log", "$patch": "delete"} in patch["spec"]["template"]["spec"]["containers"]
    merged = strategic_merge(manifest(live), patch, descriptor(DEPLOY))
    assert [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["web"]


def test_quantities_compare_by_value_not_spelling() -> None:
    with_cpu = [{"name": "web", "image": "nginx", "resources": {"requests": {"cpu": "0.5", "memory": "64Mi"}}}]
    live = live_after(deployment(containers=with_cpu))
    assert manifest(live)["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "500m"
    assert patch_for(deployment(containers=with_cpu), live) == {}


def test_an_object_without_the_annotation_gets_it() -> None:
    live = live_after(deployment())
    del live.metadata.annotations[LAST_APPLIED]
    patch, had = apply_patch(DEPLOY, live, normalised(deployment()))
    assert not had
    assert patch == {"metadata": {"annotations": {LAST_APPLIED: last_applied(normalised(deployment()))}}}


TOLERATED = [{"name": "web", "image": "nginx"}]


def with_tolerations(tolerations: list[dict[str, Any]]) -> dict[str, Any]:
    doc = deployment(containers=TOLERATED)
    doc["spec"]["template"]["spec"]["tolerations"] = tolerations
    return doc


def test_defaults_inside_an_unchanged_atomic_list_are_not_a_change() -> None:
    # tolerations has no merge strategy: a patch would replace the whole
    # list. The server filled in `operator`; the user changed nothing.
    applied = with_tolerations([{"key": "dedicated", "effect": "NoSchedule"}])
    live = live_after(applied, spec__template__spec__tolerations=[
        {"key": "dedicated", "effect": "NoSchedule", "operator": "Equal"}])
    assert patch_for(applied, live) == {}


def test_a_field_the_user_removed_from_an_atomic_list_item_is_removed() -> None:
    applied = with_tolerations([{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}])
    live = live_after(applied)
    now = with_tolerations([{"key": "dedicated", "effect": "NoSchedule"}])
    patch = patch_for(now, live)
    assert patch["spec"]["template"]["spec"]["tolerations"] == [{"key": "dedicated", "effect": "NoSchedule"}]


def test_drift_in_a_value_the_user_set_is_corrected() -> None:
    applied = with_tolerations([{"key": "dedicated", "effect": "NoSchedule"}])
    live = live_after(applied, spec__template__spec__tolerations=[{"key": "dedicated", "effect": "NoExecute"}])
    patch = patch_for(applied, live)
    assert patch["spec"]["template"]["spec"]["tolerations"] == [{"key": "dedicated", "effect": "NoSchedule"}]


def test_items_others_appended_to_an_unchanged_atomic_list_survive() -> None:
    applied = with_tolerations([{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}])
    live = live_after(applied, spec__template__spec__tolerations=[
        {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300}])
    assert patch_for(applied, live) == {}
