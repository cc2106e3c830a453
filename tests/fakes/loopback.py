"""A threaded HTTP server on 127.0.0.1 with a random port, plus a multipart/form-data parser."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Part:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str = ""

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    form: dict[str, Part] = field(default_factory=dict)


class HttpFailure(Exception):
    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload


def parse_multipart(content_type: str, body: bytes) -> dict[str, Part]:
    """Parts by field name. Refuses a body that is not multipart/form-data."""
    if not content_type.startswith("multipart/form-data"):
        raise ValueError(f"expected multipart/form-data, got {content_type!r}")
    message: Message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts: dict[str, Part] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            raise ValueError("multipart part without a name")
        payload = part.get_payload(decode=True) or b""
        parts[str(name)] = Part(
            name=str(name),
            data=payload,
            filename=part.get_filename(),
            content_type=part.get_content_type() if part.get("content-type") else "",
        )
    return parts


class LoopbackServer:
    """Subclasses implement `route(method, path, headers, body) -> (status, content_type, bytes)`."""

    def __init__(self) -> None:
        owner = self
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {key.lower(): value for key, value in self.headers.items()}
                try:
                    status, content_type, payload = owner.route(self.command, self.path, headers, body)
                except HttpFailure as failure:
                    status, content_type = failure.status, "application/json"
                    payload = json.dumps(failure.payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def record(self, entry: Recorded) -> None:
        with self.lock:
            self.requests.append(entry)

    def route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def json_body(payload: Any) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps(payload).encode()
