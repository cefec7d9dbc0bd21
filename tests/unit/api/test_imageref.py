"""Image reference normalisation (api/_imageref.py): the names
pods use become the repository, tag and mirror path the runtime asks for."""

from __future__ import annotations

import pytest

from api import InvalidReference, default_pull_policy, is_image_id, parse_image_reference


@pytest.mark.parametrize(("text", "repository", "tag", "mirror_path"), [
    ("busybox", "docker.io/library/busybox", "latest", "library/busybox"),
    ("busybox:1.28", "docker.io/library/busybox", "1.28", "library/busybox"),
    ("docker.io/redis:6.0.5", "docker.io/library/redis", "6.0.5", "library/redis"),
    ("index.docker.io/library/nginx:1.16.1", "docker.io/library/nginx", "1.16.1", "library/nginx"),
    ("kubelab/testserver:1.0", "docker.io/kubelab/testserver", "1.0", "kubelab/testserver"),
    ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause", "3.10", "pause"),
    ("k8s.gcr.io/pause:2.0", "k8s.gcr.io/pause", "2.0", "pause"),
    ("registry.k8s.io/e2e-test-images/agnhost:2.40", "registry.k8s.io/e2e-test-images/agnhost", "2.40",
     "e2e-test-images/agnhost"),
    ("quay.io/fluentd_elasticsearch/fluentd:v5.0.1", "quay.io/fluentd_elasticsearch/fluentd", "v5.0.1",
     "fluentd_elasticsearch/fluentd"),
    ("localhost/app", "localhost/app", "latest", "app"),
    ("127.0.0.1:5000/library/busybox:1.28", "127.0.0.1:5000/library/busybox", "1.28", "library/busybox"),
])
def test_normalisation(text: str, repository: str, tag: str, mirror_path: str) -> None:
    ref = parse_image_reference(text)
    assert (ref.repository, ref.tag, ref.mirror_path) == (repository, tag, mirror_path)


def test_a_digest_is_kept_and_leaves_the_tag_empty_unless_given() -> None:
    digest = "sha256:" + "ab" * 32
    assert parse_image_reference(f"busybox@{digest}").tag == ""
    ref = parse_image_reference(f"busybox:1.28@{digest}")
    assert (ref.tag, ref.digest, str(ref)) == ("1.28", digest, f"docker.io/library/busybox:1.28@{digest}")


@pytest.mark.parametrize(("text", "familiar"), [
    ("busybox", "busybox:latest"), ("docker.io/library/nginx:1.14.2", "nginx:1.14.2"),
    ("kubelab/testserver:1.0", "kubelab/testserver:1.0"), ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
])
def test_familiar_form(text: str, familiar: str) -> None:
    assert parse_image_reference(text).familiar() == familiar


@pytest.mark.parametrize(("text", "rule"), [
    ("", "non-empty"),
    ("Busybox", "path component 'Busybox' must be lowercase"),
    ("busybox:", "tag '' must match"),
    ("busybox:-bad", "tag '-bad' must match"),
    ("nginx:1.14.2 ", "whitespace"),
    ("busybox@sha256:xyz", "digest 'sha256:xyz' must be algorithm:hex"),
    ("registry.k8s.io/", "repository path must not be empty"),
    ("library//busybox", "path component '' must be lowercase"),
])
def test_bad_references_name_the_reference_and_the_rule(text: str, rule: str) -> None:
    with pytest.raises(InvalidReference) as err:
        parse_image_reference(text)
    assert f"image reference {text!r}" in str(err.value) and rule in str(err.value)


def test_tagged_pinned_and_image_ids() -> None:
    digest = "sha256:" + "a" * 64
    ref = parse_image_reference(f"busybox:1.28@{digest}")
    assert ref.tagged == "docker.io/library/busybox:1.28"
    assert ref.pinned == f"docker.io/library/busybox@{digest}"
    assert parse_image_reference(f"busybox@{digest}").tagged == ""
    assert parse_image_reference("busybox").pinned == ""
    assert is_image_id(digest) and is_image_id("a" * 64)
    assert not is_image_id("busybox") and not is_image_id("sha256:abc")


@pytest.mark.parametrize(("image", "policy"), [
    ("busybox", "Always"), ("busybox:latest", "Always"), ("busybox:1.28", "IfNotPresent"),
    ("localhost:5000/app", "Always"), ("localhost:5000/app:v1", "IfNotPresent"),
    ("busybox@sha256:" + "a" * 64, "IfNotPresent"),
])
def test_default_pull_policy(image: str, policy: str) -> None:
    assert default_pull_policy(image) == policy
