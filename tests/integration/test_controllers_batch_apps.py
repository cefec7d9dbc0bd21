"""The DaemonSet, StatefulSet, Job, CronJob and HorizontalPodAutoscaler
controllers in a real controller-manager process, on the real apiserver
and etcd. No kubelet runs: tests/support/podsim.py plays the kubelet (pods
go Running and Ready, or not, or finish, as the test says), and for
DaemonSets a small binder plays the scheduler (it honours the node each
daemon pod is pinned to). Covered: a DaemonSet following nodes that come
and go, and rolling out a new template; a StatefulSet creating 0..N-1 in
order, each only once the previous is ready, scaling down N-1..0, and
keeping each ordinal's claim; Jobs completing under a parallelism limit,
Indexed Jobs, and the backoff between failures up to backoffLimit; a
CronJob starting its most recent every-minute run (its last schedule time
set back, as if the controller had been away) and missing one past its
startingDeadlineSeconds; `kubelab autoscale` and an HPA scaling a
StatefulSet from usage figures in the metrics file that stands in for
kubelet metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from api import MERGE_PATCH, StatusError, rfc3339
from client import Clientset
from controller_manager._daemon_nodes import target_node
from deploy.local import APIServerProcess, ComponentProcess
from proto import apps_pb2, autoscaling_pb2, batch_pb2, core_pb2
from tests.support.podsim import PodSimulator
from tests.support.wait import eventually

from .cli_support import Kubelab, run_process
from .conftest import start_component

Pod = core_pb2.Pod
Node = core_pb2.Node

CONTROLLERS = "daemonset,statefulset,job,cronjob,horizontalpodautoscaling"


@pytest.fixture(scope="module")
def manager(apiserver: APIServerProcess, workdir: Path) -> Iterator[tuple[ComponentProcess, Path]]:
    """One controller-manager for the module: the five controllers, HPAs
    looked at every second, pod usage read from a file the tests write."""
    usage = workdir / "pod-usage.yaml"
    usage.write_text("{}\n")
    proc = start_component("controller_manager", apiserver, workdir, "--leader-elect", "false",
                           "--controllers", CONTROLLERS, "--horizontal-pod-autoscaler-sync-period", "1",
                           "--horizontal-pod-autoscaler-cpu-initialization-period", "0",
                           "--horizontal-pod-autoscaler-metrics-file", str(usage))
    try:
        yield proc, usage
    finally:
        proc.stop()


@contextlib.asynccontextmanager
async def simulated(client: Clientset, namespace: str, nodes: list[str], **kwargs: object
                    ) -> AsyncIterator[PodSimulator]:
    sim = await PodSimulator(client, nodes, namespace=namespace, **kwargs).start()  # type: ignore[arg-type]
    try:
        yield sim
    finally:
        await sim.stop()
        for name in nodes:
            with contextlib.suppress(StatusError):
                await client.resource(Node).delete(name)


async def pods_of(client: Clientset, namespace: str, **labels: str) -> list[Pod]:
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    return list((await client.resource(Pod, namespace).list(label_selector=selector)).items)


async def finish(sim: PodSimulator, namespace: str, name: str, *, succeeded: bool = True) -> None:
    for _ in range(20):  # the controllers write the pod too (finalizers): retry a Conflict
        try:
            await sim.finish(namespace, name, succeeded=succeeded)
            return
        except StatusError as err:
            if err.reason != "Conflict":
                raise
            await asyncio.sleep(0.05)
    raise AssertionError(f"could not finish {name}")


def template(labels: dict[str, str], image: str, restart: str = "Always") -> core_pb2.PodTemplateSpec:
    t = core_pb2.PodTemplateSpec()
    t.metadata.labels.update(labels)
    c = t.spec.containers.add(name="main", image=image)
    c.resources.requests["cpu"].value = "100m"
    t.spec.restartPolicy = restart
    return t


# ---------------------------------------------------------------- DaemonSet


async def _bind_daemon_pods(client: Clientset, namespace: str) -> None:
    """The scheduler's part for daemon pods: bind each to its pinned node."""
    pods = client.resource(Pod, namespace)
    while True:
        with contextlib.suppress(StatusError):
            async for event in pods.watch(resource_version="0"):
                pod = event.object
                if event.type == "DELETED" or pod.spec.nodeName or pod.metadata.deletionTimestamp:
                    continue
                node = target_node(pod)
                if node:
                    with contextlib.suppress(StatusError):
                        await pods.bind(pod.metadata.name, node, uid=pod.metadata.uid)
        await asyncio.sleep(0.2)


