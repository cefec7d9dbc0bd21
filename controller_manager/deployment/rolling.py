"""The RollingUpdate strategy: replace pods a few at a time, never more
than replicas + maxSurge pods, never fewer than replicas - maxUnavailable
available.

Each sync makes one move and waits for the ReplicaSet controllers to carry
it out (their status changes bring the Deployment back):

1. scale the new ReplicaSet up as far as the surge allows;
2. otherwise scale old ReplicaSets down: first their unavailable pods
   (which cost no availability, and would otherwise block a rollout
   forever), then, oldest ReplicaSet first, as many available pods as the
   availability floor allows;
3. once complete, delete old ReplicaSets beyond revisionHistoryLimit.

With 10 replicas and the default 25%/25%: maxSurge 3 (rounded up),
maxUnavailable 2 (rounded down), so 8 to 13 pods, 8 of them available at
least.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import progress, sync, util
from .util import Deployment, ReplicaSet, replicas_of

if TYPE_CHECKING:
    from .controller import DeploymentController


async def rollout_rolling(dc: DeploymentController, d: Deployment, rs_list: list[ReplicaSet]) -> None:
    new, old = await sync.all_replica_sets(dc, d, rs_list, create=True)
    assert new is not None
    all_rss: list[ReplicaSet | None] = [*old, new]
    if await reconcile_new_replica_set(dc, d, all_rss, new):
        await progress.sync_rollout_status(dc, d, all_rss, new)
        return
    if await reconcile_old_replica_sets(dc, d, all_rss, util.active(old), new):
        await progress.sync_rollout_status(dc, d, all_rss, new)
        return
    if util.deployment_complete(d, d.status):
        await sync.cleanup(dc, d, old)
    await progress.sync_rollout_status(dc, d, all_rss, new)


async def reconcile_new_replica_set(dc: DeploymentController, d: Deployment, all_rss: list[ReplicaSet | None],
                                    new: ReplicaSet) -> bool:
    """Scale the new ReplicaSet towards spec.replicas; whether it changed."""
    desired = replicas_of(d)
    if new.spec.replicas == desired:
        return False
    size = desired if new.spec.replicas > desired else util.new_rs_replicas(d, all_rss, new)
    if size == new.spec.replicas:
        return False
    stored = await sync.scale_replica_set(dc, d, new, size)
    new.CopyFrom(stored)
    return True


async def reconcile_old_replica_sets(dc: DeploymentController, d: Deployment, all_rss: list[ReplicaSet | None],
                                     old: list[ReplicaSet], new: ReplicaSet) -> bool:
    """Scale old ReplicaSets down as far as availability allows; whether
    any changed."""
    if util.spec_replicas(old) == 0:
        return False
    min_available = replicas_of(d) - util.max_unavailable(d)
    new_unavailable = new.spec.replicas - new.status.availableReplicas
    max_scaled_down = util.spec_replicas(all_rss) - min_available - new_unavailable
    if max_scaled_down <= 0:
        return False
    cleaned = await _cleanup_unhealthy(dc, d, old, max_scaled_down)
    scaled = await _scale_down_available(dc, d, [*old, new], old)
    return cleaned + scaled > 0


async def _cleanup_unhealthy(dc: DeploymentController, d: Deployment, old: list[ReplicaSet], limit: int) -> int:
    """Drop up to `limit` unavailable pods of old ReplicaSets (oldest
    first). `old` is updated in place with what was stored."""
    removed = 0
    for i, rs in sorted(enumerate(old), key=lambda pair: util.created(pair[1])):
        if removed >= limit:
            break
        unhealthy = rs.spec.replicas - rs.status.availableReplicas
        if rs.spec.replicas == 0 or unhealthy <= 0:
            continue
        count = min(limit - removed, unhealthy)
        old[i] = await sync.scale_replica_set(dc, d, rs, rs.spec.replicas - count)
        removed += count
    return removed


async def _scale_down_available(dc: DeploymentController, d: Deployment, all_rss: list[ReplicaSet | None],
                                old: list[ReplicaSet]) -> int:
    """Scale old ReplicaSets down (oldest first) by as many available pods
    as stay above replicas - maxUnavailable."""
    min_available = replicas_of(d) - util.max_unavailable(d)
    available = util.safely_available(all_rss)
    if available <= min_available:
        return 0
    budget = available - min_available
    removed = 0
    for rs in sorted(old, key=util.created):
        if removed >= budget:
            break
        if rs.spec.replicas == 0:
            continue
        count = min(rs.spec.replicas, budget - removed)
        await sync.scale_replica_set(dc, d, rs, rs.spec.replicas - count)
        removed += count
    return removed
