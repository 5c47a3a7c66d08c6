"""deploy/nginx.conf in front of a real ``printapi serve``: the shipped site, with only its
paths and ports changed, proxying to the service's unix socket.

The test holds the listening socket and hands it to the service, as systemd's socket
activation does with deploy/printapi.socket. nginx and PgBouncer come from Debian's packages
(``make e2e-tools``); without them these tests are skipped, unless PRINTAPI_REQUIRE_E2E is
set, as CI sets it, which turns a missing tool into a failure.

deploy/printapi.service is read as systemd reads it, and its commands run as systemd would run
them; systemd itself is not needed.
"""

import asyncio
import contextlib
import os
import shlex
import shutil
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
import pytest

from service import PROJECT_ROOT
from tests.test_cli import (
    Cli,
    free_port,
    held_unix_socket,
    output,
    running,
    stop,
    terminate,
    wait_until_answering,
)

SITE = PROJECT_ROOT / "deploy" / "nginx.conf"
UNIT = PROJECT_ROOT / "deploy" / "printapi.service"
SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


def tool(name: str) -> str:
    """The path of a deployment tool, or a skip (a failure in CI) when it is missing."""
    path = shutil.which(name, path=f"{os.environ.get('PATH', '')}:{SBIN}")
    if path is None:
        message = f"{name} is not installed; make e2e-tools installs it"
        if os.environ.get("PRINTAPI_REQUIRE_E2E"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def rewrite(text: str, replacements: dict[str, str]) -> str:
    """``text`` with each key replaced; each must occur exactly once, or the test is stale."""
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{old!r} is not once in {SITE}"
        text = text.replace(old, new)
    return text


class Nginx:
    """nginx in the foreground on 127.0.0.1, serving deploy/nginx.conf from a directory."""

    def __init__(self, directory: Path, socket_path: str) -> None:
        self.directory = directory
        self.http_port, self.https_port = free_port(), free_port()
        self.access_log = directory / "access.log"
        self.error_log = directory / "error.log"
        certificate, key = directory / "cert.pem", directory / "key.pem"
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(certificate)),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        site = rewrite(
            SITE.read_text(),
            {
                "unix:/run/printapi/printapi.sock": f"unix:{socket_path}",
                "    listen 80;\n": f"    listen 127.0.0.1:{self.http_port};\n",
                "    listen [::]:80;\n": "",
                "    listen 443 ssl http2;\n": f"    listen 127.0.0.1:{self.https_port} ssl;\n",
                "    listen [::]:443 ssl http2;\n": "",
                "/etc/ssl/certs/api.example.com.pem": str(certificate),
                "/etc/ssl/private/api.example.com.key": str(key),
                "/var/log/nginx/printapi.access.log": str(self.access_log),
                "api.example.com;\n    return 308": "localhost;\n    return 308",
            },
        )
        (directory / "site.conf").write_text(site)
        # As root, nginx would run its workers as nobody, who may not use the test's files.
        user = "user root;\n" if os.geteuid() == 0 else ""
        (directory / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {directory}/nginx.pid;\n"
            f"error_log {self.error_log} info;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            f"    client_body_temp_path {directory}/body;\n"
            f"    proxy_temp_path {directory}/proxy;\n"
            f"    fastcgi_temp_path {directory}/fastcgi;\n"
            f"    uwsgi_temp_path {directory}/uwsgi;\n"
            f"    scgi_temp_path {directory}/scgi;\n"
            f"    include {directory}/site.conf;\n"
            "}\n"
        )
        self.process = subprocess.Popen(
            [
                *(tool("nginx"), "-p", str(directory), "-c", str(directory / "nginx.conf")),
                *("-e", str(self.error_log)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def base(self) -> str:
        return f"https://localhost:{self.https_port}"

    def stop(self) -> None:
        terminate(self.process)


@pytest.fixture
def deployment_dir():
    """A short directory under /tmp: a unix socket path may not be much over 100 bytes."""
    directory = Path(tempfile.mkdtemp(prefix="printapi-deploy-"))
    os.chmod(directory, 0o755)
    yield directory
    shutil.rmtree(directory)


@pytest.fixture
def printapi(database_url, deployment_dir) -> Cli:
    cli = Cli(database_url, deployment_dir)
    cli.extra_env["PRINTAPI_TRUSTED_PROXIES"] = "unix"
    return cli


@pytest.fixture
def tls() -> ssl.SSLContext:
    """The client side of the test's self-signed certificate: encrypted, not verified."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@contextlib.contextmanager
def nginx_in_front(directory: Path, socket_path: str):
    tool("nginx")
    nginx = Nginx(directory, socket_path)
    try:
        yield nginx
    finally:
        nginx.stop()


async def wait_for_nginx(nginx: Nginx, tls) -> None:
    deadline = time.monotonic() + 10
    async with aiohttp.ClientSession() as session:
        while True:
            if nginx.process.poll() is not None:
                pytest.fail(f"nginx exited:\n{nginx.error_log.read_text()}")
            try:
                async with session.get(f"{nginx.base}/healthz", ssl=tls) as r:
                    await r.read()
                    return
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail(f"nginx did not answer:\n{nginx.error_log.read_text()}")
                await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def deployed(printapi: Cli, directory: Path, tls):
    """The service on a held unix socket with nginx in front: (nginx, service, socket)."""
    with held_unix_socket() as listener:
        path = listener.getsockname()
        os.chmod(path, 0o666)
        with running(printapi.start("serve", "--workers", "2", passed=listener)) as server:
            async with aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path), timeout=aiohttp.ClientTimeout(total=2)
            ) as direct:
                await wait_until_answering(server, direct, "http://localhost/api/v1/prints/")
            with nginx_in_front(directory, path) as nginx:
                await wait_for_nginx(nginx, tls)
                yield nginx, server, listener


async def test_request_through_nginx_reaches_the_service_with_the_client_address(
    printapi, deployment_dir, factory, owner, tls
):
    user_id, headers = owner
    print_id = await factory.print(user_id)

    async with deployed(printapi, deployment_dir, tls) as (nginx, server, _):
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0), ssl=tls)
        url = f"{nginx.base}/api/v1/prints/"
        headers = {**headers, "X-Request-ID": "through-1"}
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(url, headers=headers) as response,
        ):
            body = await response.json()
            answer_headers = response.headers
        await asyncio.sleep(0.2)  # The access line is written once the answer has gone out.
        log = output(server)

    assert response.status == 200, body
    assert [item["id"] for item in body] == [print_id]
    assert answer_headers["X-Request-ID"] == "through-1"
    assert answer_headers["Strict-Transport-Security"] == "max-age=31536000"
    [line] = [line for line in log.splitlines() if " request=through-1 " in line]
    assert line.endswith(" client=127.0.0.2"), line
    assert f" user={user_id} " in line


async def test_plain_http_is_sent_to_https(printapi, deployment_dir, tls):
    async with deployed(printapi, deployment_dir, tls) as (nginx, _, _):
        url = f"http://localhost:{nginx.http_port}/api/v1/prints/?limit=1"
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, allow_redirects=False) as response,
        ):
            location = response.headers.get("Location")

    assert response.status == 308
    assert location == "https://localhost/api/v1/prints/?limit=1"


async def test_body_over_the_limit_gets_413_from_nginx_in_the_api_shape(
    printapi, deployment_dir, factory, owner, tls
):
    user_id, headers = owner
    print_id = await factory.print(user_id)

    async with (
        deployed(printapi, deployment_dir, tls) as (nginx, _, _),
        aiohttp.ClientSession() as session,
        session.patch(
            f"{nginx.base}/api/v1/prints/{print_id}/",
            data=b'{"alert_overwrite": "' + b"x" * 70000 + b'"}',
            headers={**headers, "Content-Type": "application/json"},
            ssl=tls,
        ) as response,
    ):
        body = await response.json()

    assert response.status == 413
    assert body == {"detail": "The request body is larger than 65536 bytes."}


async def poll_and_patch(base: str, headers: dict, print_id: int, tls, stopped: asyncio.Event):
    """Alternates GETs of the list and PATCHes of one print through nginx, on kept-open
    connections, until ``stopped`` is set (at most 1,000 requests): the statuses, or the
    names of the errors met instead."""
    answers = []
    verdicts = ("FAILED", "NOT_FAILED")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as session:
        for n in range(1000):
            if stopped.is_set():
                break
            try:
                if n % 2:
                    request = session.patch(
                        f"{base}/api/v1/prints/{print_id}/",
                        json={"alert_overwrite": verdicts[n % 4 // 2]},
                        headers=headers,
                    )
                else:
                    request = session.get(f"{base}/api/v1/prints/", headers=headers)
                async with request as response:
                    await response.read()
                    answers.append(response.status)
            except aiohttp.ClientError as error:
                answers.append(type(error).__name__)
    return answers


async def test_restart_behind_nginx_under_load_loses_no_request(
    printapi, deployment_dir, factory, owner, tls
):
    user_id, headers = owner
    print_id = await factory.print(user_id)

    async with deployed(printapi, deployment_dir, tls) as (nginx, first, listener):
        stopped = asyncio.Event()
        clients = [
            asyncio.create_task(poll_and_patch(nginx.base, headers, print_id, tls, stopped))
            for _ in range(4)
        ]
        await asyncio.sleep(0.5)
        first_status = await asyncio.to_thread(stop, first)
        first_log = output(first)
        with running(printapi.start("serve", "--workers", "2", passed=listener)) as second:
            await asyncio.sleep(2.0)
            stopped.set()
            answers = [answer for client in clients for answer in await client]
            second_log = output(second)

    assert first_status == 0, first_log
    assert set(answers) == {200}, [answer for answer in answers if answer != 200]
    assert " method=PATCH " in first_log and " method=PATCH " in second_log


async def test_metrics_answer_inside_and_not_found_from_outside(printapi, deployment_dir, tls):
    async with deployed(printapi, deployment_dir, tls) as (nginx, _, _):
        url = f"{nginx.base}/metrics"
        outside = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0), ssl=tls)
        async with aiohttp.ClientSession(connector=outside) as session, session.get(url) as away:
            away_body = await away.json()
        inside = aiohttp.TCPConnector(local_addr=("127.0.0.1", 0), ssl=tls)
        async with aiohttp.ClientSession(connector=inside) as session, session.get(url) as near:
            near_body = await near.text()

    assert (away.status, away_body) == (404, {"detail": "Not found."})
    assert near.status == 200
    assert "printapi_http_requests_total{" in near_body


# deploy/printapi.service


def unit_commands(key: str) -> list[list[str]]:
    """The command lines of ``key`` in deploy/printapi.service, read as systemd reads them:
    continued lines joined, "$$" a dollar sign, and quoted words kept whole."""
    prefix = f"{key}="
    commands = []
    for line in UNIT.read_text().replace("\\\n", " ").splitlines():
        if line.startswith(prefix):
            command = line.removeprefix(prefix)
            assert "$" not in command.replace("$$", ""), f"systemd would expand: {command}"
            commands.append(shlex.split(command.replace("$$", "$")))
    return commands


def run_checks(environment: dict[str, str]) -> list[subprocess.CompletedProcess]:
    """Runs the unit's ExecStartPre commands in order, as systemd does, until one fails."""
    results = []
    for command in unit_commands("ExecStartPre"):
        results.append(
            subprocess.run(
                command,
                env={"PATH": os.defpath, **environment},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        )
        if results[-1].returncode != 0:
            break
    return results


@pytest.mark.parametrize("environment", [{}, {"DATABASE_URL": ""}], ids=["unset", "empty"])
async def test_unit_without_database_url_stops_before_serve_saying_why(environment):
    results = run_checks(environment)

    assert [result.returncode for result in results] == [1]
    assert results[0].stdout == ""
    assert results[0].stderr == (
        "printapi: DATABASE_URL is not set in /etc/printapi/env; not starting\n"
    )


async def test_unit_with_database_url_passes_its_checks_and_serves(printapi):
    results = run_checks({"DATABASE_URL": printapi.database_url})
    [[program, *arguments]] = unit_commands("ExecStart")

    assert [(r.returncode, r.stdout, r.stderr) for r in results] == [(0, "", "")]
    assert program == "/opt/printapi/.venv/bin/printapi"
    with held_unix_socket() as listener:
        path = listener.getsockname()
        with running(printapi.start(*arguments, passed=listener)) as server:
            async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path)) as session:
                await wait_until_answering(server, session, "http://localhost/readyz")
                async with session.get("http://localhost/readyz") as response:
                    status, body = response.status, await response.json()
            stopped = stop(server)

    assert status == 200, body
    assert body == {"status": "ready"}
    assert stopped == 0, output(server)
