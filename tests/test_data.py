"""The vendored copy of the Kubernetes example manifests matches the
project's shared set, file for file and byte for byte."""

from __future__ import annotations

import pytest

from tests.conftest import MANIFESTS, SHARED_MANIFESTS


def test_vendored_manifests_match_the_shared_set() -> None:
    if not SHARED_MANIFESTS.is_dir():
        pytest.skip(f"the shared set is not beside this checkout ({SHARED_MANIFESTS}); nothing to compare")
    ours = {p.relative_to(MANIFESTS): p.read_bytes() for p in MANIFESTS.rglob("*") if p.is_file()}
    theirs = {p.relative_to(SHARED_MANIFESTS): p.read_bytes() for p in SHARED_MANIFESTS.rglob("*") if p.is_file()}
    assert ours == theirs


def test_there_are_manifests_to_test() -> None:
    assert len(list(MANIFESTS.rglob("*.yaml"))) == 37
