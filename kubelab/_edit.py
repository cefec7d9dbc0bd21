"""`kubelab edit`: change a live object in your editor.

The object is written to a temporary file as YAML (or JSON with -o json)
under kubectl's comment header and opened with $KUBE_EDITOR, else $EDITOR,
else vi. Saving it unchanged cancels; saving it changed sends an update
that carries the resourceVersion the file was made from, so an edit based
on a version someone has since changed is a Conflict rather than a silent
overwrite.

Input the server (or the strict decoder) refuses is not lost: the file is
reopened with the errors in its header, as kubectl does, and when the user
saves it without fixing anything the command stops, keeps the file and
says where it is.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._printers import dump_json, dump_yaml, manifest, object_name
from ._resources import parse_resource_args
from ._session import CLIError, Session, echo, format_error, global_options, is_status, resource

if TYPE_CHECKING:
    from api import Kind
    from client import Clientset

HEADER = ("# Please edit the object below. Lines beginning with a '#' will be ignored,\n"
          "# and an empty file will abort the edit. If an error occurs while saving this file will be\n"
          "# reopened with the relevant failures.\n#\n")


def editor_command() -> list[str]:
    editor = os.environ.get("KUBE_EDITOR") or os.environ.get("EDITOR") or "vi"
    return shlex.split(editor)


def strip_comments(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.lstrip().startswith("#"))


def run_editor(path: Path) -> None:
    command = editor_command()
    try:
        result = subprocess.run([*command, str(path)], check=False)
    except OSError as err:
        raise CLIError(f'unable to launch the editor "{" ".join(command)}": {err.strerror}') from None
    if result.returncode != 0:
        raise CLIError(f'there was a problem with the editor "{" ".join(command)}"')


@click.command("edit")
@click.argument("args", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
              help="The format to edit in.")
@global_options
def edit(args: tuple[str, ...], output: str) -> None:
    """Edit a resource on the server with $KUBE_EDITOR or $EDITOR.

    \b
      kubelab edit deploy/web
      KUBE_EDITOR="code --wait" kubelab edit svc kubernetes
    """
    session = Session.current()
    requests = parse_resource_args(args)
    if not any(r.names for r in requests):
        raise CLIError("edit needs the name of the object to edit (kubelab edit TYPE NAME or TYPE/NAME)")

    async def work(cs: Clientset) -> None:
        for request in requests:
            for name in request.names:
                await _edit_one(cs, session, request.kind, name, output)

    session.run(work, bounded=False)


async def _edit_one(cs: Clientset, session: Session, kind: Kind, name: str, output: str) -> None:
    from api import StatusError, decode_manifest, load_documents
    rc = resource(cs, kind, session.namespace)
    obj = await rc.get(name)
    original = _dump(manifest(obj), output)
    fd, raw_path = tempfile.mkstemp(prefix="kubelab-edit-", suffix=f".{output}")
    os.close(fd)
    path = Path(raw_path)
    content = HEADER + original
    rejected: str | None = None
    problem = ""
    while True:
        body = strip_comments(await asyncio.to_thread(_edit_round, path, content))
        if not body.strip():
            _discard(path)
            echo("Edit cancelled, saved file was empty.")
            return
        if body == strip_comments(original):
            _discard(path)
            echo("Edit cancelled, no changes made.")
            return
        if rejected is not None and body == rejected:
            _keep(path, body)
            echo(problem, err=True)
            echo(f'A copy of your changes has been stored to "{path}"', err=True)
            raise CLIError("Edit cancelled, no valid changes were saved.")
        try:
            try:
                docs = load_documents(body, str(path))
            except StatusError as err:  # the file does not parse: the client's error, not the server's
                raise CLIError(err.message) from None
            if len(docs) != 1:
                raise CLIError(f"the edited file must hold exactly one object, found {len(docs)}")
            edited = decode_manifest(docs[0])
            if docs[0].get("kind") != kind.kind or edited.metadata.name != name:  # type: ignore[attr-defined]
                raise CLIError("At least one of apiVersion, kind and name was changed")
            result = await rc.update(edited)
        except Exception as err:
            if not isinstance(err, (CLIError, StatusError)):
                raise
            if is_status(err, "Conflict", "NotFound"):
                _keep(path, body)
                echo(f'A copy of your changes has been stored to "{path}"', err=True)
                raise
            rejected = body
            problem = format_error(err)
            content = HEADER + f"# {kind.resource} \"{name}\" was not valid:\n" + \
                "".join(f"# {line}\n" for line in problem.splitlines()) + "#\n" + body
            continue
        _discard(path)
        echo(f"{object_name(kind, result.metadata.name)} edited")
        return


def _edit_round(path: Path, content: str) -> str:
    """Write `content`, let the user edit it, read back what they saved."""
    path.write_text(content, encoding="utf-8")
    run_editor(path)
    return path.read_text(encoding="utf-8")


def _keep(path: Path, body: str) -> None:
    path.write_text(body, encoding="utf-8")


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _dump(doc: dict[str, Any], output: str) -> str:
    return dump_json(doc) if output == "json" else dump_yaml(doc)

