"""What every controller that stamps out pods from a template must satisfy.

A Deployment, ReplicaSet, DaemonSet, StatefulSet, ReplicationController and
Job all hold a selector and a pod template, and Kubernetes checks them the
same way: the selector must be set and non-empty, the template's labels must
match it (or the controller would create pods it never sees and create more,
forever), the pod spec must be valid, and long-running controllers insist on
restartPolicy Always and no activeDeadlineSeconds. A Job passes its own
restart policies and reports them itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api import (
    FieldError,
    SelectorError,
    forbidden_field,
    invalid,
    not_supported,
    required,
    selector_from_map,
    selector_from_message,
    to_dict,
)

from ._checks import nonnegative
from ._pod import validate_label_selector, validate_pod_template
from ._strategy import validate_annotations


def validate_selector(spec: Any, path: str, kind: str) -> list[FieldError]:
    """spec.selector: present, well formed and not empty (an empty selector
    would match every pod in the namespace)."""
    if not spec.HasField("selector"):
        return [required(path)]
    sel = spec.selector
    errs = validate_label_selector(sel, path)
    if not sel.matchLabels and not sel.matchExpressions:
        errs.append(invalid(path, to_dict(sel), f"empty selector is invalid for {kind.lower()}"))
    return errs


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool | None:
    """Whether a LabelSelector matches labels; None if it does not compile
    (its own validation reports why)."""
    try:
        return selector_from_message(selector).matches(labels)
    except SelectorError:
        return None


def validate_template_labels(selector: Any, template: Any, path: str) -> list[FieldError]:
    """The template's labels must be selected by the selector."""
    if selector_matches(selector, template.metadata.labels) is False:
        return [invalid(f"{path}.metadata.labels", dict(template.metadata.labels),
                        "`selector` does not match template `labels`")]
    return []


def validate_template_map_selector(selector: Mapping[str, str], template: Any, path: str) -> list[FieldError]:
    """The same rule for a ReplicationController's map selector."""
    if selector and not selector_from_map(selector).matches(template.metadata.labels):
        return [invalid(f"{path}.metadata.labels", dict(template.metadata.labels),
                        "`selector` does not match template `labels`")]
    return []


def validate_template(template: Any, path: str) -> list[FieldError]:
    """Labels, annotations and the pod spec, with every restart policy
    allowed (the caller says which ones its kind accepts)."""
    errs = validate_pod_template(template, path)
    errs += validate_annotations(template.metadata.annotations, f"{path}.metadata.annotations")
    return errs


def validate_long_running(template: Any, path: str, kind: str) -> list[FieldError]:
    """Pods a controller keeps running: restartPolicy Always only, and no
    activeDeadlineSeconds (a deadline would kill them on purpose)."""
    errs: list[FieldError] = []
    policy = template.spec.restartPolicy
    if policy != "Always":
        errs.append(not_supported(f"{path}.spec.restartPolicy", policy, ["Always"]))
    if template.spec.HasField("activeDeadlineSeconds"):
        errs.append(forbidden_field(f"{path}.spec.activeDeadlineSeconds",
                                    f"activeDeadlineSeconds in {kind} is not Supported"))
    return errs


def validate_replicated(spec: Any, kind: str) -> list[FieldError]:
    """The spec of a ReplicaSet-like controller (Deployment, ReplicaSet):
    replicas, minReadySeconds, selector, template."""
    errs = nonnegative(spec.replicas, "spec.replicas")
    errs += nonnegative(spec.minReadySeconds, "spec.minReadySeconds")
    errs += validate_selector(spec, "spec.selector", kind)
    if spec.HasField("selector") and (spec.selector.matchLabels or spec.selector.matchExpressions):
        errs += validate_template_labels(spec.selector, spec.template, "spec.template")
    errs += validate_template(spec.template, "spec.template")
    errs += validate_long_running(spec.template, "spec.template", kind)
    return errs


def validate_replica_counts(status: Any, counters: tuple[str, ...], bounded: tuple[str, ...],
                            ready_detail: str = "cannot be greater than readyReplicas") -> list[FieldError]:
    """Status counters: none negative, the `bounded` ones never above
    status.replicas, and available never above ready."""
    errs: list[FieldError] = []
    for name in counters:
        errs += nonnegative(getattr(status, name), f"status.{name}")
    for name in bounded:
        if getattr(status, name) > status.replicas:
            errs.append(invalid(f"status.{name}", getattr(status, name), "cannot be greater than status.replicas"))
    if "availableReplicas" in bounded and status.availableReplicas > status.readyReplicas:
        errs.append(invalid("status.availableReplicas", status.availableReplicas, ready_detail))
    return errs


def validate_collision_count(status: Any, old_status: Any) -> list[FieldError]:
    """status.collisionCount only grows (it salts the names of revisions)."""
    errs: list[FieldError] = []
    if status.HasField("collisionCount"):
        errs += nonnegative(status.collisionCount, "status.collisionCount")
    if old_status.HasField("collisionCount"):
        value = status.collisionCount if status.HasField("collisionCount") else 0
        if value < old_status.collisionCount:
            errs.append(invalid("status.collisionCount", value, "cannot be decremented"))
    return errs
