"""The DNS server's Prometheus metrics, shaped like CoreDNS's (the cluster
DNS most Kubernetes users scrape), under a `clusterdns_` prefix:

* clusterdns_dns_requests_total{proto, type} - queries by transport and type;
* clusterdns_dns_responses_total{rcode} - answers by response code;
* clusterdns_dns_request_duration_seconds{proto} - from datagram (or TCP
  frame) in to answer out;
* clusterdns_dns_truncated_responses_total - UDP answers cut to fit;
* clusterdns_forward_requests_total{result} - queries sent upstream;
* clusterdns_records / clusterdns_owners - the index's size, read at
  scrape time (nothing to update on the query path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048)

REQUESTS = Counter("clusterdns_dns_requests", "DNS queries received, by transport and query type.",
                   ["proto", "type"])
RESPONSES = Counter("clusterdns_dns_responses", "DNS responses sent, by response code.", ["rcode"])
DURATION = Histogram("clusterdns_dns_request_duration_seconds", "Time to answer a DNS query, by transport.",
                     ["proto"], buckets=_BUCKETS)
TRUNCATED = Counter("clusterdns_dns_truncated_responses", "UDP responses truncated to the client's size.")
FORWARDS = Counter("clusterdns_forward_requests", "Queries forwarded upstream, by result (answered, failed).",
                   ["result"])


class IndexCollector(Collector):
    """Gauges read from the index when Prometheus scrapes."""

    def __init__(self, records: Callable[[], int], owners: Callable[[], int]) -> None:
        self._records = records
        self._owners = owners

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("clusterdns_records", "Resource records served from the cluster's objects.",
                                value=self._records())
        yield GaugeMetricFamily("clusterdns_owners", "Services, pods and the zone itself owning records.",
                                value=self._owners())


def register_index(records: Callable[[], int], owners: Callable[[], int]) -> IndexCollector | None:
    """Register the gauges once per process (tests build several apps)."""
    collector = IndexCollector(records, owners)
    try:
        REGISTRY.register(collector)
    except ValueError:
        return None
    return collector
