"""The node object: registration (labels, capacity, allocatable,
addresses), conditions, images, status writes only on change, the Lease
renewed every 10 s, and the pod CIDR handed to the runtime."""

from __future__ import annotations

from proto import coordination_pb2, core_pb2
from tests.unit.kubelet._harness import NODE, HollowNode, make_pod


async def test_registration_and_status() -> None:
    async with HollowNode(max_pods=110) as node:
        await node.advance(1)
        n = node.node()
        assert n.metadata.name == NODE
        assert n.metadata.labels["kubernetes.io/hostname"] == NODE
        assert n.metadata.labels["kubernetes.io/os"] == "linux"
        assert n.metadata.labels["kubernetes.io/arch"]
        cap = {k: v.value for k, v in n.status.capacity.items()}
        assert cap == {"cpu": "4", "memory": "8Gi", "ephemeral-storage": "100Gi", "pods": "110"}
        alloc = {k: v.value for k, v in n.status.allocatable.items()}
        assert alloc["pods"] == "110" and alloc["cpu"] == "4"
        assert alloc["memory"] == str(8 * 1024**3 - 100 * 1024**2)  # less the memory.available threshold
        assert {(a.type, a.address) for a in n.status.addresses} == {("InternalIP", "10.0.0.1"), ("Hostname", NODE)}
        conditions = {c.type: (c.status, c.reason) for c in n.status.conditions}
        assert conditions == {"MemoryPressure": ("False", "KubeletHasSufficientMemory"),
                              "DiskPressure": ("False", "KubeletHasNoDiskPressure"),
                              "PIDPressure": ("False", "KubeletHasSufficientPID"),
                              "Ready": ("True", "KubeletReady")}
        assert n.status.nodeInfo.containerRuntimeVersion == "hollow://0.1.0"
        assert n.status.daemonEndpoints.kubeletEndpoint.Port == 10250
        assert any("docker.io/library/busybox:1.36" in i.names for i in n.status.images)


async def test_lease_renewed_every_ten_seconds_and_status_only_on_change() -> None:
    async with HollowNode() as node:
        await node.advance(1)
        lease = node.cs.objects(coordination_pb2.Lease, "kube-node-lease")[0]
        assert lease.metadata.name == NODE and lease.spec.holderIdentity == NODE
        assert lease.spec.leaseDurationSeconds == 40
        assert lease.metadata.ownerReferences[0].kind == "Node"
        first = lease.spec.renewTime
        renewals = node.cs.count("update", "leases.coordination.k8s.io")
        status_writes = node.cs.count("update", "nodes", "status")
        await node.advance(60)
        assert node.cs.count("update", "leases.coordination.k8s.io") - renewals == 6
        assert node.cs.objects(coordination_pb2.Lease, "kube-node-lease")[0].spec.renewTime != first
        assert node.cs.count("update", "nodes", "status") == status_writes  # nothing changed
        await node.advance(300)
        assert node.cs.count("update", "nodes", "status") == status_writes + 1  # the 5 minute report


async def test_pod_cidr_goes_to_the_runtime() -> None:
    async with HollowNode() as node:
        n = node.node()
        n.spec.podCIDR = "10.244.7.0/24"
        await node.cs.resource(core_pb2.Node).update(n)
        await node.advance(1)
        await node.create(make_pod("p"))
        await node.advance(2)
        assert node.status("p").podIP.startswith("10.244.7.")


async def test_existing_node_is_adopted() -> None:
    async with HollowNode() as node:
        await node.advance(1)
        uid = node.node().metadata.uid
        await node.restart()
        await node.advance(1)
        assert node.node().metadata.uid == uid
