"""Status: conditions, and writing a computed status back.

Job, DaemonSet, StatefulSet and HorizontalPodAutoscaler conditions are
different messages with the same fields (type, status, reason, message,
lastTransitionTime); these helpers work on any of them. The transition time
moves only when the status changes, so `kubectl describe` can say how long
a condition has held.

`write_status` is how the DaemonSet and StatefulSet controllers store the
status they computed: nothing is written when nothing changed, and a
Conflict (the informer has not delivered this controller's own previous
write yet) is retried once on the latest object, provided its spec is
still the one the status describes, as Kubernetes' controllers do.
"""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf.message import Message

from api import StatusError, rfc3339
from client import ResourceClient

T = TypeVar("T", bound=Message)


def get_condition(conditions: Any, kind: str) -> Any | None:
    for c in conditions:
        if c.type == kind:
            return c
    return None


def condition_true(conditions: Any, kind: str) -> bool:
    c = get_condition(conditions, kind)
    return c is not None and c.status == "True"


def set_condition(conditions: Any, kind: str, status: str, reason: str, message: str, now: float) -> bool:
    """Set one condition in a repeated conditions field; True if anything
    changed."""
    c = get_condition(conditions, kind)
    if c is None:
        conditions.add(type=kind, status=status, reason=reason, message=message, lastTransitionTime=rfc3339(now))
        return True
    if c.status == status and c.reason == reason and c.message == message:
        return False
    if c.status != status:
        c.lastTransitionTime = rfc3339(now)
    c.status, c.reason, c.message = status, reason, message
    return True


async def write_status(client: ResourceClient[T], cached: T, new: T) -> T | None:
    """Store `new`'s status (computed from `cached`) unless it is unchanged."""
    status = new.status  # type: ignore[attr-defined]
    if status.SerializeToString(deterministic=True) == \
            cached.status.SerializeToString(deterministic=True):  # type: ignore[attr-defined]
        return None
    try:
        return await client.update_status(new)
    except StatusError as err:
        if err.reason != "Conflict":
            raise
        conflict = err
    meta = cached.metadata  # type: ignore[attr-defined]
    latest = await client.get(meta.name)
    if latest.metadata.uid != meta.uid or latest.metadata.generation != meta.generation:  # type: ignore[attr-defined]
        raise conflict  # the spec moved on: the next sync computes afresh
    latest.status.CopyFrom(status)  # type: ignore[attr-defined]
    return await client.update_status(latest)