async def test_daemonset_follows_nodes_and_rolls_out(manager: tuple[ComponentProcess, Path], client: Clientset,
                                                     namespace: str) -> None:
    names = [f"{namespace}-n{i}" for i in range(3)]
    for name in names[:2]:
        node = Node(metadata={"name": name, "labels": {"kubernetes.io/hostname": name, "lab/test": namespace}})
        node.status.conditions.add(type="Ready", status="True")
        await client.resource(Node).create(node)
    binder = asyncio.create_task(_bind_daemon_pods(client, namespace))
    try:
        async with simulated(client, namespace, names, schedule=False):
            ds = apps_pb2.DaemonSet(metadata={"name": "agent", "namespace": namespace})
            ds.spec.selector.matchLabels["app"] = "agent"
            ds.spec.template.CopyFrom(template({"app": "agent"}, "agent:1"))
            ds.spec.template.spec.nodeSelector["lab/test"] = namespace
            sets = client.resource(apps_pb2.DaemonSet, namespace)
            await sets.create(ds)

            async def on_nodes(expected: list[str], image: str = "agent:1") -> bool:
                running = [p for p in await pods_of(client, namespace, app="agent")
                           if p.status.phase == "Running" and not p.metadata.deletionTimestamp]
                return sorted(p.spec.nodeName for p in running) == sorted(expected) and \
                    all(p.spec.containers[0].image == image for p in running)

            await eventually(lambda: on_nodes(names[:2]), what="a pod on each labelled node")
            # PodSimulator created the third node without our label: no pod there until it has it
            third = await client.resource(Node).get(names[2])
            third.metadata.labels["lab/test"] = namespace
            await client.resource(Node).update(third)
            await eventually(lambda: on_nodes(names), what="a pod on the new node")
            await client.resource(Node).delete(names[1])
            await eventually(lambda: on_nodes([names[0], names[2]]), what="the removed node's pod gone")

            async def status_is(desired: int, ready: int, updated: int) -> bool:
                s = (await sets.get("agent")).status
                return (s.desiredNumberScheduled, s.numberReady, s.updatedNumberScheduled) == (desired, ready, updated)
            await eventually(lambda: status_is(2, 2, 2), what="status counts")

            await sets.patch("agent", {"spec": {"template": {"spec": {"containers": [
                {"name": "main", "image": "agent:2"}]}}}})
            await eventually(lambda: on_nodes([names[0], names[2]], "agent:2"), what="the rollout")
            revisions = await client.resource(apps_pb2.ControllerRevision, namespace).list()
            assert sorted(r.revision for r in revisions.items) == [1, 2]
    finally:
        binder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await binder


# ---------------------------------------------------------------- StatefulSet


async def test_statefulset_orders_pods_up_and_down(manager: tuple[ComponentProcess, Path], client: Clientset,
                                                   namespace: str) -> None:
    async with simulated(client, namespace, [f"{namespace}-n1"], ready=lambda _p: False) as sim:
        sts = apps_pb2.StatefulSet(metadata={"name": "web", "namespace": namespace})
        sts.spec.replicas = 3
        sts.spec.serviceName = "web"
        sts.spec.selector.matchLabels["app"] = "web"
        sts.spec.template.CopyFrom(template({"app": "web"}, "nginx:1"))
        sts.spec.template.spec.containers[0].volumeMounts.add(name="data", mountPath="/data")
        claim = sts.spec.volumeClaimTemplates.add()
        claim.metadata.name = "data"
        claim.spec.accessModes.append("ReadWriteOnce")
        claim.spec.resources.requests["storage"].value = "1Gi"
        sets = client.resource(apps_pb2.StatefulSet, namespace)
        await sets.create(sts)

        async def names_are(*expected: str) -> bool:
            pods = await pods_of(client, namespace, app="web")
            return sorted(p.metadata.name for p in pods if not p.metadata.deletionTimestamp) == list(expected)

        for i in range(3):
            await eventually(lambda i=i: names_are(*(f"web-{j}" for j in range(i + 1))),  # type: ignore[misc]
                             what=f"web-{i} created")
            await asyncio.sleep(1.0)
            assert await names_are(*(f"web-{j}" for j in range(i + 1)))  # the next waits for this one
            await eventually(lambda i=i: _running(client, namespace, f"web-{i}"))  # type: ignore[misc]
            await sim.set_ready(namespace, f"web-{i}", True)

        pod = await client.resource(Pod, namespace).get("web-1")
        assert (pod.spec.hostname, pod.spec.subdomain) == ("web-1", "web")
        claims = client.resource(core_pb2.PersistentVolumeClaim, namespace)
        before = await claims.get("data-web-1")
        assert next(v for v in pod.spec.volumes if v.name == "data").persistentVolumeClaim.claimName == "data-web-1"
        # a rescheduled pod keeps its name and its claim
        await client.resource(Pod, namespace).delete("web-1")

        async def recreated() -> bool:
            again = await client.resource(Pod, namespace).get("web-1")
            return again.metadata.uid != pod.metadata.uid and not again.metadata.deletionTimestamp
        await eventually(recreated, what="web-1 recreated")
        assert (await claims.get("data-web-1")).metadata.uid == before.metadata.uid
        await eventually(lambda: _running(client, namespace, "web-1"))
        await sim.set_ready(namespace, "web-1", True)

        # scale down: highest ordinal first, one at a time
        gone_order: list[str] = []
        await sets.patch("web", {"spec": {"replicas": 0}}, patch_type=MERGE_PATCH)
        remaining = {"web-0", "web-1", "web-2"}

        async def drained() -> bool:
            pods = await pods_of(client, namespace, app="web")
            alive = {p.metadata.name for p in pods}
            for name in sorted(remaining - alive, reverse=True):
                gone_order.append(name)
            remaining.intersection_update(alive)
            return not alive
        await eventually(drained, what="scaled to zero")
        assert gone_order == ["web-2", "web-1", "web-0"]
        assert len((await claims.list()).items) == 3  # the claims stay


