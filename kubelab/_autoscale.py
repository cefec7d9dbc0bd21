"""`kubelab autoscale`: put a workload under a HorizontalPodAutoscaler.

As kubectl does: the target (a deployment, replica set, stateful set or
replication controller, named as TYPE NAME, TYPE/NAME or with -f) is read
first, so a typo fails before anything is created; then an autoscaling/v2
HorizontalPodAutoscaler named like the target (or --name) is created with
the replica range and, with --cpu-percent, an average CPU utilisation
target. Without --cpu-percent the apiserver applies its default (80 %).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ._apply import dry_run_option, dry_run_suffix
from ._printers import manifest, object_name, parse_output, render_documents
from ._resources import SCALABLE, named_objects
from ._session import CLIError, Session, echo, global_options, resource

if TYPE_CHECKING:
    from api import Kind
    from client import Clientset

_OUTPUTS = ("yaml", "json", "name", "jsonpath", "jsonpath-as-json")


def build_hpa(kind: Kind, target: str, namespace: str, name: str, min_replicas: int, max_replicas: int,
              cpu_percent: int) -> Any:
    """The HorizontalPodAutoscaler `kubectl autoscale` would create."""
    from proto import autoscaling_pb2
    hpa = autoscaling_pb2.HorizontalPodAutoscaler()
    hpa.metadata.name = name
    hpa.metadata.namespace = namespace
    ref = hpa.spec.scaleTargetRef
    ref.apiVersion, ref.kind, ref.name = kind.api_version, kind.kind, target
    if min_replicas >= 1:
        hpa.spec.minReplicas = min_replicas
    hpa.spec.maxReplicas = max_replicas
    if cpu_percent >= 0:
        metric = hpa.spec.metrics.add(type="Resource")
        metric.resource.name = "cpu"
        metric.resource.target.type = "Utilization"
        metric.resource.target.averageUtilization = cpu_percent
    return hpa


@click.command("autoscale")
@click.argument("args", nargs=-1)
@click.option("--min", "min_replicas", type=int, default=-1,
              help="The lower limit for the number of pods (default: the server's, 1).")
@click.option("--max", "max_replicas", type=int, default=-1, help="The upper limit for the number of pods (required).")
@click.option("--cpu-percent", type=int, default=-1,
              help="The target average CPU utilization over all the pods, as a percentage of the requested CPU "
                   "(default: the server's, 80).")
@click.option("--name", default="", help="The name of the autoscaler (default: the target's name).")
@click.option("-f", "--filename", "filenames", multiple=True, help="Files naming the objects to autoscale.")
@dry_run_option("print the object only, or let the server check it")
@click.option("-o", "--output", default="", help="yaml|json|name|jsonpath=...")
@global_options
def autoscale(args: tuple[str, ...], min_replicas: int, max_replicas: int, cpu_percent: int, name: str,
              filenames: tuple[str, ...], dry_run: str, output: str) -> None:
    """Create an autoscaler that scales a deployment, replica set, stateful set or replication controller.

    \b
      kubelab autoscale deploy/web --min=2 --max=10 --cpu-percent=50
      kubelab autoscale statefulset db --max=5
    """
    session = Session.current()
    fmt = parse_output(output, _OUTPUTS)
    if max_replicas < 1:
        raise CLIError(f"--max=MAXPODS is required and must be at least 1, max: {max_replicas}")
    if max_replicas < min_replicas:
        raise CLIError(f"--max=MAXPODS must be larger or equal to --min=MINPODS, max: {max_replicas}, "
                       f"min: {min_replicas}")
    if min_replicas == 0:
        raise CLIError("--min=MINPODS must be at least 1, min: 0")
    targets = named_objects(session, args, filenames, "autoscale")
    for kind, _ns, target in targets:
        if kind.group_resource not in SCALABLE:
            raise CLIError(f"cannot autoscale a {kind.kind}: {kind.group_resource}/{target} is not scalable; "
                           "autoscale works on deployments, replicasets, statefulsets and replicationcontrollers")
    if name and len(targets) > 1:
        raise CLIError("--name can only be used with a single target")
    results: list[Any] = []

    async def work(cs: Clientset) -> None:
        from api import SCHEME
        from proto import autoscaling_pb2
        hpa_kind = SCHEME.for_message(autoscaling_pb2.HorizontalPodAutoscaler)
        for kind, namespace, target in targets:
            try:
                found = await resource(cs, kind, namespace).get(target)
                hpa = build_hpa(kind, found.metadata.name, found.metadata.namespace, name or found.metadata.name,
                                min_replicas, max_replicas, cpu_percent)
                if dry_run == "client":
                    created = hpa
                else:
                    created = await resource(cs, hpa_kind, namespace).create(hpa, dry_run=dry_run == "server")
            except Exception as err:
                from api import StatusError
                if not isinstance(err, (CLIError, StatusError)):
                    raise
                session.fail(err)
                continue
            results.append(created)
            if fmt.name == "name":
                echo(object_name(hpa_kind, created.metadata.name))
            elif not fmt.name:
                echo(f"{object_name(hpa_kind, created.metadata.name)} autoscaled{dry_run_suffix(dry_run)}")

    session.run(work)
    if fmt.is_document and results:
        echo(render_documents(fmt, [manifest(r) for r in results], len(results) == 1), nl=False)
