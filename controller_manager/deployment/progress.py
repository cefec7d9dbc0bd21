"""Progress: the Progressing condition and progressDeadlineSeconds.

While a rollout moves (more updated, ready or available pods, fewer old
ones) the Progressing condition is True with reason ReplicaSetUpdated and
its lastUpdateTime is renewed; when the new ReplicaSet is fully available
it becomes NewReplicaSetAvailable. If nothing moves for
progressDeadlineSeconds after the last update, it turns False with reason
ProgressDeadlineExceeded - which `rollout status` reports as failure. The
rollout itself goes on: the deadline is a report, not a rollback.

A stuck Deployment gets no events to wake it, so after each sync that
leaves it in progress it is re-queued for the moment its deadline would
pass. Pausing sets Progressing to Unknown (DeploymentPaused), so the time
spent paused never counts against the deadline; resuming sets
DeploymentResumed and the clock starts again.

ReplicaSet failures (a ReplicaFailure condition on a ReplicaSet, e.g.
pods refused by a quota) are copied into a ReplicaFailure condition of the
Deployment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from api import parse_time
from proto import apps_pb2

from . import sync, util
from .util import (
    NEW_RS_AVAILABLE,
    PAUSED,
    PROGRESSING,
    REPLICA_FAILURE,
    RESUMED,
    RS_UPDATED,
    TIMED_OUT,
    Deployment,
    ReplicaSet,
)

if TYPE_CHECKING:
    from .controller import DeploymentController


async def check_paused_conditions(dc: DeploymentController, d: Deployment) -> None:
    if not util.has_progress_deadline(d):
        return
    cond = util.get_condition(d.status, PROGRESSING)
    if cond is not None and cond.reason == TIMED_OUT:
        return  # a reported failure is not hidden by pausing
    paused_reported = cond is not None and cond.reason == PAUSED
    now = dc.clock.now()
    if d.spec.paused and not paused_reported:
        util.set_condition(d.status, util.new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused",
                                                        now))
    elif not d.spec.paused and paused_reported:
        util.set_condition(d.status, util.new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed",
                                                        now))
    else:
        return
    await dc.update_status(d)


async def sync_rollout_status(dc: DeploymentController, d: Deployment, all_rss: list[ReplicaSet | None],
                              new: ReplicaSet | None) -> None:
    status = sync.calculate_status(dc, d, all_rss, new)
    now = dc.clock.now()
    if not util.has_progress_deadline(d):
        util.remove_condition(status, PROGRESSING)
    current = util.get_condition(d.status, PROGRESSING)
    complete_reported = status.replicas == status.updatedReplicas and current is not None and \
        current.reason == NEW_RS_AVAILABLE
    if util.has_progress_deadline(d) and not complete_reported:
        subject = f'ReplicaSet "{new.metadata.name}"' if new is not None else f'Deployment "{d.metadata.name}"'
        if util.deployment_complete(d, status):
            util.set_condition(status, util.new_condition(
                PROGRESSING, "True", NEW_RS_AVAILABLE, f"{subject} has successfully progressed.", now))
        elif util.deployment_progressing(d, status):
            cond = util.new_condition(PROGRESSING, "True", RS_UPDATED, f"{subject} is progressing.", now)
            # Progress renews lastUpdateTime even with the same reason
            # (set_condition would keep the old one): replace it.
            if current is not None:
                if current.status == "True":
                    cond.lastTransitionTime = current.lastTransitionTime
                util.remove_condition(status, PROGRESSING)
            util.set_condition(status, cond)
        elif util.deployment_timed_out(d, status, now):
            util.set_condition(status, util.new_condition(
                PROGRESSING, "False", TIMED_OUT, f"{subject} has timed out progressing.", now))
    failure = _replica_failure(all_rss, new, now)
    if failure is not None:
        util.set_condition(status, failure)
    else:
        util.remove_condition(status, REPLICA_FAILURE)
    if status == d.status:
        _requeue_stuck(dc, d, status, now)
        return
    d.status.CopyFrom(status)
    await dc.update_status(d)


def _replica_failure(all_rss: list[ReplicaSet | None], new: ReplicaSet | None,
                     now: float) -> apps_pb2.DeploymentCondition | None:
    ordered = [new, *[rs for rs in all_rss if rs is not new]]
    for rs in ordered:
        if rs is None:
            continue
        for cond in rs.status.conditions:
            if cond.type == REPLICA_FAILURE and cond.status == "True":
                return util.new_condition(REPLICA_FAILURE, cond.status, cond.reason, cond.message, now)
    return None


def _requeue_stuck(dc: DeploymentController, d: Deployment, status: apps_pb2.DeploymentStatus, now: float) -> None:
    """Look again when the progress deadline would pass, since nothing
    else will wake a Deployment that is not progressing."""
    cond = util.get_condition(status, PROGRESSING)
    if not util.has_progress_deadline(d) or cond is None or cond.reason in (NEW_RS_AVAILABLE, TIMED_OUT) or \
            util.deployment_complete(d, status):
        return
    try:
        since = parse_time(cond.lastUpdateTime)
    except ValueError:
        return
    after = since + d.spec.progressDeadlineSeconds - now
    if after < 1:
        dc.queue.add_rate_limited(f"{d.metadata.namespace}/{d.metadata.name}")
    else:
        dc.enqueue_after(d, after)
