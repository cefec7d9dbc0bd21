"""The in-tree plugins and the default profile.

`REGISTRY` maps each plugin's name to its factory (the class: its
constructor takes the plugin's args and the framework handle). A profile
names plugins; nothing else in the scheduler knows them.

`DEFAULT_PLUGINS` is the default profile's plugin list in Kubernetes'
multiPoint style: each plugin runs at every extension point it implements,
in this order (for filters the order decides which reason a node reports:
the first plugin to reject it). `DEFAULT_WEIGHTS` are Kubernetes' default
score weights.
"""

from __future__ import annotations

from scheduler.framework import Factory

from .defaultbinder import DefaultBinder
from .defaultpreemption import DefaultPreemption
from .imagelocality import ImageLocality
from .interpodaffinity import InterPodAffinity
from .nodeaffinity import NodeAffinity
from .nodename import NodeName
from .nodeports import NodePorts
from .noderesources import NodeResourcesBalancedAllocation, NodeResourcesFit, NodeResourcesLeastAllocated
from .nodeunschedulable import NodeUnschedulable
from .podtopologyspread import PodTopologySpread
from .queuesort import PrioritySort
from .schedulinggates import SchedulingGates
from .tainttoleration import TaintToleration
from .volumes import VolumeBinding, VolumeRestrictions

_PLUGINS = (PrioritySort, SchedulingGates, NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts,
            NodeResourcesFit, VolumeRestrictions, VolumeBinding, PodTopologySpread, InterPodAffinity,
            DefaultPreemption, NodeResourcesLeastAllocated, NodeResourcesBalancedAllocation, ImageLocality,
            DefaultBinder)

REGISTRY: dict[str, Factory] = {p.NAME: p for p in _PLUGINS}

DEFAULT_PLUGINS: tuple[str, ...] = tuple(p.NAME for p in _PLUGINS)

DEFAULT_WEIGHTS: dict[str, int] = {
    TaintToleration.NAME: 3,
    NodeAffinity.NAME: 2,
    PodTopologySpread.NAME: 2,
    InterPodAffinity.NAME: 2,
    NodeResourcesLeastAllocated.NAME: 1,
    NodeResourcesBalancedAllocation.NAME: 1,
    ImageLocality.NAME: 1,
}

__all__ = ["DEFAULT_PLUGINS", "DEFAULT_WEIGHTS", "REGISTRY"]
