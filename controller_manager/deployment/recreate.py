"""The Recreate strategy: all old pods go before any new pod starts.

Scale every old ReplicaSet to 0; wait until none of their pods is left
running (a pod that is Pending, Running or Unknown might still be serving,
so only finished or deleted pods count as gone); then create or scale the
new ReplicaSet to spec.replicas at once. There is downtime by design: for
applications that cannot run two versions side by side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._owner import CONTROLLER_UID_INDEX
from . import progress, sync, util
from .util import Deployment, ReplicaSet, replicas_of

if TYPE_CHECKING:
    from .controller import DeploymentController


async def rollout_recreate(dc: DeploymentController, d: Deployment, rs_list: list[ReplicaSet]) -> None:
    new, old = await sync.all_replica_sets(dc, d, rs_list, create=False)
    all_rss: list[ReplicaSet | None] = [*old, new]
    scaled_down = False
    for rs in util.active(old):
        if rs.spec.replicas != 0:
            await sync.scale_replica_set(dc, d, rs, 0)
            scaled_down = True
    if scaled_down or old_pods_running(dc, new, old):
        await progress.sync_rollout_status(dc, d, all_rss, new)
        return
    if new is None:
        new, old = await sync.all_replica_sets(dc, d, rs_list, create=True)
        assert new is not None
        all_rss = [*old, new]
    if new.spec.replicas != replicas_of(d):
        new.CopyFrom(await sync.scale_replica_set(dc, d, new, replicas_of(d)))
    if util.deployment_complete(d, d.status):
        await sync.cleanup(dc, d, old)
    await progress.sync_rollout_status(dc, d, all_rss, new)


def old_pods_running(dc: DeploymentController, new: ReplicaSet | None, old: list[ReplicaSet]) -> bool:
    if util.actual_replicas(old) > 0:
        return True
    for rs in old:
        if new is not None and rs.metadata.uid == new.metadata.uid:
            continue
        for pod in dc.pods.by_index(CONTROLLER_UID_INDEX, rs.metadata.uid):
            if pod.status.phase not in ("Succeeded", "Failed"):
                return True
    return False
