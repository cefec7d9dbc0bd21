"""The fixtures themselves: etcd and the apiserver come up and serve."""

from client import Clientset
from proto import core_pb2


async def test_system_namespaces_exist(client: Clientset) -> None:
    names = {ns.metadata.name for ns in (await client.resource(core_pb2.Namespace).list()).items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names


async def test_kubernetes_service_has_first_address(client: Clientset) -> None:
    svc = await client.resource(core_pb2.Service, "default").get("kubernetes")
    assert svc.spec.clusterIP == "10.96.0.1"
