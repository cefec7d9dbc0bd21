"""The Kubernetes documentation's pod examples on real nodes: a lab of two
nodes (`kubelab up` with a prefix of its own), real runc containers, images
pulled from the lab's registry under their public names.

The docs' manifests are created unchanged with `kubelab create -f FILE`;
where a behaviour has no docs manifest in the shared set, a small manifest
of the test's own is created through the same CLI. What each test covers:

* configMap and secret as environment and volumes (the docs'
  pod-configmap-volume.yaml with the ConfigMap its page creates first);
* the downward API volume (pods/inject/dapi-volume.yaml): labels and
  annotations files, as its log shows them;
* restartPolicy Never / OnFailure / Always and restartCount;
* OOMKilled for a container over its memory limit;
* hostPort through the portmap plugin, reached from the other node;
* readiness flipping both ways with the pod's Ready condition;
* postStart, preStop and the deletion grace period
  (pods/lifecycle-events.yaml and two pods of our own);
* a static pod and its mirror pod;
* image pulls: Pulled from the local registry, ErrImagePull then
  ImagePullBackOff for a tag the registry does not have;
* the exec and http liveness examples restarting their containers.

Some of these take their time by design (exec-liveness fails its probe
only after 30 s, the kubelet reads its manifest directory every 20 s), so
every workload is created once, at the start of the module, and each test
then waits for its own outcome: the module takes about as long as the
slowest example, not the sum. Containers' logs are read from the node's
pod-logs files; a file in a container is read through the node's CRI shim
(`crictl exec`); lab traffic is sent from inside a node's namespace.
The lab is torn down whatever happens (NodeLab.stop, deploy.lab.down).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from proto import core_pb2, cri_pb2
from tests.support.lab import NodeLab
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

NS = "node-examples"
HOST_PORT = 18080
EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "k8s-examples"
DOCS_MANIFESTS = ("pods/probe/exec-liveness.yaml", "pods/probe/http-liveness.yaml", "pods/pod-configmap-volume.yaml",
                  "pods/inject/dapi-volume.yaml", "pods/lifecycle-events.yaml")


@dataclass
class Workloads:
    lab: NodeLab
    hooks: Path        # hostPath of the shutdown pods
    readiness: Path    # hostPath mounted at the readiness pod's /tmp
    hostport_node: str  # runs the hostPort pod
    static_node: str    # runs the static pod
    static_manifest: Path


# ---------------------------------------------------------------- manifests of our own


def _pod(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": containers, **spec}}


def _busybox(command: str, **extra: Any) -> dict[str, Any]:
    return {"name": "main", "image": "busybox", "command": ["sh", "-c", command], **extra}


def _host_path(name: str, path: Path) -> dict[str, Any]:
    return {"name": name, "hostPath": {"path": str(path), "type": "DirectoryOrCreate"}}


def own_objects(hooks: Path, readiness: Path, node: str) -> list[dict[str, Any]]:
    # The ConfigMap the docs page ("Configure a Pod to Use a ConfigMap")
    # creates before pod-configmap-volume.yaml.
    special = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "special-config"},
               "data": {"SPECIAL_LEVEL": "very", "SPECIAL_TYPE": "charm"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "test-secret"},
              "stringData": {"username": "my-app", "password": "39528$vdg7Jb"}}
    consumer = _pod("secret-consumer", [_busybox(
        'echo "user=$SECRET_USERNAME level=$SPECIAL_LEVEL type=$SPECIAL_TYPE"; ls /etc/secret-volume; '
        'cat /etc/secret-volume/password; echo; stat -L -c "mode=%a" /etc/secret-volume/username',
        env=[{"name": "SECRET_USERNAME", "valueFrom": {"secretKeyRef": {"name": "test-secret", "key": "username"}}}],
        envFrom=[{"configMapRef": {"name": "special-config"}}],
        volumeMounts=[{"name": "secret-volume", "mountPath": "/etc/secret-volume", "readOnly": True}])],
        restartPolicy="Never",
        volumes=[{"name": "secret-volume", "secret": {"secretName": "test-secret", "defaultMode": 0o400}}])
    stop_gracefully = (  # preStop writes first, then SIGTERM: 3 s of clean-up the grace period must allow
        "trap 'echo term $(date +%s) >> /hooks/graceful; sleep 3; echo done $(date +%s) >> /hooks/graceful; "
        "exit 0' TERM; while true; do sleep 1; done")
    ignore_sigterm = (  # only SIGKILL ends it: its heartbeat shows when
        "trap 'echo term $(date +%s) >> /hooks/stubborn' TERM; "
        "while true; do date +%s > /hooks/stubborn-alive; sleep 1; done")
    return [
        special, secret, consumer,
        _pod("restart-never", [_busybox("exit 1")], restartPolicy="Never"),
        _pod("restart-onfailure", [_busybox("exit 1")], restartPolicy="OnFailure"),
        _pod("restart-always", [_busybox("exit 0")], restartPolicy="Always"),
        _pod("onfailure-done", [_busybox("exit 0")], restartPolicy="OnFailure"),
        _pod("oom", [_busybox("head -c 64m /dev/zero | tail", resources={"limits": {"memory": "16Mi"}})],
             restartPolicy="Never"),
        _pod("missing-image", [{"name": "main", "image": "busybox:does-not-exist"}]),
        _pod("readiness", [{
            "name": "server", "image": "kubelab/testserver:1.0",
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1,
                               "failureThreshold": 1},
            "volumeMounts": [{"name": "state", "mountPath": "/tmp"}]}],
            volumes=[_host_path("state", readiness)]),
        _pod("hostport", [{"name": "server", "image": "kubelab/testserver:1.0",
                           "ports": [{"containerPort": 8080, "hostPort": HOST_PORT}]}],
             nodeSelector={"kubernetes.io/hostname": node}),
        _pod("graceful", [_busybox(stop_gracefully, lifecycle={"preStop": {"exec": {"command": [
            "sh", "-c", "echo prestop $(date +%s) >> /hooks/graceful"]}}},
            volumeMounts=[{"name": "hooks", "mountPath": "/hooks"}])], volumes=[_host_path("hooks", hooks)]),
        _pod("stubborn", [_busybox(ignore_sigterm, volumeMounts=[{"name": "hooks", "mountPath": "/hooks"}])],
             volumes=[_host_path("hooks", hooks)]),
    ]


STATIC_WEB = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "static-web", "labels": {"role": "myrole"}},
              "spec": {"containers": [{"name": "web", "image": "nginx",
                                       "ports": [{"name": "web", "containerPort": 80, "protocol": "TCP"}]}]}}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeLab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    tmp = tmp_path_factory.mktemp("node-examples")
    node_lab = NodeLab(tmp / "state", prefix=f"kl-nx{secrets.token_hex(2)}", nodes=2)
    try:
        node_lab.start()
        yield node_lab
    finally:
        node_lab.stop()


@pytest.fixture(scope="module")
def workloads(lab: NodeLab, tmp_path_factory: pytest.TempPathFactory) -> Workloads:
    tmp = tmp_path_factory.mktemp("node-examples-volumes")
    first, second = lab.node_names
    w = Workloads(lab, tmp / "hooks", tmp / "readiness", first, second, lab.manifests_dir(second) / "static-web.yaml")
    lab.kubelab("create", "namespace", NS)
    lab.kubelab("create", "-n", NS, "-f", "-", input=yaml.safe_dump_all(own_objects(w.hooks, w.readiness, first)))
    lab.kubelab("create", "-n", NS, *(arg for path in DOCS_MANIFESTS for arg in ("-f", str(EXAMPLES / path))))
    w.static_manifest.parent.mkdir(parents=True, exist_ok=True)
    w.static_manifest.write_text(yaml.safe_dump(STATIC_WEB))
    return w


# ---------------------------------------------------------------- helpers


PodCheck = Callable[[core_pb2.Pod], bool]


def pod_when(lab: NodeLab, name: str, holds: PodCheck, what: str, timeout: float = 90.0,
             namespace: str = NS) -> core_pb2.Pod:
    """The pod once `holds(pod)` is true."""
    def check() -> core_pb2.Pod | None:
        pod = lab.pod(namespace, name)
        return pod if holds(pod) else None
    return wait_for(check, f"pod {namespace}/{name}: {what}", timeout)


def phase_is(phase: str) -> PodCheck:
    return lambda pod: pod.status.phase == phase


def status_of(pod: core_pb2.Pod, container: str = "") -> core_pb2.ContainerStatus:
    for cs in pod.status.containerStatuses:
        if not container or cs.name == container:
            return cs
    raise AssertionError(f"pod {pod.metadata.name} reports no status for container {container or '(any)'}")


def restarts_at_least(n: int) -> PodCheck:
    return lambda pod: bool(pod.status.containerStatuses) and status_of(pod).restartCount >= n


def condition(pod: core_pb2.Pod, type_: str) -> str:
    return next((c.status for c in pod.status.conditions if c.type == type_), "")


def event_reasons(lab: NodeLab, name: str, *wanted: str, namespace: str = NS) -> dict[str, list[str]]:
    """The pod's events by reason, once every reason in `wanted` is there."""
    def check() -> dict[str, list[str]] | None:
        found = lab.reasons(namespace, name)
        return found if all(r in found for r in wanted) else None
    return wait_for(check, f"events {', '.join(wanted)} for {namespace}/{name}", 60.0)


