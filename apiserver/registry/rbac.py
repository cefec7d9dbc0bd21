"""Strategies for RBAC: Role, ClusterRole, RoleBinding, ClusterRoleBinding.

The authorizer reads these objects on every request, so a malformed rule
must be refused at the door rather than silently match nothing. A rule
grants verbs either on resources (apiGroups plus resources) or on
non-resource URLs such as /healthz, and only a ClusterRole may do the
latter. A binding points at one role for life: Kubernetes makes roleRef
immutable, so that re-pointing a binding (and what it grants) always means
deleting and recreating it. RBAC names are only required to fit in one URL
path segment, which is why `system:node` is a valid ClusterRole name.
"""

from __future__ import annotations

from typing import Any

from api import FieldError, invalid, is_dns1123_subdomain, not_supported, required, to_dict

from ._checks import is_path_segment_name
from ._pod import validate_label_selector
from ._strategy import AGE, NAME, Column, Strategy

GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def _created_at(obj: Any, now: float) -> str:
    return obj.metadata.creationTimestamp


def validate_rule(rule: Any, path: str, namespaced: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    if not rule.verbs:
        errs.append(required(f"{path}.verbs", "verbs must contain at least one value"))
    if rule.nonResourceURLs:
        urls = list(rule.nonResourceURLs)
        if namespaced:
            errs.append(invalid(f"{path}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs"))
        if rule.apiGroups or rule.resources or rule.resourceNames:
            errs.append(invalid(f"{path}.nonResourceURLs", urls,
                                "rules cannot apply to both regular resources and non-resource URLs"))
        return errs
    if not rule.apiGroups:
        errs.append(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not rule.resources:
        errs.append(required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errs


class _RBACStrategy(Strategy):
    def validate_name(self, name: str) -> list[str]:
        return is_path_segment_name(name)


# ---------------------------------------------------------------- roles


class RoleStrategy(_RBACStrategy):
    columns = (NAME, Column("Created At", _created_at, type="date"))

    def validate(self, obj: Any) -> list[FieldError]:
        errs: list[FieldError] = []
        for i, rule in enumerate(obj.rules):
            errs += validate_rule(rule, f"rules[{i}]", namespaced=True)
        return errs


class ClusterRoleStrategy(_RBACStrategy):
    columns = (NAME, Column("Created At", _created_at, type="date"))

    def validate(self, obj: Any) -> list[FieldError]:
        errs: list[FieldError] = []
        for i, rule in enumerate(obj.rules):
            errs += validate_rule(rule, f"rules[{i}]", namespaced=False)
        if obj.HasField("aggregationRule"):
            selectors = obj.aggregationRule.clusterRoleSelectors
            if not selectors:
                errs.append(required("aggregationRule.clusterRoleSelectors",
                                     "at least one clusterRoleSelector required if aggregationRule is non-nil"))
            for i, selector in enumerate(selectors):
                errs += validate_label_selector(selector, f"aggregationRule.clusterRoleSelectors[{i}]")
        return errs


# ---------------------------------------------------------------- bindings


def _validate_subject(subject: Any, path: str, namespaced: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    if not subject.name:
        errs.append(required(f"{path}.name"))
    if subject.kind == "ServiceAccount":
        if subject.name:
            errs += [invalid(f"{path}.name", subject.name, m) for m in is_dns1123_subdomain(subject.name)]
        if subject.apiGroup:
            errs.append(not_supported(f"{path}.apiGroup", subject.apiGroup, [""]))
        if not namespaced and not subject.namespace:
            errs.append(required(f"{path}.namespace"))
    elif subject.kind in ("User", "Group"):
        if subject.apiGroup != GROUP:
            errs.append(not_supported(f"{path}.apiGroup", subject.apiGroup, [GROUP]))
    else:
        errs.append(not_supported(f"{path}.kind", subject.kind, SUBJECT_KINDS))
    return errs


def _subjects(binding: Any, kind: str) -> str:
    """USERS, GROUPS or SERVICEACCOUNTS: names, service accounts as ns/name."""
    names = [f"{s.namespace}/{s.name}" if kind == "ServiceAccount" else s.name
             for s in binding.subjects if s.kind == kind]
    return ", ".join(names)


class _BindingStrategy(_RBACStrategy):
    namespaced_subjects = True
    role_kinds: tuple[str, ...] = ("Role", "ClusterRole")
    columns = (
        NAME,
        Column("Role", lambda o, now: f"{o.roleRef.kind}/{o.roleRef.name}"),
        AGE,
        Column("Users", lambda o, now: _subjects(o, "User"), 1),
        Column("Groups", lambda o, now: _subjects(o, "Group"), 1),
        Column("ServiceAccounts", lambda o, now: _subjects(o, "ServiceAccount"), 1),
    )

    def default(self, obj: Any) -> None:
        obj.roleRef.apiGroup = obj.roleRef.apiGroup or GROUP
        for subject in obj.subjects:
            if not subject.apiGroup and subject.kind in ("User", "Group"):
                subject.apiGroup = GROUP

    def validate(self, obj: Any) -> list[FieldError]:
        ref = obj.roleRef
        errs: list[FieldError] = []
        if ref.apiGroup != GROUP:
            errs.append(not_supported("roleRef.apiGroup", ref.apiGroup, [GROUP]))
        if ref.kind not in self.role_kinds:
            errs.append(not_supported("roleRef.kind", ref.kind, self.role_kinds))
        if not ref.name:
            errs.append(required("roleRef.name"))
        else:
            errs += [invalid("roleRef.name", ref.name, m) for m in is_path_segment_name(ref.name)]
        for i, subject in enumerate(obj.subjects):
            errs += _validate_subject(subject, f"subjects[{i}]", self.namespaced_subjects)
        return errs

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        errs = self.validate(obj)
        if obj.roleRef != old.roleRef:
            errs.append(invalid("roleRef", to_dict(obj.roleRef), "cannot change roleRef"))
        return errs


class RoleBindingStrategy(_BindingStrategy):
    pass


class ClusterRoleBindingStrategy(_BindingStrategy):
    namespaced_subjects = False
    role_kinds = ("ClusterRole",)

