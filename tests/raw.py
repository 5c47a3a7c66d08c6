"""HTTP/1.1 by hand, for requests no client library sends: bodies that never end, oversized
lines. The answer is read while the request is still unfinished, within a timeout."""

import asyncio
import json

import attrs

#: Seconds to wait for an answer; a server that waits for the rest of the body never gives one.
ANSWER_TIMEOUT = 10.0


@attrs.frozen
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


async def exchange(port: int, head: str, *body_parts: bytes) -> RawResponse:
    """Sends ``head`` (request line and headers, without the blank line) and ``body_parts``,
    then reads one answer, whose body must be framed by Content-Length."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode("latin-1") + b"\r\n\r\n")
        for part in body_parts:
            writer.write(part)
        await writer.drain()
        return await asyncio.wait_for(_read_answer(reader), ANSWER_TIMEOUT)
    finally:
        writer.close()


async def _read_answer(reader: asyncio.StreamReader) -> RawResponse:
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RawResponse(status, headers, body)


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"
