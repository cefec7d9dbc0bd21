"""kubelet/_env.py: a container's environment as the kubelet makes it -
$(VAR) expansion, valueFrom (configMapKeyRef, secretKeyRef, fieldRef,
resourceFieldRef), envFrom with prefixes and invalid keys, service link
variables and the master `kubernetes` service, and the
CreateContainerConfigError wording. ConfigMaps and Secrets are read
through the ClientGetter the kubelet uses, over the in-memory clientset."""

from __future__ import annotations

from typing import Any

import pytest

from api import from_dict
from kubelet._env import ClientGetter, ContainerConfigError, expand, make_environment, mapping_for
from proto import core_pb2
from tests.support.fakeclient import FakeClientset

NS = "shop"


def pod(containers: list[dict[str, Any]], **spec: Any) -> core_pb2.Pod:
    return from_dict(core_pb2.Pod, {
        "metadata": {"name": "web-0", "namespace": NS, "uid": "uid-1", "labels": {"app": "web", "tier": "front"},
                     "annotations": {"note": 'say "hi"'}},
        "spec": {"containers": containers, "nodeName": "node-a", "serviceAccountName": "builder", **spec},
    })


def service(name: str, namespace: str, cluster_ip: str, ports: list[dict[str, Any]]) -> core_pb2.Service:
    return from_dict(core_pb2.Service, {"metadata": {"name": name, "namespace": namespace},
                                        "spec": {"clusterIP": cluster_ip, "ports": ports}})


KUBERNETES = service("kubernetes", "default", "10.96.0.1", [{"name": "https", "port": 443}])
KUBERNETES_ENV = [
    ("KUBERNETES_SERVICE_HOST", "10.96.0.1"), ("KUBERNETES_SERVICE_PORT", "443"),
    ("KUBERNETES_SERVICE_PORT_HTTPS", "443"), ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
    ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"), ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
    ("KUBERNETES_PORT_443_TCP_PORT", "443"), ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
]


@pytest.fixture
async def cs() -> FakeClientset:
    cs = FakeClientset()
    await cs.resource(core_pb2.ConfigMap, NS).create(from_dict(core_pb2.ConfigMap, {
        "metadata": {"name": "settings"}, "data": {"LEVEL": "debug", "mode": "fast", "1BAD": "x", "URL": "$(HOST)"}}))
    secret = core_pb2.Secret(type="Opaque")
    secret.metadata.name = "creds"
    secret.data["password"] = b"s3cret"
    secret.data["user"] = b"admin"
    await cs.resource(core_pb2.Secret, NS).create(secret)
    return cs


async def env_of(cs: FakeClientset, p: core_pb2.Pod, services: list[core_pb2.Service] | None = None,
                 **kw: Any) -> list[tuple[str, str]]:
    return await make_environment(
        p, p.spec.containers[0], secrets=ClientGetter(cs, core_pb2.Secret),
        config_maps=ClientGetter(cs, core_pb2.ConfigMap), services=services or [], node_name="node-a",
        host_ip="192.168.1.10", pod_ip="10.244.1.7", **kw)


@pytest.mark.parametrize(("text", "context", "want"), [
    ("plain", {}, "plain"),
    ("$(A)-$(B)", {"A": "1", "B": "2"}, "1-2"),
    ("$(MISSING)", {}, "$(MISSING)"),
    ("$$(A)", {"A": "1"}, "$(A)"),
    ("$$$(A)", {"A": "1"}, "$1"),
    ("cost $5", {}, "cost $5"),
    ("unclosed $(A", {"A": "1"}, "unclosed $(A"),
    ("trailing $", {}, "trailing $"),
    ("$()", {}, "$()"),
])
def test_expand(text: str, context: dict[str, str], want: str) -> None:
    assert expand(text, mapping_for(context)) == want


