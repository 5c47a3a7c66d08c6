"""Prometheus metrics: requests by route and status, their latency, the pool, database errors.

Under ``printapi serve`` each worker writes its numbers to files in one directory, which the
parent makes and names in PROMETHEUS_MULTIPROC_DIR before it forks (service/server.py).
/metrics, in whichever worker answers it, then adds up every worker's files, so the totals
are the service's, not one worker's. prometheus_client chooses between that mode and keeping
numbers in memory when it is first imported, so only ``create_app`` imports this module.
"""

import asyncio
import contextlib
import os
import time

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from service.keys import METRICS, POOL

#: The variable that puts prometheus_client in its mode for several processes.
DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: Latency buckets in seconds: a 304 takes about a millisecond, a long list a second or more.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: Seconds between two readings of the pool's size by each worker.
POOL_READING_INTERVAL = 1.0
#: The route label of a request that matched no route: one label, whatever the path.
UNMATCHED = "unmatched"
#: The methods counted by name; any other that aiohttp's parser knows (WebDAV's, and more)
#: is counted as OTHER_METHOD, so that clients cannot multiply the series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"


def multiprocess() -> bool:
    return bool(os.environ.get(DIRECTORY_VARIABLE))


class Metrics:
    """One app's metrics. In one process of its own (the tests), each app counts alone."""

    def __init__(self) -> None:
        #: The labelled series of each (route, method, status), found once.
        self._children: dict[tuple, tuple] = {}
        # With several processes the numbers live in files, and /metrics reads them all.
        self.registry = None if multiprocess() else CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "printapi_http_requests",
            "Requests answered, by route, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "printapi_http_request_duration_seconds",
            "Time from the request to the end of its answer, by route and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.pool_in_use = Gauge(
            "printapi_db_pool_connections_in_use",
            "Pooled database connections lent to requests, over all workers.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.pool_open = Gauge(
            "printapi_db_pool_connections_open",
            "Database connections the pools hold open, over all workers.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.database_errors = Counter(
            "printapi_db_errors",
            "Requests that met a database error, by kind: unreachable, too_slow, locked, "
            "busy (the long requests' share of the pool was taken), other.",
            ["kind"],
            registry=registry,
        )

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        resource = getattr(request.match_info.route, "resource", None)
        route = resource.canonical if resource is not None else UNMATCHED
        method = request.method if request.method in METHODS else OTHER_METHOD
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
        count, latency = children
        count.inc()
        latency.observe(seconds)

    def exposition(self) -> bytes:
        """The text /metrics answers: this app's numbers, or all the workers' numbers."""
        registry = self.registry
        if registry is None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        return generate_latest(registry)


@web.middleware
async def metrics_middleware(request: web.Request, handler):
    """Counts every answer and its time, errors included; 499 for a client that left."""
    started = time.perf_counter()
    status = 499
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        # The error middleware lets the contract's own errors through as they were raised.
        status = error.status
        raise
    finally:
        request.app[METRICS].observe(request, status, time.perf_counter() - started)


class MetricsView(web.View):
    """GET /metrics: Prometheus's text format. Public here; keep it off the internet (nginx)."""

    public = True

    async def get(self) -> web.Response:
        body = self.request.app[METRICS].exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def pool_readings(app: web.Application):
    """Cleanup context: writes the pool's size down every second while the app runs."""

    async def read_forever() -> None:
        metrics, pool = app[METRICS], app[POOL]
        while True:
            open_connections = pool.get_size()
            metrics.pool_open.set(open_connections)
            metrics.pool_in_use.set(open_connections - pool.get_idle_size())
            await asyncio.sleep(POOL_READING_INTERVAL)

    task = asyncio.create_task(read_forever())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
