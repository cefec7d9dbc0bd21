"""The apiserver's node proxy (NodeProxy in proto/api.proto) where it
decides without a kubelet: the pod, container and node are looked up and
checked, the call is authorized, and a kubelet that cannot be reached or
serves no API is reported as such - each with the Kubernetes reason and a
message naming what is wrong. Streaming through a real kubelet is covered
in test_cli_node.py; the helpers that pick the kubelet's address are
checked here too."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api import StatusError, from_dict
from apiserver._nodeproxy import check_container, kubelet_target
from client import ClientConfig, Clientset, NodeProxyClient
from deploy.local import APIServerProcess, free_port
from proto import core_pb2

from .conftest import Etcd, start_apiserver

pytestmark = pytest.mark.integration


def make_node(name: str, ip: str, port: int) -> core_pb2.Node:
    return from_dict(core_pb2.Node, {
        "metadata": {"name": name},
        "status": {"addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}})


def make_pod(name: str, node: str = "", containers: tuple[str, ...] = ("app",)) -> core_pb2.Pod:
    return from_dict(core_pb2.Pod, {"metadata": {"name": name}, "spec": {
        "nodeName": node, "containers": [{"name": c, "image": "busybox"} for c in containers]}})


@pytest.fixture
async def node(client: Clientset) -> AsyncIterator[str]:
    """A Node whose kubelet address is a loopback port nothing listens on."""
    name = f"np-{uuid.uuid4().hex[:6]}"
    nodes = client.resource(core_pb2.Node)
    created = await nodes.create(make_node(name, "127.0.0.1", free_port()))
    created.status.CopyFrom(make_node(name, "127.0.0.1", free_port()).status)
    await nodes.update_status(created)
    yield name
    await nodes.delete(name)


async def _logs(proxy: NodeProxyClient, namespace: str, pod: str, container: str = "") -> bytes:
    return b"".join([chunk async for chunk in proxy.logs(namespace, pod, container)])


async def test_unknown_pod_is_not_found(client: Clientset, namespace: str) -> None:
    proxy = NodeProxyClient(client)
    with pytest.raises(StatusError) as err:
        await _logs(proxy, namespace, "nope")
    assert err.value.reason == "NotFound" and 'pods "nope" not found' in err.value.message
    with pytest.raises(StatusError) as err:
        async with proxy.exec(namespace, "nope", ["true"]) as session:
            [x async for x in session.output()]
    assert err.value.reason == "NotFound"


async def test_unscheduled_pod_and_wrong_containers_are_bad_requests(client: Clientset, namespace: str) -> None:
    pods = client.resource(core_pb2.Pod, namespace)
    await pods.create(make_pod("pending"))
    await pods.create(make_pod("two", node="somewhere", containers=("a", "b")))
    proxy = NodeProxyClient(client)
    with pytest.raises(StatusError) as err:
        await _logs(proxy, namespace, "pending")
    assert err.value.reason == "BadRequest" and err.value.message == "pod pending does not have a host assigned"
    with pytest.raises(StatusError) as err:
        await _logs(proxy, namespace, "two")
    assert err.value.reason == "BadRequest"
    assert err.value.message == "a container name must be specified for pod two, choose one of: [a b]"
    with pytest.raises(StatusError) as err:
        await _logs(proxy, namespace, "two", "c")
    assert err.value.message == "container c is not valid for pod two"
    with pytest.raises(StatusError) as err:  # the node it names does not exist
        await _logs(proxy, namespace, "two", "a")
    assert err.value.reason == "NotFound" and 'nodes "somewhere" not found' in err.value.message


async def test_exec_without_a_command_is_refused(client: Clientset, namespace: str, node: str) -> None:
    await client.resource(core_pb2.Pod, namespace).create(make_pod("web", node=node))
    with pytest.raises(StatusError) as err:
        async with NodeProxyClient(client).exec(namespace, "web", []) as session:
            [x async for x in session.output()]
    assert err.value.reason == "BadRequest" and "you must specify at least one command" in err.value.message


async def test_unreachable_kubelet_fails_with_error_dialing_backend(client: Clientset, namespace: str,
                                                                    node: str) -> None:
    await client.resource(core_pb2.Pod, namespace).create(make_pod("web", node=node))
    port = (await client.resource(core_pb2.Node).get(node)).status.daemonEndpoints.kubeletEndpoint.Port
    proxy = NodeProxyClient(client)
    for attempt in (1, 2):  # the second dials afresh, and fails the same way
        with pytest.raises(StatusError) as err:
            await _logs(proxy, namespace, "web")
        assert err.value.reason == "ServiceUnavailable", attempt
        assert err.value.message == f"error dialing backend: dial tcp 127.0.0.1:{port}: connect: connection refused"
    with pytest.raises(StatusError) as err:
        await proxy.summary(node)
    assert err.value.reason == "ServiceUnavailable" and "error dialing backend" in err.value.message
    with pytest.raises(StatusError) as err:
        await proxy.summary("no-such-node")
    assert err.value.reason == "NotFound"


async def test_a_kubelet_without_its_api_is_not_dialled(client: Clientset) -> None:
    name = f"np-{uuid.uuid4().hex[:6]}"
    nodes = client.resource(core_pb2.Node)
    await nodes.create(make_node(name, "127.0.0.1", 0))
    try:
        with pytest.raises(StatusError) as err:
            await NodeProxyClient(client).summary(name)
        assert err.value.reason == "ServiceUnavailable"
        assert "kubeletEndpoint.Port is 0" in err.value.message and name in err.value.message
    finally:
        await nodes.delete(name)


@pytest.fixture
async def denying(etcd: Etcd, workdir: Path) -> AsyncIterator[Clientset]:
    """A second apiserver on the same etcd that denies everything."""
    server: APIServerProcess = start_apiserver(etcd, workdir, "--authorization-mode", "AlwaysDeny")
    cs = Clientset.connect(ClientConfig(server=server.target))
    yield cs
    await cs.close()
    server.stop()


async def test_calls_are_authorized_as_subresources(client: Clientset, namespace: str, node: str,
                                                   denying: Clientset) -> None:
    await client.resource(core_pb2.Pod, namespace).create(make_pod("web", node=node))
    proxy = NodeProxyClient(denying)
    with pytest.raises(StatusError) as err:
        await _logs(proxy, namespace, "web")
    assert err.value.reason == "Forbidden"
    assert (f'pods "web" is forbidden: User "system:anonymous" cannot get resource "pods/log" in API group "" '
            f'in the namespace "{namespace}"') in err.value.message
    with pytest.raises(StatusError) as err:
        async with proxy.exec(namespace, "web", ["true"]) as session:
            [x async for x in session.output()]
    assert err.value.reason == "Forbidden" and 'cannot create resource "pods/exec"' in err.value.message
    with pytest.raises(StatusError) as err:
        async with proxy.attach(namespace, "web") as session:
            [x async for x in session.output()]
    assert err.value.reason == "Forbidden" and 'cannot create resource "pods/attach"' in err.value.message
    with pytest.raises(StatusError) as err:
        await proxy.summary(node)
    assert err.value.reason == "Forbidden" and 'cannot get resource "nodes/proxy"' in err.value.message


def test_kubelet_target_prefers_the_internal_ip_and_reported_port() -> None:
    assert kubelet_target(make_node("n", "10.200.0.11", 10250)) == "10.200.0.11:10250"
    assert kubelet_target(make_node("n", "fd00::11", 12345)) == "[fd00::11]:12345"
    with pytest.raises(StatusError) as err:
        kubelet_target(from_dict(core_pb2.Node, {"metadata": {"name": "bare"}, "status": {
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}))
    assert 'no preferred addresses found for node "bare"' in err.value.message


def test_check_container_names_the_choices() -> None:
    check_container(make_pod("p", containers=("only",)), "")
    pod = from_dict(core_pb2.Pod, {"metadata": {"name": "p"}, "spec": {
        "initContainers": [{"name": "setup", "image": "x"}],
        "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}]}})
    check_container(pod, "setup")
    with pytest.raises(StatusError) as err:
        check_container(pod, "")
    assert err.value.message == ("a container name must be specified for pod p, choose one of: [a b] or one of the "
                                 "init containers: [setup]")
