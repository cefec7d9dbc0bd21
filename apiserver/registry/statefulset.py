"""The StatefulSet strategy.

A StatefulSet differs from the other workloads in two ways its rules follow.
Its pods have identities (ordinals, stable names under serviceName) and
their own volumes, stamped out of volumeClaimTemplates, so the pod template
may mount a claim template by name; the claim templates are defaulted and
checked like the PVCs they become. And because existing pods and claims
depend on them, almost nothing in its spec may change after creation:
Kubernetes allows replicas, ordinals, template, updateStrategy,
persistentVolumeClaimRetentionPolicy, minReadySeconds and
revisionHistoryLimit, and forbids the rest with one message.
"""

from __future__ import annotations

from typing import Any

from api import (
    FieldError,
    duplicate,
    forbidden_field,
    invalid,
    is_dns1035_label,
    is_dns1123_label,
    not_supported,
    required,
    to_dict,
    value_of,
)

from ._checks import (
    int_or_percent_value,
    nonnegative,
    not_more_than_100_percent,
    overlay,
    validate_int_or_percent,
)
from ._columns import template_columns
from ._pod import default_pod_spec
from ._strategy import AGE, NAME, Column, Strategy
from ._workload import (
    validate_collision_count,
    validate_long_running,
    validate_replica_counts,
    validate_selector,
    validate_template,
    validate_template_labels,
)
from .core_storage import default_claim_spec, validate_claim_spec

POD_MANAGEMENT_POLICIES = ("OrderedReady", "Parallel")
RETENTION_POLICIES = ("Retain", "Delete")
_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds", "revisionHistoryLimit")


def _validate_update_strategy(strategy: Any, path: str) -> list[FieldError]:
    if not strategy.type:
        return [required(path)]
    if strategy.type == "OnDelete":
        if strategy.HasField("rollingUpdate"):
            return [invalid(f"{path}.rollingUpdate", to_dict(strategy.rollingUpdate),
                            "only allowed for updateStrategy 'RollingUpdate'")]
        return []
    if strategy.type != "RollingUpdate":
        return [invalid(f"{path}.type", strategy.type, "must be 'RollingUpdate' or 'OnDelete'")]
    ru, ru_path = strategy.rollingUpdate, f"{path}.rollingUpdate"
    errs = nonnegative(ru.partition, f"{ru_path}.partition")
    if ru.maxUnavailable.WhichOneof("kind") is not None:
        errs += validate_int_or_percent(ru.maxUnavailable, f"{ru_path}.maxUnavailable")
        if int_or_percent_value(ru.maxUnavailable) == 0:
            errs.append(invalid(f"{ru_path}.maxUnavailable", value_of(ru.maxUnavailable), "cannot be 0"))
        errs += not_more_than_100_percent(ru.maxUnavailable, f"{ru_path}.maxUnavailable")
    return errs


def _validate_claim_templates(spec: Any) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, claim in enumerate(spec.volumeClaimTemplates):
        path = f"spec.volumeClaimTemplates[{i}]"
        name = claim.metadata.name
        # The name is the volume's name in every pod, so it must be a label.
        if not name:
            errs.append(required(f"{path}.metadata.name"))
        else:
            errs += [invalid(f"{path}.metadata.name", name, m) for m in is_dns1123_label(name)]
            if name in seen:
                errs.append(duplicate(f"{path}.metadata.name", name))
            seen.add(name)
        errs += validate_claim_spec(claim.spec, f"{path}.spec")
    return errs


def _template_with_claims(spec: Any) -> Any:
    """The pod template as the controller will stamp it: each claim template
    is a volume the containers may mount."""
    template = type(spec.template)()
    template.CopyFrom(spec.template)
    have = {v.name for v in template.spec.volumes}
    for claim in spec.volumeClaimTemplates:
        name = claim.metadata.name
        # A bad or repeated claim name is reported at the claim template.
        if name and name not in have and not is_dns1123_label(name):
            volume = template.spec.volumes.add(name=name)
            volume.persistentVolumeClaim.claimName = name
            have.add(name)
    return template