@pytest.mark.parametrize(("env", "want"), [
    ([{"name": "A", "value": "x"}, {"name": "B", "value": "$(A)y"}], [("A", "x"), ("B", "xy")]),
    # a reference to a later variable is not expanded
    ([{"name": "B", "value": "$(A)y"}, {"name": "A", "value": "x"}], [("B", "$(A)y"), ("A", "x")]),
    # a redefinition replaces the value but keeps the first position
    ([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "A", "value": "$(A)3"}],
     [("A", "13"), ("B", "2")]),
    ([{"name": "E"}], [("E", "")]),
    ([{"name": "C", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "LEVEL"}}}], [("C", "debug")]),
    ([{"name": "P", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}], [("P", "s3cret")]),
    ([{"name": "O", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}}], []),
    ([{"name": "O", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nokey", "optional": True}}}], []),
    ([{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
      {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
      {"name": "U", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
      {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
      {"name": "AN", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
      {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
      {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
      {"name": "PIP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
      {"name": "PIPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
      {"name": "HIP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
      {"name": "LABELS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}}],
     [("N", "web-0"), ("NS", NS), ("U", "uid-1"), ("L", "web"), ("AN", 'say "hi"'), ("NODE", "node-a"),
      ("SA", "builder"), ("PIP", "10.244.1.7"), ("PIPS", "10.244.1.7"), ("HIP", "192.168.1.10"),
      ("LABELS", 'app="web"\ntier="front"')]),
])
async def test_env_entries(cs: FakeClientset, env: list[dict[str, Any]], want: list[tuple[str, str]]) -> None:
    p = pod([{"name": "app", "env": env}], enableServiceLinks=False)
    assert await env_of(cs, p) == want


@pytest.mark.parametrize(("env", "error"), [
    ([{"name": "C", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}], 'configmap "nope" not found'),
    ([{"name": "S", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}], 'secret "nope" not found'),
    ([{"name": "C", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "k"}}}],
     f"couldn't find key k in ConfigMap {NS}/settings"),
    ([{"name": "S", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}],
     f"couldn't find key k in Secret {NS}/creds"),
    ([{"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}],
     "env F: field label not supported: spec.bogus"),
    ([{"name": "R", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}}],
     "env R: unsupported container resource : limits.gpu"),
])
async def test_env_errors(cs: FakeClientset, env: list[dict[str, Any]], error: str) -> None:
    p = pod([{"name": "app", "env": env}], enableServiceLinks=False)
    with pytest.raises(ContainerConfigError) as err:
        await env_of(cs, p)
    assert str(err.value) == error


@pytest.mark.parametrize(("resource", "divisor", "want"), [
    ("limits.cpu", "", "2"),             # 1500m rounded up to whole cores
    ("limits.cpu", "1m", "1500"),
    ("requests.cpu", "1m", "250"),
    ("limits.memory", "", str(512 * 2**20)),
    ("limits.memory", "1Mi", "512"),
    ("requests.memory", "1Mi", "0"),     # unset request: 0
    ("limits.ephemeral-storage", "1Gi", "8"),  # unset limit: node allocatable
])
async def test_resource_field_ref(cs: FakeClientset, resource: str, divisor: str, want: str) -> None:
    ref: dict[str, Any] = {"resource": resource}
    if divisor:
        ref["divisor"] = divisor
    p = pod([{"name": "app", "resources": {"limits": {"cpu": "1500m", "memory": "512Mi"}, "requests": {"cpu": "250m"}},
              "env": [{"name": "V", "valueFrom": {"resourceFieldRef": ref}}]}], enableServiceLinks=False)
    allocatable = {"cpu": "4", "memory": "8Gi", "ephemeral-storage": "8Gi"}
    assert await env_of(cs, p, node_allocatable=allocatable) == [("V", want)]


async def test_resource_field_ref_of_another_container_and_unset_limit(cs: FakeClientset) -> None:
    p = pod([{"name": "app", "env": [
        {"name": "SIDE_MEM", "valueFrom": {"resourceFieldRef": {"containerName": "side", "resource": "limits.memory",
                                                                "divisor": "1Mi"}}},
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]},
        {"name": "side", "resources": {"limits": {"memory": "64Mi"}}}], enableServiceLinks=False)
    assert await env_of(cs, p, node_allocatable={"cpu": "3", "memory": "1Gi"}) == [("SIDE_MEM", "64"), ("CPU", "3")]


async def test_env_from_prefix_invalid_keys_and_precedence(cs: FakeClientset) -> None:
    warnings: list[tuple[str, str]] = []
    p = pod([{"name": "app",
              "envFrom": [{"configMapRef": {"name": "settings"}}, {"prefix": "DB_", "secretRef": {"name": "creds"}},
                          {"configMapRef": {"name": "missing", "optional": True}}],
              "env": [{"name": "LEVEL", "value": "info"}, {"name": "HOST", "value": "h"},
                      {"name": "DSN", "value": "$(DB_user):$(DB_password)@$(HOST)"}]}], enableServiceLinks=False)
    got = await env_of(cs, p, on_warning=lambda reason, msg: warnings.append((reason, msg)))
    assert got == [("LEVEL", "info"), ("URL", "$(HOST)"), ("mode", "fast"), ("DB_password", "s3cret"),
                   ("DB_user", "admin"), ("HOST", "h"), ("DSN", "admin:s3cret@h")]
    assert warnings == [("InvalidEnvironmentVariableNames",
                         f"Keys [1BAD] from the EnvFrom configMap {NS}/settings were skipped since they are "
                         "considered invalid environment variable names.")]


async def test_env_from_missing_not_optional(cs: FakeClientset) -> None:
    p = pod([{"name": "app", "envFrom": [{"secretRef": {"name": "gone"}}]}])
    with pytest.raises(ContainerConfigError, match=r'^secret "gone" not found$'):
        await env_of(cs, p)


SERVICES = [
    KUBERNETES,
    service("redis-primary", NS, "10.96.5.5", [{"port": 6379}]),
    service("web", NS, "10.96.7.7", [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]),
    service("headless", NS, "None", [{"port": 80}]),
    service("elsewhere", "other", "10.96.9.9", [{"port": 80}]),
]


async def test_service_links(cs: FakeClientset) -> None:
    p = pod([{"name": "app", "env": [{"name": "WEB_SERVICE_HOST", "value": "mine"},
                                     {"name": "ADDR", "value": "$(REDIS_PRIMARY_SERVICE_HOST)"}]}])
    got = await env_of(cs, p, SERVICES)
    assert got[:2] == [("WEB_SERVICE_HOST", "mine"), ("ADDR", "10.96.5.5")]
    services = dict(got[2:])
    assert {k: v for k, v in services.items() if k.startswith("KUBERNETES")} == dict(KUBERNETES_ENV)
    assert {k: v for k, v in services.items() if k.startswith("REDIS")} == {
        "REDIS_PRIMARY_SERVICE_HOST": "10.96.5.5", "REDIS_PRIMARY_SERVICE_PORT": "6379",
        "REDIS_PRIMARY_PORT": "tcp://10.96.5.5:6379", "REDIS_PRIMARY_PORT_6379_TCP": "tcp://10.96.5.5:6379",
        "REDIS_PRIMARY_PORT_6379_TCP_PROTO": "tcp", "REDIS_PRIMARY_PORT_6379_TCP_PORT": "6379",
        "REDIS_PRIMARY_PORT_6379_TCP_ADDR": "10.96.5.5"}
    assert {k: v for k, v in services.items() if k.startswith("WEB")} == {
        "WEB_SERVICE_PORT": "80", "WEB_SERVICE_PORT_HTTP": "80", "WEB_SERVICE_PORT_DNS": "53",
        "WEB_PORT": "tcp://10.96.7.7:80", "WEB_PORT_80_TCP": "tcp://10.96.7.7:80", "WEB_PORT_80_TCP_PROTO": "tcp",
        "WEB_PORT_80_TCP_PORT": "80", "WEB_PORT_80_TCP_ADDR": "10.96.7.7", "WEB_PORT_53_UDP": "udp://10.96.7.7:53",
        "WEB_PORT_53_UDP_PROTO": "udp", "WEB_PORT_53_UDP_PORT": "53", "WEB_PORT_53_UDP_ADDR": "10.96.7.7"}
    assert not [k for k in services if k.startswith(("HEADLESS", "ELSEWHERE"))]


async def test_service_links_disabled_keeps_master_service(cs: FakeClientset) -> None:
    p = pod([{"name": "app"}], enableServiceLinks=False)
    assert await env_of(cs, p, SERVICES) == KUBERNETES_ENV


async def test_service_link_ipv6_and_default_namespace_pod(cs: FakeClientset) -> None:
    p = pod([{"name": "app"}])
    p.metadata.namespace = "default"
    v6 = service("api", "default", "fd00::10", [{"port": 8080}])
    got = dict(await env_of(cs, p, [v6, KUBERNETES]))
    assert got["API_PORT"] == "tcp://[fd00::10]:8080"
    assert got["API_PORT_8080_TCP_ADDR"] == "fd00::10"
    assert got["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
