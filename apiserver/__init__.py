"""The apiserver: the only component that touches etcd.

It serves one generic gRPC service over every kind (proto/api.proto),
storing objects under /registry/<resource>/<namespace>/<name> with etcd's
revision as their resourceVersion, and fanning each resource's single etcd
watch out to every client through a watch cache. Run it with
`python -m apiserver --etcd-servers URL --bind-address HOST --port PORT`.
"""

from ._server import APIServer, ServerOptions

__all__ = ["APIServer", "ServerOptions"]