# ---------------------------------------------------------------- tests


def test_configmap_and_secret_as_environment_and_volumes(workloads: Workloads) -> None:
    lab = workloads.lab
    docs = pod_when(lab, "dapi-test-pod", phase_is("Succeeded"), "Succeeded")
    # The docs page's output: one file per key of special-config.
    assert lab.container_log(docs, "test-container") == "SPECIAL_LEVEL\nSPECIAL_TYPE\n"
    own = pod_when(lab, "secret-consumer", phase_is("Succeeded"), "Succeeded")
    assert lab.container_log(own, "main").splitlines() == [
        "user=my-app level=very type=charm",   # secretKeyRef and envFrom configMapRef
        "password", "username",                # one file per key
        "39528$vdg7Jb",                        # the value, decoded
        "mode=400",                            # defaultMode
    ]


def test_downward_api_volume_shows_labels_and_annotations(workloads: Workloads) -> None:
    lab = workloads.lab
    pod = pod_when(lab, "kubernetes-downwardapi-volume-example", phase_is("Running"), "Running")

    def logged() -> str | None:
        text = lab.container_log(lab.pod(NS, pod.metadata.name), "client-container")
        # The files end without a newline, so a block is complete once the next one starts.
        done = 'cluster="test-cluster1"\nrack="rack-22"\nzone="us-est-coast"\n\nbuild="two"\nbuilder="john-doe"\n'
        if done not in text:
            raise AssertionError(f"the log ends {text[-200:]!r}")
        return text
    wait_for(logged, "the labels and annotations files in the container's log", 60.0)


