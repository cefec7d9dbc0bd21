"""`kubelab expose`: a Service in front of a deployment, replica set,
replication controller or pod, as `kubectl expose` makes it.

The target (TYPE NAME, TYPE/NAME or -f) is read first; the Service selects
what the target selects: a workload's `spec.selector.matchLabels` (a
selector with matchExpressions cannot be a Service's map selector and is
refused, as kubectl refuses it), a replication controller's
`spec.selector`, a pod's own labels. It takes the target's labels, its name
(or --name), and one port: --port, or else the first containerPort of the
pod (template); --target-port defaults to the port. The apiserver
allocates the cluster IP (and the node port with --type NodePort).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ._apply import dry_run_option, dry_run_suffix
from ._printers import manifest, object_name, parse_output, render_documents
from ._resources import named_objects
from ._session import CLIError, Session, echo, global_options, resource

if TYPE_CHECKING:
    from api import Kind
    from client import Clientset

_OUTPUTS = ("yaml", "json", "name", "jsonpath", "jsonpath-as-json")
EXPOSABLE = ("deployments.apps", "replicasets.apps", "replicationcontrollers", "pods")
SERVICE_TYPES = ("ClusterIP", "NodePort")


def selector_of(kind: Kind, obj: Any) -> dict[str, str]:
    """The map selector a Service needs to select what `obj` selects."""
    name = f"{kind.group_resource}/{obj.metadata.name}"
    if kind.kind == "Pod":
        if not obj.metadata.labels:
            raise CLIError(f"couldn't retrieve selectors via --selector flag or introspection: {name} has no labels")
        return dict(obj.metadata.labels)
    if kind.kind == "ReplicationController":
        selector = dict(obj.spec.selector) or dict(obj.spec.template.metadata.labels)
    else:
        if obj.spec.selector.matchExpressions:
            raise CLIError(f"couldn't convert expressions of {name}'s spec.selector to a map-based selector: "
                           "a Service selects by matchLabels only")
        selector = dict(obj.spec.selector.matchLabels)
    if not selector:
        raise CLIError(f"couldn't retrieve selectors via --selector flag or introspection: {name} has no selector")
    return selector


def first_container_port(kind: Kind, obj: Any) -> tuple[int, str]:
    spec = obj.spec if kind.kind == "Pod" else obj.spec.template.spec
    for container in (*spec.initContainers, *spec.containers):
        for p in container.ports:
            return p.containerPort, p.protocol or "TCP"
    raise CLIError(f"couldn't find port via --port flag or introspection: {kind.group_resource}/{obj.metadata.name} "
                   "declares no containerPort")


def build_service(kind: Kind, obj: Any, *, name: str, port: int | None, target_port: str, protocol: str,
                  service_type: str) -> Any:
    """The Service `kubectl expose` would create for `obj`."""
    from api import int_or_string
    from proto import core_pb2
    svc = core_pb2.Service()
    svc.metadata.name = name or obj.metadata.name
    svc.metadata.namespace = obj.metadata.namespace
    svc.metadata.labels.update(obj.metadata.labels)
    svc.spec.selector.update(selector_of(kind, obj))
    if port is None:
        port, found_protocol = first_container_port(kind, obj)
        protocol = protocol or found_protocol
    if not 1 <= port <= 65535:
        raise CLIError(f"--port: Invalid value: {port}: must be between 1 and 65535, inclusive")
    p = svc.spec.ports.add(port=port, protocol=protocol or "TCP")
    target = target_port or str(port)
    p.targetPort.CopyFrom(int_or_string(int(target) if target.isdigit() else target))
    svc.spec.type = service_type
    return svc


@click.command("expose")
@click.argument("args", nargs=-1)
@click.option("--port", type=int, default=None, help="The port the Service serves on (default: the first "
                                                      "containerPort of the exposed object).")
@click.option("--target-port", default="", help="The port (number or name) on the pods the Service sends to "
                                                "(default: --port).")
@click.option("--protocol", type=click.Choice(["TCP", "UDP", "SCTP"]), default=None,
              help="The network protocol of the port (default TCP, or the container port's).")
@click.option("--type", "service_type", type=click.Choice(SERVICE_TYPES), default="ClusterIP", show_default=True,
              help="The type of the Service.")
@click.option("--name", default="", help="The name of the Service (default: the exposed object's).")
@click.option("-f", "--filename", "filenames", multiple=True, help="Files naming the objects to expose.")
@dry_run_option("print the object only, or let the server check it")
@click.option("-o", "--output", default="", help="yaml|json|name|jsonpath=...")
@global_options
def expose(args: tuple[str, ...], port: int | None, target_port: str, protocol: str | None, service_type: str,
           name: str, filenames: tuple[str, ...], dry_run: str, output: str) -> None:
    """Expose a deployment, replica set, replication controller or pod as a new Service.

    \b
      kubelab expose deployment web --port 80 --target-port 8080
      kubelab expose pod/db --port 5432 --type NodePort --name db-external
    """
    session = Session.current()
    fmt = parse_output(output, _OUTPUTS)
    targets = named_objects(session, args, filenames, "expose")
    for kind, _ns, target in targets:
        if kind.group_resource not in EXPOSABLE:
            raise CLIError(f"cannot expose a {kind.kind}: {kind.group_resource}/{target}; expose works on "
                           "deployments, replicasets, replicationcontrollers and pods")
    if name and len(targets) > 1:
        raise CLIError("--name can only be used with a single target")
    results: list[Any] = []

    async def work(cs: Clientset) -> None:
        from api import SCHEME, StatusError
        from proto import core_pb2
        svc_kind = SCHEME.for_message(core_pb2.Service)
        for kind, namespace, target in targets:
            try:
                found = await resource(cs, kind, namespace).get(target)
                svc = build_service(kind, found, name=name, port=port, target_port=target_port,
                                    protocol=protocol or "", service_type=service_type)
                if dry_run == "client":
                    created = svc
                else:
                    created = await resource(cs, svc_kind, namespace).create(svc, dry_run=dry_run == "server")
            except (CLIError, StatusError) as err:
                session.fail(err)
                continue
            results.append(created)
            if fmt.name == "name":
                echo(object_name(svc_kind, created.metadata.name))
            elif not fmt.name:
                echo(f"{object_name(svc_kind, created.metadata.name)} exposed{dry_run_suffix(dry_run)}")

    session.run(work)
    if fmt.is_document and results:
        echo(render_documents(fmt, [manifest(r) for r in results], len(results) == 1), nl=False)
