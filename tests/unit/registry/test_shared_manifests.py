"""The registry as a whole: every kind the scheme serves has its own
strategy, and every shared manifest from the Kubernetes documentation
(tests/data/k8s-examples) survives decode + prepare + default +
validate, as the store would run it on create, without a single error."""

from __future__ import annotations

from pathlib import Path

import pytest

from api import SCHEME, StatusError, load_documents
from apiserver.registry import Strategy
from apiserver.registry._strategy import validate_object_meta

from ._support import NOW, STRATEGIES, decode

# Files the codec rejects before any strategy sees them.
KNOWN_BAD = {
    # Its nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution is a list
    # of preference/weight items, which is not the Pod schema (see SOURCE.md).
    "pods/pod-with-node-affinity.yaml",
    # A CronJob in batch/v1beta1, removed in Kubernetes 1.25.
    "application/job/cronjob.yaml",
}


def test_every_kind_has_its_own_strategy() -> None:
    generic = [k.group_resource for k in SCHEME if type(STRATEGIES[k.group_resource]) is Strategy]
    assert generic == []


def _manifest_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.yaml") if p.relative_to(root).as_posix() not in KNOWN_BAD)


def test_shared_manifests_default_and_validate_cleanly(manifests_dir: Path) -> None:
    files = _manifest_files(manifests_dir)
    assert len(files) >= 30
    problems: dict[str, list[str]] = {}
    kinds: set[str] = set()
    for path in files:
        for doc in load_documents(path.read_text(), str(path)):
            obj = decode(doc)
            kind = SCHEME.for_message(obj)
            kinds.add(kind.kind)
            strategy = STRATEGIES[kind.group_resource]
            strategy.prepare_for_create(obj, NOW)
            strategy.default(obj)
            errors = validate_object_meta(obj, strategy) + strategy.validate(obj)
            if errors:
                problems[f"{path.relative_to(manifests_dir)} ({kind.kind})"] = [str(e) for e in errors]
    assert problems == {}
    assert {"Deployment", "DaemonSet", "StatefulSet", "Job", "LimitRange", "ResourceQuota", "RoleBinding",
            "PersistentVolume", "PersistentVolumeClaim"} <= kinds


@pytest.mark.parametrize("name", sorted(KNOWN_BAD))
def test_known_bad_manifests_still_fail_to_decode(manifests_dir: Path, name: str) -> None:
    path = manifests_dir / name
    with pytest.raises(StatusError):
        for doc in load_documents(path.read_text(), str(path)):
            decode(doc)
