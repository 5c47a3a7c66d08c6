"""A constant-rate (open-loop) load generator, for the p99 at a given request rate.

Request ``i`` is due at ``start + i / rate`` whether or not earlier ones have been answered,
and its latency is counted from when it was due, not from when it could be sent: a server
that stalls is charged for every request that waited behind the stall (no coordinated
omission). Bounded: exactly ``rate * duration`` requests are scheduled, at most
``max_in_flight`` wait at once (more are counted as dropped), and stragglers are abandoned
``grace`` seconds after the schedule ends.
"""

import asyncio
import time

import aiohttp
import attrs


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
    scheduled = max(1, int(rate * duration))
    latencies: list[float] = []
    lags: list[float] = []
    counts = {"failed": 0, "dropped": 0}
    in_flight: set[asyncio.Task] = set()
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=duration + grace)

    async with aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=timeout
    ) as session:

        async def one(due: float) -> None:
            lags.append((time.perf_counter() - due) * 1000)
            try:
                async with session.get(url) as response:
                    await response.read()
                    ok = 200 <= response.status < 400
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                latencies.append((time.perf_counter() - due) * 1000)
            else:
                counts["failed"] += 1

        start = time.perf_counter() + 0.1
        for index in range(scheduled):
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(in_flight) >= max_in_flight:
                counts["dropped"] += 1
                continue
            task = asyncio.create_task(one(due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)

        abandoned = 0
        if in_flight:
            _, late = await asyncio.wait(set(in_flight), timeout=grace)
            abandoned = len(late)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=5)
        elapsed = time.perf_counter() - start

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
