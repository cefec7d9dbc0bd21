"""The KubeSchedulerConfiguration file: the default profile, several
profiles with their own schedulerName, enabling and disabling plugins
per extension point and with multiPoint, weights, pluginConfig, and the
errors that name where the file is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scheduler._config import ConfigError, default_configuration, duration, load, parse
from scheduler.plugins import DEFAULT_PLUGINS


def test_the_default_profile() -> None:
    (profile,) = default_configuration().profiles
    assert profile.scheduler_name == "default-scheduler"
    assert profile.plugins["queueSort"] == ["PrioritySort"]
    assert profile.plugins["filter"][:4] == ["NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity"]
    assert profile.plugins["postFilter"] == ["DefaultPreemption"]
    assert profile.plugins["bind"] == ["DefaultBinder"]
    assert profile.weights["TaintToleration"] == 3 and profile.weights["NodeResourcesLeastAllocated"] == 1
    assert set(profile.plugins["score"]) <= set(DEFAULT_PLUGINS)


def test_several_profiles(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
        "percentageOfNodesToScore": 30,
        "leaderElection": {"leaderElect": False, "leaseDuration": "4s", "renewDeadline": "3s",
                           "retryPeriod": "500ms", "resourceName": "my-lock"},
        "profiles": [
            {"schedulerName": "default-scheduler"},
            {"schedulerName": "no-scoring-scheduler",
             "plugins": {"preScore": {"disabled": [{"name": "*"}]},
                         "score": {"disabled": [{"name": "*"}],
                                   "enabled": [{"name": "NodeResourcesBalancedAllocation", "weight": 5}]}},
             "pluginConfig": [{"name": "InterPodAffinity", "args": {"hardPodAffinityWeight": 5}}]},
        ]}))
    config = load(str(path))
    assert config.percentage_of_nodes_to_score == 30
    assert config.leader_election.leader_elect is False
    assert (config.leader_election.lease_duration, config.leader_election.retry_period) == (4.0, 0.5)
    assert config.leader_election.resource_name == "my-lock"
    default, second = config.profiles
    assert second.scheduler_name == "no-scoring-scheduler"
    assert second.plugins["score"] == ["NodeResourcesBalancedAllocation"]
    assert second.plugins["preScore"] == []
    assert second.weights == {"NodeResourcesBalancedAllocation": 5}
    assert second.plugin_args["InterPodAffinity"] == {"hardPodAffinityWeight": 5}
    assert default.plugins["score"] != second.plugins["score"]


def test_multi_point_enable_and_disable() -> None:
    config = parse({"profiles": [{"plugins": {"multiPoint": {"disabled": [{"name": "TaintToleration"}],
                                                             "enabled": [{"name": "ImageLocality", "weight": 7}]}}}]})
    (profile,) = config.profiles
    assert "TaintToleration" not in profile.plugins["filter"]
    assert "TaintToleration" not in profile.plugins["score"]
    assert profile.weights["ImageLocality"] == 7
    only_filter = parse({"profiles": [{"plugins": {"filter": {"disabled": [{"name": "NodePorts"}]}}}]})
    assert "NodePorts" not in only_filter.profiles[0].plugins["filter"]
    assert "NodePorts" in only_filter.profiles[0].plugins["preFilter"]


@pytest.mark.parametrize(("doc", "message"), [
    ({"profiles": [{"plugins": {"filter": {"enabled": [{"name": "Nope"}]}}}]},
     'profiles[0].plugins.filter.enabled[0].name: Invalid value: plugin "Nope" does not exist'),
    ({"profiles": [{"schedulerName": "a"}, {"schedulerName": "a"}]},
     'profiles[1].schedulerName: Duplicate value: "a"'),
    ({"profiles": [{"plugins": {"filters": {}}}]}, 'profiles[0].plugins.filters: unknown field "filters"'),
    ({"percentageOfNodesToScore": 120}, "percentageOfNodesToScore: Invalid value: 120: not in valid range [0-100]"),
    ({"kind": "Pod"}, 'kind: Unsupported value: "Pod"'),
    ({"parallelism": 16}, 'parallelism: unknown field "parallelism"'),
    ({"profiles": [{"pluginConfig": [{"name": "Nope", "args": {}}]}]},
     'profiles[0].pluginConfig[0].name: Invalid value: plugin "Nope" does not exist'),
    ({"profiles": [{"plugins": {"score": {"enabled": [{"name": "ImageLocality", "weight": 1000}]}}}]},
     "profiles[0].plugins.score.enabled[0].weight: Invalid value: 1000"),
    ({"leaderElection": {"leaseDuration": "soon"}}, 'leaderElection.leaseDuration: Invalid value: "soon"'),
    ({"podInitialBackoffSeconds": 5, "podMaxBackoffSeconds": 2}, "podMaxBackoffSeconds: Invalid value"),
])
def test_errors_name_the_place(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(doc)
    assert message in str(err.value)


def test_a_file_that_is_not_there_or_not_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        load(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("profiles: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(str(bad))


def test_durations() -> None:
    assert duration("1m30s", "x") == 90.0
    assert duration("250ms", "x") == 0.25
    assert duration(3, "x") == 3.0
