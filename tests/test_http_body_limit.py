"""HTTP_MAX_BODY_BYTES on real HTTP (uvicorn on loopback, raw sockets, every database engine).

The interaction routes never read their body, so the limit must hold without them: a chunked body
over the limit is refused with 413 and the error envelope before the route runs (nothing counted),
a larger Content-Length is refused before any of the body is sent, and small bodies still work.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from omnizap.config import Settings
from omnizap.core.packs.service import PackService
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_pack_engagement, sticker_pack_interaction_event
from omnizap.runtime import Runtime
from omnizap.web.app import create_app

OWNER = "5511933332222@s.whatsapp.net"
API = "/api/sticker-packs"
ONE_MEGABYTE = 1024 * 1024
CHUNK = 8 * 1024
SOCKET_TIMEOUT_SECONDS = 20


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(db: Database, tmp_path: Path) -> Iterator[SimpleNamespace]:
    import uvicorn

    port = _free_port()
    settings = Settings(
        _env_file=None,
        database_url=db.url.render_as_string(hide_password=False),
        sticker_storage_dir=tmp_path / "stickers",
        sticker_pack_auto_collect_enabled=False,
        http_access_log=False,  # the server thread outlives each test's output capture
    )
    runtime = Runtime(settings)
    pack = PackService(runtime.database, settings).create_pack(OWNER, "Sunny Cats", visibility="public")
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + SOCKET_TIMEOUT_SECONDS
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the web server did not start")
        time.sleep(0.05)
    yield SimpleNamespace(port=port, pack=pack, settings=settings, db=db)
    server.should_exit = True
    thread.join(timeout=SOCKET_TIMEOUT_SECONDS)
    runtime.close()


def _read_answer(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 answer with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = connection.recv(65536)
        if not piece:
            raise AssertionError(f"connection closed before the answer's headers: {data!r}")
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)
    }
    length = int(headers["content-length"])
    while len(body) < length:
        piece = connection.recv(65536)
        if not piece:
            break
        body += piece
    return int(status_line.split()[1]), headers, body[:length]


def _request_head(path: str, port: int, framing: str, method: str = "POST") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Viewer-Key: viewer-1\r\n"
        f"Content-Type: application/octet-stream\r\n{framing}\r\n\r\n"
    ).encode()


def _post_chunked(
    port: int, path: str, total: int, *, finish: bool = True, method: str = "POST"
) -> tuple[int, dict[str, str], bytes, int]:
    """POST `total` bytes in 8 KiB chunks, stopping as soon as an answer arrives; also returns how
    many body bytes were sent by then. `finish=False` never sends the last chunk: the body never
    ends, so only a server that answers without the rest can answer at all."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_SECONDS) as connection:
        connection.sendall(_request_head(path, port, "Transfer-Encoding: chunked", method))
        sent = 0
        try:
            while sent < total:
                readable, _, _ = select.select([connection], [], [], 0)
                if readable:  # the server answered before the body ended
                    break
                size = min(CHUNK, total - sent)
                connection.sendall(f"{size:x}\r\n".encode() + b"x" * size + b"\r\n")
                sent += size
            else:
                if finish:
                    connection.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection after its answer; read that answer
        status, headers, body = _read_answer(connection)
        return status, headers, body, sent


def _engagement(db: Database, pack_id: str) -> tuple[int, int]:
    with db.read() as connection:
        row = connection.execute(
            sa.select(sticker_pack_engagement.c.like_count, sticker_pack_engagement.c.open_count).where(
                sticker_pack_engagement.c.pack_id == pack_id
            )
        ).first()
        events = connection.execute(sa.select(sa.func.count()).select_from(sticker_pack_interaction_event))
        assert events.scalar_one() == (row[0] + row[1] if row else 0)
    return (row[0], row[1]) if row else (0, 0)


def test_an_oversized_chunked_body_is_refused_before_the_route_runs(server: SimpleNamespace):
    limit = server.settings.http_max_body_bytes
    status, headers, body, _ = _post_chunked(server.port, f"{API}/{server.pack.pack_key}/like", ONE_MEGABYTE)
    assert status == 413
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == "PAYLOAD_TOO_LARGE" and str(limit) in error["message"]
    assert _engagement(server.db, server.pack.id) == (0, 0)


def test_the_413_comes_without_waiting_for_the_rest_of_the_body(server: SimpleNamespace):
    limit = server.settings.http_max_body_bytes
    path = f"{API}/{server.pack.pack_key}/like"
    status, _, body, sent = _post_chunked(server.port, path, limit + 2 * CHUNK, finish=False)
    assert status == 413 and json.loads(body)["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert sent > limit
    assert _engagement(server.db, server.pack.id) == (0, 0)


def test_a_small_chunked_body_still_counts(server: SimpleNamespace):
    status, _, body, sent = _post_chunked(server.port, f"{API}/{server.pack.pack_key}/like", 3 * CHUNK)
    assert status == 200 and sent == 3 * CHUNK
    assert json.loads(body)["data"]["counted"] is True
    assert _engagement(server.db, server.pack.id) == (1, 0)


def test_a_content_length_over_the_limit_is_refused_before_the_body_is_sent(server: SimpleNamespace):
    path = f"{API}/{server.pack.pack_key}/open"
    with socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT_SECONDS) as connection:
        connection.sendall(_request_head(path, server.port, f"Content-Length: {ONE_MEGABYTE}"))
        status, headers, body = _read_answer(connection)  # no body byte sent: it must not wait for one
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert _engagement(server.db, server.pack.id) == (0, 0)


def test_an_oversized_chunked_body_is_refused_on_read_only_routes_too(server: SimpleNamespace):
    status, _, body, _ = _post_chunked(server.port, f"{API}/stats", ONE_MEGABYTE, method="GET")
    assert status == 413 and json.loads(body)["error"]["code"] == "PAYLOAD_TOO_LARGE"
