"""Rollback on the server side: the `deprecated.deployment.rollback.to`
annotation.

extensions/v1beta1 Deployments had spec.rollbackTo; apps/v1 keeps the
request as this annotation, and the controller still honours it: the
Deployment takes the template (and annotations, so the change-cause comes
back too) of the ReplicaSet with that revision - 0 meaning the previous
one - and the annotation is removed in the same update. The template then
rolls out like any change, and the ReplicaSet it matches gets the next
revision number.

`kubelab rollout undo` does not use this: like kubectl it patches the
template from the client (kubelab/_rollout.py). Both end in the same
state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._owner import template_without_hash
from . import sync, util
from .util import Deployment, ReplicaSet

if TYPE_CHECKING:
    from .controller import DeploymentController


def rollback_to(d: Deployment) -> int | None:
    return util.rollback_revision(d)


async def rollback(dc: DeploymentController, d: Deployment, rs_list: list[ReplicaSet]) -> None:
    new, old = await sync.all_replica_sets(dc, d, rs_list, create=True)
    all_rss = [rs for rs in [*old, new] if rs is not None]
    target = rollback_to(d) or 0
    if target == 0:
        target = util.last_revision(all_rss)
        if target == 0:
            dc.recorder.event(d, "Warning", "DeploymentRollbackRevisionNotFound", "Unable to find last revision.")
            await _clear_rollback_to(dc, d)
            return
    for rs in all_rss:
        if util.revision(rs) != target:
            continue
        if util.equal_ignore_hash(d.spec.template, rs.spec.template):
            dc.recorder.event(d, "Warning", "DeploymentRollbackTemplateUnchanged",
                              f'The rollback revision contains the same template as current deployment '
                              f'"{d.metadata.name}"')
            await _clear_rollback_to(dc, d)
            return
        d.spec.template.CopyFrom(template_without_hash(rs.spec.template))
        util.set_annotations_from(d, rs)
        await _clear_rollback_to(dc, d)
        dc.recorder.event(d, "Normal", "DeploymentRollback",
                          f'Rolled back deployment "{d.metadata.name}" to revision {target}')
        return
    dc.recorder.event(d, "Warning", "DeploymentRollbackRevisionNotFound",
                      "Unable to find the revision to rollback to.")
    await _clear_rollback_to(dc, d)


async def _clear_rollback_to(dc: DeploymentController, d: Deployment) -> None:
    d.metadata.annotations.pop(util.ROLLBACK_TO, None)
    dc.wrote(await dc.deployment_client(d.metadata.namespace).update(d))
