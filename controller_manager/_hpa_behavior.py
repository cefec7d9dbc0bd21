"""How a HorizontalPodAutoscaler's raw recommendation becomes the replica
count it sets: stabilisation and rate limits (Kubernetes'
normalizeDesiredReplicas and its behavior variant).

Raw recommendations flap with the load; acting on each would add and
remove pods every few seconds. So:

* Without spec.behavior (Kubernetes' original rules): scale down only to
  the highest recommendation of the downscale stabilisation window (300 s
  by default, a controller-manager flag), and scale up at most to
  max(2 x current, 4) in one step.
* With spec.behavior: scale up only as far as the lowest recommendation of
  the scale-up window and down only as far as the highest of the
  scale-down window; then each direction's policies ("at most 4 pods",
  "at most 100 %" per period) bound the change, measured from the replica
  count at the start of each policy's period (so the scale events of the
  period are remembered), selectPolicy Max taking the policy that allows
  the most change, Min the least, Disabled none.

Either way minReplicas and maxReplicas bound the result, and the reason
that limited it (ScaleUpLimit, TooManyReplicas, ...) goes into the
ScalingLimited condition. The history lives in memory, per HPA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from proto import autoscaling_pb2

Rules = autoscaling_pb2.HPAScalingRules

# Kubernetes' scale-up limit when an HPA has no behavior: at most double,
# and at least to 4, per sync.
SCALE_UP_FACTOR = 2
SCALE_UP_MINIMUM = 4


def default_scale_up() -> Rules:
    """The apiserver's defaults for behavior.scaleUp (apiserver/registry/autoscaling.py)."""
    return Rules(stabilizationWindowSeconds=0, selectPolicy="Max",
                 policies=[autoscaling_pb2.HPAScalingPolicy(type="Pods", value=4, periodSeconds=15),
                           autoscaling_pb2.HPAScalingPolicy(type="Percent", value=100, periodSeconds=15)])


def default_scale_down(window: int) -> Rules:
    return Rules(stabilizationWindowSeconds=window, selectPolicy="Max",
                 policies=[autoscaling_pb2.HPAScalingPolicy(type="Percent", value=100, periodSeconds=15)])


@dataclass
class ScaleHistory:
    """What one HPA's decisions remember between syncs: (time, replicas)
    recommendations and (time, change) scale events."""

    recommendations: list[tuple[float, int]] = field(default_factory=list)
    scale_up: list[tuple[float, int]] = field(default_factory=list)
    scale_down: list[tuple[float, int]] = field(default_factory=list)

    def record_scale(self, behavior: autoscaling_pb2.HorizontalPodAutoscalerBehavior, old: int, new: int,
                     now: float) -> None:
        periods = [p.periodSeconds for rules in (behavior.scaleUp, behavior.scaleDown) for p in rules.policies]
        cutoff = now - max(periods or [15])
        self.scale_up = [(t, n) for t, n in self.scale_up if t > cutoff]
        self.scale_down = [(t, n) for t, n in self.scale_down if t > cutoff]
        if new > old:
            self.scale_up.append((now, new - old))
        elif new < old:
            self.scale_down.append((now, old - new))


@dataclass(frozen=True)
class Outcome:
    replicas: int
    reason: str
    message: str


_DOWN_STABILIZED = ("ScaleDownStabilized",
                    "recent recommendations were higher than current one, applying the highest recent recommendation")
_UP_STABILIZED = ("ScaleUpStabilized",
                  "recent recommendations were lower than current one, applying the lowest recent recommendation")
_WITHIN = ("DesiredWithinRange", "the desired count is within the acceptable range")
_UP_LIMIT = ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
_DOWN_LIMIT = ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate")
_TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
_TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")


def stabilize_down(history: ScaleHistory, proposal: int, window: float, now: float) -> Outcome:
    """No behavior: the highest recommendation of the downscale window."""
    history.recommendations = [(t, r) for t, r in history.recommendations if t > now - window]
    highest = max([proposal, *(r for _, r in history.recommendations)])
    history.recommendations.append((now, proposal))
    return Outcome(highest, *_DOWN_STABILIZED)


