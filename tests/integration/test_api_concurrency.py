"""Optimistic concurrency under load: read-modify-write updaters racing on
one object lose no update; racing creates of one name make one object;
racing Services never share a ClusterIP or a NodePort."""

from __future__ import annotations

import asyncio

import pytest

from api import StatusError, from_dict
from client import Clientset
from proto import core_pb2


async def test_fifty_read_modify_write_updaters_lose_nothing(client: Clientset, namespace: str) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)
    await cms.create(core_pb2.ConfigMap(metadata={"name": "counter"}, data={"count": "0"}))
    conflicts = 0

    async def updater(i: int) -> None:
        nonlocal conflicts
        while True:
            cm = await cms.get("counter")
            cm.data["count"] = str(int(cm.data["count"]) + 1)
            cm.data[f"updater-{i}"] = "done"
            try:
                await cms.update(cm)  # carries the resourceVersion it read
                return
            except StatusError as err:
                assert err.reason == "Conflict", err
                conflicts += 1

    await asyncio.gather(*(updater(i) for i in range(50)))
    final = await cms.get("counter")
    assert final.data["count"] == "50"
    assert all(final.data[f"updater-{i}"] == "done" for i in range(50))
    assert conflicts > 0  # the losers saw Conflict and retried


async def test_racing_creates_of_one_name(client: Clientset, namespace: str) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)
    results = await asyncio.gather(*(cms.create(core_pb2.ConfigMap(metadata={"name": "once"}, data={"by": str(i)}))
                                     for i in range(20)), return_exceptions=True)
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, StatusError)]
    assert len(created) == 1 and len(refused) == 19
    assert all(r.reason == "AlreadyExists" for r in refused)
    assert (await cms.get("once")).data["by"] == created[0].data["by"]


@pytest.mark.parametrize("count", [40])
async def test_racing_services_get_distinct_addresses_and_ports(client: Clientset, namespace: str,
                                                                count: int) -> None:
    services = client.resource(core_pb2.Service, namespace)

    def svc(i: int) -> core_pb2.Service:
        return from_dict(core_pb2.Service, {"metadata": {"name": f"s{i}"}, "spec": {
            "type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}})

    created = await asyncio.gather(*(services.create(svc(i)) for i in range(count)))
    ips = [s.spec.clusterIP for s in created]
    ports = [s.spec.ports[0].nodePort for s in created]
    assert len(set(ips)) == count and len(set(ports)) == count
    assert all(30000 <= p <= 32767 for p in ports)
    await asyncio.gather(*(services.delete(f"s{i}") for i in range(count)))
