"""Printers: table alignment with kubectl's tabwriter rules, names, the
yaml/json/List shapes, custom columns and -o parsing."""

from __future__ import annotations

import json

import pytest
import yaml

from api import SCHEME
from kubelab._printers import (
    OutputFormat,
    TabWriter,
    custom_column_rows,
    dump_yaml,
    format_table,
    kind_name,
    object_name,
    parse_custom_columns,
    parse_output,
    render_documents,
    table_writer,
)
from kubelab._session import CLIError


def test_get_table_columns_are_padded_by_three_spaces() -> None:
    text = format_table(["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
                        [["nginx", "1/1", "Running", "0", "5s"], ["web-7d4b9c-x2x", "0/1", "Pending", "12", "3m"]])
    assert text == (
        "NAME             READY   STATUS    RESTARTS   AGE\n"
        "nginx            1/1     Running   0          5s\n"
        "web-7d4b9c-x2x   0/1     Pending   12         3m\n")


def test_narrow_columns_are_at_least_six_wide_and_the_last_is_not_padded() -> None:
    text = format_table(["A", "B", "C"], [["x", "y", "z"]])
    assert text == "A     B     C\nx     y     z\n"
    assert not any(line.endswith(" ") for line in text.splitlines())


def test_no_headers() -> None:
    assert format_table(None, [["a", "b"]]) == "a     b\n"


def test_watch_rows_keep_the_widths_seen_so_far() -> None:
    writer = table_writer()
    first = writer.format("NAME\tSTATUS\nlong-pod-name\tRunning\n")
    later = writer.format("a\tPending\n")
    assert first.splitlines()[1].index("Running") == later.index("Pending")


def test_tabwriter_blocks_follow_go_semantics() -> None:
    # A line without a cell in a column ends the block that aligns it
    # ("Containers:" and "  c:" split the top-level keys), and consecutive
    # lines with a cell share a column whatever their indentation: so
    # "QoS Class:" aligns with the container's fields above it, the wide
    # gap familiar from `kubectl describe pod`.
    text = ("Name:\tnginx\nService Account:\tdefault\nContainers:\n  c:\n    Image:\tnginx\n"
            "    Host Port:\t<none>\nQoS Class:\tBestEffort\n")
    assert TabWriter(padding=2).format(text) == (
        "Name:             nginx\n"
        "Service Account:  default\n"
        "Containers:\n"
        "  c:\n"
        "    Image:      nginx\n"
        "    Host Port:  <none>\n"
        "QoS Class:      BestEffort\n")


def test_tabs_and_newlines_inside_cells_do_not_break_the_table() -> None:
    assert format_table(["A"], [["x\ty\nz"]]) == "A\nx y\\nz\n"


def test_names_the_way_kubectl_writes_them() -> None:
    pod, deploy = SCHEME.lookup("po"), SCHEME.lookup("deploy")
    assert kind_name(pod) == "pod"
    assert object_name(pod, "nginx") == "pod/nginx"
    assert object_name(deploy, "web") == "deployment.apps/web"
    assert object_name(SCHEME.lookup("clusterrole"), "x") == "clusterrole.rbac.authorization.k8s.io/x"


DOC = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "10"},
       "data": {"script": "echo one\necho two\n", "flag": "true"}}


def test_one_named_object_prints_as_itself_several_as_a_list() -> None:
    single = yaml.safe_load(render_documents(OutputFormat("yaml"), [DOC], single=True))
    assert single == DOC
    listed = yaml.safe_load(render_documents(OutputFormat("yaml"), [DOC], single=False))
    assert listed == {"apiVersion": "v1", "kind": "List", "items": [DOC], "metadata": {"resourceVersion": ""}}


def test_json_is_indented_by_four_spaces_with_sorted_keys() -> None:
    text = render_documents(OutputFormat("json"), [DOC], single=True)
    assert text.startswith('{\n    "apiVersion": "v1",\n    "data": {\n        "flag": "true",')
    assert json.loads(text) == DOC


def test_yaml_sorts_keys_quotes_like_go_and_keeps_multiline_text_readable() -> None:
    text = dump_yaml(DOC)
    assert text.index("apiVersion") < text.index("data") < text.index("kind") < text.index("metadata")
    assert 'flag: "true"' in text
    assert 'resourceVersion: "10"' in text
    assert "script: |\n    echo one\n    echo two\n" in text
    assert yaml.safe_load(text) == DOC


def test_jsonpath_output_and_jsonpath_as_json() -> None:
    assert render_documents(OutputFormat("jsonpath", "{.items[*].metadata.name}"), [DOC, DOC], False) == "c c"
    assert json.loads(render_documents(OutputFormat("jsonpath-as-json", "{.metadata.name}"), [DOC], True)) == ["c"]


def test_output_format_parsing() -> None:
    assert parse_output("") == OutputFormat()
    assert parse_output("jsonpath={.a}") == OutputFormat("jsonpath", "{.a}")
    assert parse_output("custom-columns=N:.a") == OutputFormat("custom-columns", "N:.a")
    with pytest.raises(CLIError, match='unable to match a printer suitable for the output format "go-template='):
        parse_output("go-template={{.a}}")
    with pytest.raises(CLIError, match="no template given"):
        parse_output("jsonpath")


def test_custom_columns() -> None:
    columns = parse_custom_columns("NAME:.metadata.name,IMAGES:.spec.containers[*].image,NODE:.spec.nodeName")
    rows = custom_column_rows(columns, [{"metadata": {"name": "p"},
                                         "spec": {"containers": [{"image": "a"}, {"image": "b"}]}}])
    assert [c.header for c in columns] == ["NAME", "IMAGES", "NODE"]
    assert rows == [["p", "a,b", "<none>"]]
    with pytest.raises(CLIError, match="expected <header>:<json-path-expr>"):
        parse_custom_columns("NAME")


def test_custom_columns_file_form() -> None:
    columns = parse_custom_columns("NAME   PHASE\n.metadata.name   .status.phase\n")
    assert [(c.header, c.path) for c in columns] == [("NAME", ".metadata.name"), ("PHASE", ".status.phase")]
