"""`--config FILE`: a KubeSchedulerConfiguration, as kube-scheduler reads it.

    apiVersion: kubescheduler.config.k8s.io/v1
    kind: KubeSchedulerConfiguration
    percentageOfNodesToScore: 50          # 0: adaptive (the default)
    podInitialBackoffSeconds: 1
    podMaxBackoffSeconds: 10
    leaderElection: {leaderElect: true, leaseDuration: 15s, renewDeadline: 10s, retryPeriod: 2s}
    profiles:
    - schedulerName: default-scheduler
    - schedulerName: no-scoring-scheduler
      plugins:
        preScore: {disabled: [{name: '*'}]}
        score:
          disabled: [{name: '*'}]
          enabled: [{name: NodeResourcesBalancedAllocation, weight: 2}]
      pluginConfig:
      - name: InterPodAffinity
        args: {hardPodAffinityWeight: 5}

Each profile starts from the default plugins (`multiPoint`: every plugin at
every extension point it implements); `multiPoint` or a single extension
point can enable more (appended, with a score weight) or disable some
(`'*'` disables all the defaults there). Every profile needs its own
schedulerName and they must share the queueSort plugin (there is one
queue). Anything misspelt is an error naming its place in the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .framework import EXTENSION_POINTS, Profile, Registry
from .plugins import DEFAULT_PLUGINS, DEFAULT_WEIGHTS, REGISTRY

API_VERSIONS = ("kubescheduler.config.k8s.io/v1", "kubescheduler.config.k8s.io/v1beta3")
DEFAULT_SCHEDULER_NAME = "default-scheduler"
_POINTS = ("multiPoint", *EXTENSION_POINTS)


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names where."""


@dataclass
class LeaderElection:
    """Values the file sets (None: not set, the flag decides)."""

    leader_elect: bool | None = None
    lease_duration: float | None = None
    renew_deadline: float | None = None
    retry_period: float | None = None
    resource_name: str | None = None
    resource_namespace: str | None = None


@dataclass
class SchedulerConfiguration:
    profiles: list[Profile]
    percentage_of_nodes_to_score: int = 0
    pod_initial_backoff: float = 1.0
    pod_max_backoff: float = 10.0
    leader_election: LeaderElection = field(default_factory=LeaderElection)
    kubeconfig: str = ""


def default_configuration() -> SchedulerConfiguration:
    return SchedulerConfiguration([resolve_profile({}, "profiles[0]", REGISTRY)])


def load(path: str, registry: Registry = REGISTRY) -> SchedulerConfiguration:
    try:
        with open(path) as fh:
            raw = yaml.safe_load(fh)
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    try:
        return parse(raw or {}, registry)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def parse(raw: Any, registry: Registry = REGISTRY) -> SchedulerConfiguration:
    doc = _mapping(raw, "")
    _known(doc, "", ("apiVersion", "kind", "profiles", "percentageOfNodesToScore", "podInitialBackoffSeconds",
                     "podMaxBackoffSeconds", "leaderElection", "clientConnection"))
    if "apiVersion" in doc and doc["apiVersion"] not in API_VERSIONS:
        raise ConfigError(f'apiVersion: Unsupported value: "{doc["apiVersion"]}": supported values: '
                          + ", ".join(f'"{v}"' for v in API_VERSIONS))
    if "kind" in doc and doc["kind"] != "KubeSchedulerConfiguration":
        raise ConfigError(f'kind: Unsupported value: "{doc["kind"]}": supported values: "KubeSchedulerConfiguration"')
    config = SchedulerConfiguration([])
    config.percentage_of_nodes_to_score = _percentage(doc.get("percentageOfNodesToScore", 0),
                                                      "percentageOfNodesToScore")
    config.pod_initial_backoff = _positive(doc.get("podInitialBackoffSeconds", 1), "podInitialBackoffSeconds")
    config.pod_max_backoff = _positive(doc.get("podMaxBackoffSeconds", 10), "podMaxBackoffSeconds")
    if config.pod_max_backoff < config.pod_initial_backoff:
        raise ConfigError("podMaxBackoffSeconds: Invalid value: must be greater than or equal to "
                          "podInitialBackoffSeconds")
    config.leader_election = _leader_election(doc.get("leaderElection") or {})
    client = _mapping(doc.get("clientConnection") or {}, "clientConnection")
    _known(client, "clientConnection", ("kubeconfig",))
    config.kubeconfig = str(client.get("kubeconfig", ""))
    raw_profiles = doc.get("profiles") or [{}]
    if not isinstance(raw_profiles, list):
        raise ConfigError("profiles: Invalid value: must be a list")
    names: set[str] = set()
    for i, item in enumerate(raw_profiles):
        profile = resolve_profile(_mapping(item, f"profiles[{i}]"), f"profiles[{i}]", registry)
        if profile.scheduler_name in names:
            raise ConfigError(f'profiles[{i}].schedulerName: Duplicate value: "{profile.scheduler_name}"')
        names.add(profile.scheduler_name)
        config.profiles.append(profile)
    sorts = {tuple(p.plugins.get("queueSort", ())) for p in config.profiles}
    if len(sorts) > 1:
        raise ConfigError("profiles[1].plugins.queueSort: Invalid value: queueSort must be the same for all profiles")
    return config


