"""Running a component: metrics endpoint, health, and clean shutdown.

`run(main)` runs the component's coroutine until SIGTERM or SIGINT, then
lets it finish its own shutdown (the coroutine receives a `stop` event).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

import prometheus_client

from ._options import split_host_port

log = logging.getLogger(__name__)


def start_metrics_server(address: str) -> int | None:
    """Serve Prometheus /metrics on HOST:PORT in a background thread;
    returns the bound port (PORT 0 picks a free one)."""
    if not address:
        return None
    host, port = split_host_port(address, "--metrics-bind-address")
    server, _thread = prometheus_client.start_http_server(port, addr=host)
    bound = int(server.server_address[1])
    log.info("serving metrics on http://%s:%d/metrics", host, bound)
    return bound


def run(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())
