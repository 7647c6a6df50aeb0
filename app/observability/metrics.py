"""Prometheus metrics (prometheus_client; multiprocess-safe when PROMETHEUS_MULTIPROC_DIR is set,
which `arca serve` does for --workers > 1)."""

from __future__ import annotations

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest)

from app.config import metrics_dir

REQUESTS = Counter("arca_http_requests_total", "HTTP requests", ["plane", "format", "method", "status"])
LATENCY = Histogram("arca_http_request_duration_seconds", "HTTP request latency", ["plane", "format"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
BYTES_IN = Counter("arca_http_request_bytes_total", "Request body bytes received", ["plane", "format"])
BYTES_OUT = Counter("arca_http_response_bytes_total", "Response body bytes sent", ["plane", "format"])
UPLOADS = Counter("arca_uploads_total", "Package version assets stored", ["format"])
PUBLISHES = Counter("arca_publishes_total", "Package versions that became Published", ["format"])
STATUS_CHANGES = Counter("arca_package_version_events_total", "Package version state changes",
                         ["format", "status"])
UPSTREAM_FETCHES = Counter("arca_upstream_fetches_total", "Fetches from upstream/external sources",
                           ["format", "result"])
ANSWERS_FROM_MEMORY = Counter("arca_data_plane_cached_answers_total",
                              "Data-plane GET/HEAD answered from the worker's response cache", ["format"])
BLOB_ERRORS = Counter("arca_blob_store_errors_total", "Blob store errors", ["backend"])
WEBHOOK_DELIVERIES = Counter("arca_webhook_deliveries_total", "Webhook delivery attempts", ["result"])
WEBHOOK_DEAD_LETTERS = Counter("arca_webhook_dead_letters_total", "Webhook deliveries that ran out of retries")
FILES_REMOVED = Counter("arca_package_files_removed_total", "Single files removed from a version (old SNAPSHOT builds)",
                        ["format"])
CLEANUP_REMOVALS = Counter("arca_cleanup_removals_total", "Versions and files cleanup rules removed",
                           ["format", "action"])
CLEANUP_RUNS = Counter("arca_cleanup_runs_total", "Cleanup runs", ["trigger", "result"])
DB_POOL_IN_USE = Gauge("arca_db_pool_connections_in_use", "Database connections checked out",
                       multiprocess_mode="livesum")


def render() -> tuple[bytes, str]:
    if metrics_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def watch_pool(engine) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "checkout")
    def _checkout(*_):  # pragma: no cover - trivial
        DB_POOL_IN_USE.inc()

    @event.listens_for(engine, "checkin")
    def _checkin(*_):  # pragma: no cover - trivial
        DB_POOL_IN_USE.dec()
