"""The proxy's Prometheus metrics, named as kube-proxy's are, so the
dashboards and alerts written for kube-proxy read them unchanged.

* kubeproxy_sync_proxy_rules_duration_seconds (and the _full_ / _partial_
  variants): how long a sync took, generation and kernel write included;
* kubeproxy_sync_proxy_rules_last_timestamp_seconds: the last successful
  sync (an alert on `time() - this` finds a stuck proxy);
* kubeproxy_network_programming_duration_seconds: from the change that
  triggered it (the slice's last-change-trigger-time, or when the proxy saw
  the change) to its rules being in the kernel;
* kubeproxy_sync_proxy_rules_total{kind}: what the kernel holds now
  (iptables: nat/filter rules; nftables: rules, chains, map elements;
  ipvs: virtual and real servers);
* kubeproxy_sync_proxy_rules_failures_total, and the service and endpoint
  change counters.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_SYNC_BUCKETS = tuple(0.001 * 2 ** i for i in range(16))  # 1 ms .. 33 s
_NPL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 30, 45, 60, 120, 300)

SYNC_DURATION = Histogram("kubeproxy_sync_proxy_rules_duration_seconds",
                          "SyncProxyRules latency in seconds", buckets=_SYNC_BUCKETS)
FULL_SYNC_DURATION = Histogram("kubeproxy_sync_full_proxy_rules_duration_seconds",
                               "SyncProxyRules latency in seconds for full resyncs", buckets=_SYNC_BUCKETS)
PARTIAL_SYNC_DURATION = Histogram("kubeproxy_sync_partial_proxy_rules_duration_seconds",
                                  "SyncProxyRules latency in seconds for partial resyncs", buckets=_SYNC_BUCKETS)
LAST_SYNC = Gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                  "The last time proxy rules were successfully synced")
NETWORK_PROGRAMMING = Histogram("kubeproxy_network_programming_duration_seconds",
                                "In Cluster Network Programming Latency in seconds", buckets=_NPL_BUCKETS)
RULES = Gauge("kubeproxy_sync_proxy_rules_total", "Rules (or objects) the proxy holds in the kernel", ["kind"])
FAILURES = Counter("kubeproxy_sync_proxy_rules_failures_total",
                   "Syncs that failed to write the kernel (retried as a full sync)")
SERVICE_CHANGES = Counter("kubeproxy_sync_proxy_rules_service_changes_total",
                          "Cumulative proxy rules Service changes")
ENDPOINT_CHANGES = Counter("kubeproxy_sync_proxy_rules_endpoint_changes_total",
                           "Cumulative proxy rules Endpoint changes")
