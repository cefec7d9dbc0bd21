"""The public name -> local image table and the manifest scan
(deploy/images/_names.py): every image the docs' manifests name is either
pushed under a local stand-in or reported with the reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api import parse_image_reference
from deploy.images import ALWAYS_PUSHED, RECIPES, REPOSITORIES, plan_pushes, scan_manifests
from deploy.images._names import ImageUse


def test_every_table_entry_is_normalised_and_names_a_built_image() -> None:
    built = {r.name for r in RECIPES}
    for repository, image in REPOSITORIES.items():
        assert parse_image_reference(repository).repository == repository
        assert image in built, f"{repository} -> {image}: no recipe builds {image}"


def test_the_always_pushed_names_all_map() -> None:
    plan = plan_pushes([], ALWAYS_PUSHED)
    assert plan.unmapped == []
    assert {str(t.reference) for t in plan.targets} >= {
        "docker.io/library/busybox:latest", "docker.io/library/busybox:1.28", "docker.io/library/nginx:1.14.2",
        "docker.io/library/nginx:1.16.1", "registry.k8s.io/pause:3.10"}


def test_the_scan_finds_every_image_line_of_the_docs_manifests(manifests_dir: Path) -> None:
    # an independent reading of the same files: every `image:` value by regular expression
    pattern = re.compile(r"""^\s*-?\s*image:\s*["']?([^"',\s]+)""", re.M)
    expected = sorted(m for f in manifests_dir.rglob("*.yaml") for m in pattern.findall(f.read_text()))
    uses = scan_manifests([manifests_dir])
    assert sorted(u.text for u in uses) == expected
    field = re.compile(r"\.(initC|c)ontainers\[\d+\]\.image\)$")
    assert all(str(manifests_dir) in u.where and field.search(u.where) for u in uses)


def test_plan_for_the_docs_manifests(manifests_dir: Path) -> None:
    plan = plan_pushes(scan_manifests([manifests_dir]))
    by_name = {t.reference.familiar(): t for t in plan.targets}
    assert by_name["busybox:1.28"].image == "busybox"
    assert by_name["nginx:1.14.2"].reference.mirror_path == "library/nginx"
    assert by_name["registry.k8s.io/nginx-slim:0.24"].image == "nginx"
    assert by_name["registry.k8s.io/pause:3.8"].reference.mirror_path == "pause"
    assert by_name["registry.k8s.io/e2e-test-images/agnhost:2.40"].image == "agnhost"
    assert by_name["perl:latest"].image == "perl"
    # what is not mapped is reported with the file it came from, not skipped
    unmapped = {use.text: (use.where, why) for use, why in plan.unmapped}
    assert set(unmapped) == {"k8s.gcr.io/fluentd-elasticsearch:1.20", "quay.io/fluentd_elasticsearch/fluentd:v5.0.1"}
    where, why = unmapped["k8s.gcr.io/fluentd-elasticsearch:1.20"]
    assert "daemonset.yaml" in where and "no local image stands in for k8s.gcr.io/fluentd-elasticsearch" in why
    # one target per mirror path and tag
    keys = [f"{t.reference.mirror_path}:{t.reference.tag}" for t in plan.targets]
    assert len(keys) == len(set(keys))


def test_digests_unknown_names_and_bad_references_are_reported() -> None:
    digest = "sha256:" + "0" * 64
    plan = plan_pushes([ImageUse(f"busybox@{digest}", "a"), ImageUse("example.com/app:1", "b"),
                        ImageUse("Bad Name", "c"), ImageUse("busybox:1.28", "d")], always=())
    reasons = {use.where: why for use, why in plan.unmapped}
    assert "pinned by digest" in reasons["a"]
    assert "no local image stands in for example.com/app" in reasons["b"]
    assert "must not contain whitespace" in reasons["c"]
    assert [str(t.reference) for t in plan.targets] == ["docker.io/library/busybox:1.28"]


def test_two_names_on_one_mirror_path_with_different_images_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REPOSITORIES, "k8s.gcr.io/pause", "busybox")
    with pytest.raises(ValueError, match=r"both land on mirror path 'pause:3\.10'"):
        plan_pushes([ImageUse("k8s.gcr.io/pause:3.10", "x")], always=("registry.k8s.io/pause:3.10",))


def test_a_file_that_is_not_yaml_is_an_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\n  image: [unclosed\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: not valid YAML"):
        scan_manifests([tmp_path])
