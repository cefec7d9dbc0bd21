"""The shared client library (client-go's role).

Public surface:

* configuration: `ClientConfig`, `load_config`, `write_config`;
* the typed clientset: `Clientset`, `ResourceClient`, `ObjectList`,
  `WatchEvent`, and the blocking `SyncClientset` for scripts.

Controllers, the scheduler, the kubelet, the proxy and DNS are built on it.
"""

from ._clientset import Clientset, ObjectList, ResourceClient, WatchEvent, make_channel
from ._config import ClientConfig, ConfigError, default_config_path, load_config, write_config
from ._sync import SyncClientset, SyncResourceClient

__all__ = [
    "ClientConfig", "Clientset", "ConfigError", "ObjectList", "ResourceClient", "SyncClientset", "SyncResourceClient",
    "WatchEvent", "default_config_path", "load_config", "make_channel", "write_config",
]
