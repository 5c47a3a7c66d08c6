"""``make bench``: seed a scratch database, serve it as production does, load it, compare.

Steps, each bounded in time: a fresh scratch database (printapi_bench) on DATABASE_URL's
server or the embedded one; ``printapi migrate``; ``printapi import`` of bench/seed.py's
document; ``printapi serve --workers N`` on a free port of 127.0.0.1; wrk on each scenario;
the RSS of a worker streaming a long list; p99 at half the peak rate; the framework ceiling
(bench/ceiling_app.py) and the database ceilings (bench/db_ceiling.py); a table printed and
written to docs/performance.md. Every process started is stopped by its pid, and the
scratch database is dropped at the end (BENCH_KEEP_DB=1 keeps it).

Environment: BENCH_DURATION (seconds per measured run, default 10), BENCH_WARMUP (seconds
of unmeasured load before each, default 2), BENCH_RSS_REQUESTS (streams of the long list
while RSS is watched, default 5, at most 50), BENCH_KEEP_DB, and DATABASE_URL.
"""

import asyncio
import contextlib
import datetime
import http.client
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import attrs
from yarl import URL

from bench import openloop, report, roundtrips, seed, wrk
from bench.report import Measured, Row
from service import PROJECT_ROOT
from service.auth import token_digest
from service.cli import database
from service.settings import Settings

BIN = Path(sys.executable).parent
PRINTAPI = str(BIN / "printapi")
HOST = "127.0.0.1"
SCRATCH_DB = "printapi_bench"
CONNECTIONS = 32
THREADS = 2
PERFORMANCE_MD = PROJECT_ROOT / "docs" / "performance.md"

LIST_PATH = "/api/v1/prints/?start=0&limit=12&sorting=date_desc"
DEEP_PATH = "/api/v1/prints/?start=10000&limit=12&sorting=date_desc"
FEEDBACK_PATH = (
    "/api/v1/prints/?filter=need_print_shot_feedback&sorting=date_desc&start=0&limit=12"
)
STREAM_PATH = "/api/v1/prints/"

DB_NAMES = {
    "list_page": "a. list page 1",
    "deep_page": "b. deep page",
    "feedback_page": "c. feedback filter",
    "detail": "d. detail",
    "patch": "e. PATCH verdict",
}


class BenchError(Exception):
    """The harness cannot go on; the message says why."""


def log(message: str) -> None:
    print(f"bench: {message}", flush=True)