def test_restart_policies(workloads: Workloads) -> None:
    lab = workloads.lab
    never = pod_when(lab, "restart-never", phase_is("Failed"), "Failed")
    terminated = status_of(never).state.terminated
    assert (terminated.exitCode, terminated.reason) == (1, "Error")

    on_failure = pod_when(lab, "restart-onfailure", restarts_at_least(2), "restarted twice")
    assert status_of(on_failure).lastState.terminated.exitCode == 1
    assert on_failure.status.phase == "Running"

    always = pod_when(lab, "restart-always", restarts_at_least(2), "restarted twice")
    assert (status_of(always).lastState.terminated.exitCode, status_of(always).lastState.terminated.reason) == (
        0, "Completed")
    assert always.status.phase == "Running"
    assert any("Back-off restarting failed container main" in m
               for m in lab.reasons(NS, "restart-always").get("BackOff", []))

    done = pod_when(lab, "onfailure-done", phase_is("Succeeded"), "Succeeded")
    assert status_of(done).restartCount == 0 and status_of(done).state.terminated.exitCode == 0
    # Meanwhile the other two were restarted twice: Never and a success under OnFailure never were.
    assert status_of(lab.pod(NS, "restart-never")).restartCount == 0
    assert status_of(lab.pod(NS, "onfailure-done")).restartCount == 0


def test_a_container_over_its_memory_limit_is_oom_killed(workloads: Workloads) -> None:
    pod = pod_when(workloads.lab, "oom", phase_is("Failed"), "Failed")
    terminated = status_of(pod).state.terminated
    assert (terminated.reason, terminated.exitCode) == ("OOMKilled", 137)


