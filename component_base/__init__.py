"""What every long-running component shares (Kubernetes' component-base):
flags with a `--config` file, structured logs, a Prometheus /metrics
endpoint, and running until SIGTERM with a clean shutdown."""

from ._logs import JSONFormatter, setup_logging
from ._options import add_common_flags, parse, split_host_port
from ._serving import run, start_metrics_server

__all__ = ["JSONFormatter", "add_common_flags", "parse", "run", "setup_logging", "split_host_port",
           "start_metrics_server"]
