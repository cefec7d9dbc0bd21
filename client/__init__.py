"""The shared client library (client-go's role).

Public surface:

* configuration: `ClientConfig`, `load_config`, `write_config`;
* the typed clientset: `Clientset`, `ResourceClient`, `ObjectList`,
  `WatchEvent`, and the blocking `SyncClientset` for scripts;
* informers: `SharedInformerFactory`, `Informer`, `Reflector`, the
  `Indexer` cache, `Lister`, `DeletedFinalStateUnknown` tombstones;
* the work queue: `RateLimitingQueue` (and its `DelayingQueue`,
  `WorkQueue` layers) with client-go's rate limiters;
* `LeaderElector` on Lease objects;
* `EventBroadcaster` / `EventRecorder` for core/v1 Events;
* `NodeProxyClient` (and its `ExecSession`): container logs, exec and
  node summaries from the kubelets, through the apiserver's node proxy.

Controllers, the scheduler, the kubelet, the proxy and DNS are built on it:
an informer feeds a work queue that feeds one `sync(key)`.
"""

from ._clientset import Clientset, ObjectList, ResourceClient, WatchEvent, make_channel
from ._config import ClientConfig, ConfigError, default_config_path, load_config, write_config
from ._events import EVENT_TYPE_NORMAL, EVENT_TYPE_WARNING, EventBroadcaster, EventRecorder, object_reference
from ._factory import SharedInformerFactory
from ._informer import Informer, ResourceEventHandler
from ._leaderelection import LeaderElector, LeaseClient
from ._lister import Lister
from ._nodes import ExecSession, NodeProxyClient
from ._ratelimiter import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    TokenBucket,
    default_controller_rate_limiter,
)
from ._reflector import Backoff, ListerWatcher, Reflector, ReflectorStore
from ._store import (
    NAMESPACE_INDEX,
    DeletedFinalStateUnknown,
    Indexer,
    IndexFunc,
    namespace_index,
    object_key,
    object_meta,
    split_key,
)
from ._sync import SyncClientset, SyncResourceClient
from ._workqueue import DelayingQueue, QueueShutDown, RateLimitingQueue, WorkQueue

__all__ = [
    "EVENT_TYPE_NORMAL", "EVENT_TYPE_WARNING", "NAMESPACE_INDEX",
    "Backoff", "BucketRateLimiter", "ClientConfig", "Clientset", "ConfigError", "DelayingQueue",
    "DeletedFinalStateUnknown", "EventBroadcaster", "EventRecorder", "ExecSession", "IndexFunc", "Indexer",
    "Informer", "ItemExponentialFailureRateLimiter", "LeaderElector", "LeaseClient", "Lister", "ListerWatcher",
    "MaxOfRateLimiter", "NodeProxyClient", "ObjectList", "QueueShutDown", "RateLimiter", "RateLimitingQueue",
    "Reflector", "ReflectorStore", "ResourceClient", "ResourceEventHandler", "SharedInformerFactory", "SyncClientset",
    "SyncResourceClient", "TokenBucket", "WatchEvent", "WorkQueue",
    "default_config_path", "default_controller_rate_limiter", "load_config", "make_channel", "namespace_index",
    "object_key", "object_meta", "object_reference", "split_key", "write_config",
]
