"""Running the cluster controllers (endpoints, node lifecycle, namespace,
garbage collector, quota, volumes, pod GC, tokens) on the in-memory
clientset, for their unit tests.

They run on tests/support/fakeclient.py's FakeClientset, which plays the
apiserver behaviours they depend on: a delete's propagationPolicy becomes
the `foregroundDeletion` / `orphan` finalizer, and a Namespace is kept,
Terminating, while its spec.finalizers hold it, until the `finalize`
subresource empties them.

`Harness` (from _harness.py) runs them with two workers each; the builders
here make the objects they work on.
"""

from __future__ import annotations

from typing import Any

from api import StatusError
from proto import core_pb2, meta_pb2

from ._harness import Harness as BaseHarness
from ._harness import settle

__all__ = ["Harness", "expect_error", "meta", "owner_ref", "running_pod", "set_ready", "settle"]


class Harness(BaseHarness):
    workers = 2


def meta(obj: Any, name: str, namespace: str = "", **labels: str) -> Any:
    obj.metadata.name = name
    obj.metadata.namespace = namespace
    obj.metadata.labels.update(labels)
    return obj


def owner_ref(owner: Any, *, block: bool = False, controller: bool = False) -> meta_pb2.OwnerReference:
    from api import SCHEME
    kind = SCHEME.for_message(owner)
    ref = meta_pb2.OwnerReference(apiVersion=kind.api_version, kind=kind.kind, name=owner.metadata.name,
                                  uid=owner.metadata.uid)
    if block:
        ref.blockOwnerDeletion = True
    if controller:
        ref.controller = True
    return ref


def set_ready(pod: core_pb2.Pod, ready: bool) -> None:
    kept = [c for c in pod.status.conditions if c.type != "Ready"]
    del pod.status.conditions[:]
    pod.status.conditions.extend(kept)
    pod.status.conditions.add(type="Ready", status="True" if ready else "False")


def running_pod(name: str, namespace: str = "ns", *, ip: str = "", node: str = "node-1", ready: bool = True,
                labels: dict[str, str] | None = None, ports: dict[str, int] | None = None) -> core_pb2.Pod:
    pod = core_pb2.Pod()
    meta(pod, name, namespace, **(labels or {}))
    container = pod.spec.containers.add(name="web", image="nginx")
    for port_name, number in (ports or {}).items():
        container.ports.add(name=port_name, containerPort=number, protocol="TCP")
    pod.spec.nodeName = node
    pod.status.phase = "Running"
    pod.status.podIP = ip
    set_ready(pod, ready)
    return pod


async def expect_error(awaitable: Any, reason: str) -> StatusError:
    try:
        await awaitable
    except StatusError as err:
        assert err.reason == reason, err
        return err
    raise AssertionError(f"expected a {reason} error")
