"""The arithmetic and bookkeeping of Deployments (Kubernetes'
deploymentutil): annotations, revisions, surge and unavailability,
conditions, and the questions the controller asks of a set of
ReplicaSets. Everything here is a pure function of its arguments, so the
rules are tested without a controller.

Annotations a Deployment's ReplicaSets carry:

* `deployment.kubernetes.io/revision`: the rollout number of the template
  the ReplicaSet runs; the Deployment carries its new ReplicaSet's;
* `deployment.kubernetes.io/revision-history`: earlier numbers the same
  template had (after an undo, the template gets a new number);
* `deployment.kubernetes.io/desired-replicas` and `max-replicas`: the
  Deployment's replicas (and replicas + maxSurge) when this ReplicaSet was
  last scaled, which is how a later scale of the Deployment is told apart
  from a rollout and spread proportionally;
* every other annotation of the Deployment (kubernetes.io/change-cause,
  which `rollout history` shows), copied when the ReplicaSet is written.

Two deliberate differences from Kubernetes' arithmetic, both about stale
ReplicaSet status: a ReplicaSet counts as max(spec.replicas,
status.replicas) pods when the controller decides whether it may surge
(pods of a scale-down not carried out yet still exist), and as at most
spec.replicas available pods when it decides whether it may scale down
(pods beyond spec are about to go). Kubernetes uses spec and status
alone, which lets a rollout overshoot maxSurge or undershoot
maxUnavailable for a moment while a ReplicaSet controller catches up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from api import parse_time, rfc3339, scaled_value
from proto import apps_pb2

from .._owner import equal_ignore_hash

Deployment = apps_pb2.Deployment
ReplicaSet = apps_pb2.ReplicaSet

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
CHANGE_CAUSE = "kubernetes.io/change-cause"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
#: Deployment annotations that are not copied to its ReplicaSets (nor back on a rollback).
NOT_COPIED = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO})
MAX_HISTORY_CHARS = 2000

# Condition types and reasons, as kubectl and users match on them.
AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"
MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
TIMED_OUT = "ProgressDeadlineExceeded"
FAILED_RS_CREATE = "ReplicaSetCreateError"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"


# ---------------------------------------------------------------- numbers


def replicas_of(obj: Any) -> int:
    """spec.replicas, 1 when unset (as the apiserver defaults it)."""
    return int(obj.spec.replicas) if obj.spec.HasField("replicas") else 1


def is_rolling(d: Deployment) -> bool:
    return d.spec.strategy.type != "Recreate"


def resolve_fenceposts(d: Deployment) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods: percentages of replicas, surge
    rounded up and unavailable down; both 0 would never progress, so
    unavailable becomes 1."""
    ru = d.spec.strategy.rollingUpdate
    desired = replicas_of(d)
    surge = scaled_value(ru.maxSurge, desired, True) if ru.HasField("maxSurge") else math.ceil(desired / 4)
    unavailable = scaled_value(ru.maxUnavailable, desired, False) if ru.HasField("maxUnavailable") \
        else desired // 4
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Deployment) -> int:
    return resolve_fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Deployment) -> int:
    if not is_rolling(d) or replicas_of(d) == 0:
        return 0
    return min(resolve_fenceposts(d)[1], replicas_of(d))


