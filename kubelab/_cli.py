"""The `kubelab` command group: registration, global flags, error handling.

Commands are registered lazily: the table below names the module and
function of each built-in verb, and a verb's module is imported only when
it runs, so `kubelab version` does not pay for describe's or edit's imports.
Other commands join with an entry in `LAZY_COMMANDS` (the lab commands
`up`, `down` and `status` are there too) or with `cli.add_command(...)`.

Failures end the same way whatever raised them, as kubectl's CheckErr does:
server errors as `Error from server (Reason): message` (validation failures
as `The Kind "name" is invalid: ...`), client errors as `error: message`,
usage errors with a pointer to `--help`, and exit code 1 for all of them
(130 after Ctrl-C).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from ._session import CLIError, Session, Settings, format_error, global_options

#: verb -> (module, attribute, one-line help)
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "annotate": ("kubelab._label", "annotate", "Update the annotations on a resource"),
    "api-resources": ("kubelab._info", "api_resources", "Print the supported API resources on the server"),
    "apply": ("kubelab._apply", "apply", "Apply a configuration to a resource by file name or stdin"),
    "attach": ("kubelab._attach", "attach", "Attach to a running container"),
    "autoscale": ("kubelab._autoscale", "autoscale", "Auto-scale a deployment, replica set, stateful set, or "
                                                     "replication controller"),
    "cluster-info": ("kubelab._info", "cluster_info", "Display cluster information"),
    "cordon": ("kubelab._node", "cordon", "Mark node as unschedulable"),
    "create": ("kubelab._create", "create", "Create a resource from a file or from stdin"),
    "down": ("kubelab._lab", "down", "Stop the lab and remove everything it made"),
    "status": ("kubelab._lab", "status", "Show the lab's components"),
    "taint": ("kubelab._node", "taint", "Update the taints on one or more nodes"),
    "uncordon": ("kubelab._node", "uncordon", "Mark node as schedulable"),
    "up": ("kubelab._lab", "up", "Start the lab's control plane on this host"),
    "delete": ("kubelab._delete", "delete", "Delete resources by file names, stdin, resources and names, "
                                            "or by resources and label selector"),
    "describe": ("kubelab._describe", "describe", "Show details of a specific resource or group of resources"),
    "edit": ("kubelab._edit", "edit", "Edit a resource on the server"),
    "exec": ("kubelab._exec", "exec_command", "Execute a command in a container"),
    "expose": ("kubelab._expose", "expose", "Take a replication controller, service, deployment or pod and "
                                            "expose it as a new Kubernetes service"),
    "get": ("kubelab._get", "get", "Display one or many resources"),
    "join": ("kubelab._join", "join", "Make this machine a node: start its shim, kubelet, proxy and pod network"),
    "label": ("kubelab._label", "label", "Update the labels on a resource"),
    "logs": ("kubelab._logs", "logs", "Print the logs for a container in a pod, or of a lab component"),
    "patch": ("kubelab._patch", "patch", "Update fields of a resource"),
    "rollout": ("kubelab._rollout", "rollout", "Manage the rollout of a resource"),
    "run": ("kubelab._run", "run", "Run a particular image on the cluster"),
    "scale": ("kubelab._patch", "scale", "Set a new size for a deployment, replica set, or stateful set"),
    "set": ("kubelab._rollout", "set_group", "Set specific features on objects (set image)"),
    "top": ("kubelab._top", "top", "Display resource (CPU/memory) usage"),
    "version": ("kubelab._info", "version", "Print the client and server version information"),
}


class KubelabGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(LAZY_COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module, attr, _help = LAZY_COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), attr)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                command = self.commands[name]
                if command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit=80)))
            else:
                rows.append((name, LAZY_COMMANDS[name][2]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        session: Session | None = None
        try:
            result = super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except Exception as err:
            from api import StatusError
            if not isinstance(err, (CLIError, StatusError)):
                raise
            session = ctx.meta.get("kubelab.session") or Session(ctx.ensure_object(Settings))
            session.fail(err)
            result = None
        session = session or ctx.meta.get("kubelab.session")
        if session is not None and session.failures:
            ctx.exit(session.report())
        return result

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except click.exceptions.Abort:
            code = 130
        except click.UsageError as err:
            click.echo(f"error: {err.format_message()}", err=True)
            if err.ctx is not None:
                click.echo(f"See '{err.ctx.command_path} --help' for usage.", err=True)
            code = 1
        except click.ClickException as err:
            click.echo(f"error: {err.format_message()}", err=True)
            code = 1
        except CLIError as err:  # raised before a command ran (e.g. while parsing)
            click.echo(format_error(err), err=True)
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


@click.group(cls=KubelabGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@global_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """kubelab controls a kubelab cluster, the way kubectl controls Kubernetes.

    Find more about the lab in README.md; every verb takes --help.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def main(argv: Sequence[str] | None = None) -> None:
    """The `kubelab` console script."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="kubelab")
