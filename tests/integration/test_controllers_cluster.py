"""The cluster controllers in a real controller-manager process, on a real
apiserver and etcd, pods driven by the pod simulator (no kubelet):

* Endpoints and EndpointSlices follow pod readiness, resolve a named
  targetPort, and leave a selector-less Service's Endpoints alone;
* a node whose Lease stops being renewed goes Unknown, is tainted, and
  its pods are evicted after their tolerationSeconds (those tolerating it
  forever stay); when it comes back the taints go;
* deleting a namespace deletes its content, then the namespace;
* the garbage collector with Background, Foreground and Orphan deletion,
  and collecting dependents whose owner was deleted while it was down;
* node IPAM, the PV binder with the hostPath provisioner and its default
  StorageClass, ServiceAccount tokens and quota status against the real
  apiserver's validation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import jwt

from api import StatusError, int_or_string, rfc3339, rfc3339_micro
from client import Clientset
from deploy.local import APIServerProcess, ComponentProcess
from proto import coordination_pb2, core_pb2, discovery_pb2, meta_pb2, storage_pb2
from tests.support.podsim import PodSimulator
from tests.support.wait import eventually

from .conftest import start_component

Pod = core_pb2.Pod
Node = core_pb2.Node
Lease = coordination_pb2.Lease
UNREACHABLE = "node.kubernetes.io/unreachable"


@contextlib.asynccontextmanager
async def manager(apiserver: APIServerProcess, workdir: Path, controllers: str,
                  *flags: str) -> AsyncIterator[ComponentProcess]:
    proc = start_component("controller_manager", apiserver, workdir, "--leader-elect", "false",
                           "--controllers", controllers, *flags)
    try:
        yield proc
    finally:
        proc.stop()


def _pod(name: str, namespace: str, labels: dict[str, str], *, port: int = 8080) -> Pod:
    pod = Pod(metadata={"name": name, "namespace": namespace, "labels": labels})
    pod.spec.containers.add(name="web", image="nginx", ports=[core_pb2.ContainerPort(name="http", containerPort=port)])
    return pod


# ------------------------------------------------------------------ endpoints


async def test_endpoints_and_slices_follow_readiness(apiserver: APIServerProcess, workdir: Path, client: Clientset,
                                                     namespace: str) -> None:
    nodes = [f"ep-{uuid.uuid4().hex[:6]}"]
    sim = await PodSimulator(client, nodes, namespace=namespace).start()
    services = client.resource(core_pb2.Service, namespace)
    endpoints = client.resource(core_pb2.Endpoints, namespace)
    slices = client.resource(discovery_pb2.EndpointSlice, namespace)
    try:
        async with manager(apiserver, workdir, "endpoint,endpointslice"):
            svc = core_pb2.Service(metadata={"name": "web", "namespace": namespace})
            svc.spec.selector["app"] = "web"
            svc.spec.ports.add(name="http", port=80, targetPort=int_or_string("http"))
            await services.create(svc)
            manual = core_pb2.Service(metadata={"name": "outside", "namespace": namespace})
            manual.spec.ports.add(port=5432)
            await services.create(manual)
            hand_made = core_pb2.Endpoints(metadata={"name": "outside", "namespace": namespace})
            hand_made.subsets.add(addresses=[core_pb2.EndpointAddress(ip="192.0.2.10")],
                                  ports=[core_pb2.EndpointPort(port=5432)])
            await endpoints.create(hand_made)
            pods = client.resource(Pod, namespace)
            await pods.create(_pod("a", namespace, {"app": "web"}, port=8080))
            await pods.create(_pod("b", namespace, {"app": "web"}, port=9090))

            async def split(ready: int, not_ready: int) -> bool:
                ep = await endpoints.get("web")
                got = (sum(len(s.addresses) for s in ep.subsets), sum(len(s.notReadyAddresses) for s in ep.subsets))
                ports = sorted(p.port for s in ep.subsets for p in s.ports)
                sliced = [e for s in (await slices.list(label_selector="kubernetes.io/service-name=web")).items
                          for e in s.endpoints]
                return got == (ready, not_ready) and ports == [8080, 9090] and \
                    sorted(e.conditions.ready for e in sliced) == sorted([True] * ready + [False] * not_ready)
            await eventually(lambda: split(2, 0), what="both pods ready in Endpoints and slices")
            await sim.set_ready(namespace, "b", False)
            await eventually(lambda: split(1, 1), what="b not ready")
            await sim.set_ready(namespace, "b", True)
            await eventually(lambda: split(2, 0), what="b ready again")

            kept = await endpoints.get("outside")
            assert [a.ip for s in kept.subsets for a in s.addresses] == ["192.0.2.10"]

            await services.delete("web")

            async def gone() -> bool:
                try:
                    await endpoints.get("web")
                    return False
                except StatusError as err:
                    return err.reason == "NotFound" and not (await slices.list()).items
            await eventually(gone, what="Endpoints and slices removed with the Service")
    finally:
        await sim.stop()


# ------------------------------------------------------------------ node lifecycle


class Kubelets:
    """Lease renewal for a set of nodes, as their kubelets would."""

    def __init__(self, client: Clientset, names: set[str]) -> None:
        self.client = client
        self.alive = set(names)
        self.made: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Kubelets:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        leases = self.client.resource(Lease, "kube-node-lease")
        for name in self.made:
            with contextlib.suppress(StatusError):
                await leases.delete(name)

    async def renew(self, name: str) -> None:
        leases = self.client.resource(Lease, "kube-node-lease")
        try:
            lease = await leases.get(name)
        except StatusError:
            lease = Lease(metadata={"name": name, "namespace": "kube-node-lease"})
            lease.spec.holderIdentity = name
            lease.spec.leaseDurationSeconds = 40
            lease.spec.renewTime = rfc3339_micro(time.time())
            await leases.create(lease)
            self.made.add(name)
            return
        lease.spec.renewTime = rfc3339_micro(time.time())
        await leases.update(lease)

    async def _run(self) -> None:
        while True:
            for name in sorted(self.alive):
                with contextlib.suppress(StatusError):
                    await self.renew(name)
            await asyncio.sleep(0.5)


async def test_a_silent_node_is_tainted_and_its_pods_evicted(apiserver: APIServerProcess, workdir: Path,
                                                             client: Clientset, namespace: str) -> None:
    nodes = client.resource(Node)
    suffix = uuid.uuid4().hex[:6]
    healthy, silent = f"ok-{suffix}", f"silent-{suffix}"
    zone = f"zone-{suffix}"  # a zone of their own: other tests' nodes do not count
    for name in (healthy, silent):
        node = Node(metadata={"name": name, "labels": {"topology.kubernetes.io/zone": zone}})
        node.status.conditions.add(type="Ready", status="True", lastHeartbeatTime=rfc3339(time.time()))
        await nodes.create(node)
    pods = client.resource(Pod, namespace)
    for name, seconds in (("brief", 2), ("forever", None)):
        pod = _pod(name, namespace, {"app": "x"})
        pod.spec.nodeName = silent
        toleration = pod.spec.tolerations.add(key=UNREACHABLE, operator="Exists", effect="NoExecute")
        if seconds is not None:
            toleration.tolerationSeconds = seconds
        await pods.create(pod)
    others = {n.metadata.name for n in (await nodes.list()).items} - {healthy, silent}
    flags = ("--node-monitor-grace-period", "4", "--node-monitor-period", "0.5", "--node-eviction-rate", "10",
             "--node-startup-grace-period", "3600")
    try:
        # Every other node in the shared cluster keeps renewing too, so only ours goes silent.
        async with Kubelets(client, {healthy, silent} | others) as kubelets, \
                manager(apiserver, workdir, "nodelifecycle,taint-eviction-controller", *flags):
            await asyncio.sleep(2)
            assert not (await nodes.get(silent)).spec.taints
            kubelets.alive.discard(silent)

            async def tainted() -> bool:
                node = await nodes.get(silent)
                ready = next(c for c in node.status.conditions if c.type == "Ready")
                keys = {(t.key, t.effect) for t in node.spec.taints}
                return ready.status == "Unknown" and keys == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
            await eventually(tainted, what="the silent node Unknown and tainted")
            assert not (await nodes.get(healthy)).spec.taints

            async def evicted() -> bool:
                brief = await pods.get("brief")
                return bool(brief.metadata.deletionTimestamp) and any(
                    c.type == "DisruptionTarget" and c.status == "True" for c in brief.status.conditions)
            await eventually(evicted, what="the pod with tolerationSeconds 2 evicted")
            await asyncio.sleep(1)
            assert not (await pods.get("forever")).metadata.deletionTimestamp

            # The kubelet comes back: lease and status.
            kubelets.alive.add(silent)
            node = await nodes.get(silent)
            for c in node.status.conditions:
                c.status, c.lastHeartbeatTime = "True", rfc3339(time.time())
            await nodes.update_status(node)
            await eventually(lambda: _untainted(nodes, silent), what="taints removed from the returning node")
    finally:
        for name in (healthy, silent):
            with contextlib.suppress(StatusError):
                await nodes.delete(name)


async def _untainted(nodes: object, name: str) -> bool:
    node = await nodes.get(name)  # type: ignore[attr-defined]
    return not node.spec.taints


# ------------------------------------------------------------------ namespace


async def test_deleting_a_namespace_deletes_its_content_then_itself(apiserver: APIServerProcess, workdir: Path,
                                                                    client: Clientset) -> None:
    name = f"doomed-{uuid.uuid4().hex[:6]}"
    namespaces = client.resource(core_pb2.Namespace)
    await namespaces.create(core_pb2.Namespace(metadata={"name": name}))
    sim = await PodSimulator(client, [f"ns-{uuid.uuid4().hex[:6]}"], namespace=name).start()
    try:
        await client.resource(core_pb2.ConfigMap, name).create(core_pb2.ConfigMap(metadata={"name": "cm"}))
        await client.resource(core_pb2.Secret, name).create(core_pb2.Secret(metadata={"name": "s"}))
        svc = core_pb2.Service(metadata={"name": "svc"})
        svc.spec.ports.add(port=80)
        await client.resource(core_pb2.Service, name).create(svc)
        pods = client.resource(Pod, name)
        await pods.create(_pod("p", name, {"app": "x"}))
        await eventually(lambda: _running(pods, "p"), what="the pod running")
        async with manager(apiserver, workdir, "namespace"):
            await namespaces.delete(name)
            assert (await namespaces.get(name)).status.phase == "Terminating"

            async def removed() -> bool:
                try:
                    await namespaces.get(name)
                    return False
                except StatusError as err:
                    return err.reason == "NotFound"
            await eventually(removed, timeout=30, what="the namespace removed")
        for kind in (core_pb2.ConfigMap, core_pb2.Secret, core_pb2.Service, Pod):
            assert not (await client.resource(kind, name).list()).items
    finally:
        await sim.stop()


async def _running(pods: object, name: str) -> bool:
    pod = await pods.get(name)  # type: ignore[attr-defined]
    return pod.status.phase == "Running"


# ------------------------------------------------------------------ garbage collector


def _ref(owner: core_pb2.ConfigMap, *, block: bool = False) -> meta_pb2.OwnerReference:
    ref = meta_pb2.OwnerReference(apiVersion="v1", kind="ConfigMap", name=owner.metadata.name,
                                  uid=owner.metadata.uid)
    if block:
        ref.blockOwnerDeletion = True
    return ref


async def _family(client: Clientset, namespace: str, owner_name: str, *, block: bool = False,
                  hold: bool = False) -> core_pb2.ConfigMap:
    """An owner ConfigMap with a Secret and a ConfigMap depending on it."""
    owner = await client.resource(core_pb2.ConfigMap, namespace).create(
        core_pb2.ConfigMap(metadata={"name": owner_name}))
    secret = core_pb2.Secret(metadata={"name": f"{owner_name}-secret"})
    secret.metadata.ownerReferences.append(_ref(owner, block=block))
    if hold:
        secret.metadata.finalizers.append("example.com/hold")
    await client.resource(core_pb2.Secret, namespace).create(secret)
    dep = core_pb2.ConfigMap(metadata={"name": f"{owner_name}-dep"})
    dep.metadata.ownerReferences.append(_ref(owner, block=block))
    await client.resource(core_pb2.ConfigMap, namespace).create(dep)
    return owner


async def _exists(client: Clientset, kind: type, namespace: str, name: str) -> bool:
    try:
        await client.resource(kind, namespace).get(name)
        return True
    except StatusError as err:
        if err.reason == "NotFound":
            return False
        raise


async def test_garbage_collection_with_every_policy_and_after_a_restart(
        apiserver: APIServerProcess, workdir: Path, client: Clientset, namespace: str) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)
    secrets = client.resource(core_pb2.Secret, namespace)
    for owner in ("bg", "fg", "or"):
        await _family(client, namespace, owner, block=owner == "fg", hold=owner == "fg")

    async def gone(kind: type, name: str) -> bool:
        return not await _exists(client, kind, namespace, name)

    async with manager(apiserver, workdir, "garbagecollector"):
        await asyncio.sleep(1)
        assert await _exists(client, core_pb2.Secret, namespace, "bg-secret")  # owners exist: nothing goes

        await cms.delete("bg")  # Background, the default
        await eventually(lambda: gone(core_pb2.Secret, "bg-secret"), what="background: the secret collected")
        await eventually(lambda: gone(core_pb2.ConfigMap, "bg-dep"), what="background: the configmap collected")

        await cms.delete("fg", propagation="Foreground")

        async def waiting() -> bool:
            owner, secret = await cms.get("fg"), await secrets.get("fg-secret")
            return bool(owner.metadata.deletionTimestamp and secret.metadata.deletionTimestamp) and \
                not await _exists(client, core_pb2.ConfigMap, namespace, "fg-dep")
        await eventually(waiting, what="foreground: dependents deleted, the held one blocking its owner")
        held = await secrets.get("fg-secret")
        del held.metadata.finalizers[:]
        await secrets.update(held)
        await eventually(lambda: gone(core_pb2.ConfigMap, "fg"), what="foreground: the owner goes last")

        await cms.delete("or", propagation="Orphan")
        await eventually(lambda: gone(core_pb2.ConfigMap, "or"), what="orphan: the owner goes")
        assert not (await secrets.get("or-secret")).metadata.ownerReferences
        assert not (await cms.get("or-dep")).metadata.ownerReferences

    # While no collector runs, an owner goes and its dependents stay behind...
    await _family(client, namespace, "later")
    await cms.delete("later")
    await asyncio.sleep(1)
    assert await _exists(client, core_pb2.Secret, namespace, "later-secret")
    # ...until one starts again.
    async with manager(apiserver, workdir, "garbagecollector"):
        await eventually(lambda: gone(core_pb2.Secret, "later-secret"), what="collected after the restart")
        await eventually(lambda: gone(core_pb2.ConfigMap, "later-dep"), what="collected after the restart")


# ------------------------------------------------------------------ the rest, against the real apiserver


async def test_cidrs_volumes_tokens_and_quota(apiserver: APIServerProcess, workdir: Path, client: Clientset,
                                              namespace: str, tmp_path: Path) -> None:
    node_name = f"ipam-{uuid.uuid4().hex[:6]}"
    nodes = client.resource(Node)
    await nodes.create(Node(metadata={"name": node_name}))
    default_class = f"standard-{uuid.uuid4().hex[:6]}"
    classes = client.resource(storage_pb2.StorageClass)
    pre_existing_defaults = [c for c in (await classes.list()).items
                             if c.metadata.annotations.get("storageclass.kubernetes.io/is-default-class") == "true"]
    key = tmp_path / "sa.key"
    flags = ("--hostpath-provisioner-dir", str(tmp_path / "pv"), "--default-storage-class", default_class,
             "--service-account-private-key-file", str(key), "--cluster-cidr", "10.250.0.0/16")
    claims = client.resource(core_pb2.PersistentVolumeClaim, namespace)
    try:
        async with manager(apiserver, workdir,
                           "nodeipam,persistentvolume-binder,serviceaccount-token,serviceaccount,resourcequota",
                           *flags):
            async def has_cidr() -> bool:
                node = await nodes.get(node_name)
                return node.spec.podCIDR.startswith("10.250.") and list(node.spec.podCIDRs) == [node.spec.podCIDR]
            await eventually(has_cidr, what="a pod CIDR for the node")

            if pre_existing_defaults:  # another default class: the binder leaves things be, so make ours
                await classes.create(storage_pb2.StorageClass(
                    metadata={"name": default_class}, provisioner="kubernetes.io/host-path", reclaimPolicy="Delete"))
            else:
                await eventually(lambda: _exists(client, storage_pb2.StorageClass, "", default_class),
                                 what="the default StorageClass made by the binder")
            claim = core_pb2.PersistentVolumeClaim(metadata={"name": "data"})
            claim.spec.accessModes.append("ReadWriteOnce")
            claim.spec.resources.requests["storage"].value = "1Gi"
            claim.spec.storageClassName = default_class
            await claims.create(claim)

            async def bound() -> bool:
                pvc = await claims.get("data")
                return pvc.status.phase == "Bound" and bool(pvc.spec.volumeName)
            await eventually(bound, what="the claim bound to a provisioned volume")
            pvc = await claims.get("data")
            pv = await client.resource(core_pb2.PersistentVolume).get(pvc.spec.volumeName)
            directory = Path(pv.spec.hostPath.path)
            assert pv.status.phase == "Bound" and directory.is_dir() and directory.parent == tmp_path / "pv"
            await claims.delete("data")
            await eventually(lambda: _gone_pv(client, pv.metadata.name), what="the volume deleted with its claim")
            assert not directory.exists()

            accounts = client.resource(core_pb2.ServiceAccount, namespace)

            async def token() -> bool:
                sa = await accounts.get("default")
                return bool(sa.secrets)
            await eventually(token, what="a token Secret for the default ServiceAccount")
            sa = await accounts.get("default")
            secret = await client.resource(core_pb2.Secret, namespace).get(sa.secrets[0].name)
            assert secret.type == "kubernetes.io/service-account-token"
            public = Path(f"{key}.pub").read_bytes()
            claims_ = jwt.decode(secret.data["token"].decode(), public, algorithms=["RS256"])
            assert claims_["sub"] == f"system:serviceaccount:{namespace}:default"

            quota = core_pb2.ResourceQuota(metadata={"name": "q"})
            quota.spec.hard["configmaps"].value = "10"
            quota.spec.hard["secrets"].value = "10"
            await client.resource(core_pb2.ConfigMap, namespace).create(core_pb2.ConfigMap(metadata={"name": "c"}))
            await client.resource(core_pb2.ResourceQuota, namespace).create(quota)

            async def counted() -> bool:
                q = await client.resource(core_pb2.ResourceQuota, namespace).get("q")
                used = {k: v.value for k, v in q.status.used.items()}
                configmaps = len((await client.resource(core_pb2.ConfigMap, namespace).list()).items)
                return used.get("configmaps") == str(configmaps) and used.get("secrets") == "1"
            await eventually(counted, what="quota status")
    finally:
        with contextlib.suppress(StatusError):
            await nodes.delete(node_name)
        with contextlib.suppress(StatusError):
            await classes.delete(default_class)


async def _gone_pv(client: Clientset, name: str) -> bool:
    return not await _exists(client, core_pb2.PersistentVolume, "", name)