class StatefulSetStrategy(Strategy):
    columns = (
        NAME,
        Column("Ready", lambda o, now: f"{o.status.readyReplicas}/{o.spec.replicas}"),
        AGE,
        *template_columns(lambda o: o.spec.template, None),
    )

    def validate_name(self, name: str) -> list[str]:
        # Pod names are <name>-<ordinal> and double as hostnames.
        return is_dns1123_label(name)

    def default(self, obj: Any) -> None:
        spec = obj.spec
        spec.podManagementPolicy = spec.podManagementPolicy or "OrderedReady"
        strategy = spec.updateStrategy
        if not strategy.type:
            strategy.type = "RollingUpdate"
            strategy.rollingUpdate.SetInParent()
        if strategy.type == "RollingUpdate" and strategy.HasField("rollingUpdate") and \
                not strategy.rollingUpdate.HasField("partition"):
            strategy.rollingUpdate.partition = 0
        retention = spec.persistentVolumeClaimRetentionPolicy
        retention.whenDeleted = retention.whenDeleted or "Retain"
        retention.whenScaled = retention.whenScaled or "Retain"
        if not spec.HasField("replicas"):
            spec.replicas = 1
        if not spec.HasField("revisionHistoryLimit"):
            spec.revisionHistoryLimit = 10
        default_pod_spec(spec.template.spec)
        for claim in spec.volumeClaimTemplates:
            default_claim_spec(claim.spec)
            claim.status.phase = claim.status.phase or "Pending"

    def validate(self, obj: Any) -> list[FieldError]:
        spec = obj.spec
        errs: list[FieldError] = []
        if not spec.podManagementPolicy:
            errs.append(required("spec.podManagementPolicy"))
        elif spec.podManagementPolicy not in POD_MANAGEMENT_POLICIES:
            errs.append(invalid("spec.podManagementPolicy", spec.podManagementPolicy,
                                "must be 'OrderedReady' or 'Parallel'"))
        errs += _validate_update_strategy(spec.updateStrategy, "spec.updateStrategy")
        retention = spec.persistentVolumeClaimRetentionPolicy
        for field in ("whenDeleted", "whenScaled"):
            value = getattr(retention, field)
            if value not in RETENTION_POLICIES:
                errs.append(not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{field}", value,
                                          RETENTION_POLICIES))
        errs += nonnegative(spec.replicas, "spec.replicas")
        errs += nonnegative(spec.minReadySeconds, "spec.minReadySeconds")
        errs += nonnegative(spec.ordinals.start, "spec.ordinals.start")
        if spec.HasField("revisionHistoryLimit"):
            errs += nonnegative(spec.revisionHistoryLimit, "spec.revisionHistoryLimit")
        if spec.serviceName:
            errs += [invalid("spec.serviceName", spec.serviceName, m) for m in is_dns1035_label(spec.serviceName)]
        errs += validate_selector(spec, "spec.selector", "StatefulSet")
        if spec.selector.matchLabels or spec.selector.matchExpressions:
            errs += validate_template_labels(spec.selector, spec.template, "spec.template")
        errs += validate_template(_template_with_claims(spec), "spec.template")
        errs += validate_long_running(spec.template, "spec.template", "StatefulSet")
        errs += _validate_claim_templates(spec)
        return errs

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        errs = self.validate(obj)
        frozen = type(obj.spec)()
        frozen.CopyFrom(obj.spec)
        overlay(frozen, old.spec, _MUTABLE)
        if frozen.SerializeToString(deterministic=True) != old.spec.SerializeToString(deterministic=True):
            errs.append(forbidden_field(
                "spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                        "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
                        "'minReadySeconds' are forbidden"))
        return errs

    def validate_status_update(self, obj: Any, old: Any) -> list[FieldError]:
        status = obj.status
        errs = nonnegative(status.observedGeneration, "status.observedGeneration")
        errs += validate_replica_counts(
            status, ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"),
            ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"),
            ready_detail="cannot be greater than status.readyReplicas")
        return errs + validate_collision_count(status, old.status)
