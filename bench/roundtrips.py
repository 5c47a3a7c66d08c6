"""How many statements the real app sends to the database for one request of each scenario.

The app is built with the service's own factory and served in this process on 127.0.0.1;
its pool's statement counter (``app[STATEMENTS]``, which the service keeps for its tests)
is read around a few requests of each kind, after warm-up requests, so the numbers are a
warm worker's. The harness compares them with the statements per set of each database
ceiling: a difference means the service changed and bench/db_ceiling.py must follow.
"""

import asyncio
from pathlib import Path

import aiohttp
import attrs
from aiohttp import web

from service.settings import Settings

#: Requests of each kind before counting (the token's owner and the data version are then
#: remembered), and requests counted.
WARM = 3
COUNTED = 5


async def _settle() -> None:
    """Lets announcements and asyncpg's query loggers (called soon after) reach the app."""
    await asyncio.sleep(0.1)


async def count(
    database_url: str, var_dir: Path, requests: dict, answer_cache_bytes: int | None = None
) -> dict[str, float] | None:
    """Statements per request for each ``key: (method, path, headers, body)``.

    ``answer_cache_bytes`` sets PRINTAPI_ANSWER_CACHE_BYTES (0: every request reads); None
    leaves the service's default.

    A header ``If-None-Match`` given as None is filled with the ETag of a plain GET of the
    same path, taken just before (the ETag is keyed with this app's own secret).

    None when this version of the service keeps no statement counter. ``var_dir`` gets the
    app's generated session key, so nothing outside the harness's scratch folder is written.
    """
    try:
        from service.app import create_app
        from service.keys import STATEMENTS
    except ImportError:
        return None

    settings = Settings(database_url=database_url, var_dir=var_dir, pool_max_size=2)
    if answer_cache_bytes is not None:
        settings = attrs.evolve(settings, answer_cache_bytes=answer_cache_bytes)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    results: dict[str, float] = {}
    try:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def send(method, path, headers, body):
                url = f"http://127.0.0.1:{port}{path}"
                async with session.request(method, url, headers=headers, data=body) as answer:
                    await answer.read()
                    return answer

            for key, (method, path, headers, body) in requests.items():
                if "If-None-Match" in headers and headers["If-None-Match"] is None:
                    await _settle()
                    plain = {k: v for k, v in headers.items() if k != "If-None-Match"}
                    etag = (await send("GET", path, plain, None)).headers.get("ETag")
                    if etag is None:
                        continue
                    headers = {**plain, "If-None-Match": etag}
                for _ in range(WARM):
                    await send(method, path, headers, body)
                await _settle()
                before = app[STATEMENTS].count
                for _ in range(COUNTED):
                    await send(method, path, headers, body)
                await _settle()
                results[key] = (app[STATEMENTS].count - before) / COUNTED
    finally:
        await runner.cleanup()
    return results
