"""The service proxy (kube-proxy's role): one process per node, inside the
node's network namespace, turning Services and EndpointSlices into
netfilter rules (iptables or nftables) or IPVS virtual servers.

Layers, each in its own module:

* `_types`: service ports, endpoints, the snapshot a sync programs, and
  the hashed chain names;
* `_tracker`: Services and EndpointSlices -> service ports and endpoints,
  with the set of changes since the last sync;
* `_iptables_rules`, `_nftables_rules`, `_ipvs.desired_state`: pure
  functions from a snapshot to rule text or data (unit-tested, no root);
* `_iptables`, `_nftables`, `_ipvs`: the backends (`Proxier`), which
  write the kernel through `_runner` and remember what they wrote, so a
  partial sync sends only what changed;
* `_syncer`: the bounded-frequency sync loop, conntrack flushing, metrics;
* `_app` and `__main__`: informers and the command line.

Public surface: the backends, the tracker, the runner and the value types,
so benchmarks and tests drive a backend directly.
"""

from ._iptables import IptablesProxier
from ._ipvs import IpvsProxier, IPVSUnavailable, check_available
from ._nftables import NftablesProxier
from ._runner import CommandError, CommandRunner, ConntrackFlusher
from ._syncer import Proxier, SyncRunner
from ._tracker import ChangeTracker
from ._types import Endpoint, Options, ProxySnapshot, ServicePort, ServicePortName, SyncResult

__all__ = [
    "ChangeTracker", "CommandError", "CommandRunner", "ConntrackFlusher", "Endpoint", "IPVSUnavailable",
    "IptablesProxier", "IpvsProxier", "NftablesProxier", "Options", "Proxier", "ProxySnapshot", "ServicePort",
    "ServicePortName", "SyncResult", "SyncRunner", "check_available",
]