async def _running(client: Clientset, namespace: str, name: str) -> bool:
    return (await client.resource(Pod, namespace).get(name)).status.phase == "Running"


# ---------------------------------------------------------------- Job


def _job(name: str, namespace: str, **spec: object) -> batch_pb2.Job:
    job = batch_pb2.Job(metadata={"name": name, "namespace": namespace})
    job.spec.template.CopyFrom(template({"app": name}, "busybox", restart="Never"))
    for field, value in spec.items():
        setattr(job.spec, field, value)
    return job


async def test_job_completion_parallelism_and_backoff(manager: tuple[ComponentProcess, Path], client: Clientset,
                                                      namespace: str) -> None:
    jobs = client.resource(batch_pb2.Job, namespace)
    async with simulated(client, namespace, [f"{namespace}-n1"]) as sim:
        await jobs.create(_job("count", namespace, completions=3, parallelism=2))

        async def running(app: str, n: int) -> bool:
            pods = [p for p in await pods_of(client, namespace, app=app)
                    if p.status.phase == "Running" and not p.metadata.deletionTimestamp]
            return len(pods) == n
        await eventually(lambda: running("count", 2), what="two pods running")
        await asyncio.sleep(1.0)
        assert len(await pods_of(client, namespace, app="count")) == 2  # parallelism 2
        for _ in range(3):
            await eventually(lambda: _any_running(client, namespace, "count"), what="a running pod")
            pod = next(p for p in await pods_of(client, namespace, app="count") if p.status.phase == "Running")
            assert "batch.kubernetes.io/job-tracking" in pod.metadata.finalizers
            await finish(sim, namespace, pod.metadata.name)

        async def complete(name: str) -> bool:
            job = await jobs.get(name)
            return any(c.type == "Complete" and c.status == "True" for c in job.status.conditions)
        await eventually(lambda: complete("count"), what="Complete")
        job = await jobs.get("count")
        assert (job.status.succeeded, job.status.active, job.status.failed) == (3, 0, 0)
        assert job.status.completionTime and len(await pods_of(client, namespace, app="count")) == 3

        # Indexed: each pod knows its index
        await jobs.create(_job("idx", namespace, completions=2, parallelism=2, completionMode="Indexed"))
        await eventually(lambda: running("idx", 2), what="indexed pods")
        for pod in await pods_of(client, namespace, app="idx"):
            index = pod.metadata.annotations["batch.kubernetes.io/job-completion-index"]
            assert pod.spec.hostname == f"idx-{index}"
            assert any(e.name == "JOB_COMPLETION_INDEX" for e in pod.spec.containers[0].env)
            await finish(sim, namespace, pod.metadata.name)
        await eventually(lambda: complete("idx"))
        assert (await jobs.get("idx")).status.completedIndexes == "0-1"

        # backoff: the replacement of a failed pod waits 10 s; the second failure exceeds backoffLimit 1
        await jobs.create(_job("flaky", namespace, backoffLimit=1))
        await eventually(lambda: running("flaky", 1))
        first = (await pods_of(client, namespace, app="flaky"))[0]
        failed_at = time.monotonic()
        await finish(sim, namespace, first.metadata.name, succeeded=False)
        await eventually(lambda: running("flaky", 1), timeout=30, what="the replacement")
        assert time.monotonic() - failed_at >= 8.0
        second = next(p for p in await pods_of(client, namespace, app="flaky") if p.status.phase == "Running")
        await finish(sim, namespace, second.metadata.name, succeeded=False)

        async def failed() -> bool:
            job = await jobs.get("flaky")
            return any(c.type == "Failed" and c.reason == "BackoffLimitExceeded" for c in job.status.conditions)
        await eventually(failed, what="BackoffLimitExceeded")
        assert (await jobs.get("flaky")).status.failed == 2


