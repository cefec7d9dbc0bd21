"""Bad input through the CLI: a clear error naming what is wrong, exit code
1, nothing stored - and nothing already stored changed.

Each case is tried twice: as a new object (afterwards `get` must say
NotFound) and as an update of a good object of the same name (afterwards
the object must be exactly as before, resourceVersion included).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.integration.cli_support import Kubelab

BIG = "x" * (1_572_864 + 1024)  # over the apiserver's 1.5 MiB object limit


@dataclass(frozen=True)
class Bad:
    id: str
    kind: str  # what to `get` afterwards
    good: str  # a valid manifest of the same object
    bad: str
    errors: tuple[str, ...]  # what stderr must say (each)


DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: nginx}}]}}
"""
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {key: small}\n"
POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: nginx\n"

CASES = [
    Bad("malformed-yaml", "cm/cfg", CM,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  key: [unclosed\n  other: x\n",
        ("error: error parsing -: error converting YAML to JSON: yaml: line 7: expected ',' or ']', but got ':'",)),
    Bad("unknown-kind", "cm/cfg", CM, "apiVersion: v1\nkind: ConfigMapp\nmetadata: {name: cfg}\n",
        ('error: resource mapping not found for name: "cfg" namespace: "" from "-": no matches for kind '
         '"ConfigMapp" in version "v1"',)),
    Bad("unknown-field", "pod/p", POD, POD.replace("    image: nginx\n", "    image: nginx\n    imagePolicy: x\n"),
        ('Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
         'unknown field "spec.containers[0].imagePolicy"',)),
    Bad("wrong-type", "pod/p", POD, POD.replace("image: nginx", "image: [nginx]"),
        ("json: cannot unmarshal array into Go struct field Container.spec.containers[0].image of type string",)),
    Bad("invalid-name", "cm/Bad_Name", CM.replace("cfg", "Bad_Name").replace("data: {key: small}\n", ""),
        CM.replace("cfg", "Bad_Name"),
        ('metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case '
         "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",)),
    Bad("negative-replicas", "deploy/web", DEPLOY.format(replicas=2), DEPLOY.format(replicas=-1),
        ('The Deployment "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0',)),
    Bad("oversized", "cm/cfg", CM, CM.replace("small", BIG),
        ("Error from server (RequestEntityTooLarge): ", "Request entity too large: limit is 1572864")),
]


@pytest.fixture
def kubelab(apiserver) -> Kubelab:  # type: ignore[no-untyped-def]
    return Kubelab(apiserver.target)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("verb", ["apply", "create"])
def test_nothing_is_stored(case: Bad, verb: str, kubelab: Kubelab, namespace: str) -> None:
    result = kubelab.fails(verb, "-f", "-", "-n", namespace, input=case.bad)
    for error in case.errors:
        assert error in result.stderr, result.stderr
    assert result.stdout == ""
    if case.id == "invalid-name":  # a name the server would not store cannot be looked up either
        assert kubelab.ok("get", "cm", "-n", namespace).stderr.startswith("No resources found")
        return
    missing = kubelab.fails("get", case.kind, "-n", namespace)
    assert missing.stderr.startswith("Error from server (NotFound): ")


@pytest.mark.parametrize("case", [c for c in CASES if c.id != "invalid-name"], ids=lambda c: c.id)
def test_nothing_stored_is_changed(case: Bad, kubelab: Kubelab, namespace: str) -> None:
    kubelab.ok("apply", "-f", "-", "-n", namespace, input=case.good)
    before = kubelab.ok("get", case.kind, "-n", namespace, "-o", "yaml").stdout
    result = kubelab.fails("apply", "-f", "-", "-n", namespace, input=case.bad)
    for error in case.errors:
        assert error in result.stderr, result.stderr
    assert kubelab.ok("get", case.kind, "-n", namespace, "-o", "yaml").stdout == before


def test_invalid_values_in_patches_change_nothing(kubelab: Kubelab, namespace: str) -> None:
    kubelab.ok("apply", "-f", "-", "-n", namespace, input=DEPLOY.format(replicas=2))
    before = kubelab.ok("get", "deploy/web", "-n", namespace, "-o", "yaml").stdout
    assert kubelab.fails("scale", "deploy/web", "--replicas=-3", "-n", namespace).stderr.startswith("error: ")
    result = kubelab.fails("patch", "deploy/web", "-n", namespace, "-p", '{"spec":{"replicas":-1}}')
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in result.stderr
    result = kubelab.fails("label", "deploy/web", "-n", namespace, "app=not valid")
    assert 'invalid label spec: "app=not valid"' in result.stderr
    assert kubelab.ok("get", "deploy/web", "-n", namespace, "-o", "yaml").stdout == before
