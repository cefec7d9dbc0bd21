"""What every long-running component shares (Kubernetes' component-base):
flags with a `--config` file, structured logs, a Prometheus /metrics
endpoint, a gRPC health service, and running until SIGTERM with a clean
shutdown."""

from ._client import add_client_flags, add_leader_election_flags, client_config, identity, run_leading
from ._fs import disk_usage
from ._health import NOT_SERVING, SERVING, HealthServer
from ._logs import JSONFormatter, setup_logging
from ._options import add_common_flags, boolean, parse, split_host_port
from ._serving import run, start_metrics_server

__all__ = [
    "NOT_SERVING", "SERVING", "HealthServer", "JSONFormatter", "add_client_flags", "add_common_flags",
    "add_leader_election_flags", "boolean", "client_config", "disk_usage", "identity", "parse", "run", "run_leading",
    "setup_logging", "split_host_port", "start_metrics_server",
]