async def _any_running(client: Clientset, namespace: str, app: str) -> bool:
    return any(p.status.phase == "Running" and not p.metadata.deletionTimestamp
               for p in await pods_of(client, namespace, app=app))


# ---------------------------------------------------------------- CronJob


def _cron_job(name: str, namespace: str, deadline: int) -> batch_pb2.CronJob:
    cj = batch_pb2.CronJob(metadata={"name": name, "namespace": namespace})
    cj.spec.schedule = "* * * * *"
    cj.spec.timeZone = "UTC"
    cj.spec.startingDeadlineSeconds = deadline
    cj.spec.suspend = True
    cj.spec.jobTemplate.spec.template.CopyFrom(template({"app": name}, "busybox", restart="OnFailure"))
    return cj


async def _resume_as_if_away(client: Clientset, namespace: str, name: str) -> None:
    """Set lastScheduleTime two minutes back, then unsuspend: the
    controller sees the runs it missed, as after an outage."""
    cronjobs = client.resource(batch_pb2.CronJob, namespace)
    cj = await cronjobs.get(name)
    cj.status.lastScheduleTime = rfc3339(time.time() - 120)
    await cronjobs.update_status(cj)
    await cronjobs.patch(name, {"spec": {"suspend": False}}, patch_type=MERGE_PATCH)


async def test_cronjob_runs_the_latest_schedule_within_its_deadline(
        manager: tuple[ComponentProcess, Path], client: Clientset, namespace: str) -> None:
    cronjobs = client.resource(batch_pb2.CronJob, namespace)
    jobs = client.resource(batch_pb2.Job, namespace)
    async with simulated(client, namespace, [f"{namespace}-n1"]) as sim:
        # within its deadline (5 minutes): the last minute's run starts now
        await cronjobs.create(_cron_job("often", namespace, 300))
        await _resume_as_if_away(client, namespace, "often")

        async def one_job() -> bool:
            return len((await jobs.list()).items) == 1
        await eventually(one_job, what="the job of the latest minute")
        job = (await jobs.list()).items[0]
        minute = int(time.time()) // 60 * 60
        assert job.metadata.name in (f"often-{minute // 60}", f"often-{minute // 60 - 1}")

        async def listed_active() -> bool:  # the controller writes the status after it creates the job
            return [a.name for a in (await cronjobs.get("often")).status.active] == [job.metadata.name]
        await eventually(listed_active, what="the job in the CronJob's status.active")
        await eventually(lambda: _any_running(client, namespace, "often"))
        pod = next(p for p in await pods_of(client, namespace, app="often") if p.status.phase == "Running")
        await finish(sim, namespace, pod.metadata.name)

        async def succeeded() -> bool:
            cj = await cronjobs.get("often")
            return not cj.status.active and bool(cj.status.lastSuccessfulTime)
        await eventually(succeeded, what="lastSuccessfulTime")

        # past its deadline (5 s): the run is missed, with an event saying so
        second = datetime.now(UTC).second
        if not 10 <= second <= 50:  # keep clear of a minute boundary
            await asyncio.sleep((70 - second) % 60)
        await cronjobs.create(_cron_job("strict", namespace, 5))
        await _resume_as_if_away(client, namespace, "strict")

        async def missed() -> bool:
            events = await client.resource(core_pb2.Event, namespace).list()
            return any(e.reason == "MissSchedule" and e.involvedObject.name == "strict" for e in events.items)
        await eventually(missed, what="MissSchedule")
        assert not [j for j in (await jobs.list()).items if j.metadata.name.startswith("strict-")]


