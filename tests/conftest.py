"""Shared test settings. Unit tests need nothing running; integration tests
(tests/integration) get a real etcd and apiserver from their conftest."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = REPO.parent / "shared" / "manifests" / "k8s-examples"


@pytest.fixture(scope="session")
def manifests_dir() -> Path:
    if not MANIFESTS.is_dir():
        pytest.skip(f"the shared manifests are not at {MANIFESTS}")
    return MANIFESTS