def test_host_port_is_reached_from_the_other_node(workloads: Workloads) -> None:
    lab = workloads.lab
    pod = pod_when(lab, "hostport", lambda p: condition(p, "Ready") == "True", "Ready")
    node, other = workloads.hostport_node, workloads.static_node
    assert pod.spec.nodeName == node and pod.status.podIP != lab.address(node)
    url = f"http://{lab.address(node)}:{HOST_PORT}/hostname"
    body = wait_for(lambda: (r := lab.fetch(other, url))[0] and r[1], f"{url} from {other}", 30.0)
    assert body == "hostport"


def test_readiness_follows_the_probe_both_ways(workloads: Workloads) -> None:
    lab = workloads.lab
    pod_when(lab, "readiness", lambda p: condition(p, "Ready") == "True", "Ready")
    unready = workloads.readiness / "unready"  # the testserver's /tmp/unready
    unready.touch()
    pod = pod_when(lab, "readiness", lambda p: condition(p, "Ready") == "False", "not Ready")
    assert pod.status.phase == "Running" and not status_of(pod).ready and status_of(pod).restartCount == 0
    assert any("Readiness probe failed" in m and "500" in m for m in event_reasons(lab, "readiness", "Unhealthy")[
        "Unhealthy"])
    unready.unlink()
    pod = pod_when(lab, "readiness", lambda p: condition(p, "Ready") == "True", "Ready again")
    assert status_of(pod).ready and status_of(pod).restartCount == 0


def test_post_start_pre_stop_and_the_grace_period(workloads: Workloads) -> None:
    lab = workloads.lab
    demo = pod_when(lab, "lifecycle-demo", phase_is("Running"), "Running")
    out = lab.crictl_exec(demo, ["cat", "/usr/share/message"])
    assert (out.exit_code, out.stdout.decode()) == (0, "Hello from the postStart handler\n")
    # Its preStop (`nginx -s quit; while killall -0 nginx ...`) is killed with exit 137 when nginx, the
    # container's PID 1, quits: Kubernetes reports FailedPreStopHook for it too, so that is not checked.
    lab.kubelab("delete", "pod", "lifecycle-demo", "-n", NS)
    assert not lab.pod_exists(NS, "lifecycle-demo")
    logs = lab.pod_logs_dir(demo)  # removed with the pod, as the kubelet's container GC does
    wait_for(lambda: not logs.exists(), f"{logs} to be removed", 30.0)
    assert "Stopping container lifecycle-demo-container" in event_reasons(lab, "lifecycle-demo", "Killing")["Killing"]

    # preStop runs first, then SIGTERM, and the 3 s the handler needs fit in the 10 s grace.
    pod_when(lab, "graceful", phase_is("Running"), "Running")
    lab.kubelab("delete", "pod", "graceful", "-n", NS, "--grace-period=10")
    steps = [line.split() for line in (workloads.hooks / "graceful").read_text().splitlines()]
    assert [s[0] for s in steps] == ["prestop", "term", "done"], steps
    assert int(steps[0][1]) <= int(steps[1][1]) <= int(steps[2][1])

    # A container that ignores SIGTERM is killed when the grace period (3 s, not the pod's 30) is over.
    pod_when(lab, "stubborn", phase_is("Running"), "Running")
    lab.kubelab("delete", "pod", "stubborn", "-n", NS, "--grace-period=3")
    term = int((workloads.hooks / "stubborn").read_text().split()[1])
    last_alive = int((workloads.hooks / "stubborn-alive").read_text())
    assert 1 <= last_alive - term <= 4, (term, last_alive)


