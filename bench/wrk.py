"""Running wrk against 127.0.0.1 and reading its report."""

import os
import re
import shutil
import subprocess
import tempfile

import attrs

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_LATENCY = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.M)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)", re.M)
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.M)

#: A PATCH of the print's verdict, alternating FAILED and NOT_FAILED on each connection's
#: successive requests. wrk adds the -H headers (the token) to every request it formats.
PATCH_SCRIPT = """\
wrk.method = "PATCH"
wrk.headers["Content-Type"] = "application/json"
local bodies = {'{"alert_overwrite": "FAILED"}', '{"alert_overwrite": "NOT_FAILED"}'}
local sent = 0
request = function()
  sent = sent + 1
  return wrk.format(nil, nil, nil, bodies[sent % 2 + 1])
end
"""

#: Counts the answers by status, so that a run can tell how many were 304 Not Modified:
#: wrk itself only counts those that were neither 2xx nor 3xx.
STATUS_SCRIPT = """\
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  not_modified = 0
  other = 0
end
function response(status, headers, body)
  if status == 304 then
    not_modified = not_modified + 1
  else
    other = other + 1
  end
end
function done(summary, latency, requests)
  local n, o = 0, 0
  for _, thread in ipairs(threads) do
    n = n + thread:get("not_modified")
    o = o + thread:get("other")
  end
  io.write(string.format("bench-statuses: 304=%d other=%d\\n", n, o))
end
"""
_STATUSES = re.compile(r"^bench-statuses: 304=(\d+) other=(\d+)", re.M)


def not_modified_counts(output: str) -> tuple[int, int] | None:
    """(304s, others) as STATUS_SCRIPT printed them, or None when it did not run."""
    found = _STATUSES.search(output)
    return (int(found.group(1)), int(found.group(2))) if found else None


class WrkError(Exception):
    """wrk is missing, cannot be installed, or failed; the message says which."""


@attrs.frozen
class WrkResult:
    requests: int
    seconds: float
    rate: float  # requests per second, as wrk computes it
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int
    socket_errors: int
    output: str


def ensure_installed() -> str:
    """The path of wrk; installs Debian's package when it is missing (needs root)."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() != 0:
        raise WrkError("wrk is missing; install it (Debian: apt-get install -y wrk)")
    print("bench: wrk is missing; apt-get install -y wrk", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    done = subprocess.run(install, env=env, timeout=600, check=False)
    if done.returncode != 0:  # The package lists may be missing or stale: refresh once.
        subprocess.run(["apt-get", "update", "-q"], env=env, timeout=600, check=False)
        done = subprocess.run(install, env=env, timeout=600, check=False)
    path = shutil.which("wrk")
    if done.returncode != 0 or not path:
        raise WrkError("apt-get install -y wrk failed; see its output above")
    return path


def version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else "wrk (version unknown)"


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse(output: str) -> WrkResult:
    latencies = {int(p): _ms(v, u) for p, v, u in _LATENCY.findall(output)}
    requests = _REQUESTS.search(output)
    rate = _RATE.search(output)
    if not (requests and rate and 50 in latencies and 99 in latencies):
        raise WrkError(f"cannot read wrk's report:\n{output}")
    non_2xx = _NON_2XX.search(output)
    sockets = _SOCKET.search(output)
    return WrkResult(
        requests=int(requests.group(1)),
        seconds=_ms(requests.group(2), requests.group(3)) / 1000,
        rate=float(rate.group(1)),
        p50_ms=latencies[50],
        p99_ms=latencies[99],
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, sockets.groups())) if sockets else 0,
        output=output,
    )


def run(
    url: str,
    headers: dict[str, str],
    duration: float,
    *,
    connections: int = 32,
    threads: int = 2,
    script: str | None = None,
    timeout_s: int = 10,
) -> WrkResult:
    """Runs wrk for ``duration`` seconds against ``url`` (on 127.0.0.1 only) and reads it."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("wrk is aimed at 127.0.0.1 only")
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={timeout_s}s",
        "--latency",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as scratch:
        if script is not None:
            path = os.path.join(scratch, "script.lua")
            with open(path, "w", encoding="utf-8") as file:
                file.write(script)
            command += ["-s", path]
        command.append(url)
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=duration + 60, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise WrkError(f"wrk did not stop within {duration + 60:.0f} s") from error
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}:\n{done.stdout}{done.stderr}")
    return parse(done.stdout)