# ---------------------------------------------------------------- HPA and `kubelab autoscale`


async def test_autoscale_scales_a_statefulset_from_pod_usage(manager: tuple[ComponentProcess, Path],
                                                             apiserver: APIServerProcess, client: Clientset,
                                                             namespace: str) -> None:
    _, usage = manager
    async with simulated(client, namespace, [f"{namespace}-n1"]):
        sts = apps_pb2.StatefulSet(metadata={"name": "web", "namespace": namespace})
        sts.spec.replicas = 1
        sts.spec.selector.matchLabels["app"] = "web"
        sts.spec.template.CopyFrom(template({"app": "web"}, "nginx:1"))
        sets = client.resource(apps_pb2.StatefulSet, namespace)
        await sets.create(sts)
        await eventually(lambda: _running(client, namespace, "web-0"))

        done = await asyncio.to_thread(run_process, apiserver.target, "autoscale", "statefulset/web",
                                       "--cpu-percent=50", "--min=1", "--max=4", "-n", namespace)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "horizontalpodautoscaler.autoscaling/web autoscaled"
        hpa = await client.resource(autoscaling_pb2.HorizontalPodAutoscaler, namespace).get("web")
        assert (hpa.spec.scaleTargetRef.kind, hpa.spec.maxReplicas, hpa.spec.minReplicas,
                hpa.spec.metrics[0].resource.target.averageUtilization) == ("StatefulSet", 4, 1, 50)

        # web-0 uses twice its request, four times the target: 4 replicas
        figures = yaml.safe_load(usage.read_text()) or {}
        figures[namespace] = {"web-0": {"cpu": "200m"}}
        usage.write_text(yaml.safe_dump(figures))

        async def scaled() -> bool:
            s = await sets.get("web")
            return s.spec.replicas == 4 and s.status.readyReplicas == 4
        await eventually(scaled, timeout=40, what="4 ready replicas")
        hpa = await client.resource(autoscaling_pb2.HorizontalPodAutoscaler, namespace).get("web")
        assert hpa.status.desiredReplicas == 4
        assert hpa.status.currentMetrics[0].resource.current.averageUtilization in (200, 50)


def test_autoscale_cli_checks_its_input(apiserver: APIServerProcess, namespace: str) -> None:
    kubelab = Kubelab(apiserver.target)
    missing_max = kubelab.fails("autoscale", "deploy/web", "-n", namespace)
    assert "--max=MAXPODS is required and must be at least 1" in missing_max.output
    inverted = kubelab.fails("autoscale", "deploy/web", "--min=5", "--max=2", "-n", namespace)
    assert "--max=MAXPODS must be larger or equal to --min=MINPODS" in inverted.output
    pod = kubelab.fails("autoscale", "pod/web", "--max=2", "-n", namespace)
    assert "cannot autoscale a Pod" in pod.output
    absent = kubelab.fails("autoscale", "deploy/nosuch", "--max=2", "-n", namespace)
    assert 'deployments.apps "nosuch" not found' in absent.output
    manifest = yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment",
                               "metadata": {"name": "web", "namespace": namespace},
                               "spec": {"selector": {"matchLabels": {"app": "web"}},
                                        "template": {"metadata": {"labels": {"app": "web"}},
                                                     "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    kubelab.ok("apply", "-f", "-", input=manifest)
    printed = kubelab.ok("autoscale", "deploy/web", "--max=3", "--dry-run=client", "-o", "yaml", "-n", namespace)
    doc = yaml.safe_load(printed.output)
    assert doc["apiVersion"] == "autoscaling/v2" and doc["kind"] == "HorizontalPodAutoscaler"
    assert doc["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    assert "metrics" not in doc["spec"] and "minReplicas" not in doc["spec"]
    created = kubelab.ok("autoscale", "deploy/web", "--max=3", "--name=web-hpa", "-n", namespace)
    assert created.output.strip() == "horizontalpodautoscaler.autoscaling/web-hpa autoscaled"
    stored = yaml.safe_load(kubelab.ok("get", "hpa", "web-hpa", "-o", "yaml", "-n", namespace).output)
    # the server's defaults: minReplicas 1, 80 % average CPU
    assert stored["spec"]["minReplicas"] == 1
    assert stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80
    again = kubelab.fails("autoscale", "deploy/web", "--max=3", "--name=web-hpa", "-n", namespace)
    assert "already exists" in again.output
