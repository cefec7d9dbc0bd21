"""statefulset.py: StatefulSet defaulting (policies, update strategy,
retention policy, claim templates defaulted like PVCs), validation of the
spec and its volumeClaimTemplates, the "only these fields may change" update
rule, status rules and printer rows."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import create_errors, created, headers, row, status_errors, strategy_for, update_errors

CLAIM: dict[str, Any] = {"metadata": {"name": "www"},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}


def statefulset(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "serviceName": "nginx",
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {"metadata": {"labels": {"app": "nginx"}},
                     "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25",
                                              "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx"}]}]}},
        "volumeClaimTemplates": [CLAIM],
    }
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"}, "spec": body}


def test_defaults() -> None:
    sts = created(statefulset())
    spec = sts.spec
    assert spec.replicas == 1
    assert spec.podManagementPolicy == "OrderedReady"
    assert spec.updateStrategy.type == "RollingUpdate"
    assert spec.updateStrategy.rollingUpdate.HasField("partition") and spec.updateStrategy.rollingUpdate.partition == 0
    assert (spec.persistentVolumeClaimRetentionPolicy.whenDeleted,
            spec.persistentVolumeClaimRetentionPolicy.whenScaled) == ("Retain", "Retain")
    assert spec.revisionHistoryLimit == 10
    claim = spec.volumeClaimTemplates[0]
    assert claim.spec.volumeMode == "Filesystem"
    assert claim.status.phase == "Pending"
    assert not created(statefulset(updateStrategy={"type": "OnDelete"})).spec.updateStrategy.HasField("rollingUpdate")


def test_pod_template_may_mount_claim_templates() -> None:
    assert create_errors(statefulset()) == []
    assert create_errors(statefulset(volumeClaimTemplates=[])) == [
        'spec.template.spec.containers[0].volumeMounts[0].name: Not found: "www"']


@pytest.mark.parametrize(("spec", "expected"), [
    ({"podManagementPolicy": "Random"},
     ["spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"]),
    ({"podManagementPolicy": "Parallel", "serviceName": ""}, []),
    ({"serviceName": "Nginx_svc"},
     ['spec.serviceName: Invalid value: "Nginx_svc": a DNS-1035 label must consist of lower case alphanumeric '
      "characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. "
      "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]),
    ({"updateStrategy": {"type": "Canary"}},
     ["spec.updateStrategy.type: Invalid value: \"Canary\": must be 'RollingUpdate' or 'OnDelete'"]),
    ({"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}},
     ['spec.updateStrategy.rollingUpdate: Invalid value: {"partition": 1}: only allowed for updateStrategy '
      "'RollingUpdate'"]),
    ({"updateStrategy": {"rollingUpdate": {"partition": -1}}},
     ["spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0"]),
    ({"updateStrategy": {"rollingUpdate": {"maxUnavailable": 0}}},
     ["spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: cannot be 0"]),
    ({"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Keep"}},
     ['spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": supported values: '
      '"Retain", "Delete"']),
    ({"ordinals": {"start": -1}}, ["spec.ordinals.start: Invalid value: -1: must be greater than or equal to 0"]),
    ({"selector": {}}, ["spec.selector: Invalid value: {}: empty selector is invalid for statefulset"]),
    ({"volumeClaimTemplates": [CLAIM, CLAIM]}, ['spec.volumeClaimTemplates[1].metadata.name: Duplicate value: "www"']),
    ({"volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]},
     ["spec.volumeClaimTemplates[0].spec.resources[storage]: Required value"]),
    ({"volumeClaimTemplates": [{**CLAIM, "metadata": {"name": "Www"}}]},
     ['spec.template.spec.containers[0].volumeMounts[0].name: Not found: "www"',
      'spec.volumeClaimTemplates[0].metadata.name: Invalid value: "Www": a lowercase RFC 1123 label must consist '
      "of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. "
      "'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]),
])
def test_validation(spec: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(statefulset(**spec)) == expected


def test_name_must_be_a_label() -> None:
    assert strategy_for("StatefulSet", "apps/v1").validate_name("web.v1") != []
    assert strategy_for("StatefulSet", "apps/v1").validate_name("web") == []


def test_update_may_change_only_the_listed_fields() -> None:
    old = created(statefulset())
    allowed = {"spec": {"replicas": 5, "minReadySeconds": 3, "revisionHistoryLimit": 2, "ordinals": {"start": 1},
                        "updateStrategy": {"type": "OnDelete", "rollingUpdate": None},
                        "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete"},
                        "template": {"spec": {"containers": [
                            {"name": "nginx", "image": "nginx:1.26",
                             "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx"}]}]}}}}
    assert update_errors(old, allowed) == []
    forbidden = ("spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                 "'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
                 "'minReadySeconds' are forbidden")
    assert update_errors(old, {"spec": {"serviceName": "other"}}) == [forbidden]
    assert update_errors(old, {"spec": {"podManagementPolicy": "Parallel"}}) == [forbidden]
    bigger = {**CLAIM, "spec": {**CLAIM["spec"], "resources": {"requests": {"storage": "2Gi"}}}}
    assert update_errors(old, {"spec": {"volumeClaimTemplates": [bigger]}}) == [forbidden]


def test_status_rules() -> None:
    old = created(statefulset())
    assert status_errors(old, {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}) == []
    assert status_errors(old, {"replicas": 2, "readyReplicas": 1, "availableReplicas": 2}) == [
        "status.availableReplicas: Invalid value: 2: cannot be greater than status.readyReplicas"]


def test_columns() -> None:
    assert headers("StatefulSet", "apps/v1") == ["NAME", "READY", "AGE"]
    assert headers("StatefulSet", "apps/v1", wide=True) == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
    sts = created(statefulset(replicas=3))
    sts.status.readyReplicas = 1
    assert row(sts) == {"Name": "web", "Ready": "1/3", "Age": "90s", "Containers": "nginx", "Images": "nginx:1.25"}
