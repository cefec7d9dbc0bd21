"""Services, EndpointSlices and Pods as the apiserver and the endpoint-slice
controller would store them, for the cluster DNS tests; and the example
manifests from the Kubernetes documentation, decoded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api import decode_manifest, from_dict, load_documents
from proto import core_pb2, discovery_pb2

ZONE_TEXT = "cluster.local."


def manifest(path: Path, kind: str) -> Any:
    """The one object of `kind` in a manifest file."""
    docs = [d for d in load_documents(path.read_text(), str(path)) if d.get("kind") == kind]
    assert len(docs) == 1, f"{path}: expected one {kind}"
    return decode_manifest(docs[0])


def service(name: str, namespace: str = "default", **spec: Any) -> core_pb2.Service:
    spec.setdefault("type", "ClusterIP")
    return from_dict(core_pb2.Service, {"metadata": {"name": name, "namespace": namespace}, "spec": spec})


def stored(svc: core_pb2.Service, namespace: str = "default", cluster_ip: str = "") -> core_pb2.Service:
    """A manifest's Service as the apiserver stores it: namespace, type and
    (unless headless) an allocated cluster IP."""
    out = core_pb2.Service()
    out.CopyFrom(svc)
    out.metadata.namespace = out.metadata.namespace or namespace
    out.spec.type = out.spec.type or "ClusterIP"
    if cluster_ip and not out.spec.clusterIP:
        out.spec.clusterIP = cluster_ip
    if out.spec.clusterIP and not out.spec.clusterIPs:
        out.spec.clusterIPs.append(out.spec.clusterIP)
    for port in out.spec.ports:
        port.protocol = port.protocol or "TCP"
    return out


def endpoint(ip: str, *, ready: bool | None = True, hostname: str = "", pod: str = "") -> dict[str, Any]:
    ep: dict[str, Any] = {"addresses": [ip]}
    if ready is not None:
        ep["conditions"] = {"ready": ready}
    if hostname:
        ep["hostname"] = hostname
    if pod:
        ep["targetRef"] = {"kind": "Pod", "name": pod}
    return ep


def endpoint_slice(service_name: str, endpoints: list[dict[str, Any]], *, namespace: str = "default",
                   ports: list[dict[str, Any]] | None = None, name: str = "",
                   address_type: str = "IPv4") -> discovery_pb2.EndpointSlice:
    return from_dict(discovery_pb2.EndpointSlice, {
        "metadata": {"name": name or f"{service_name}-abcde", "namespace": namespace,
                     "labels": {"kubernetes.io/service-name": service_name}},
        "addressType": address_type, "endpoints": endpoints, "ports": ports or []})


def pod(name: str, ip: str, namespace: str = "default", *, phase: str = "Running", hostname: str = "",
        subdomain: str = "") -> core_pb2.Pod:
    return from_dict(core_pb2.Pod, {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "hostname": hostname, "subdomain": subdomain},
        "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}] if ip else []}})