def test_static_pod_has_a_mirror_pod(workloads: Workloads) -> None:
    lab = workloads.lab
    node = workloads.static_node
    name = f"static-web-{node}"
    mirror = pod_when(lab, name, lambda p: condition(p, "Ready") == "True", "mirror pod Ready", timeout=90.0,
                      namespace="default")
    assert mirror.metadata.annotations["kubernetes.io/config.source"] == "file"
    assert mirror.metadata.annotations["kubernetes.io/config.mirror"]
    assert [(o.kind, o.name) for o in mirror.metadata.ownerReferences] == [("Node", node)]
    assert mirror.spec.nodeName == node and mirror.metadata.labels["role"] == "myrole"
    ok, body = lab.fetch(workloads.hostport_node, f"http://{mirror.status.podIP}/")
    assert ok and "Welcome to nginx!" in body, body

    # Deleting the mirror does not stop the static pod: the kubelet makes a new mirror.
    container = status_of(mirror).containerID
    lab.kubelab("delete", "pod", name, "--wait=false")
    again = pod_when(lab, name, lambda p: p.metadata.uid != mirror.metadata.uid and condition(p, "Ready") == "True",
                     "a new mirror pod", namespace="default")
    assert status_of(again).containerID == container

    workloads.static_manifest.unlink()
    wait_for(lambda: not lab.pod_exists("default", name), f"mirror pod {name} to go", 60.0)
    wait_for(lambda: not any(b.state == cri_pb2.SANDBOX_READY for b in lab.sandboxes(node, name)),
             f"the sandbox of {name} to stop", 60.0)


def test_images_come_from_the_local_registry_and_a_missing_tag_backs_off(workloads: Workloads) -> None:
    lab = workloads.lab
    # `nginx` means nginx:latest, pulled every time (imagePullPolicy Always).
    pulled = event_reasons(lab, "lifecycle-demo", "Pulling", "Pulled")
    assert 'Successfully pulled image "nginx"' in " ".join(pulled["Pulled"])

    # The lab's mirror config is offline: a name the registry lacks fails at
    # once, so ErrImagePull may be too brief to see in the status; the
    # events say it (below), and the status settles on ImagePullBackOff.
    seen: list[str] = []

    def backing_off() -> bool:
        pod = lab.pod(NS, "missing-image")
        assert pod.status.phase == "Pending", pod.status.phase
        seen[:] = [cs.state.waiting.reason for cs in pod.status.containerStatuses]
        return "ImagePullBackOff" in seen
    try:
        wait_for(backing_off, "ImagePullBackOff", 120.0)
    except AssertionError as err:
        raise AssertionError(f"{err}; container waiting reasons: {seen}") from None
    reasons = lab.reasons(NS, "missing-image")
    failed = " ".join(reasons["Failed"])
    # The lab's registry was asked, and said it has no such tag.
    assert 'Failed to pull image "busybox:does-not-exist"' in failed and "manifest unknown" in failed
    assert "Error: ErrImagePull" in reasons["Failed"]
    assert 'Back-off pulling image "busybox:does-not-exist"' in reasons["BackOff"]


def test_http_liveness_restarts_the_container(workloads: Workloads) -> None:
    lab = workloads.lab
    pod_when(lab, "liveness-http", restarts_at_least(1), "restarted", timeout=120.0)
    reasons = event_reasons(lab, "liveness-http", "Unhealthy", "Killing")
    assert "Liveness probe failed: HTTP probe failed with statuscode: 500" in reasons["Unhealthy"]
    assert "Container liveness failed liveness probe, will be restarted" in reasons["Killing"]
    # A killed run's log (the kubelet keeps the last one): the probe got 200 for ten seconds, then 500.
    def previous_run() -> str:
        pod = lab.pod(NS, "liveness-http")
        text = lab.container_log(pod, "liveness", restart=status_of(pod).restartCount - 1)
        assert "GET /healthz -> 200" in text and "GET /healthz -> 500" in text, text[-300:]
        return text
    wait_for(previous_run, "the previous run's log", 30.0)


def test_exec_liveness_restarts_the_container(workloads: Workloads) -> None:
    lab = workloads.lab
    pod = pod_when(lab, "liveness-exec", restarts_at_least(1), "restarted", timeout=150.0)
    assert status_of(pod).lastState.terminated.exitCode == 137  # the shell ignored SIGTERM: killed
    reasons = event_reasons(lab, "liveness-exec", "Unhealthy", "Killing")
    assert any(m.startswith("Liveness probe failed") and "/tmp/healthy" in m for m in reasons["Unhealthy"])
    assert "Container liveness failed liveness probe, will be restarted" in reasons["Killing"]
