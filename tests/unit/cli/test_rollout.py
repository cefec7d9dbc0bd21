"""kubelab/_rollout.py without a server: kubectl's rollout status messages
for each stage of a Deployment's rollout (and the failure past the
progress deadline), the patch `set image` sends for deployments, pods and
cronjobs, the kinds registry's errors, and `rollout undo` choosing the
revision and refusing a paused Deployment (on the in-memory clientset)."""

from __future__ import annotations

from typing import cast

import pytest

from api import SCHEME, FakeClock, from_dict
from client import Clientset
from kubelab._rollout import _deployment_status, _deployment_undo, _image_patch, rollout_kind
from kubelab._session import CLIError
from proto import apps_pb2, batch_pb2, core_pb2
from tests.support.fakeclient import FakeClientset

DEPLOYMENTS = SCHEME.for_message(apps_pb2.Deployment)


def deployment(**status: int) -> apps_pb2.Deployment:
    d = from_dict(apps_pb2.Deployment, {
        "metadata": {"name": "web", "namespace": "ns", "generation": 2, "uid": "d-uid"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:2"},
                                                      {"name": "log", "image": "busybox"}]}}}})
    d.status.observedGeneration = 2
    for key, value in status.items():
        setattr(d.status, key, value)
    return d


def test_status_messages() -> None:
    d = deployment()
    d.status.observedGeneration = 1
    assert _deployment_status(d, None) == ("Waiting for deployment spec update to be observed...", False)
    assert _deployment_status(deployment(updatedReplicas=1, replicas=4), None) == (
        'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...', False)
    assert _deployment_status(deployment(updatedReplicas=3, replicas=5), None) == (
        'Waiting for deployment "web" rollout to finish: 2 old replicas are pending termination...', False)
    assert _deployment_status(deployment(updatedReplicas=3, replicas=3, availableReplicas=2), None) == (
        'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...', False)
    done = deployment(updatedReplicas=3, replicas=3, availableReplicas=3)
    assert _deployment_status(done, None) == ('deployment "web" successfully rolled out', True)
    done.metadata.annotations["deployment.kubernetes.io/revision"] = "4"
    with pytest.raises(CLIError, match=r"desired revision \(3\) is different from the running revision \(4\)"):
        _deployment_status(done, 3)
    stuck = deployment(updatedReplicas=1, replicas=3)
    stuck.status.conditions.add(type="Progressing", status="False", reason="ProgressDeadlineExceeded")
    with pytest.raises(CLIError, match='deployment "web" exceeded its progress deadline'):
        _deployment_status(stuck, None)


def test_set_image_patches() -> None:
    d = deployment()
    assert _image_patch(DEPLOYMENTS, d, {"web": "nginx:3"}) == {
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:3"}]}}}}
    assert _image_patch(DEPLOYMENTS, d, {"*": "x"}) == {
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "x"},
                                                      {"name": "log", "image": "x"}]}}}}
    assert _image_patch(DEPLOYMENTS, d, {"web": "nginx:2"}) is None  # nothing to change
    with pytest.raises(CLIError, match='unable to find container named "db"'):
        _image_patch(DEPLOYMENTS, d, {"db": "postgres"})
    pod = core_pb2.Pod()
    pod.spec.containers.add(name="c", image="a")
    assert _image_patch(SCHEME.for_message(core_pb2.Pod), pod, {"c": "b"}) == {
        "spec": {"containers": [{"name": "c", "image": "b"}]}}
    cron = batch_pb2.CronJob()
    cron.spec.jobTemplate.spec.template.spec.initContainers.add(name="init", image="a")
    assert _image_patch(SCHEME.for_message(batch_pb2.CronJob), cron, {"init": "b"}) == {
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "initContainers": [{"name": "init", "image": "b"}]}}}}}}


def test_kinds_without_rollouts() -> None:
    assert rollout_kind(DEPLOYMENTS, "status viewer").pausable
    with pytest.raises(CLIError, match=r"no status viewer has been implemented for ConfigMap\.core"):
        rollout_kind(SCHEME.for_message(core_pb2.ConfigMap), "status viewer")


async def test_undo_picks_the_previous_revision_and_refuses_paused() -> None:
    cs = FakeClientset(clock=FakeClock())
    d = await cs.resource(apps_pb2.Deployment, "ns").create(deployment())
    for revision, image, cause in ((1, "nginx:1", "first"), (2, "nginx:2", "")):
        rs = apps_pb2.ReplicaSet()
        rs.metadata.name, rs.metadata.namespace = f"web-{revision}", "ns"
        rs.metadata.annotations["deployment.kubernetes.io/revision"] = str(revision)
        if cause:
            rs.metadata.annotations["kubernetes.io/change-cause"] = cause
        rs.metadata.ownerReferences.add(kind="Deployment", name="web", uid=d.metadata.uid, controller=True,
                                        apiVersion="apps/v1")
        rs.spec.template.CopyFrom(d.spec.template)
        rs.spec.template.spec.containers[0].image = image
        rs.spec.template.metadata.labels["pod-template-hash"] = f"h{revision}"
        await cs.resource(apps_pb2.ReplicaSet, "ns").create(rs)
    clientset = cast(Clientset, cs)
    assert await _deployment_undo(clientset, d, 2, "none") == \
        "skipped rollback (current template already matches revision 2)"
    with pytest.raises(CLIError, match="unable to find specified revision 7 in history"):
        await _deployment_undo(clientset, d, 7, "none")
    assert await _deployment_undo(clientset, d, 0, "none") == "rolled back"
    [stored] = cs.objects(apps_pb2.Deployment)
    assert stored.spec.template.spec.containers[0].image == "nginx:1"
    assert "pod-template-hash" not in stored.spec.template.metadata.labels
    assert stored.metadata.annotations["kubernetes.io/change-cause"] == "first"
    stored.spec.paused = True
    with pytest.raises(CLIError, match="you cannot rollback a paused deployment"):
        await _deployment_undo(clientset, stored, 0, "none")
