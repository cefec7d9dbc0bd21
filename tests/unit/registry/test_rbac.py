"""rbac.py: Role and ClusterRole rules (verbs, api groups, resources,
non-resource URLs only in ClusterRoles, aggregation), bindings (roleRef and
subject rules, defaulted api groups, the immutable roleRef), RBAC names, and
the printed rows."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import create_errors, created, headers, row, strategy_for, update_errors

GROUP = "rbac.authorization.k8s.io/v1"
READ_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}


def role(kind: str = "Role", **body: Any) -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": kind, "metadata": {"name": "pod-reader"}, "rules": [READ_PODS], **body}


def binding(kind: str = "RoleBinding", **body: Any) -> dict[str, Any]:
    doc = {"apiVersion": GROUP, "kind": kind, "metadata": {"name": "read-pods"},
           "subjects": [{"kind": "User", "name": "jane"}],
           "roleRef": {"kind": "Role" if kind == "RoleBinding" else "ClusterRole", "name": "pod-reader"}}
    doc.update(body)
    return doc


@pytest.mark.parametrize(("kind", "rules", "expected"), [
    ("Role", [READ_PODS], []),
    ("Role", [{"apiGroups": [""], "resources": ["pods"]}],
     ["rules[0].verbs: Required value: verbs must contain at least one value"]),
    ("Role", [{"verbs": ["get"]}],
     ["rules[0].apiGroups: Required value: resource rules must supply at least one api group",
      "rules[0].resources: Required value: resource rules must supply at least one resource"]),
    ("Role", [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
     ['rules[0].nonResourceURLs: Invalid value: ["/healthz"]: namespaced rules cannot apply to non-resource URLs']),
    ("ClusterRole", [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/metrics"]}], []),
    ("ClusterRole", [{"verbs": ["get"], "nonResourceURLs": ["/healthz"], "resources": ["pods"]}],
     ['rules[0].nonResourceURLs: Invalid value: ["/healthz"]: rules cannot apply to both regular resources and '
      "non-resource URLs"]),
])
def test_role_rules(kind: str, rules: list[dict[str, Any]], expected: list[str]) -> None:
    assert create_errors(role(kind, rules=rules)) == expected


def test_cluster_role_aggregation() -> None:
    assert create_errors(role("ClusterRole", rules=[], aggregationRule={"clusterRoleSelectors": [
        {"matchLabels": {"rbac.example.com/aggregate-to-monitoring": "true"}}]})) == []
    assert create_errors(role("ClusterRole", aggregationRule={})) == [
        "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if "
        "aggregationRule is non-nil"]


def test_rbac_names_are_path_segments() -> None:
    strategy = strategy_for("ClusterRole", GROUP)
    assert strategy.validate_name("system:controller:job-controller") == []
    assert strategy.validate_name("a/b") == ["may not contain '/'"]


def test_role_columns() -> None:
    assert headers("Role", GROUP) == ["NAME", "CREATED AT"]
    assert row(created(role())) == {"Name": "pod-reader", "Created At": "2023-11-14T22:13:20Z"}


def test_binding_defaults() -> None:
    b = created(binding(subjects=[{"kind": "User", "name": "jane"}, {"kind": "Group", "name": "devs"},
                                  {"kind": "ServiceAccount", "name": "ci", "namespace": "build"}]))
    assert b.roleRef.apiGroup == "rbac.authorization.k8s.io"
    assert [s.apiGroup for s in b.subjects] == ["rbac.authorization.k8s.io", "rbac.authorization.k8s.io", ""]


@pytest.mark.parametrize(("kind", "body", "expected"), [
    ("RoleBinding", {}, []),
    ("RoleBinding", {"roleRef": {"kind": "Role", "name": "r", "apiGroup": "example.com"}},
     ['roleRef.apiGroup: Unsupported value: "example.com": supported values: "rbac.authorization.k8s.io"']),
    ("RoleBinding", {"roleRef": {"kind": "Policy", "name": ""}},
     ['roleRef.kind: Unsupported value: "Policy": supported values: "Role", "ClusterRole"',
      "roleRef.name: Required value"]),
    ("ClusterRoleBinding", {"roleRef": {"kind": "Role", "name": "r"}},
     ['roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"']),
    ("RoleBinding", {"subjects": [{"kind": "Robot", "name": "r2"}]},
     ['subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"']),
    ("RoleBinding", {"subjects": [{"kind": "User", "name": "", "apiGroup": "example.com"}]},
     ["subjects[0].name: Required value",
      'subjects[0].apiGroup: Unsupported value: "example.com": supported values: "rbac.authorization.k8s.io"']),
    ("RoleBinding", {"subjects": [{"kind": "ServiceAccount", "name": "ci"}]}, []),
    ("ClusterRoleBinding", {"subjects": [{"kind": "ServiceAccount", "name": "ci"}]},
     ["subjects[0].namespace: Required value"]),
    ("RoleBinding", {"subjects": [{"kind": "ServiceAccount", "name": "ci", "apiGroup": "v1"}]},
     ['subjects[0].apiGroup: Unsupported value: "v1": supported values: ""']),
])
def test_binding_validation(kind: str, body: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(binding(kind, **body)) == expected


def test_role_ref_is_immutable() -> None:
    old = created(binding())
    assert update_errors(old, {"subjects": [{"kind": "Group", "name": "ops"}]}) == []
    assert update_errors(old, {"roleRef": {"name": "admin", "kind": "ClusterRole"}}) == [
        'roleRef: Invalid value: {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"}: '
        "cannot change roleRef"]


def test_binding_columns() -> None:
    assert headers("ClusterRoleBinding", GROUP) == ["NAME", "ROLE", "AGE"]
    assert headers("RoleBinding", GROUP, wide=True) == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    b = created(binding(subjects=[{"kind": "User", "name": "jane"}, {"kind": "User", "name": "joe"},
                                  {"kind": "ServiceAccount", "name": "ci", "namespace": "build"}]))
    assert row(b) == {"Name": "read-pods", "Role": "Role/pod-reader", "Age": "90s", "Users": "jane, joe",
                      "Groups": "", "ServiceAccounts": "build/ci"}