def resolve_profile(raw: Mapping[str, Any], path: str, registry: Registry) -> Profile:
    """A profile entry with the defaults applied."""
    _known(raw, path, ("schedulerName", "plugins", "pluginConfig", "percentageOfNodesToScore"))
    name = raw.get("schedulerName") or DEFAULT_SCHEDULER_NAME
    if not isinstance(name, str):
        raise ConfigError(f"{path}.schedulerName: Invalid value: must be a string")
    plugins_raw = _mapping(raw.get("plugins") or {}, f"{path}.plugins")
    _known(plugins_raw, f"{path}.plugins", _POINTS)
    sets = {point: _plugin_set(plugins_raw.get(point) or {}, f"{path}.plugins.{point}", registry)
            for point in _POINTS}

    multi_enabled, multi_disabled = sets["multiPoint"]
    weights = dict(DEFAULT_WEIGHTS)
    multi = [p for p in DEFAULT_PLUGINS if "*" not in multi_disabled and p not in multi_disabled]
    for plugin, weight in multi_enabled:
        if plugin not in multi:
            multi.append(plugin)
        if weight is not None:
            weights[plugin] = weight
    points: dict[str, list[str]] = {}
    for point, kind in EXTENSION_POINTS.items():
        enabled, disabled = sets[point]
        chosen = [p for p in multi if _implements(registry, p, kind)]
        if "*" in disabled:
            chosen = []
        chosen = [p for p in chosen if p not in disabled]
        for plugin, weight in enabled:
            if plugin not in chosen:
                chosen.append(plugin)
            if weight is not None:
                weights[plugin] = weight
        points[point] = chosen
    args: dict[str, Mapping[str, Any]] = {}
    for i, entry in enumerate(raw.get("pluginConfig") or []):
        where = f"{path}.pluginConfig[{i}]"
        entry = _mapping(entry, where)
        _known(entry, where, ("name", "args"))
        plugin = str(entry.get("name"))
        if plugin not in registry:
            raise ConfigError(f'{where}.name: Invalid value: plugin "{plugin}" does not exist')
        if plugin in args:
            raise ConfigError(f'{where}.name: Duplicate value: "{plugin}"')
        args[plugin] = _mapping(entry.get("args") or {}, f"{where}.args")
    percentage = _percentage(raw.get("percentageOfNodesToScore", 0), f"{path}.percentageOfNodesToScore")
    return Profile(name, points, {p: w for p, w in weights.items() if p in points["score"]}, args,
                   percentage or None)


def _plugin_set(raw: Any, path: str, registry: Registry) -> tuple[list[tuple[str, int | None]], set[str]]:
    raw = _mapping(raw, path)
    _known(raw, path, ("enabled", "disabled"))
    enabled: list[tuple[str, int | None]] = []
    for i, item in enumerate(raw.get("enabled") or []):
        where = f"{path}.enabled[{i}]"
        item = _mapping(item, where)
        _known(item, where, ("name", "weight"))
        name = str(item.get("name"))
        if name not in registry:
            raise ConfigError(f'{where}.name: Invalid value: plugin "{name}" does not exist')
        weight = item.get("weight")
        if weight is not None and (not isinstance(weight, int) or weight < 0 or weight > 100):
            raise ConfigError(f"{where}.weight: Invalid value: {weight!r}: must be an integer in the range [0, 100]")
        enabled.append((name, weight))
    disabled: set[str] = set()
    for i, item in enumerate(raw.get("disabled") or []):
        where = f"{path}.disabled[{i}]"
        item = _mapping(item, where)
        _known(item, where, ("name",))
        name = str(item.get("name"))
        if name != "*" and name not in registry:
            raise ConfigError(f'{where}.name: Invalid value: plugin "{name}" does not exist')
        disabled.add(name)
    return enabled, disabled


def _implements(registry: Registry, name: str, kind: type) -> bool:
    factory = registry[name]
    return isinstance(factory, type) and issubclass(factory, kind)


def _leader_election(raw: Any) -> LeaderElection:
    raw = _mapping(raw, "leaderElection")
    _known(raw, "leaderElection", ("leaderElect", "leaseDuration", "renewDeadline", "retryPeriod", "resourceLock",
                                   "resourceName", "resourceNamespace"))
    if raw.get("resourceLock", "leases") != "leases":
        raise ConfigError(f'leaderElection.resourceLock: Unsupported value: "{raw["resourceLock"]}": '
                          'supported values: "leases"')
    le = LeaderElection()
    if "leaderElect" in raw:
        if not isinstance(raw["leaderElect"], bool):
            raise ConfigError("leaderElection.leaderElect: Invalid value: must be true or false")
        le.leader_elect = raw["leaderElect"]
    for key, attr in (("leaseDuration", "lease_duration"), ("renewDeadline", "renew_deadline"),
                      ("retryPeriod", "retry_period")):
        if key in raw:
            setattr(le, attr, duration(raw[key], f"leaderElection.{key}"))
    le.resource_name = raw.get("resourceName")
    le.resource_namespace = raw.get("resourceNamespace")
    return le


def duration(value: Any, path: str) -> float:
    """Go's duration syntax ("15s", "1m30s", "500ms")."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    units = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ConfigError(f'{path}: Invalid value: "{text}": time: invalid duration')
    return sum(float(n) * units[u] for n, u in parts)


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path or 'the file'}: Invalid value: expected a mapping")
    return value


def _known(raw: Mapping[str, Any], path: str, fields: tuple[str, ...]) -> None:
    for key in raw:
        if key not in fields:
            where = f"{path}." if path else ""
            raise ConfigError(f'{where}{key}: unknown field "{key}"')


def _percentage(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
        raise ConfigError(f"{path}: Invalid value: {value!r}: not in valid range [0-100]")
    return value


def _positive(value: Any, path: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{path}: Invalid value: {value!r}: must be greater than 0")
    return float(value)
