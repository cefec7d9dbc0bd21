"""PodInfo: the requests a pod counts for (containers, init containers and
sidecars as Kubernetes counts them, overhead, the non-zero defaults for
scoring), its host ports, images and terms, worked out once."""

from __future__ import annotations

import pytest

from scheduler.framework import DEFAULT_MEMORY, DEFAULT_MILLI_CPU, new_pod_info, normalized_image

from .support import example, pod

GI = 1024**3
MI = 1024**2


def containers(*requests: tuple[str, str]) -> list[dict[str, object]]:
    return [{"name": f"c{i}", "image": "busybox", "resources": {"requests": {"cpu": cpu, "memory": mem}}}
            for i, (cpu, mem) in enumerate(requests)]


@pytest.mark.parametrize(("spec", "cpu", "memory"), [
    ({"containers": containers(("100m", "1Gi"), ("200m", "1Gi"))}, 300, 2 * GI),
    # an init container larger than the sum wins
    ({"containers": containers(("100m", "1Gi")), "initContainers": containers(("2", "512Mi"))}, 2000, GI),
    # the largest init container, not their sum
    ({"containers": containers(("100m", "1Gi")),
      "initContainers": containers(("500m", "3Gi"), ("1", "1Gi"))}, 1000, 3 * GI),
    # a sidecar (restartPolicy Always) runs beside the containers and the later init containers
    ({"containers": containers(("100m", "1Gi")),
      "initContainers": [{"name": "side", "image": "x", "restartPolicy": "Always",
                          "resources": {"requests": {"cpu": "200m", "memory": "1Gi"}}},
                         {"name": "init", "image": "x", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]},
     1200, 2 * GI),
    # overhead is added on top
    ({"containers": containers(("100m", "1Gi")), "overhead": {"cpu": "250m", "memory": "120Mi"}},
     350, GI + 120 * MI),
])
def test_requests(spec: dict[str, object], cpu: int, memory: int) -> None:
    pi = new_pod_info(pod("p", **spec))
    assert (pi.requests.milli_cpu, pi.requests.memory) == (cpu, memory)


def test_non_zero_defaults_only_for_missing_requests() -> None:
    none = new_pod_info(pod("p"))
    assert none.requests.is_zero()
    assert (none.non_zero_cpu, none.non_zero_memory) == (DEFAULT_MILLI_CPU, DEFAULT_MEMORY)
    cpu_only = new_pod_info(pod("p", cpu="500m"))
    assert (cpu_only.non_zero_cpu, cpu_only.non_zero_memory) == (500, DEFAULT_MEMORY)


def test_scalar_and_ephemeral_requests() -> None:
    pi = new_pod_info(pod("p", containers=[{"name": "c", "image": "x", "resources": {"requests": {
        "ephemeral-storage": "2Gi", "example.com/gpu": "2"}}}]))
    assert pi.requests.ephemeral_storage == 2 * GI
    assert pi.requests.scalars == {"example.com/gpu": 2}


def test_host_ports_images_and_priority() -> None:
    pi = new_pod_info(pod("p", priority=7, containers=[
        {"name": "a", "image": "nginx", "ports": [{"containerPort": 80, "hostPort": 8080},
                                                  {"containerPort": 53, "hostPort": 53, "protocol": "UDP",
                                                   "hostIP": "10.0.0.1"},
                                                  {"containerPort": 9090}]}]))
    assert pi.host_ports == (("0.0.0.0", "TCP", 8080), ("10.0.0.1", "UDP", 53))
    assert pi.images == ("nginx:latest",)
    assert pi.priority == 7


@pytest.mark.parametrize(("name", "normal"), [
    ("nginx", "nginx:latest"),
    ("nginx:1.25", "nginx:1.25"),
    ("docker.io/library/nginx:latest", "nginx:latest"),
    ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
    ("localhost:5000/app", "localhost:5000/app:latest"),
    ("repo/app@sha256:abc", "repo/app@sha256:abc"),
])
def test_image_names(name: str, normal: str) -> None:
    assert normalized_image(name) == normal


def test_the_init_containers_example() -> None:
    pi = new_pod_info(example("pods/init-containers.yaml"))
    assert pi.requests.is_zero()
    assert pi.images == ("busybox:1.28", "nginx:latest")


def test_terms_are_compiled() -> None:
    pi = new_pod_info(pod("p", labels={"app": "web"}, affinity={
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]},
        "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "podAffinityTerm": {"labelSelector": {"matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["db"]}]},
                "topologyKey": "zone", "namespaces": ["data"]}}]}},
        tolerations=[{"key": "k", "operator": "Exists"}],
        topologySpreadConstraints=[{"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
                                    "labelSelector": {"matchLabels": {"app": "web"}}}]))
    (anti,) = pi.required_anti_affinity
    assert anti.namespaces == frozenset({"default"}) and anti.topology_key == "kubernetes.io/hostname"
    (pref,) = pi.preferred_affinity
    assert pref.weight == 10 and pref.namespaces == frozenset({"data"})
    assert pi.tolerations[0].operator == "Exists"
    (spread,) = pi.spread_constraints
    assert (spread.max_skew, spread.when_unsatisfiable, spread.node_affinity_policy) == (2, "ScheduleAnyway", "Honor")
    assert pi.has_affinity
