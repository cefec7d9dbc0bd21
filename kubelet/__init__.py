"""The node agent (`python -m kubelet`): registers its Node, renews its
Lease, runs the pods bound to it through the CRI shim (proto/cri.proto) and
reports their status; `--hollow N` runs N hollow nodes on the in-memory
runtime in one process, like kubemark.

Public surface:

* `KubeletConfig` (settings), `NodeAgent` (one node: kubelet, node status,
  lease, eviction, static pods) and `PodDispatcher` (one pod and node
  informer feeding many agents);
* the runtime seam: `Runtime` (the protocol), `RemoteRuntime` (the shim's
  gRPC client), `HollowRuntime` + `ContainerScript` (in memory), `CRIError`;
* `KubeletServer`: the gRPC service on --port (logs, exec, attach, stats summary).
"""

from ._app import NodeAgent, PodDispatcher
from ._config import KubeletConfig, Threshold, parse_eviction_hard
from ._hollow import ContainerScript, HollowRuntime
from ._runtime import CRIError, RemoteRuntime, Runtime

__all__ = [
    "CRIError", "ContainerScript", "HollowRuntime", "KubeletConfig", "NodeAgent", "PodDispatcher", "RemoteRuntime",
    "Runtime", "Threshold", "parse_eviction_hard",
]
