"""ClusterIP and NodePort allocation: automatic and requested values,
clear refusals, release on delete and on type changes, and what is kept
in etcd."""

from __future__ import annotations

import subprocess

import pytest

from api import MERGE_PATCH, StatusError, from_dict
from client import Clientset
from proto import core_pb2

from .conftest import Etcd


def service(name: str, **spec: object) -> core_pb2.Service:
    body = {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}], **spec}
    return from_dict(core_pb2.Service, {"metadata": {"name": name}, "spec": body})


def etcd_keys(etcd: Etcd, prefix: str) -> list[str]:
    out = subprocess.run(["etcdctl", "--endpoints", etcd.url, "get", "--prefix", "--keys-only", prefix],
                         capture_output=True, text=True, check=True, env={"ETCDCTL_API": "3"}).stdout
    return [line for line in out.splitlines() if line]


async def test_cluster_ip_defaults_and_reservation(client: Clientset, namespace: str, etcd: Etcd) -> None:
    services = client.resource(core_pb2.Service, namespace)
    svc = await services.create(service("web"))
    assert svc.spec.type == "ClusterIP" and svc.spec.sessionAffinity == "None"
    assert svc.spec.clusterIPs == [svc.spec.clusterIP] and svc.spec.clusterIP.startswith("10.")
    assert svc.spec.ports[0].protocol == "TCP" and svc.spec.ports[0].targetPort.strVal == "http"
    assert f"/registry/allocations/serviceips/{svc.spec.clusterIP}" in etcd_keys(etcd, "/registry/allocations/")
    await services.delete("web")
    assert f"/registry/allocations/serviceips/{svc.spec.clusterIP}" not in etcd_keys(etcd, "/registry/allocations/")
    again = await services.create(service("web2", clusterIP=svc.spec.clusterIP))  # released, so free again
    assert again.spec.clusterIP == svc.spec.clusterIP


async def test_requested_values_are_honoured_or_refused(client: Clientset, namespace: str) -> None:
    services = client.resource(core_pb2.Service, namespace)
    first = await services.create(service("a", clusterIP="10.96.200.7", type="NodePort",
                                          ports=[{"port": 80, "nodePort": 30777}]))
    assert first.spec.clusterIP == "10.96.200.7" and first.spec.ports[0].nodePort == 30777
    with pytest.raises(StatusError) as err:
        await services.create(service("b", clusterIP="10.96.200.7"))
    assert err.value.reason == "Invalid"
    assert 'spec.clusterIPs: Invalid value: ["10.96.200.7"]: failed to allocate IP 10.96.200.7: provided IP is ' \
           'already allocated' in err.value.message
    with pytest.raises(StatusError) as err:
        await services.create(service("c", type="NodePort", ports=[{"port": 80, "nodePort": 30777}]))
    assert "spec.ports[0].nodePort: Invalid value: 30777: provided port is already allocated" in err.value.message
    with pytest.raises(StatusError) as err:
        await services.create(service("d", clusterIP="192.168.7.7"))
    assert "is not in the valid range. The range of valid IPs is 10.96.0.0/12" in err.value.message
    with pytest.raises(StatusError) as err:
        await services.create(service("e", type="NodePort", ports=[{"port": 80, "nodePort": 80}]))
    assert "The range of valid ports is 30000-32767" in err.value.message
    for name in "bcde":  # nothing half-written: no service, no reservation
        with pytest.raises(StatusError, match="not found"):
            await services.get(name)


async def test_type_changes_move_reservations(client: Clientset, namespace: str, etcd: Etcd) -> None:
    services = client.resource(core_pb2.Service, namespace)
    svc = await services.create(service("np", type="NodePort"))
    port = svc.spec.ports[0].nodePort
    assert f"/registry/allocations/servicenodeports/{port}" in etcd_keys(etcd, "/registry/allocations/")
    svc = await services.patch("np", {"spec": {"type": "ClusterIP", "ports": [{"port": 80, "nodePort": None}]}},
                               patch_type=MERGE_PATCH)
    assert svc.spec.ports[0].nodePort == 0
    assert f"/registry/allocations/servicenodeports/{port}" not in etcd_keys(etcd, "/registry/allocations/")
    plain = core_pb2.Service(metadata={"name": "np"})  # an update that leaves the ClusterIP out keeps it
    plain.spec.CopyFrom(svc.spec)
    plain.spec.ClearField("clusterIP")
    del plain.spec.clusterIPs[:]
    assert (await services.update(plain)).spec.clusterIP == svc.spec.clusterIP
    changed = core_pb2.Service()
    changed.CopyFrom(await services.get("np"))
    changed.spec.clusterIP = "10.96.201.1"
    del changed.spec.clusterIPs[:]
    with pytest.raises(StatusError, match="may not change once set"):
        await services.update(changed)


async def test_headless_and_external_name_services_get_no_address(client: Clientset, namespace: str) -> None:
    services = client.resource(core_pb2.Service, namespace)
    headless = await services.create(service("headless", clusterIP="None"))
    assert headless.spec.clusterIP == "None"
    external = await services.create(from_dict(core_pb2.Service, {"metadata": {"name": "ext"}, "spec": {
        "type": "ExternalName", "externalName": "example.com"}}))
    assert external.spec.clusterIP == "" and not external.spec.clusterIPs
    with pytest.raises(StatusError, match=r"spec\.externalName: Required value"):
        await services.create(from_dict(core_pb2.Service, {"metadata": {"name": "ext2"},
                                                           "spec": {"type": "ExternalName"}}))


async def test_service_names_are_dns_1035_labels(client: Clientset, namespace: str) -> None:
    with pytest.raises(StatusError) as err:
        await client.resource(core_pb2.Service, namespace).create(service("1web"))
    assert 'Service "1web" is invalid: metadata.name: Invalid value: "1web": a DNS-1035 label' in err.value.message
