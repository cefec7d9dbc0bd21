"""kubectl's JSONPath templates: text and actions, range/end, filters,
recursive descent, escaped keys, and the errors for broken templates."""

from __future__ import annotations

from typing import Any

import pytest

from kubelab._jsonpath import Template, relaxed, translate
from kubelab._session import CLIError

POD_LIST: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "metadata": {"name": "web-1", "labels": {"app.kubernetes.io/name": "web", "tier": "front"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"},
                                    {"name": "sidecar", "image": "busybox"}]},
            "status": {"phase": "Running", "podIP": "10.244.1.5",
                       "conditions": [{"type": "PodScheduled", "status": "True"},
                                      {"type": "Ready", "status": "False"}]},
        },
        {
            "metadata": {"name": "db-0", "labels": {"tier": "back"}},
            "spec": {"containers": [{"name": "pg", "image": "postgres:16"}], "hostNetwork": True,
                     "priority": 0},
            "status": {"phase": "Pending"},
        },
    ],
}
POD = POD_LIST["items"][0]


def render(template: str, data: Any = POD_LIST) -> str:
    return Template(template).render(data)


def test_a_single_field() -> None:
    assert render("{.metadata.name}", POD) == "web-1"


def test_text_around_actions_is_kept() -> None:
    assert render("name={.metadata.name} phase={.status.phase}!", POD) == "name=web-1 phase=Running!"


def test_several_results_are_separated_by_spaces() -> None:
    assert render("{.items[*].metadata.name}") == "web-1 db-0"
    assert render("{.spec.containers[*].image}", POD) == "nginx:1.27 busybox"


def test_range_repeats_its_body_per_item() -> None:
    template = '{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}'
    assert render(template) == "web-1\tRunning\ndb-0\tPending\n"


def test_nested_range_and_root_reference() -> None:
    template = '{range .items[*]}{range .spec.containers[*]}{.name}@{$.kind} {end}{end}'
    assert render(template) == "nginx@List sidecar@List pg@List "


def test_filter_selects_list_items() -> None:
    assert render('{.status.conditions[?(@.type=="Ready")].status}', POD) == "False"
    assert render('{.items[?(@.status.phase=="Pending")].metadata.name}') == "db-0"


def test_recursive_descent() -> None:
    assert render("{..image}") == "nginx:1.27 busybox postgres:16"


def test_escaped_dots_and_bracket_keys() -> None:
    assert render(r"{.metadata.labels.app\.kubernetes\.io/name}", POD) == "web"
    assert render("{.metadata.labels['app.kubernetes.io/name']}", POD) == "web"


def test_indexes_and_slices() -> None:
    assert render("{.items[0].metadata.name}") == "web-1"
    assert render("{.items[-1].metadata.name}") == "db-0"
    assert render("{.items[0:1].metadata.name}") == "web-1"


def test_missing_fields_print_nothing() -> None:
    assert render("[{.metadata.nothing}]", POD) == "[]"
    assert render("{.items[*].status.podIP}") == "10.244.1.5"


def test_values_render_like_kubectl() -> None:
    db = POD_LIST["items"][1]
    assert render("{.spec.hostNetwork}", db) == "true"
    assert render("{.spec.priority}", db) == "0"
    assert render("{.metadata.labels}", POD) == '{"app.kubernetes.io/name":"web","tier":"front"}'


def test_values_for_jsonpath_as_json() -> None:
    assert Template("{.items[*].metadata.name}").values(POD_LIST) == ["web-1", "db-0"]
    assert Template("{range .items[*]}{.status.phase}{end}").values(POD_LIST) == ["Running", "Pending"]


@pytest.mark.parametrize(("template", "problem"), [
    ("{.metadata.name", "unclosed action"),
    ("{end}", "not in range"),
    ("{range .items[*]}{.metadata.name}", "unclosed range"),
    ("{.items[0}", "unterminated array"),
])
def test_broken_templates_are_errors(template: str, problem: str) -> None:
    with pytest.raises(CLIError, match=problem):
        Template(template).render(POD_LIST)


def test_relaxed_paths_for_custom_columns_and_sort_by() -> None:
    assert relaxed(".metadata.name") == "{.metadata.name}"
    assert relaxed("metadata.name") == "{.metadata.name}"
    assert relaxed("{.metadata.name}") == "{.metadata.name}"


def test_translation_to_jsonpath_ng() -> None:
    assert translate(".metadata.name") == '$."metadata"."name"'
    assert translate(r".metadata.labels.a\.b/c") == '$."metadata"."labels"."a.b/c"'
    assert translate(".items[*].metadata.name") == '$."items"[*]."metadata"."name"'
    assert translate("..image") == '$.."image"'
    assert translate('$.status.conditions[?(@.type=="Ready")]') == '$."status"."conditions"[?(@.type=="Ready")]'
