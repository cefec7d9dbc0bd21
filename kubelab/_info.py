"""`version`, `api-resources` and `cluster-info`: what is this cluster?

These read discovery, not objects. `version` prints the client's version
even when the server cannot be reached (then fails, as kubectl does), so a
user can tell a version skew from an outage.
"""

from __future__ import annotations

import platform
from typing import Any

import click

from ._printers import dump_json, format_table
from ._session import Session, echo, global_options

#: The Kubernetes release whose kubectl this command line follows.
KUBERNETES_VERSION = "1.31.0"


def client_version() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    try:
        ours = version("kubelab")
    except PackageNotFoundError:  # running from a source tree without installing
        ours = "0.0.0"
    major, minor, _ = KUBERNETES_VERSION.split(".")
    return {"major": major, "minor": minor, "gitVersion": f"v{KUBERNETES_VERSION}+kubelab.{ours}",
            "platform": f"{platform.system().lower()}/{platform.machine()}",
            "pythonVersion": platform.python_version()}


@click.command("version")
@click.option("--client", "client_only", is_flag=True, help="Print the client version only (no server needed).")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), help="Print as yaml or json.")
@global_options
def version(client_only: bool, output: str | None) -> None:
    """Print the client and server version information."""
    session = Session.current()
    data: dict[str, Any] = {"clientVersion": client_version()}
    failure: BaseException | None = None
    if not client_only:
        try:
            server = session.run(lambda cs: cs.version())
            data["serverVersion"] = {"major": server.major, "minor": server.minor, "gitVersion": server.gitVersion,
                                     "platform": server.platform, "pythonVersion": server.pythonVersion}
        except Exception as err:
            failure = err
    if output == "json":
        echo(dump_json(data), nl=False)
    elif output == "yaml":
        from api import dump_yaml
        echo(dump_yaml(data), nl=False)
    else:
        echo(f"Client Version: {data['clientVersion']['gitVersion']}")
        if "serverVersion" in data:
            echo(f"Server Version: {data['serverVersion']['gitVersion']}")
    if failure is not None:
        raise failure


@click.command("api-resources")
@click.option("--namespaced", type=click.BOOL, default=None,
              help="true: only namespaced kinds; false: only cluster-scoped ones.")
@click.option("--api-group", default=None, help='Only this API group ("" for the core group).')
@click.option("-o", "--output", type=click.Choice(["wide", "name"]), help="wide: add verbs and categories.")
@click.option("--no-headers", is_flag=True, help="Leave out the header line.")
@click.option("--sort-by", type=click.Choice(["name", "kind"]), default=None, help="Sort by name or kind.")
@global_options
def api_resources(namespaced: bool | None, api_group: str | None, output: str | None, no_headers: bool,
                  sort_by: str | None) -> None:
    """Print the supported API resources on the server."""
    session = Session.current()
    listing = session.run(lambda cs: cs.server_resources())
    resources = [r for r in listing.resources
                 if (namespaced is None or r.namespaced == namespaced)
                 and (api_group is None or r.group == api_group)]
    if sort_by == "name":
        resources.sort(key=lambda r: r.name)
    elif sort_by == "kind":
        resources.sort(key=lambda r: r.kind)
    else:  # the core group first, then groups and names in order
        resources.sort(key=lambda r: (r.group != "", r.group, r.name))
    if output == "name":
        for r in resources:
            echo(f"{r.name}.{r.group}" if r.group else r.name)
        return
    headers = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    if output == "wide":
        headers += ["VERBS", "CATEGORIES"]
    rows = []
    for r in resources:
        row = [r.name, ",".join(r.shortNames), f"{r.group}/{r.version}" if r.group else r.version,
               "true" if r.namespaced else "false", r.kind]
        if output == "wide":
            row += [",".join(r.verbs), ",".join(r.categories)]
        rows.append(row)
    echo(format_table(None if no_headers else headers, rows), nl=False)


@click.command("cluster-info")
@global_options
def cluster_info() -> None:
    """Display the addresses of the control plane and cluster services."""
    session = Session.current()

    async def work(cs: Any) -> list[Any]:
        from proto import core_pb2
        await cs.version()
        services = await cs.resource(core_pb2.Service, "kube-system").list(
            label_selector="kubernetes.io/cluster-service=true")
        return list(services.items)

    services = session.run(work)
    server = session.config.server
    echo(f"Kubernetes control plane is running at {server}")
    for svc in services:
        name = svc.metadata.labels.get("kubernetes.io/name") or svc.metadata.name
        ports = ",".join(f"{p.port}/{p.protocol or 'TCP'}" for p in svc.spec.ports)
        echo(f"{name} is running at {svc.spec.clusterIP}" + (f" ({ports})" if ports else ""))
    echo()
    echo("To further debug and diagnose cluster problems, use 'kubelab describe nodes' and "
         "'kubelab get events -A'.")
