"""What every kind of Deployment sync shares: claiming ReplicaSets, finding
(or creating) the new one and syncing revisions, scaling - proportionally
when the Deployment is scaled in the middle of a rollout - cleaning up old
ReplicaSets beyond revisionHistoryLimit, and status.

The new ReplicaSet is the one whose template equals the Deployment's
(ignoring the pod-template-hash label); it is named
`<deployment>-<pod-template-hash>` and selects that label too, so the
pods of two revisions never mix. Its revision is one more than the highest
revision among the old ones, which is also how a rollback to an old
template gets a new number.

A scale of the Deployment while several ReplicaSets have pods (a rollout
in progress, or paused) grows or shrinks each in proportion to its size,
using the max-replicas annotation each got when last scaled; what rounding
leaves over goes to the largest. This is Kubernetes' proportional scaling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from api import StatusError, selector_from_message
from proto import apps_pb2

from .._owner import (
    POD_TEMPLATE_HASH_LABEL,
    claim,
    compute_hash,
    controller_ref,
    new_controller_ref,
    owned_and_orphans,
    recheck_owner,
)
from . import util
from .util import (
    AVAILABLE,
    FAILED_RS_CREATE,
    FOUND_NEW_RS,
    MINIMUM_REPLICAS_AVAILABLE,
    MINIMUM_REPLICAS_UNAVAILABLE,
    NEW_RS_CREATED,
    PROGRESSING,
    Deployment,
    ReplicaSet,
    replicas_of,
)

if TYPE_CHECKING:
    from .controller import DeploymentController


async def replica_sets_for(dc: DeploymentController, d: Deployment) -> list[ReplicaSet]:
    """The ReplicaSets this Deployment controls, after adoption and release."""
    namespace = d.metadata.namespace
    candidates = owned_and_orphans(dc.replica_sets, namespace, d.metadata.uid)
    return await claim(d, dc.kind, selector_from_message(d.spec.selector), candidates, dc.rs_client(namespace),
                       recheck_owner(d, dc.deployment_client(namespace)))


async def all_replica_sets(dc: DeploymentController, d: Deployment, rs_list: list[ReplicaSet],
                           create: bool) -> tuple[ReplicaSet | None, list[ReplicaSet]]:
    """(new ReplicaSet, old ones), creating the new one if `create`, and
    bringing revision annotations up to date on both sides."""
    existing = util.find_new_replica_set(d, rs_list)
    old = util.old_replica_sets(existing, rs_list)
    new = await _new_replica_set(dc, d, existing, old, create)
    return new, old


async def _new_replica_set(dc: DeploymentController, d: Deployment, existing: ReplicaSet | None,
                           old: list[ReplicaSet], create: bool) -> ReplicaSet | None:
    new_revision = util.max_revision(old) + 1
    now = dc.clock.now()
    if existing is not None:
        rs = ReplicaSet()
        rs.CopyFrom(existing)
        annotations_changed = util.set_new_replica_set_annotations(d, rs, new_revision, exists=True)
        if annotations_changed or rs.spec.minReadySeconds != d.spec.minReadySeconds:
            rs.spec.minReadySeconds = d.spec.minReadySeconds
            updated = await dc.rs_client(rs.metadata.namespace).update(rs)
            dc.wrote(updated)
            return updated
        revision_changed = util.set_deployment_revision(d, rs.metadata.annotations.get(util.REVISION, ""))
        needs_update = revision_changed
        if util.has_progress_deadline(d) and util.get_condition(d.status, PROGRESSING) is None:
            util.set_condition(d.status, util.new_condition(
                PROGRESSING, "True", FOUND_NEW_RS, f'Found new replica set "{rs.metadata.name}"', now))
            needs_update = True
        if needs_update:
            await dc.update_status(d)
        return rs
    if not create:
        return None

    template_hash = compute_hash(d.spec.template,
                                 d.status.collisionCount if d.status.HasField("collisionCount") else None)
    rs = ReplicaSet()
    rs.metadata.name = f"{d.metadata.name}-{template_hash}"
    rs.metadata.namespace = d.metadata.namespace
    rs.metadata.ownerReferences.append(new_controller_ref(d, dc.kind))
    rs.spec.template.CopyFrom(d.spec.template)
    rs.spec.template.metadata.labels[POD_TEMPLATE_HASH_LABEL] = template_hash
    rs.metadata.labels.update(rs.spec.template.metadata.labels)
    rs.spec.selector.CopyFrom(d.spec.selector)
    rs.spec.selector.matchLabels[POD_TEMPLATE_HASH_LABEL] = template_hash
    rs.spec.minReadySeconds = d.spec.minReadySeconds
    rs.spec.replicas = 0
    rs.spec.replicas = util.new_rs_replicas(d, [*old, rs], rs)
    util.set_new_replica_set_annotations(d, rs, new_revision, exists=False)

    client = dc.rs_client(d.metadata.namespace)
    already_exists = False
    try:
        created = await client.create(rs)
        dc.wrote(created)
    except StatusError as err:
        if err.reason == "AlreadyExists":
            created = await _existing_or_collision(dc, d, rs, err)
            already_exists = True
        elif err.reason == "Forbidden":
            raise  # the namespace is going away
        else:
            message = f'Failed to create new replica set "{rs.metadata.name}": {err.message}'
            if util.has_progress_deadline(d):
                util.set_condition(d.status, util.new_condition(PROGRESSING, "False", FAILED_RS_CREATE, message,
                                                                now))
                await dc.update_status(d)
            dc.recorder.event(d, "Warning", "FailedCreate", message)
            raise
    if not already_exists and created.spec.replicas > 0:
        dc.recorder.event(d, "Normal", "ScalingReplicaSet",
                          f"Scaled up replica set {created.metadata.name} from 0 to {created.spec.replicas}")
    revision_changed = util.set_deployment_revision(d, str(new_revision))
    needs_update = revision_changed
    if not already_exists and util.has_progress_deadline(d):
        util.set_condition(d.status, util.new_condition(
            PROGRESSING, "True", NEW_RS_CREATED, f'Created new replica set "{created.metadata.name}"', now))
        needs_update = True
    if needs_update:
        await dc.update_status(d)
    return created


async def _existing_or_collision(dc: DeploymentController, d: Deployment, wanted: ReplicaSet,
                                 err: StatusError) -> ReplicaSet:
    """The name is taken. Ours with our template (a create whose answer was
    lost, or a stale cache): use it. Anything else is a hash collision:
    bump status.collisionCount, so the next sync hashes to another name."""
    try:
        rs = dc.replica_sets.get(wanted.metadata.namespace, wanted.metadata.name)
    except StatusError:
        rs = await dc.rs_client(wanted.metadata.namespace).get(wanted.metadata.name)
    ref = controller_ref(rs)
    if ref is not None and ref.uid == d.metadata.uid and \
            util.equal_ignore_hash(d.spec.template, rs.spec.template):
        return rs
    d.status.collisionCount = (d.status.collisionCount if d.status.HasField("collisionCount") else 0) + 1
    await dc.update_status(d)
    raise err


# ---------------------------------------------------------------- scaling


async def sync_paused_or_scaled(dc: DeploymentController, d: Deployment, rs_list: list[ReplicaSet]) -> None:
    """A paused Deployment, or a scaling event: scale what exists (no new
    ReplicaSet), clean up if paused, report status."""
    new, old = await all_replica_sets(dc, d, rs_list, create=False)
    await scale(dc, d, new, old)
    if d.spec.paused and util.rollback_revision(d) is None:
        await cleanup(dc, d, old)
    await sync_status(dc, d, [*old, new], new)


async def is_scaling_event(dc: DeploymentController, d: Deployment, rs_list: list[ReplicaSet]) -> bool:
    """Whether an active ReplicaSet was last scaled for another spec.replicas."""
    new, old = await all_replica_sets(dc, d, rs_list, create=False)
    for rs in util.active([*old, new]):
        desired = util.annotation_int(rs, util.DESIRED_REPLICAS)
        if desired is not None and desired != replicas_of(d):
            return True
    return False


async def scale(dc: DeploymentController, d: Deployment, new: ReplicaSet | None, old: list[ReplicaSet]) -> None:
    desired = replicas_of(d)
    target = _active_or_latest(new, old)
    if target is not None:
        if target.spec.replicas != desired:
            await scale_replica_set(dc, d, target, desired)
        return
    if util.is_saturated(d, new):
        for rs in util.active(old):
            await scale_replica_set(dc, d, rs, 0)
        return
    if not util.is_rolling(d):
        return
    rss = util.active([*old, new])
    allowed = desired + util.max_surge(d) if desired > 0 else 0
    to_add = allowed - util.spec_replicas(rss)
    rss.sort(key=util.by_size_newer if to_add > 0 else util.by_size_older)
    sizes: dict[str, int] = {}
    added = 0
    for rs in rss:
        share = _proportion(d, rs, to_add, added)
        sizes[rs.metadata.name] = rs.spec.replicas + share
        added += share
    if to_add and rss:
        # What rounding left over goes to the largest.
        first = rss[0].metadata.name
        sizes[first] = max(0, sizes[first] + to_add - added)
    # Every one is written, if only to record the new replicas
    # annotations: that is what ends the scaling event.
    for rs in rss:
        await scale_replica_set(dc, d, rs, sizes[rs.metadata.name])


def _active_or_latest(new: ReplicaSet | None, old: list[ReplicaSet]) -> ReplicaSet | None:
    """The one ReplicaSet to scale when only one has replicas (or none has:
    the new one, else the newest old one); None when several have."""
    rss = util.active([*old, new])
    if len(rss) == 1:
        return rss[0]
    if rss:
        return None
    if new is not None:
        return new
    return max(old, key=util.created) if old else None


def _proportion(d: Deployment, rs: ReplicaSet, to_add: int, added: int) -> int:
    if rs.spec.replicas == 0 or to_add == 0 or to_add == added:
        return 0
    desired = replicas_of(d)
    if desired == 0:
        fraction = -rs.spec.replicas
    else:
        total = desired + util.max_surge(d)
        annotated = util.annotation_int(rs, util.MAX_REPLICAS)
        if not annotated:
            annotated = d.status.replicas or total
        fraction = util.round_half_away(rs.spec.replicas * total / annotated) - rs.spec.replicas
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


async def scale_replica_set(dc: DeploymentController, d: Deployment, rs: ReplicaSet, size: int) -> ReplicaSet:
    """Set a ReplicaSet's replicas (and its replicas annotations) and say
    so in an event; returns the ReplicaSet as stored."""
    desired = replicas_of(d)
    maximum = desired + util.max_surge(d)
    if rs.spec.replicas == size and not util.replicas_annotations_need_update(rs, desired, maximum):
        return rs
    previous = rs.spec.replicas
    copy = ReplicaSet()
    copy.CopyFrom(rs)
    copy.spec.replicas = size
    util.set_replicas_annotations(copy, desired, maximum)
    stored = await dc.rs_client(rs.metadata.namespace).update(copy)
    dc.wrote(stored)
    if previous != size:
        direction = "up" if size > previous else "down"
        dc.recorder.event(d, "Normal", "ScalingReplicaSet",
                          f"Scaled {direction} replica set {rs.metadata.name} from {previous} to {size}")
    return stored


# ---------------------------------------------------------------- history


async def cleanup(dc: DeploymentController, d: Deployment, old: list[ReplicaSet]) -> None:
    """Delete the oldest old ReplicaSets beyond revisionHistoryLimit, if
    they are empty and settled."""
    if not d.spec.HasField("revisionHistoryLimit"):
        return
    alive = [rs for rs in old if not rs.metadata.deletionTimestamp]
    excess = len(alive) - d.spec.revisionHistoryLimit
    if excess <= 0:
        return
    client = dc.rs_client(d.metadata.namespace)
    for rs in sorted(alive, key=util.by_revision)[:excess]:
        if rs.status.replicas != 0 or rs.spec.replicas != 0 or \
                rs.metadata.generation > rs.status.observedGeneration:
            continue
        try:
            await client.delete(rs.metadata.name, uid=rs.metadata.uid)
        except StatusError as err:
            if err.reason not in ("NotFound", "Conflict"):
                raise


# ---------------------------------------------------------------- status


def calculate_status(dc: DeploymentController, d: Deployment, all_rss: list[ReplicaSet | None],
                     new: ReplicaSet | None) -> apps_pb2.DeploymentStatus:
    available = util.available_replicas(all_rss)
    status = apps_pb2.DeploymentStatus(
        observedGeneration=d.metadata.generation,
        replicas=util.actual_replicas(all_rss),
        updatedReplicas=util.actual_replicas([new]),
        readyReplicas=util.ready_replicas(all_rss),
        availableReplicas=available,
        unavailableReplicas=max(0, util.spec_replicas(all_rss) - available),
    )
    if d.status.HasField("collisionCount"):
        status.collisionCount = d.status.collisionCount
    status.conditions.extend(d.status.conditions)
    now = dc.clock.now()
    if available >= replicas_of(d) - util.max_unavailable(d):
        util.set_condition(status, util.new_condition(AVAILABLE, "True", MINIMUM_REPLICAS_AVAILABLE,
                                                      "Deployment has minimum availability.", now))
    else:
        util.set_condition(status, util.new_condition(AVAILABLE, "False", MINIMUM_REPLICAS_UNAVAILABLE,
                                                      "Deployment does not have minimum availability.", now))
    return status


async def sync_status(dc: DeploymentController, d: Deployment, all_rss: list[ReplicaSet | None],
                      new: ReplicaSet | None) -> None:
    status = calculate_status(dc, d, all_rss, new)
    if status == d.status:
        return
    d.status.CopyFrom(status)
    await dc.update_status(d)


async def sync_status_only(dc: DeploymentController, d: Deployment, rs_list: list[ReplicaSet]) -> None:
    new, old = await all_replica_sets(dc, d, rs_list, create=False)
    await sync_status(dc, d, [*old, new], new)
