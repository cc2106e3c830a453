"""Prometheus metrics with the original's names: HTTP traffic and queue depths.

`http` holds the request metrics and the route-group table; `queues` reads queue depths from the
database at scrape time; `exposition` renders one scrape, aggregated over worker processes when
PROMETHEUS_MULTIPROC_DIR is set (`omnizap serve`), from this process's own registry otherwise.
"""

from omnizap.platform.metrics.exposition import CONTENT_TYPE, MetricsExposition, prepare_multiprocess_dir
from omnizap.platform.metrics.http import (
    HTTP_DURATION_BUCKETS_MS,
    ROUTE_GROUPS,
    HttpMetrics,
    RouteGroupPaths,
    method_label,
    resolve_route_group,
    status_class,
)
from omnizap.platform.metrics.queues import QUEUE_DEPTH_LABELS, QueueDepthCollector, read_queue_depths

__all__ = [
    "CONTENT_TYPE",
    "HTTP_DURATION_BUCKETS_MS",
    "QUEUE_DEPTH_LABELS",
    "ROUTE_GROUPS",
    "HttpMetrics",
    "MetricsExposition",
    "QueueDepthCollector",
    "RouteGroupPaths",
    "method_label",
    "prepare_multiprocess_dir",
    "read_queue_depths",
    "resolve_route_group",
    "status_class",
]
