"""controller_manager/resourcequota.py: how pods' requests and limits add
up (init containers, overhead), which pods count (finished ones and those
past their deletion grace do not), quota scopes, and the controller on
the in-memory clientset: status.hard and status.used for pods, compute,
services, node ports, claims per storage class and count/<resource>,
updated when the namespace's objects change, and not rewritten when
nothing did."""

from __future__ import annotations

from api import Quantity, rfc3339
from controller_manager.resourcequota import ResourceQuotaController, pod_amounts, pod_counts, pod_matches_scopes
from proto import apps_pb2, core_pb2

from ._cluster import Harness, meta, running_pod, settle

Pod = core_pb2.Pod
Quota = core_pb2.ResourceQuota


def pod(name: str, cpu: str = "", memory: str = "", *, limit_cpu: str = "", phase: str = "Running") -> Pod:
    p = running_pod(name)
    res = p.spec.containers[0].resources
    for where, key, value in ((res.requests, "cpu", cpu), (res.requests, "memory", memory),
                              (res.limits, "cpu", limit_cpu)):
        if value:
            where[key].value = value
    p.status.phase = phase
    return p


def quota(name: str = "q", scopes: tuple[str, ...] = (), more: dict[str, str] | None = None, **hard: str) -> Quota:
    """A quota; keyword names spell resources with _ for . (requests_cpu)."""
    q = meta(Quota(), name, "ns")
    for key, value in hard.items():
        q.spec.hard[key.replace("_", ".")].value = value
    for key, value in (more or {}).items():
        q.spec.hard[key].value = value
    q.spec.scopes.extend(scopes)
    return q


def used(h: Harness, name: str = "q") -> dict[str, str]:
    q = h.get(Quota, "ns", name)
    assert q is not None
    return {k: v.value for k, v in q.status.used.items()}


def test_pod_amounts_take_the_larger_of_containers_and_init_containers_plus_overhead() -> None:
    p = pod("a", "100m", "64Mi")
    p.spec.containers.add(name="side", image="x").resources.requests["cpu"].value = "200m"
    init = p.spec.initContainers.add(name="init", image="x")
    init.resources.requests["cpu"].value = "250m"
    init.resources.requests["memory"].value = "256Mi"
    p.spec.overhead["cpu"].value = "10m"
    requests, _limits = pod_amounts(p)
    assert requests["cpu"] == Quantity.parse("310m")
    assert requests["memory"] == Quantity.parse("256Mi")


def test_which_pods_count() -> None:
    assert pod_counts(pod("a"), now=100.0)
    assert not pod_counts(pod("a", phase="Succeeded"), now=100.0)
    going = pod("a")
    going.metadata.deletionTimestamp = rfc3339(50.0)
    assert not pod_counts(going, now=100.0)
    going.metadata.deletionTimestamp = rfc3339(150.0)
    assert pod_counts(going, now=100.0)


def test_scopes() -> None:
    best_effort, burstable = pod("be"), pod("bu", "100m")
    assert pod_matches_scopes(best_effort, quota(scopes=("BestEffort",)))
    assert not pod_matches_scopes(burstable, quota(scopes=("BestEffort",)))
    assert pod_matches_scopes(burstable, quota(scopes=("NotBestEffort",)))
    deadline = pod("job", "1")
    deadline.spec.activeDeadlineSeconds = 60
    assert pod_matches_scopes(deadline, quota(scopes=("Terminating",)))
    assert not pod_matches_scopes(deadline, quota(scopes=("NotTerminating",)))
    by_class = quota()
    by_class.spec.scopeSelector.matchExpressions.add(scopeName="PriorityClass", operator="In", values=["high"])
    high = pod("h")
    high.spec.priorityClassName = "high"
    assert pod_matches_scopes(high, by_class) and not pod_matches_scopes(burstable, by_class)


async def test_quota_status_counts_the_namespace() -> None:
    async with Harness(ResourceQuotaController) as h:
        pods = h.client(Pod, "ns")
        await pods.create(pod("a", "100m", "64Mi", limit_cpu="200m"))
        await pods.create(pod("b", "250m", "64Mi"))
        await pods.create(pod("done", "1", "1Gi", phase="Succeeded"))
        await pods.create(pod("elsewhere", "1"))  # same name, other namespace below
        other = pod("x", "4")
        other.metadata.namespace = "other"
        await h.client(Pod, "other").create(other)
        svc = meta(core_pb2.Service(), "np", "ns")
        svc.spec.type = "NodePort"
        svc.spec.ports.add(port=80)
        svc.spec.ports.add(port=443)
        await h.client(core_pb2.Service, "ns").create(svc)
        claim = meta(core_pb2.PersistentVolumeClaim(), "data", "ns")
        claim.spec.storageClassName = "fast"
        claim.spec.resources.requests["storage"].value = "5Gi"
        await h.client(core_pb2.PersistentVolumeClaim, "ns").create(claim)
        await h.client(apps_pb2.Deployment, "ns").create(meta(apps_pb2.Deployment(), "d", "ns"))
        await h.create(quota(pods="10", requests_cpu="4", requests_memory="1Gi", limits_cpu="8",
                             services="5", services_nodeports="4", requests_storage="100Gi",
                             more={"fast.storageclass.storage.k8s.io/requests.storage": "10Gi",
                                   "count/deployments.apps": "2"}))
        q = h.get(Quota, "ns", "q")
        assert q is not None and {k: v.value for k, v in q.status.hard.items()}["pods"] == "10"
        assert used(h) == {
            "pods": "3", "requests.cpu": "1350m", "requests.memory": "128Mi", "limits.cpu": "200m",
            "services": "1", "services.nodeports": "2", "requests.storage": "5Gi",
            "fast.storageclass.storage.k8s.io/requests.storage": "5Gi", "count/deployments.apps": "1"}

        await pods.delete("elsewhere")
        await settle()
        assert used(h)["pods"] == "2" and used(h)["requests.cpu"] == "350m"

        writes = h.cs.count("update", "resourcequotas", "status")
        p = await pods.get("a")
        p.metadata.labels["x"] = "y"
        await pods.update(p)
        await settle()
        assert h.cs.count("update", "resourcequotas", "status") == writes


async def test_scoped_quota_counts_only_its_pods() -> None:
    async with Harness(ResourceQuotaController) as h:
        await h.client(Pod, "ns").create(pod("be"))
        await h.client(Pod, "ns").create(pod("bu", "100m"))
        await h.create(quota("best-effort", scopes=("BestEffort",), pods="5"))
        assert used(h, "best-effort") == {"pods": "1"}
