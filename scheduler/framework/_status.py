"""Statuses, cycle state and cluster events: the words plugins answer in.

A plugin never raises to say "no": it returns a Status with a code and the
reasons a person should read ("Insufficient cpu"). `None` is success, as a
nil *Status is in Kubernetes; filters return it for almost every node, and
not building an object there is what keeps a cycle over hundreds of nodes
cheap. Statuses are immutable, so a plugin builds its common refusals once.

The codes mean what they mean in Kubernetes:

* UNSCHEDULABLE: this node will not do now, but evicting pods could help
  (preemption considers the node);
* UNSCHEDULABLE_AND_UNRESOLVABLE: nothing short of changing the node or
  the pod helps (preemption skips the node);
* ERROR: something broke (the pod is retried with backoff);
* SKIP: from PreFilter or PreScore, "this pod does not concern me": the
  plugin's Filter or Score is not called for this pod at all.

A ClusterEvent names a change in the cluster (a node added, a pod deleted,
a node's taints changed). Plugins declare the events that could make a pod
they rejected fit; the queue uses that to retry such a pod when one
happens, instead of on a timer.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class Code(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5


@dataclass(frozen=True, slots=True)
class Status:
    code: Code
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    def is_success(self) -> bool:
        return self.code == Code.SUCCESS

    def is_rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    def with_plugin(self, plugin: str) -> Status:
        return self if self.plugin == plugin else Status(self.code, self.reasons, plugin)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}" if self.reasons else self.code.name


def unschedulable(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE, reasons)


def unresolvable(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons)


def error(message: str) -> Status:
    return Status(Code.ERROR, (message,))


SKIP = Status(Code.SKIP)
SUCCESS = Status(Code.SUCCESS)


class CycleState:
    """What plugins compute in PreFilter/PreScore and read per node, for
    one pod's cycle. Values that preemption may change (it simulates
    removing pods) implement `clone()`; `clone()` of the state clones them."""

    __slots__ = ("_data", "skip_filter", "skip_score")

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()

    def read(self, key: str) -> Any:
        return self._data.get(key)

    def write(self, key: str, value: Any) -> None:
        self._data[key] = value

    def clone(self) -> CycleState:
        c = CycleState()
        for key, value in self._data.items():
            copier = getattr(value, "clone", None)
            c._data[key] = copier() if copier is not None else value
        c.skip_filter = set(self.skip_filter)
        c.skip_score = set(self.skip_score)
        return c

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)


# ---------------------------------------------------------------- cluster events

class ActionType(enum.IntFlag):
    ADD = enum.auto()
    DELETE = enum.auto()
    UPDATE_NODE_ALLOCATABLE = enum.auto()
    UPDATE_NODE_LABEL = enum.auto()
    UPDATE_NODE_TAINT = enum.auto()
    UPDATE_NODE_CONDITION = enum.auto()
    UPDATE_NODE_SPEC = enum.auto()  # unschedulable flipped
    UPDATE_POD_LABEL = enum.auto()
    UPDATE_POD_SCALE_DOWN = enum.auto()
    UPDATE_OTHER = enum.auto()
    UPDATE = (UPDATE_NODE_ALLOCATABLE | UPDATE_NODE_LABEL | UPDATE_NODE_TAINT | UPDATE_NODE_CONDITION
              | UPDATE_NODE_SPEC | UPDATE_POD_LABEL | UPDATE_POD_SCALE_DOWN | UPDATE_OTHER)
    ALL = ADD | DELETE | UPDATE


# What a ClusterEvent's resource names; "AssignedPod" is a pod on a node (the
# others' pods, as opposed to "Pod", a pod waiting in this scheduler's queue).
NODE = "Node"
ASSIGNED_POD = "AssignedPod"
UNSCHEDULED_POD = "Pod"
PERSISTENT_VOLUME = "PersistentVolume"
PERSISTENT_VOLUME_CLAIM = "PersistentVolumeClaim"
NAMESPACE = "Namespace"
WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class ClusterEvent:
    resource: str
    action: ActionType
    label: str = ""

    def matches(self, registered: ClusterEvent) -> bool:
        """Whether this event is one `registered` asks for."""
        return (registered.resource in (WILDCARD, self.resource)) and bool(self.action & registered.action)

    def __str__(self) -> str:
        return self.label or f"{self.resource}{self.action.name}"


# The event that moves every waiting pod (a periodic flush, a forced retry).
UNSCHEDULABLE_TIMEOUT = ClusterEvent(WILDCARD, ActionType.ALL, "UnschedulableTimeout")
