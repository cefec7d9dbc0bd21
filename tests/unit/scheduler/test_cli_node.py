"""`kubelab taint`'s argument syntax (kubelab/_node.py): which arguments are
taint specs, `key=value:Effect`, `key:Effect`, removals with `key-` and
`key:Effect-`, and kubectl's error messages for bad specs."""

from __future__ import annotations

import pytest

from kubelab._node import TaintSpec, parse_taint, parse_taint_args
from kubelab._session import CLIError


@pytest.mark.parametrize(("text", "spec"), [
    ("dedicated=gpu:NoSchedule", TaintSpec("dedicated", "gpu", "NoSchedule")),
    ("dedicated:PreferNoSchedule", TaintSpec("dedicated", "", "PreferNoSchedule")),
    ("example.com/maintenance=true:NoExecute", TaintSpec("example.com/maintenance", "true", "NoExecute")),
    ("dedicated", TaintSpec("dedicated")),
])
def test_specs(text: str, spec: TaintSpec) -> None:
    assert parse_taint(text) == spec
    assert str(spec) == text


@pytest.mark.parametrize(("text", "message"), [
    ("dedicated=gpu:Sometimes", "invalid taint effect: Sometimes, unsupported taint effect"),
    ("a=b=c:NoSchedule", "invalid taint spec: a=b=c:NoSchedule"),
    ("a:b:c", "invalid taint spec: a:b:c"),
    ("bad key=x:NoSchedule", "invalid taint spec: bad key=x:NoSchedule, name part must consist of"),
    ("k=bad value:NoSchedule", "invalid taint spec: k=bad value:NoSchedule, a valid label must"),
])
def test_bad_specs(text: str, message: str) -> None:
    with pytest.raises(CLIError) as err:
        parse_taint(text)
    assert str(err.value).startswith(message)


def test_arguments_split_into_nodes_additions_and_removals() -> None:
    nodes, add, remove = parse_taint_args(("nodes", "n1", "node/n2", "a=b:NoSchedule", "c-", "d:NoExecute-"))
    assert nodes == ["nodes", "n1", "node/n2"]
    assert add == [TaintSpec("a", "b", "NoSchedule")]
    assert remove == [TaintSpec("c"), TaintSpec("d", "", "NoExecute")]


def test_contradictions_are_refused() -> None:
    with pytest.raises(CLIError, match="an not both modify and remove"):
        parse_taint_args(("n1", "a=b:NoSchedule", "a-"))
    with pytest.raises(CLIError, match="duplicated taints with the same key and effect"):
        parse_taint_args(("n1", "a=b:NoSchedule", "a=c:NoSchedule"))
    with pytest.raises(CLIError, match="invalid taint spec: a=b"):
        parse_taint_args(("n1", "a=b"))  # adding needs an effect