def stabilize(history: ScaleHistory, current: int, proposal: int, up: Rules, down: Rules, now: float) -> Outcome:
    """Scale up only as far as the lowest recommendation of the scale-up
    window, down only as far as the highest of the scale-down window."""
    up_rec = down_rec = proposal
    for t, r in history.recommendations:
        if t > now - up.stabilizationWindowSeconds:
            up_rec = min(up_rec, r)
        if t > now - down.stabilizationWindowSeconds:
            down_rec = max(down_rec, r)
    longest = max(up.stabilizationWindowSeconds, down.stabilizationWindowSeconds)
    history.recommendations = [(t, r) for t, r in history.recommendations if t > now - longest]
    history.recommendations.append((now, proposal))
    result = min(max(current, up_rec), down_rec)
    return Outcome(result, *(_UP_STABILIZED if result < proposal else _DOWN_STABILIZED))


def legacy_limit(current: int, desired: int, min_replicas: int, max_replicas: int) -> Outcome:
    """No behavior: minReplicas, and max(2 x current, 4) or maxReplicas."""
    scale_up_limit = max(SCALE_UP_FACTOR * current, SCALE_UP_MINIMUM)
    highest, why = (scale_up_limit, _UP_LIMIT) if max_replicas > scale_up_limit else (max_replicas, _TOO_MANY)
    if desired < min_replicas:
        return Outcome(min_replicas, *_TOO_FEW)
    if desired > highest:
        return Outcome(highest, *why)
    return Outcome(desired, *_WITHIN)


def _changed_in(events: list[tuple[float, int]], period: int, now: float) -> int:
    return sum(n for t, n in events if t > now - period)


def _period_start(history: ScaleHistory, current: int, period: int, now: float) -> int:
    """The replica count when the policy's period began."""
    return current - _changed_in(history.scale_up, period, now) + _changed_in(history.scale_down, period, now)


def scale_up_limit(history: ScaleHistory, current: int, rules: Rules, now: float) -> int:
    if rules.selectPolicy == "Disabled" or not rules.policies:
        return current
    limits = []
    for policy in rules.policies:
        start = _period_start(history, current, policy.periodSeconds, now)
        if policy.type == "Pods":
            limits.append(start + policy.value)
        else:
            limits.append(math.ceil(start * (1 + policy.value / 100)))
    return min(limits) if rules.selectPolicy == "Min" else max(limits)


def scale_down_limit(history: ScaleHistory, current: int, rules: Rules, now: float) -> int:
    if rules.selectPolicy == "Disabled" or not rules.policies:
        return current
    limits = []
    for policy in rules.policies:
        start = _period_start(history, current, policy.periodSeconds, now)
        if policy.type == "Pods":
            limits.append(start - policy.value)
        else:
            limits.append(int(start * (1 - policy.value / 100)))
    # "Max" picks the policy allowing the biggest change: the lowest floor.
    return max(limits) if rules.selectPolicy == "Min" else min(limits)


def rate_limit(history: ScaleHistory, current: int, desired: int, min_replicas: int, max_replicas: int,
               up: Rules, down: Rules, now: float) -> Outcome:
    """With behavior: the policies' bounds for this period, then min/max."""
    if desired > current:
        limit = max(scale_up_limit(history, current, up, now), current)
        highest, why = (limit, _UP_LIMIT) if max_replicas > limit else (max_replicas, _TOO_MANY)
        if desired > highest:
            return Outcome(highest, *why)
    elif desired < current:
        limit = min(scale_down_limit(history, current, down, now), current)
        lowest, why = (limit, _DOWN_LIMIT) if min_replicas < limit else (min_replicas, _TOO_FEW)
        if desired < lowest:
            return Outcome(lowest, *why)
    return Outcome(desired, *_WITHIN)
