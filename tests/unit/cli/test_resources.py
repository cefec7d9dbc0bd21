"""Resource arguments (`po,svc`, `TYPE NAME...`, `TYPE/NAME`, `all`), the
namespace an object from a file goes to, and reading manifest files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api import SCHEME
from kubelab._resources import (
    Manifest,
    ResourceRequest,
    kinds_in_category,
    manifest_kind,
    parse_resource_args,
    read_manifests,
    several_kinds,
    target_namespace,
)
from kubelab._session import CLIError

POD, SVC, DEPLOY = SCHEME.lookup("pods"), SCHEME.lookup("services"), SCHEME.lookup("deployments.apps")


@pytest.mark.parametrize("typed", ["po", "pod", "pods", "Pod", "pods."])
def test_every_name_users_type_for_pods(typed: str) -> None:
    assert parse_resource_args([typed.rstrip(".")]) == [ResourceRequest(POD)]


@pytest.mark.parametrize("typed", ["deploy", "deployment", "deployments", "deployments.apps",
                                   "deployment.v1.apps"])
def test_every_name_users_type_for_deployments(typed: str) -> None:
    assert parse_resource_args([typed]) == [ResourceRequest(DEPLOY)]


def test_several_types_and_names() -> None:
    assert parse_resource_args(["po,svc"]) == [ResourceRequest(POD), ResourceRequest(SVC)]
    assert parse_resource_args(["po", "a", "b"]) == [ResourceRequest(POD, ("a", "b"))]
    assert parse_resource_args(["po,svc", "x"]) == [ResourceRequest(POD, ("x",)), ResourceRequest(SVC, ("x",))]


def test_type_slash_name() -> None:
    assert parse_resource_args(["po/a", "po/b", "svc/c"]) == [ResourceRequest(POD, ("a", "b")),
                                                              ResourceRequest(SVC, ("c",))]


def test_mixing_the_forms_is_refused() -> None:
    with pytest.raises(CLIError, match="no need to specify a resource type as a separate argument"):
        parse_resource_args(["po", "po/a"])
    with pytest.raises(CLIError, match="single resource and name"):
        parse_resource_args(["po/"])


def test_unknown_types_name_what_was_typed() -> None:
    with pytest.raises(CLIError, match='the server doesn\'t have a resource type "widgets"'):
        parse_resource_args(["widgets"])


def test_all_is_the_all_category() -> None:
    requests = parse_resource_args(["all"])
    kinds = [r.kind for r in requests]
    assert kinds == kinds_in_category("all")
    assert {POD, SVC, DEPLOY} <= set(kinds)
    assert SCHEME.lookup("configmaps") not in kinds
    assert several_kinds(["all"], requests)
    assert not several_kinds(["po"], parse_resource_args(["po"]))
    assert several_kinds(["po,svc"], parse_resource_args(["po,svc"]))


def test_where_objects_from_files_go() -> None:
    ns = SCHEME.lookup("ns")
    assert target_namespace(ns, "x", "default", explicit=True) == ""
    assert target_namespace(POD, "", "team-a", explicit=False) == "team-a"
    assert target_namespace(POD, "kube-system", "default", explicit=False) == "kube-system"
    assert target_namespace(POD, "kube-system", "kube-system", explicit=True) == "kube-system"
    with pytest.raises(CLIError) as caught:
        target_namespace(POD, "kube-system", "x", explicit=True)
    assert str(caught.value) == ('the namespace from the provided object "kube-system" does not match the namespace '
                                 '"x". You must pass \'--namespace=kube-system\' to perform this operation.')


def test_reading_a_directory_recursively(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n"
                                     "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, "
                                     "metadata: {name: b}}\n")
    (tmp_path / "sub" / "c.json").write_text('{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c"}}')
    (tmp_path / "notes.txt").write_text("not a manifest")
    assert [m.name for m in read_manifests([str(tmp_path)])] == ["a", "b"]
    found = read_manifests([str(tmp_path)], recursive=True)
    assert [m.name for m in found] == ["a", "b", "c"]
    assert found[2].source == str(tmp_path / "sub" / "c.json")


def test_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n")
    with pytest.raises(CLIError, match=r"error parsing .*bad.yaml: error converting YAML to JSON: yaml: line \d+"):
        read_manifests([str(bad)])
    with pytest.raises(CLIError, match=re.escape('the path "nowhere.yaml" does not exist')):
        read_manifests(["nowhere.yaml"])


def test_kinds_the_server_does_not_serve() -> None:
    m = Manifest({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "hello"}}, "cj.yaml")
    with pytest.raises(CLIError) as caught:
        manifest_kind(m)
    assert str(caught.value).startswith('resource mapping not found for name: "hello" namespace: "" from "cj.yaml": '
                                        'no matches for kind "CronJob" in version "batch/v1beta1"')
