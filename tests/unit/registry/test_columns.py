"""_columns.py: the printer cells several kinds share — ages, booleans,
shortened lists, label selectors in kubectl's notation, the owning
controller, and the CONTAINERS/IMAGES/SELECTOR wide columns."""

from __future__ import annotations

from api import from_dict
from apiserver.registry._columns import (
    bool_cell,
    controller_of,
    format_label_selector,
    list_with_more,
    optional_bool,
    since,
    spec_selector,
    template_columns,
)
from proto import apps_pb2, batch_pb2, meta_pb2


def test_since_and_booleans() -> None:
    assert since("2023-11-14T22:13:20Z", 1_700_000_000 + 3 * 3600) == "3h"
    assert since("", 0) == "<unknown>"
    assert since("yesterday", 0) == "<unknown>"
    assert (bool_cell(True), bool_cell(False)) == ("true", "false")
    spec = batch_pb2.CronJobSpec()
    assert optional_bool(spec, "suspend") == "<unset>"
    spec.suspend = False
    assert optional_bool(spec, "suspend") == "False"


def test_list_with_more() -> None:
    assert list_with_more([]) == "<unset>"
    assert list_with_more(["a", "b", "c"]) == "a,b,c"
    assert list_with_more(["a", "b", "c", "d", "e"]) == "a,b,c + 2 more..."


def test_label_selectors() -> None:
    assert format_label_selector(None) == "<none>"
    assert format_label_selector(meta_pb2.LabelSelector()) == "<none>"
    sel = from_dict(meta_pb2.LabelSelector, {
        "matchLabels": {"tier": "fe", "app": "web"},
        "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["qa", "dev"]},
                             {"key": "beta", "operator": "Exists"}]})
    assert format_label_selector(sel) == "app=web,beta,env notin (dev,qa),tier=fe"


def test_controller_of() -> None:
    obj = from_dict(apps_pb2.ControllerRevision, {"metadata": {"ownerReferences": [
        {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "1"},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "2", "controller": True}]}})
    assert controller_of(obj) == "daemonset.apps/agent"


def test_template_columns() -> None:
    columns = template_columns(lambda o: o.spec.template, spec_selector)
    assert [(c.name, c.priority) for c in columns] == [("Containers", 1), ("Images", 1), ("Selector", 1)]
    d = from_dict(apps_pb2.Deployment, {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "x:1"}, {"name": "b", "image": "y:2"}]}}}})
    assert [c.cell(d, 0) for c in columns] == ["a,b", "x:1,y:2", "<none>"]
    assert [c.name for c in template_columns(lambda o: o.spec.template, None)] == ["Containers", "Images"]
