"""The pod network agent (`python -m podnetwork`), one per machine of the
cluster: host-gw routing, as flannel's host-gw backend does it.

Every node owns a pod CIDR (node IPAM writes `spec.podCIDR`) and its pods
sit on the node's CNI bridge with addresses from it. For a pod on one node
to reach a pod on another without NAT, every machine needs a route to every
other node's pod CIDR through that node's address on the shared network.
The agent watches Node objects and keeps exactly those routes in the
machine's routing table, adding, changing and removing them as nodes come,
change address or go. It marks its routes with a protocol number of its
own and never touches any other route. Optionally (on nodes) it masquerades
pod traffic that leaves the cluster CIDR, so only off-cluster traffic is
NATed.
"""

from ._agent import RouteAgent
from ._routes import RTPROT_PODNETWORK, Route, desired_routes

__all__ = ["RTPROT_PODNETWORK", "Route", "RouteAgent", "desired_routes"]
