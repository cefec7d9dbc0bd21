"""`kubelab cordon`, `kubelab uncordon` and `kubelab taint`: the node
verbs the scheduler reads.

`cordon NODE` sets spec.unschedulable, so the scheduler places no new pods
there (pods already there stay); `uncordon` clears it. `taint nodes NODE
KEY=VALUE:EFFECT` adds a taint that keeps off pods not tolerating it
(NoSchedule, PreferNoSchedule, NoExecute), `KEY:EFFECT-` removes that
taint and `KEY-` every taint with that key. As in kubectl, arguments that
contain `=` or `:` or end in `-` are taint specs, the others name nodes;
`-l` (and `--all` for taint) pick nodes by label instead. Replacing a
taint with the same key and effect needs --overwrite.

Each change is one JSON merge patch that carries the resourceVersion the
change was computed from, so a concurrent edit of the node's taints is a
Conflict instead of being silently overwritten. Messages are kubectl's:
`node/n1 cordoned`, `node/n1 already uncordoned`, `node/n1 tainted`,
`error: node n1 already has dedicated taint(s) with same effect(s) and
--overwrite is false`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from ._apply import dry_run_option, dry_run_suffix
from ._session import CLIError, Session, echo, global_options, is_status

if TYPE_CHECKING:
    from client import Clientset
    from proto import core_pb2

EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_NODE_TYPES = ("node", "nodes", "no")


@dataclass(frozen=True)
class TaintSpec:
    key: str
    value: str = ""
    effect: str = ""

    def __str__(self) -> str:
        """kubectl's Taint.ToString: key=value:effect, key:effect or key."""
        text = self.key + (f"={self.value}" if self.value else "")
        return f"{text}:{self.effect}" if self.effect else text


def parse_taint(text: str) -> TaintSpec:
    """`key=value:effect`, `key:effect` or `key`, checked as kubectl checks them."""
    from api import is_label_value, is_qualified_name
    parts = text.split(":")
    value, effect = "", ""
    if len(parts) == 1:
        key = parts[0]
    elif len(parts) == 2:
        effect = parts[1]
        if effect not in EFFECTS:
            raise CLIError(f"invalid taint effect: {effect}, unsupported taint effect")
        key_value = parts[0].split("=")
        if len(key_value) > 2:
            raise CLIError(f"invalid taint spec: {text}")
        key = key_value[0]
        if len(key_value) == 2:
            value = key_value[1]
            problems = is_label_value(value)
            if problems:
                raise CLIError(f"invalid taint spec: {text}, {'; '.join(problems)}")
    else:
        raise CLIError(f"invalid taint spec: {text}")
    problems = is_qualified_name(key)
    if problems:
        raise CLIError(f"invalid taint spec: {text}, {'; '.join(problems)}")
    return TaintSpec(key, value, effect)


def parse_taint_args(args: tuple[str, ...]) -> tuple[list[str], list[TaintSpec], list[TaintSpec]]:
    """(node arguments, taints to add, taints to remove)."""
    nodes: list[str] = []
    add: list[TaintSpec] = []
    remove: list[TaintSpec] = []
    for arg in args:
        if arg.endswith("-") and len(arg) > 1:
            spec = parse_taint(arg[:-1])
            remove.append(TaintSpec(spec.key, "", spec.effect))
        elif "=" in arg or ":" in arg:
            spec = parse_taint(arg)
            if not spec.effect:
                raise CLIError(f"invalid taint spec: {arg}")
            if any(t.key == spec.key and t.effect == spec.effect for t in add):
                raise CLIError(f"duplicated taints with the same key and effect: {spec}")
            add.append(spec)
        else:
            nodes.append(arg)
    both = [str(t) for t in add for r in remove if t.key == r.key and (not r.effect or t.effect == r.effect)]
    if both:
        raise CLIError(f"can not both modify and remove the following taint(s) in the same command: "
                       f"{', '.join(both)}")
    return nodes, add, remove


def _node_names(args: list[str]) -> list[str]:
    """NAME, node/NAME or a leading `node`/`nodes` type argument."""
    if args and args[0] in _NODE_TYPES:
        args = args[1:]
    names = []
    for arg in args:
        kind, sep, name = arg.partition("/")
        if sep:
            if kind not in _NODE_TYPES:
                raise CLIError(f"invalid resource type {kind}, only node types are supported")
            arg = name
        names.append(arg)
    return names


async def _select(cs: Clientset, session: Session, names: list[str], selector: str,
                  select_all: bool) -> list[core_pb2.Node]:
    from proto import core_pb2
    nodes = cs.resource(core_pb2.Node)
    if selector or select_all:
        if names:
            raise CLIError("name cannot be provided when a selector or --all is specified")
        return list((await nodes.list_all(label_selector=selector)).items)
    found = []
    for name in names:
        try:
            found.append(await nodes.get(name))
        except Exception as err:
            if not is_status(err):
                raise
            session.fail(err)
    return found


