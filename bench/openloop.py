"""A constant-rate (open-loop) load generator, for the p99 at a given request rate.

Request ``i`` is due at ``start + i / rate`` whether or not earlier ones have been answered,
and its latency is counted from when it was due, not from when it could be sent: a server
that stalls is charged for every request that waited behind the stall (no coordinated
omission). Bounded: exactly ``rate * duration`` requests are scheduled, at most
``max_in_flight`` wait at once (more are counted as dropped), and stragglers are abandoned
``grace`` seconds after the schedule ends.

It speaks just enough HTTP/1.1 for one GET at a time on each of ``connections`` keep-alive
connections (a status line, headers, a Content-Length body), so that it costs the machine
a few microseconds a request: an aiohttp client cost about a hundred, and at 7,000 requests
a second its own lag, not the service, made the p99.
"""

import asyncio
import collections
import time

import attrs
from yarl import URL


@attrs.frozen
class OpenLoopResult:
    rate: float  # asked for, requests per second
    scheduled: int
    completed: int  # answered with a 2xx or 3xx
    failed: int  # answered otherwise, or the connection failed
    dropped: int  # never sent: too many already in flight
    abandoned: int  # sent, not answered within the grace period
    elapsed: float
    latencies_ms: tuple[float, ...]
    #: How late each request left this process: when high, the generator itself (its CPU)
    #: made the latency, not the server.
    send_lag_ms: tuple[float, ...] = ()

    @property
    def achieved(self) -> float:
        return self.completed / self.elapsed if self.elapsed else 0.0


class _Connection(asyncio.Protocol):
    """One keep-alive connection that sends the same request and reads each answer."""

    def __init__(self, request: bytes, done) -> None:
        self._request = request
        self._done = done  # called with (connection, status or None)
        self._buffer = b""
        self.transport: asyncio.Transport | None = None
        self.due: float | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, due: float) -> None:
        self.due = due
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self._buffer[:end].split(b"\r\n")
        status = int(head[0].split(b" ", 2)[1])
        length = 0
        if status != 304:
            for line in head[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
        if len(self._buffer) < end + 4 + length:
            return
        self._buffer = self._buffer[end + 4 + length :]
        self._done(self, status)

    def connection_lost(self, _error) -> None:
        if self.due is not None:
            self._done(self, None)


async def run(
    url: str,
    headers: dict[str, str],
    rate: float,
    duration: float,
    connections: int = 32,
    max_in_flight: int = 1024,
    grace: float = 10.0,
) -> OpenLoopResult:
    """Sends GET ``url`` at ``rate`` per second for ``duration`` seconds; measures each."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("the load generator aims at 127.0.0.1 only")
    target = URL(url)
    lines = [f"GET {target.raw_path_qs} HTTP/1.1", f"Host: {target.raw_authority}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()

    loop = asyncio.get_running_loop()
    scheduled = max(1, int(rate * duration))
    latencies: list[float] = []
    lags: list[float] = []
    counts = {"failed": 0, "dropped": 0}
    idle: collections.deque[_Connection] = collections.deque()
    waiting: collections.deque[float] = collections.deque()  # due times without a connection
    busy = 0
    all_answered = asyncio.Event()

    def send(connection: _Connection, due: float) -> None:
        nonlocal busy
        busy += 1
        lags.append((time.perf_counter() - due) * 1000)
        connection.send(due)

    def done(connection: _Connection, status: int | None) -> None:
        nonlocal busy
        busy -= 1
        if status is not None and 200 <= status < 400:
            latencies.append((time.perf_counter() - connection.due) * 1000)
        else:
            counts["failed"] += 1
        connection.due = None
        if status is None:
            return  # The connection is gone; the requests left wait for the others.
        if waiting:
            send(connection, waiting.popleft())
        else:
            idle.append(connection)
        if not busy and not waiting:
            all_answered.set()

    opened = []
    for _ in range(connections):
        _, connection = await loop.create_connection(
            lambda: _Connection(request, done), target.host, target.port
        )
        opened.append(connection)
        idle.append(connection)

    # One unmeasured request on each connection first: the first answers carry the costs
    # of a first use (the token checked, code paths warmed) on both sides.
    while idle:
        send(idle.popleft(), time.perf_counter())
    all_answered.clear()
    await asyncio.wait_for(all_answered.wait(), grace)
    latencies.clear()
    lags.clear()
    counts["failed"] = 0

    start = time.perf_counter() + 0.1
    try:
        for index in range(scheduled):
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if busy + len(waiting) >= max_in_flight:
                counts["dropped"] += 1
            elif idle:
                send(idle.popleft(), due)
            else:
                waiting.append(due)

        abandoned = 0
        if busy or waiting:
            all_answered.clear()
            try:
                await asyncio.wait_for(all_answered.wait(), grace)
            except TimeoutError:
                abandoned = busy + len(waiting)
        elapsed = time.perf_counter() - start
    finally:
        for connection in opened:
            if connection.transport is not None:
                connection.transport.close()

    return OpenLoopResult(
        rate=rate,
        scheduled=scheduled,
        completed=len(latencies),
        failed=counts["failed"],
        dropped=counts["dropped"],
        abandoned=abandoned,
        elapsed=elapsed,
        latencies_ms=tuple(latencies),
        send_lag_ms=tuple(lags),
    )
