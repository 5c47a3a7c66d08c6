"""The framework ceiling: a bare aiohttp app that answers every GET with the same bytes.

No middleware, no database, no access log: what aiohttp itself costs for a response of this
size, served the way ``printapi serve --workers N`` serves (a parent binds one socket on
127.0.0.1 and forks N workers that accept from it, one connection per wake-up, with the
service's own FairAcceptor). SIGTERM or SIGINT to the parent stops the
workers; the parent also stops them by itself after ``--max-seconds``.

    python -m bench.ceiling_app --port P --workers N --body FILE --content-type TYPE
"""

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import time

from aiohttp import web

from service.server import FairAcceptor, LoadSeat


def make_app(body: bytes, content_type: str) -> web.Application:
    headers = {"Content-Type": content_type}

    async def answer(_request: web.Request) -> web.Response:
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    return app


async def _serve(sock: socket.socket, app: web.Application, seat: LoadSeat) -> None:
    """Serves until SIGTERM ends the process, accepting as the service's workers do."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    FairAcceptor(sock, runner.server, seat).start()
    await asyncio.Event().wait()


def _worker(sock: socket.socket, body: bytes, content_type: str, seat: LoadSeat) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    code = 0
    try:
        asyncio.run(_serve(sock, make_app(body, content_type), seat))
    except BaseException as error:  # A worker must never fall back into the parent's code.
        print(f"ceiling worker {os.getpid()} failed: {error!r}", file=sys.stderr)
        code = 1
    os._exit(code)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--body", required=True, help="file whose bytes every GET answers")
    parser.add_argument("--content-type", default="application/json; charset=utf-8")
    parser.add_argument("--max-seconds", type=int, default=900)
    args = parser.parse_args()
    with open(args.body, "rb") as file:
        body = file.read()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))  # Loopback only, whatever else is asked.
    sock.listen(1024)
    sock.set_inheritable(True)

    children: list[int] = []

    def forward(signum, _frame) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM if signum == signal.SIGALRM else signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(signum, forward)
    signal.alarm(args.max_seconds)
    for seat in LoadSeat.shared(args.workers):
        pid = os.fork()
        if pid == 0:
            _worker(sock, body, args.content_type, seat)
        children.append(pid)
    print(
        f"ceiling app on http://127.0.0.1:{args.port} with {args.workers} worker(s)",
        file=sys.stderr,
        flush=True,
    )

    failed = 0
    deadline = time.monotonic() + args.max_seconds + 60
    for child in children:
        while time.monotonic() < deadline:
            try:
                _, status = os.waitpid(child, 0)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            failed += os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM)
            break
    sock.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