def env_count(name: str, default: int, high: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise BenchError(f"{name} must be a whole number from 1 to {high}, not {raw!r}")
    return int(raw)


def env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BenchError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 <= value <= 600:
        raise BenchError(f"{name} must be between 0 and 600 seconds, not {value}")
    return value


# ---------------------------------------------------------------- database and command line


async def _admin(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def scratch_url(server_url: str) -> str:
    """The server's URL naming the scratch database, its query (a unix socket's host) kept."""
    server = URL(server_url)
    return str(server.with_path(f"/{SCRATCH_DB}").with_query(server.query))


def printapi(database_url: str, *args: str, timeout: float = 300) -> str:
    """Runs the project's command line on the scratch database; returns its standard output."""
    env = {**os.environ, "DATABASE_URL": database_url}
    try:
        done = subprocess.run(
            [PRINTAPI, *args], env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"printapi {args[0]} did not finish within {timeout:.0f} s") from error
    if done.returncode != 0:
        raise BenchError(f"printapi {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


async def _facts(url: str, emails: list[str]) -> tuple[dict[str, int], str]:
    """Vacuums and analyses the fresh tables (as autovacuum would) and checkpoints; returns
    ids and the server's version."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("VACUUM ANALYZE")
        # The import's pages written out now, not by a checkpoint in the middle of a run.
        await connection.execute("CHECKPOINT")
        rows = await connection.fetch("SELECT id, email FROM users WHERE email = ANY($1)", emails)
        version = await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()
    return {row["email"]: row["id"] for row in rows}, version


# ---------------------------------------------------------------- processes and HTTP


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def children_of(pid: int) -> list[int]:
    """The pids whose parent is ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def stop(process: subprocess.Popen, name: str) -> None:
    """SIGTERM to the process by its pid; after 20 s, SIGKILL to it and to its children."""
    if process.poll() is not None:
        return
    children = children_of(process.pid)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        log(f"{name} (pid {process.pid}) ignored SIGTERM for 20 s; killing it")
        for pid in [process.pid, *children]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)


@attrs.frozen
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def request(port: int, method: str, path: str, headers: dict, body: bytes | None = None):
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def wait_ready(port: int, process: subprocess.Popen, headers: dict, log_path: Path) -> None:
    """Waits (30 s at most) until GET answers 200; fails early if the process ends."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
            raise BenchError(f"the server exited with {process.returncode}:\n{tail}")
        try:
            if request(port, "GET", LIST_PATH, headers).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise BenchError(f"nothing answered 200 on {HOST}:{port} within 30 s")


@contextlib.contextmanager
def running(command: list[str], env: dict, log_path: Path, name: str):
    """Starts ``command`` with its output in ``log_path``; stops it by pid, always."""
    with open(log_path, "wb") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT
        )
    log(f"started {name} (pid {process.pid})")
    try:
        yield process
    finally:
        stop(process, name)
        log(f"stopped {name} (pid {process.pid}, exit {process.returncode})")


# ---------------------------------------------------------------- measurements


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (sorted here)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def from_wrk(result: wrk.WrkResult) -> Measured:
    return Measured(
        result.rate, result.p50_ms, result.p99_ms, result.non_2xx_3xx, result.socket_errors
    )


def drive(url: str, headers: dict, duration: float, warmup: float, script=None):
    """A warm-up run of wrk (unless BENCH_WARMUP < 1), then the measured one."""
    if warmup >= 1:
        wrk.run(url, headers, warmup, connections=CONNECTIONS, threads=THREADS, script=script)
    return wrk.run(url, headers, duration, connections=CONNECTIONS, threads=THREADS, script=script)


def measure(label: str, url: str, headers: dict, script, duration: float, warmup: float):
    """One scenario driven by wrk (``drive``), logged before and after."""
    log(f"wrk {label}: {warmup:.0f} s warm-up, {duration:.0f} s measured")
    measured = from_wrk(drive(url, headers, duration, warmup, script))
    log(
        f"  {measured.rate:,.0f} req/s, p50 {measured.p50_ms:.2f} ms, p99"
        f" {measured.p99_ms:.2f} ms, non-2xx/3xx {measured.errors},"
        f" socket errors {measured.socket_errors}"
    )
    return measured


def measure_rss(port: int, server_pid: int, headers: dict, expected: int, times: int) -> dict:
    """A worker's VmRSS around ``times`` streams of the whole list on one connection."""
    workers = children_of(server_pid)
    before = {pid: rss_kib(pid) for pid in workers}
    after: list[dict[int, int]] = []
    sizes, seconds, count = [], [], None
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        for index in range(times):
            began = time.perf_counter()
            connection.request("GET", STREAM_PATH, headers=headers)
            response = connection.getresponse()
            body = response.read()
            seconds.append(time.perf_counter() - began)
            if response.status != 200:
                raise BenchError(f"GET {STREAM_PATH} answered {response.status}")
            sizes.append(len(body))
            if index == 0:
                count = len(json.loads(body))
            del body
            after.append({pid: rss_kib(pid) for pid in workers})
    finally:
        connection.close()
    served = max(workers, key=lambda pid: after[-1][pid] - before[pid])
    return {
        "pid": served,
        "workers": len(workers),
        "before_kib": before[served],
        "after_kib": [snapshot[served] for snapshot in after],
        "bytes": sizes[0],
        "seconds": seconds,
        "items": count,
        "expected_items": expected,
    }


def service_complaints(log_path: Path) -> list[str]:
    """The service log's WARNING and ERROR lines (its format: time LEVEL logger: message)."""
    found = []
    with open(log_path, encoding="utf-8", errors="replace") as file:
        for line in file:
            if " WARNING " in line or " ERROR " in line or " CRITICAL " in line:
                found.append(line.strip()[:300])
    return found


def settled_etag(port: int, headers: dict) -> str | None:
    """The list's ETag once two GETs half a second apart agree (10 tries at most).

    After a burst of PATCHes each worker learns the last data version from an announcement
    a few milliseconds after the commit, so the first GET may still carry an older ETag.
    """
    previous = None
    for _ in range(10):
        answer = request(port, "GET", LIST_PATH, headers)
        etag = next((v for k, v in answer.headers.items() if k.lower() == "etag"), None)
        if etag is None or etag == previous:
            return etag
        previous = etag
        time.sleep(0.5)
    return previous


def wrk2_available() -> bool:
    """Whether Debian has a wrk2 package (apt-cache policy shows a candidate) or one is here."""
    if shutil.which("wrk2"):
        return True
    if not shutil.which("apt-cache"):
        return False
    done = subprocess.run(
        ["apt-cache", "policy", "wrk2"], capture_output=True, text=True, timeout=60, check=False
    )
    return "Candidate:" in done.stdout and "Candidate: (none)" not in done.stdout


def half_rate(port: int, headers: dict, peak: float, duration: float) -> tuple[Measured, str]:
    """p99 of scenario a at half its peak rate, open loop; returns it and how it was made."""
    rate = max(1.0, peak / 2)
    url = f"http://{HOST}:{port}{LIST_PATH}"
    if wrk2_available():
        if not shutil.which("wrk2"):
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk2"], env=env, timeout=600)
        if shutil.which("wrk2"):
            command = ["wrk2", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{round(duration)}s"]
            command += [
                f"-R{rate:.0f}",
                "--latency",
                "-H",
                f"Authorization: {headers['Authorization']}",
            ]
            done = subprocess.run(
                [*command, url], capture_output=True, text=True, timeout=duration + 60
            )
            result = wrk.parse(done.stdout)
            return from_wrk(result), f"wrk2 -R{rate:.0f}"
    result = asyncio.run(openloop.run(url, headers, rate, duration, connections=CONNECTIONS))
    latencies = list(result.latencies_ms)
    measured = Measured(
        result.achieved,
        percentile(latencies, 0.50),
        percentile(latencies, 0.99),
        result.failed + result.dropped + result.abandoned,
    )
    how = (
        f"bench/openloop.py (wrk2 is not packaged here), asked {rate:,.0f}/s,"
        f" {result.scheduled:,} scheduled, {result.completed:,} answered,"
        f" {result.failed} failed, {result.dropped} dropped, {result.abandoned} abandoned;"
        f" the generator's own send lag p50 {percentile(list(result.send_lag_ms), 0.5):.2f} ms,"
        f" p99 {percentile(list(result.send_lag_ms), 0.99):.2f} ms"
    )
    return measured, how


def db_ceiling(url: str, scenario: str, ctx: dict, workers: int, duration: float, warmup: float):
    """Runs bench/db_ceiling.py in ``workers`` processes, 32 loops in all; adds them up."""
    start_at = time.time() + 2.0 + warmup
    shares = [CONNECTIONS // workers + (i < CONNECTIONS % workers) for i in range(workers)]
    processes = []
    for tasks in shares:
        command = [sys.executable, "-m", "bench.db_ceiling", "--url", url]
        command += ["--scenario", scenario, "--context", json.dumps(ctx), "--tasks", str(tasks)]
        command += ["--start-at", f"{start_at:.3f}", "--duration", str(duration)]
        processes.append(
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=PROJECT_ROOT
            )
        )
    latencies: list[float] = []
    errors = 0
    statements = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=duration + warmup + 60)
            if process.returncode != 0:
                raise BenchError(f"db ceiling {scenario} failed:\n{err.decode()[-3000:]}")
            result = json.loads(out)
            latencies.extend(result["latencies_ms"])
            errors += result["errors"]
            statements.append(result["statements"])
    finally:
        for process in processes:
            stop(process, f"db ceiling {scenario}")
    return Measured(
        len(latencies) / duration,
        percentile(latencies, 0.50),
        percentile(latencies, 0.99),
        errors,
        statements=sum(statements) / len(statements),
    )


# ---------------------------------------------------------------- the run


def machine(pg_version: str) -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    import importlib.metadata as metadata

    return {
        "cpus": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory": memory,
        "postgresql": pg_version,
        "python": platform.python_version(),
        "aiohttp": metadata.version("aiohttp"),
        "asyncpg": metadata.version("asyncpg"),
        "wrk": wrk.version(),
    }


def main() -> int:
    # Whole seconds: wrk takes no fractions, and every measurement uses the same time.
    duration = float(max(1, round(env_seconds("BENCH_DURATION", 10.0))))
    warmup = env_seconds("BENCH_WARMUP", 2.0)
    rss_requests = env_count("BENCH_RSS_REQUESTS", 5, 50)
    workers = len(os.sched_getaffinity(0))
    began = time.monotonic()
    wrk.ensure_installed()

    settings = Settings.from_environ()
    with database(settings) as ready, tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        server_url = ready.database_url
        url = scratch_url(server_url)
        where = "DATABASE_URL's server" if settings.database_url else "the embedded PostgreSQL"
        log(f"scratch database {SCRATCH_DB} on {where}")
        asyncio.run(
            _admin(
                server_url,
                f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)',
                f'CREATE DATABASE "{SCRATCH_DB}"',
            )
        )
        try:
            return _bench(Path(scratch), url, workers, duration, warmup, rss_requests, began)
        finally:
            if os.environ.get("BENCH_KEEP_DB"):
                log(f"kept the scratch database: {url}")
            else:
                asyncio.run(
                    _admin(server_url, f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)')
                )
                log(f"dropped the scratch database {SCRATCH_DB}")


def _bench(scratch: Path, url, workers, duration, warmup, rss_requests, began) -> int:
    printapi(url, "migrate")
    seed_path = scratch / "seed.json"
    info = seed.write(seed_path)
    log(
        f"seed: {info.users} users, {info.prints:,} prints, {info.feedbacks:,} frames"
        f" ({seed_path.stat().st_size / 1e6:.0f} MB)"
    )
    t = time.monotonic()
    printapi(url, "import", str(seed_path), timeout=600)
    log(f"imported in {time.monotonic() - t:.1f} s")
    ids, pg_version = asyncio.run(_facts(url, [info.list_email, info.big_email]))
    tokens = {
        email: printapi(url, "create-token", email).strip().splitlines()[-1]
        for email in (info.list_email, info.big_email)
    }
    auth = {email: {"Authorization": f"Bearer {token}"} for email, token in tokens.items()}
    list_auth, big_auth = auth[info.list_email], auth[info.big_email]
    detail_path = f"/api/v1/prints/{info.detail_print_id}/"

    patch_headers = {**list_auth, "Content-Type": "application/json"}
    patch_body = b'{"alert_overwrite": "FAILED"}'
    log("statements per request of the real app, served in this process")
    asked = {
        "a": ("GET", LIST_PATH, list_auth, None),
        "b": ("GET", DEEP_PATH, big_auth, None),
        "c": ("GET", FEEDBACK_PATH, list_auth, None),
        "d": ("GET", detail_path, list_auth, None),
        "e": ("PATCH", detail_path, patch_headers, patch_body),
        "f": ("GET", LIST_PATH, {**list_auth, "If-None-Match": None}, None),
    }
    trips = asyncio.run(roundtrips.count(url, scratch / "app-var", asked))
    log(f"  answers kept (as served): {trips}")
    read_trips = asyncio.run(
        roundtrips.count(
            url, scratch / "app-var", {k: asked[k] for k in "abcd"}, answer_cache_bytes=0
        )
    )
    log(f"  nothing kept: {read_trips}")
    if read_trips is not None:
        trips = {**(trips or {}), **{f"{key}'": value for key, value in read_trips.items()}}

    checks: list[str] = []
    rows: list[Row] = []

    def serve_command(port: int) -> list[str]:
        return [PRINTAPI, "serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]

    port = free_port()
    env = {**os.environ, "DATABASE_URL": url}
    serve_log = scratch / "serve.log"
    with running(serve_command(port), env, serve_log, "printapi serve") as server:
        wait_ready(port, server, list_auth, serve_log)
        base = f"http://{HOST}:{port}"

        def check(label: str, answer: Answer, status: int, items: int | None = None) -> None:
            got = f"{answer.status}"
            ok = answer.status == status
            if ok and items is not None:
                count = len(json.loads(answer.body))
                got += f", {count} items"
                ok = count == items
            mark = (
                "ok" if ok else f"FAILED (expected {status}{f', {items} items' if items else ''})"
            )
            checks.append(f"{label}: {got} {mark}")
            log(checks[-1])

        # Each scenario answered once, as expected, before it is measured.
        page_one = request(port, "GET", LIST_PATH, list_auth)
        check("a. GET list page 1", page_one, 200, 12)
        check("b. GET deep page", request(port, "GET", DEEP_PATH, big_auth), 200, 12)
        feedback = request(port, "GET", FEEDBACK_PATH, list_auth)
        check("c. GET feedback filter", feedback, 200, min(12, info.list_need_feedback))
        check("d. GET detail", request(port, "GET", detail_path, list_auth), 200)
        patch = request(port, "PATCH", detail_path, patch_headers, patch_body)
        check("e. PATCH verdict", patch, 200)

        scenarios = [
            ("a", "list page 1", LIST_PATH, list_auth, None, "list_page"),
            ("b", "deep page", DEEP_PATH, big_auth, None, "deep_page"),
            ("c", "feedback filter", FEEDBACK_PATH, list_auth, None, "feedback_page"),
            ("d", "detail", detail_path, list_auth, None, "detail"),
            ("e", "PATCH verdict", detail_path, list_auth, wrk.PATCH_SCRIPT, "patch"),
        ]
        for key, name, path, headers, script, db_key in scenarios:
            measured = measure(f"{key}. {name}", base + path, headers, script, duration, warmup)
            # Answered from kept answers, a row reaches no database: it has no ceiling there.
            reads = trips is None or trips.get(key, 1) > 0
            rows.append(Row(key, name, path, measured, db_key=db_key if reads else None))

        # f: the ETag of a plain GET taken once the PATCHes' announcements have settled.
        etag = settled_etag(port, list_auth)
        if etag is None:
            rows.append(Row("f", "conditional GET", LIST_PATH, None, note="n/a (no ETag)"))
            checks.append("f. conditional GET: n/a, the list answered without an ETag header")
            log(checks[-1])
        else:
            conditional = {**list_auth, "If-None-Match": etag}
            check("f. GET If-None-Match", request(port, "GET", LIST_PATH, conditional), 304)
            log(f"wrk f. conditional GET: {warmup:.0f} s warm-up, {duration:.0f} s measured")
            result = drive(base + LIST_PATH, conditional, duration, warmup, wrk.STATUS_SCRIPT)
            counts = wrk.not_modified_counts(result.output)
            note = "304s not counted"
            if counts is not None:
                note = f"{counts[0]:,} of {sum(counts):,} answers were 304"
                if counts[1]:
                    checks.append(f"f. under load: {note}, FAILED (expected all)")
            measured = from_wrk(result)
            rows.append(Row("f", "conditional GET", LIST_PATH, measured, note=note))
            log(f"  {measured.rate:,.0f} req/s, p50 {measured.p50_ms:.2f} ms; {note}")

        peak = rows[0].measured.rate
        log(f"p99 at half the peak of a ({peak / 2:,.0f}/s) for {duration:.0f} s")
        half, half_how = half_rate(port, list_auth, peak, duration)
        log(f"  p50 {half.p50_ms:.2f} ms, p99 {half.p99_ms:.2f} ms; {half_how}")

        log(f"RSS of a worker streaming the farm's list, {rss_requests} times")
        rss = measure_rss(port, server.pid, big_auth, info.big_live_prints, rss_requests)
        if rss["items"] != rss["expected_items"]:
            checks.append(
                f"stream: {rss['items']} items, FAILED (expected {info.big_live_prints})"
            )
        log(
            f"  worker {rss['pid']}: {rss['before_kib']} KiB before, after each"
            f" {rss['after_kib']} KiB; {rss['items']:,} items, {rss['bytes']:,} bytes"
        )

    # The same scenarios with nothing kept: every request reads, as the first request
    # after a change does. These rows meet the database ceilings.
    port = free_port()
    read_env = {**env, "PRINTAPI_ANSWER_CACHE_BYTES": "0"}
    read_log = scratch / "serve-read.log"
    read_name = "printapi serve, nothing kept"
    with running(serve_command(port), read_env, read_log, read_name) as server:
        wait_ready(port, server, list_auth, read_log)
        base = f"http://{HOST}:{port}"
        for key, name, path, headers, script, db_key in scenarios[:4]:
            key, name = f"{key}'", f"{name}, read each time"
            measured = measure(f"{key}. {name}", base + path, headers, script, duration, warmup)
            rows.append(Row(key, name, path, measured, db_key=db_key))
        read_peak = next(row for row in rows if row.key == "a'").measured.rate
        log(f"p99 at half the peak of a' ({read_peak / 2:,.0f}/s) for {duration:.0f} s")
        read_half, read_half_how = half_rate(port, list_auth, read_peak, duration)
        log(f"  p50 {read_half.p50_ms:.2f} ms, p99 {read_half.p99_ms:.2f} ms; {read_half_how}")
    complaints_read = service_complaints(read_log)

    kept_log = PROJECT_ROOT / "var" / "bench" / "serve.log"
    kept_log.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(serve_log, kept_log)
    complaints = service_complaints(serve_log) + complaints_read
    if complaints:
        checks.append(
            f"the service logged {len(complaints)} warnings or errors (var/bench/serve.log),"
            f" the first: {complaints[0]}"
        )
        log(checks[-1])

    # The framework ceiling: the bytes of scenario a from a bare app, same workers.
    body_path = scratch / "page.json"
    body_path.write_bytes(page_one.body)
    content_type = page_one.headers.get("Content-Type", "application/json")
    port = free_port()
    command = [sys.executable, "-m", "bench.ceiling_app", "--port", str(port)]
    command += ["--workers", str(workers), "--body", str(body_path)]
    command += ["--content-type", content_type]
    ceiling_log = scratch / "ceiling.log"
    with running(command, dict(os.environ), ceiling_log, "ceiling app") as ceiling:
        wait_ready(port, ceiling, list_auth, ceiling_log)
        if request(port, "GET", LIST_PATH, list_auth).body != page_one.body:
            raise BenchError("the ceiling app does not answer the bytes of scenario a")
        log(f"wrk framework ceiling: {warmup:.0f} s warm-up, {duration:.0f} s measured")
        framework = from_wrk(
            drive(f"http://{HOST}:{port}{LIST_PATH}", list_auth, duration, warmup)
        )
        log(f"  {framework.rate:,.0f} req/s, p50 {framework.p50_ms:.2f} ms")

    # The database ceilings: the same statements, no HTTP.
    list_ctx = {
        "user_id": ids[info.list_email],
        "digest": token_digest(tokens[info.list_email]).hex(),
    }
    big_ctx = {
        "user_id": ids[info.big_email],
        "digest": token_digest(tokens[info.big_email]).hex(),
    }
    contexts = {
        "list_page": ("list_page", {**list_ctx, "start": 0}),
        "deep_page": ("list_page", {**big_ctx, "start": 10000}),
        "feedback_page": ("feedback_page", list_ctx),
        "detail": ("detail", {**list_ctx, "print_id": info.detail_print_id}),
        "patch": ("patch", {**list_ctx, "print_id": info.detail_print_id}),
    }
    databases: dict[str, Measured] = {}
    for key, (scenario, ctx) in contexts.items():
        log(f"database ceiling {DB_NAMES[key]}: {duration:.0f} s")
        databases[key] = db_ceiling(url, scenario, ctx, workers, duration, warmup)
        log(
            f"  {databases[key].rate:,.0f} sets/s, p50 {databases[key].p50_ms:.2f} ms,"
            f" {databases[key].statements:.1f} statements per set"
        )

    # Each database ceiling must send what the service sends for that request.
    for row in rows:
        row.statements = None if trips is None else trips.get(row.key)
        if row.statements is None:
            continue
        # A row answered from kept answers has no database ceiling: it must send nothing.
        ceiling = databases[row.db_key].statements if row.db_key else 0.0
        if abs(row.statements - ceiling) > 0.05:
            checks.append(
                f"{row.key} {row.name}: the service sends {row.statements:.1f} statements per"
                f" request, its database ceiling {ceiling:.1f}: FAILED, bench/db_ceiling.py no"
                " longer matches the service"
            )
            log(checks[-1])

    facts = machine(pg_version)
    generated = _generated(
        rows,
        framework,
        databases,
        (half, half_how),
        (read_half, read_half_how),
        rss,
        info,
        facts,
        workers,
        duration,
        warmup,
        checks,
        time.monotonic() - began,
    )
    report.write(PERFORMANCE_MD, generated)
    print()
    print(generated)
    log(f"wrote {PERFORMANCE_MD.relative_to(PROJECT_ROOT)}")
    return 1 if any("FAILED" in line for line in checks) else 0


def _generated(
    rows,
    framework,
    databases,
    half_peak,
    read_half_peak,
    rss,
    info,
    facts,
    workers,
    duration,
    warmup,
    checks,
    elapsed,
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    by_key = {row.key: row.measured for row in rows}
    a, b, read_a, read_b = by_key["a"], by_key["b"], by_key["a'"], by_key["b'"]
    (half, half_how), (read_half, read_half_how) = half_peak, read_half_peak
    mib = 1024
    after = ", ".join(f"{value / mib:.1f}" for value in rss["after_kib"])
    growth = (rss["after_kib"][-1] - rss["before_kib"]) / mib
    later = (rss["after_kib"][-1] - rss["after_kib"][0]) / mib
    mean_s = sum(rss["seconds"]) / len(rss["seconds"])
    deep_db = databases["deep_page"].p50_ms / databases["list_page"].p50_ms
    lines = [
        f"## Last run: {now}",
        "",
        f"- Machine: {facts['cpus']} CPUs ({facts['cpu']}), {facts['memory']} of memory;"
        f" PostgreSQL {facts['postgresql']}; Python {facts['python']}, aiohttp"
        f" {facts['aiohttp']}, asyncpg {facts['asyncpg']}; {facts['wrk']}.",
        f"- Service: `printapi serve --workers {workers}` on 127.0.0.1; load: wrk, {THREADS}"
        f" threads, {CONNECTIONS} connections, {duration:.0f} s per run after {warmup:.0f} s"
        " of warm-up.",
        f"- Data: {info.users} users, {info.prints:,} prints, {info.feedbacks:,} frames; list"
        f" user of 500 prints ({info.list_need_feedback} need feedback), farm of"
        f" {info.big_prints:,} prints; detail and PATCH on print {info.detail_print_id}.",
        f"- Whole run: {elapsed:.0f} s.",
        "",
        *report.table(rows, framework, databases),
        "",
        "### Ceilings",
        "",
        *report.ceiling_table(framework, databases, DB_NAMES),
        "",
        "### Below the table",
        "",
        f"- Deep page ÷ page 1, answers kept: p50 {b.p50_ms / a.p50_ms:.1f}x, p99"
        f" {b.p99_ms / a.p99_ms:.1f}x; read each time: p50 {read_b.p50_ms / read_a.p50_ms:.1f}x,"
        f" p99 {read_b.p99_ms / read_a.p99_ms:.1f}x (its database ceiling ÷ that of page 1:"
        f" p50 {deep_db:.1f}x).",
        f"- RSS of the worker (of {rss['workers']}) that streamed the farm's list"
        f" ({rss['items']:,} prints, {rss['bytes'] / 1e6:.1f} MB, {mean_s:.2f} s each),"
        f" {len(rss['after_kib'])} times: {rss['before_kib'] / mib:.1f} MiB before, after each"
        f" {after} MiB: +{growth:.1f} MiB in all, {later:+.1f} MiB after the first.",
        f"- p99 at half the peak of a: {half.p99_ms:.1f} ms (p50 {half.p50_ms:.2f} ms) at"
        f" {half.rate:,.0f} req/s answered; {half_how}.",
        f"- p99 at half the peak of a': {read_half.p99_ms:.1f} ms (p50"
        f" {read_half.p50_ms:.2f} ms) at {read_half.rate:,.0f} req/s answered; {read_half_how}.",
        "",
        "### Checks before measuring",
        "",
        *(f"- {line}" for line in checks),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BenchError, wrk.WrkError) as error:
        print(f"bench: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