# ---------------------------------------------------------------- cordon, uncordon

def _cordon_command(name: str, unschedulable: bool) -> Any:
    verb = "cordoned" if unschedulable else "uncordoned"
    doc = (f"Mark a node as {'unschedulable' if unschedulable else 'schedulable'}.\n\n\b\n"
           f"  kubelab {name} node-1\n  kubelab {name} -l pool=batch\n")

    @click.command(name, help=doc)
    @click.argument("nodes", nargs=-1)
    @click.option("-l", "--selector", default="", help="Select the nodes by this label selector.")
    @dry_run_option("change nothing")
    @global_options
    def command(nodes: tuple[str, ...], selector: str, dry_run: str) -> None:
        session = Session.current()
        names = _node_names(list(nodes))
        if not names and not selector:
            raise CLIError("resource(s) were provided, but no name was specified" if nodes
                           else "at least one node name or a selector (-l) is required")

        async def work(cs: Clientset) -> None:
            from api import MERGE_PATCH
            from proto import core_pb2
            for node in await _select(cs, session, names, selector, False):
                who = f"node/{node.metadata.name}"
                if node.spec.unschedulable == unschedulable:
                    echo(f"{who} already {verb}")
                    continue
                if dry_run != "client":
                    patch = {"spec": {"unschedulable": True if unschedulable else None}}
                    await cs.resource(core_pb2.Node).patch(node.metadata.name, patch, patch_type=MERGE_PATCH,
                                                           dry_run=dry_run == "server")
                echo(f"{who} {verb}{dry_run_suffix(dry_run)}")

        session.run(work)

    return command


cordon = _cordon_command("cordon", True)
uncordon = _cordon_command("uncordon", False)


# ---------------------------------------------------------------- taint

@click.command("taint", help="""Update the taints on one or more nodes.

\b
  kubelab taint nodes node-1 dedicated=gpu:NoSchedule
  kubelab taint nodes node-1 dedicated:NoSchedule-     # remove that taint
  kubelab taint nodes node-1 dedicated-                # remove every taint with that key
  kubelab taint nodes -l pool=batch spot=true:PreferNoSchedule
""")
@click.argument("args", nargs=-1, required=True)
@click.option("--overwrite", is_flag=True, help="Replace taints that have the same key and effect.")
@click.option("-l", "--selector", default="", help="Select the nodes by this label selector.")
@click.option("--all", "select_all", is_flag=True, help="Taint every node.")
@dry_run_option("change nothing")
@global_options
def taint(args: tuple[str, ...], overwrite: bool, selector: str, select_all: bool, dry_run: str) -> None:
    session = Session.current()
    node_args, add, remove = parse_taint_args(args)
    if not add and not remove:
        raise CLIError("at least one taint update is required")
    names = _node_names(node_args)
    if not names and not selector and not select_all:
        raise CLIError("at least one resource name must be specified since 'all' parameter is not set")

    async def work(cs: Clientset) -> None:
        for node in await _select(cs, session, names, selector, select_all):
            try:
                outcome = await _taint_node(cs, node, add, remove, overwrite, dry_run)
            except Exception as err:
                if not isinstance(err, CLIError) and not is_status(err):
                    raise
                session.fail(err)
                continue
            echo(f"node/{node.metadata.name} {outcome}{dry_run_suffix(dry_run)}")

    session.run(work)


async def _taint_node(cs: Clientset, node: core_pb2.Node, add: list[TaintSpec], remove: list[TaintSpec],
                      overwrite: bool, dry_run: str) -> str:
    from api import MERGE_PATCH, to_dict
    from proto import core_pb2
    old = list(node.spec.taints)
    if not overwrite:
        clashes = [t.key for t in add for o in old if o.key == t.key and o.effect == t.effect]
        if clashes:
            raise CLIError(f"node {node.metadata.name} already has {', '.join(clashes)} taint(s) with same "
                           "effect(s) and --overwrite is false")
    new = [core_pb2.Taint(key=t.key, value=t.value, effect=t.effect) for t in add]
    new += [o for o in old if not any(o.key == t.key and o.effect == t.effect for t in add)]
    for r in remove:
        before = len(new)
        new = [t for t in new if not (t.key == r.key and (not r.effect or t.effect == r.effect))]
        if len(new) == before:
            raise CLIError(f'taint "{r}" not found')
    outcome = "modified" if (add and remove) or overwrite else "tainted" if add else "untainted"
    if dry_run != "client":
        patch = {"metadata": {"resourceVersion": node.metadata.resourceVersion},
                 "spec": {"taints": [to_dict(t) for t in new] or None}}
        await cs.resource(core_pb2.Node).patch(node.metadata.name, patch, patch_type=MERGE_PATCH,
                                               dry_run=dry_run == "server")
    return outcome