def round_half_away(x: float) -> int:
    """Go's math.Round: halves away from zero (Python's round() goes to even)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def revision(obj: Any) -> int:
    text = obj.metadata.annotations.get(REVISION, "")
    try:
        return int(text) if text else 0
    except ValueError:
        return 0


def rollback_revision(d: Deployment) -> int | None:
    """The revision a rollback was asked for through the annotation that
    round-trips extensions/v1beta1's spec.rollbackTo (0: the previous one);
    None if none was asked for (or the value is not a number)."""
    text = d.metadata.annotations.get(ROLLBACK_TO, "")
    try:
        return int(text) if text else None
    except ValueError:
        return None


def max_revision(rss: Iterable[ReplicaSet]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def last_revision(rss: Iterable[ReplicaSet]) -> int:
    """The revision before the newest one (what an undo goes back to)."""
    newest = previous = 0
    for rs in rss:
        v = revision(rs)
        if v >= newest:
            newest, previous = v, newest
        elif v > previous:
            previous = v
    return previous


# ---------------------------------------------------------------- ReplicaSets


def created(rs: ReplicaSet) -> tuple[float, str]:
    ts = rs.metadata.creationTimestamp
    return (parse_time(ts) if ts else 0.0, rs.metadata.name)


def find_new_replica_set(d: Deployment, rss: Sequence[ReplicaSet]) -> ReplicaSet | None:
    """The oldest ReplicaSet whose template is the Deployment's (two can
    match after a hash collision; the oldest wins, as in Kubernetes)."""
    for rs in sorted(rss, key=created):
        if equal_ignore_hash(rs.spec.template, d.spec.template):
            return rs
    return None


def old_replica_sets(new_rs: ReplicaSet | None, rss: Sequence[ReplicaSet]) -> list[ReplicaSet]:
    uid = new_rs.metadata.uid if new_rs is not None else None
    return [rs for rs in rss if rs.metadata.uid != uid]


def active(rss: Iterable[ReplicaSet | None]) -> list[ReplicaSet]:
    """ReplicaSets that should have pods."""
    return [rs for rs in rss if rs is not None and rs.spec.replicas > 0]


def spec_replicas(rss: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.spec.replicas for rs in rss if rs is not None)


def pod_count(rss: Iterable[ReplicaSet | None]) -> int:
    """Pods that may exist: a ReplicaSet told to shrink still has its pods
    until its controller has deleted them and said so in status."""
    return sum(max(rs.spec.replicas, rs.status.replicas) for rs in rss if rs is not None)


def actual_replicas(rss: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.status.replicas for rs in rss if rs is not None)


def ready_replicas(rss: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.status.readyReplicas for rs in rss if rs is not None)


def available_replicas(rss: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.status.availableReplicas for rs in rss if rs is not None)


def safely_available(rss: Iterable[ReplicaSet | None]) -> int:
    """Available pods that will stay: at most spec.replicas per ReplicaSet."""
    return sum(min(rs.status.availableReplicas, rs.spec.replicas) for rs in rss if rs is not None)


def by_size_newer(rs: ReplicaSet) -> tuple[Any, ...]:
    """Sort key: larger first, then newer first (who gets replicas added)."""
    ts, name = created(rs)
    return (-rs.spec.replicas, -ts, name)


def by_size_older(rs: ReplicaSet) -> tuple[Any, ...]:
    """Sort key: larger first, then older first (who gives replicas up)."""
    ts, name = created(rs)
    return (-rs.spec.replicas, ts, name)


def by_revision(rs: ReplicaSet) -> tuple[Any, ...]:
    return (revision(rs), *created(rs))


def new_rs_replicas(d: Deployment, all_rss: Sequence[ReplicaSet | None], new_rs: ReplicaSet) -> int:
    """How many replicas the new ReplicaSet may have now."""
    if not is_rolling(d):
        return replicas_of(d)
    desired = replicas_of(d)
    room = desired + max_surge(d) - pod_count(all_rss)
    if room <= 0:
        return int(new_rs.spec.replicas)
    return int(new_rs.spec.replicas + min(room, desired - new_rs.spec.replicas))


def is_saturated(d: Deployment, rs: ReplicaSet | None) -> bool:
    """The ReplicaSet runs all the Deployment's replicas, all available."""
    if rs is None:
        return False
    desired = annotation_int(rs, DESIRED_REPLICAS)
    return desired == replicas_of(d) and rs.spec.replicas == replicas_of(d) and \
        rs.status.availableReplicas == replicas_of(d)


# ---------------------------------------------------------------- annotations


