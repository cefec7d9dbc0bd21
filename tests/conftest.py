"""Shared test settings. Unit tests need nothing running; integration tests
(tests/integration) get a real etcd and apiserver from their conftest.

The Kubernetes documentation's example manifests the tests apply unchanged
are kept in tests/data/k8s-examples (a byte-for-byte copy of the project's
shared set, with its SOURCE.md and licence), so the suite does not depend
on anything outside the checkout; tests/test_data.py checks the copy
against the shared set wherever that is present.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = REPO / "tests" / "data" / "k8s-examples"
SHARED_MANIFESTS = REPO.parent / "shared" / "manifests" / "k8s-examples"


@pytest.fixture(scope="session")
def manifests_dir() -> Path:
    return MANIFESTS
