"""Services and slices as the apiserver would hand them to the proxy."""

from __future__ import annotations

from typing import Any

from api import from_dict
from proto import core_pb2, discovery_pb2
from proxy import Endpoint, ProxySnapshot, ServicePort, ServicePortName

WEB = ServicePortName("default", "web", "http")


def service(name: str = "web", *, ns: str = "default", ip: str = "10.96.0.10", type_: str = "ClusterIP",
            ports: list[dict[str, Any]] | None = None, **spec: Any) -> core_pb2.Service:
    ports = ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP",
                                               "targetPort": 8080}]
    body = {"type": type_, "clusterIP": ip, "clusterIPs": [ip] if ip else [], "ports": ports, **spec}
    return from_dict(core_pb2.Service, {"metadata": {"name": name, "namespace": ns}, "spec": body})


def endpoint_slice(name: str, service_name: str = "web", *, ns: str = "default",
                   endpoints: list[tuple[str, bool]] | None = None, port: int = 8080, port_name: str = "http",
                   protocol: str = "TCP", address_type: str = "IPv4",
                   **conditions: bool) -> discovery_pb2.EndpointSlice:
    eps = [{"addresses": [ip], "conditions": {"ready": ready, **conditions}} for ip, ready in (endpoints or [])]
    return from_dict(discovery_pb2.EndpointSlice, {
        "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": service_name}},
        "addressType": address_type, "endpoints": eps,
        "ports": [{"name": port_name, "port": port, "protocol": protocol}]})


def snapshot(*ports: tuple[ServicePort, list[str]], target_port: int = 8080) -> ProxySnapshot:
    return ProxySnapshot({sp.name: sp for sp, _ in ports},
                         {sp.name: tuple(Endpoint(ip, target_port) for ip in ips) for sp, ips in ports if ips})
