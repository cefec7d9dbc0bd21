"""The apiserver's Prometheus metrics, named as Kubernetes names them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("apiserver_request_total", "Requests by verb, resource and result code.",
                   ["verb", "group", "resource", "code"])
LATENCY = Histogram("apiserver_request_duration_seconds", "Request latency by verb and resource.",
                    ["verb", "group", "resource"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
INFLIGHT = Gauge("apiserver_current_inflight_requests", "Requests being served, by kind of request.",
                 ["request_kind"])
WATCHERS = Gauge("apiserver_registered_watchers", "Open watches, by resource.", ["group", "resource"])
WATCH_EVENTS = Counter("apiserver_watch_events_total", "Watch events sent to clients, by resource.",
                       ["group", "resource"])
STORED_OBJECTS = Gauge("apiserver_storage_objects", "Objects held in the watch cache, by resource.", ["resource"])
REJECTED = Counter("apiserver_dropped_requests_total", "Requests refused for the in-flight limit.",
                   ["request_kind"])