def annotation_int(obj: Any, name: str) -> int | None:
    text = obj.metadata.annotations.get(name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def replicas_annotations_need_update(rs: ReplicaSet, desired: int, maximum: int) -> bool:
    return rs.metadata.annotations.get(DESIRED_REPLICAS) != str(desired) or \
        rs.metadata.annotations.get(MAX_REPLICAS) != str(maximum)


def set_replicas_annotations(rs: ReplicaSet, desired: int, maximum: int) -> bool:
    if not replicas_annotations_need_update(rs, desired, maximum):
        return False
    rs.metadata.annotations[DESIRED_REPLICAS] = str(desired)
    rs.metadata.annotations[MAX_REPLICAS] = str(maximum)
    return True


def copy_annotations_to_replica_set(d: Deployment, rs: ReplicaSet) -> bool:
    changed = False
    for key, value in d.metadata.annotations.items():
        if key in NOT_COPIED or rs.metadata.annotations.get(key) == value:
            continue
        rs.metadata.annotations[key] = value
        changed = True
    return changed


def set_new_replica_set_annotations(d: Deployment, rs: ReplicaSet, new_revision: int, exists: bool) -> bool:
    """Copy the Deployment's annotations, give the ReplicaSet `new_revision`
    (its old number joins revision-history) and, for a ReplicaSet about to
    be created, the replicas annotations. Whether anything changed."""
    changed = copy_annotations_to_replica_set(d, rs)
    annotations = rs.metadata.annotations
    old_text = annotations.get(REVISION, "")
    try:
        old = int(old_text) if old_text else 0
    except ValueError:
        return changed
    if old < new_revision:
        annotations[REVISION] = str(new_revision)
        changed = True
        if old_text:
            history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
            history.append(old_text)
            while len(",".join(history)) > MAX_HISTORY_CHARS and len(history) > 1:
                history.pop(0)
            annotations[REVISION_HISTORY] = ",".join(history)
    if not exists and set_replicas_annotations(rs, replicas_of(d), replicas_of(d) + max_surge(d)):
        changed = True
    return changed


def set_deployment_revision(d: Deployment, value: str) -> bool:
    if d.metadata.annotations.get(REVISION) == value:
        return False
    d.metadata.annotations[REVISION] = value
    return True


def set_annotations_from(d: Deployment, rs: ReplicaSet) -> None:
    """A rollback: the Deployment takes the ReplicaSet's annotations (its
    change-cause among them), keeping only its own bookkeeping ones."""
    kept = {k: v for k, v in d.metadata.annotations.items() if k in NOT_COPIED}
    d.metadata.annotations.clear()
    d.metadata.annotations.update(kept)
    for key, value in rs.metadata.annotations.items():
        if key not in NOT_COPIED:
            d.metadata.annotations[key] = value


# ---------------------------------------------------------------- conditions


def get_condition(status: apps_pb2.DeploymentStatus, kind: str) -> apps_pb2.DeploymentCondition | None:
    for cond in status.conditions:
        if cond.type == kind:
            return cond
    return None


def new_condition(kind: str, status: str, reason: str, message: str, now: float) -> apps_pb2.DeploymentCondition:
    ts = rfc3339(now)
    return apps_pb2.DeploymentCondition(type=kind, status=status, reason=reason, message=message,
                                        lastUpdateTime=ts, lastTransitionTime=ts)


def set_condition(status: apps_pb2.DeploymentStatus, cond: apps_pb2.DeploymentCondition) -> None:
    """Add or replace a condition; same status and reason: nothing changes;
    same status: the transition time is kept."""
    current = get_condition(status, cond.type)
    if current is not None and current.status == cond.status and current.reason == cond.reason:
        return
    if current is not None and current.status == cond.status:
        cond.lastTransitionTime = current.lastTransitionTime
    remove_condition(status, cond.type)
    status.conditions.append(cond)


def remove_condition(status: apps_pb2.DeploymentStatus, kind: str) -> None:
    kept = [c for c in status.conditions if c.type != kind]
    del status.conditions[:]
    status.conditions.extend(kept)


# ---------------------------------------------------------------- progress


def has_progress_deadline(d: Deployment) -> bool:
    return d.spec.HasField("progressDeadlineSeconds") and d.spec.progressDeadlineSeconds != 2**31 - 1


def deployment_complete(d: Deployment, status: apps_pb2.DeploymentStatus) -> bool:
    desired = replicas_of(d)
    return status.updatedReplicas == desired and status.replicas == desired and \
        status.availableReplicas == desired and status.observedGeneration >= d.metadata.generation


def deployment_progressing(d: Deployment, status: apps_pb2.DeploymentStatus) -> bool:
    """More updated, fewer old, more ready or more available pods than the
    status the Deployment has now."""
    old = d.status
    return status.updatedReplicas > old.updatedReplicas or \
        status.replicas - status.updatedReplicas < old.replicas - old.updatedReplicas or \
        status.readyReplicas > old.readyReplicas or status.availableReplicas > old.availableReplicas


def deployment_timed_out(d: Deployment, status: apps_pb2.DeploymentStatus, now: float) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.reason == NEW_RS_AVAILABLE:
        return False
    if cond.reason == TIMED_OUT:
        return True
    try:
        since = parse_time(cond.lastUpdateTime)
    except ValueError:
        return False
    return since + d.spec.progressDeadlineSeconds < now
