"""A fake of the WhatsApp Cloud API's Graph endpoints, as Meta documents them, on loopback.

Implements: POST /{version}/{phone_number_id}/messages, POST /{version}/{phone_number_id}/media
(multipart upload), GET /{version}/{media_id} (the media URL) and GET /download/{media_id} (the bytes,
bearer token required like lookaside.fbsbx.com). Every request needs `Authorization: Bearer <token>`.
Payloads are checked against the documented shapes; what was received is kept in `sent` and `uploads`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass
from typing import Any

from fakes.loopback import HttpFailure, LoopbackServer, Recorded, json_body, parse_multipart

VERSION = re.compile(r"^v\d+\.\d+$")
SENDABLE = {"text", "image", "video", "document", "sticker", "audio"}
MEDIA_MESSAGE_TYPES = SENDABLE - {"text"}


@dataclass
class Media:
    id: str
    data: bytes
    mime_type: str
    filename: str | None


def graph_error(status: int, message: str, code: int) -> HttpFailure:
    return HttpFailure(status, {"error": {"message": message, "type": "OAuthException", "code": code}})


class FakeGraphApi(LoopbackServer):
    def __init__(self, *, token: str, phone_number_id: str) -> None:
        super().__init__()
        self.token = token
        self.phone_number_id = phone_number_id
        self.media: dict[str, Media] = {}
        self.sent: list[dict[str, Any]] = []
        self.uploads: list[Media] = []
        self.sent_ids: list[str] = []  # the message id answered for each entry of `sent`
        # While `hold_downloads` is set, a media download waits until `release()`:
        # a test can then kill the worker that is provably inside its task.
        self.hold_downloads = False
        self.download_started = threading.Event()
        self._released = threading.Event()
        # Statuses to answer instead of the real thing, per kind ("lookup", "download", "messages").
        self.fail_next: dict[str, list[int]] = {}
        self._ids = itertools.count(1000)

    def add_media(self, data: bytes, mime_type: str) -> str:
        media_id = str(next(self._ids))
        self.media[media_id] = Media(media_id, data, mime_type, None)
        return media_id

    def release(self) -> None:
        self.hold_downloads = False
        self._released.set()

    def _maybe_fail(self, kind: str) -> None:
        queue = self.fail_next.get(kind)
        if queue:
            raise graph_error(queue.pop(0), f"injected {kind} failure", 131000)

    def route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        entry = Recorded(method, path, headers)
        self.record(entry)
        if headers.get("authorization") != f"Bearer {self.token}":
            raise graph_error(401, "Invalid OAuth access token - Cannot parse access token", 190)
        parts = path.split("?")[0].strip("/").split("/")
        if method == "GET" and len(parts) == 2 and parts[0] == "download":
            self._maybe_fail("download")
            if self.hold_downloads:
                self.download_started.set()
                self._released.wait(300)
            media = self.media.get(parts[1])
            if media is None:
                raise graph_error(404, "media not found", 100)
            return 200, media.mime_type, media.data
        if not parts or not VERSION.match(parts[0]):
            raise graph_error(400, f"Unknown path {path}: expected /vXX.Y/...", 100)
        if method == "GET" and len(parts) == 2:
            self._maybe_fail("lookup")
            media = self.media.get(parts[1])
            if media is None:
                raise graph_error(400, "Unsupported get request. Object does not exist", 100)
            return json_body(
                {
                    "messaging_product": "whatsapp",
                    "url": f"{self.base_url}/download/{media.id}",
                    "mime_type": media.mime_type,
                    "sha256": hashlib.sha256(media.data).hexdigest(),
                    "file_size": len(media.data),
                    "id": media.id,
                }
            )
        if method == "POST" and len(parts) == 3 and parts[2] in {"media", "messages"}:
            if parts[1] != self.phone_number_id:
                raise graph_error(400, f"Unknown phone number id {parts[1]}", 100)
            if parts[2] == "media":
                return self._upload(entry, headers, body)
            self._maybe_fail("messages")
            return self._message(entry, headers, body)
        raise graph_error(400, f"Unsupported {method} request to {path}", 100)

    def _upload(self, entry: Recorded, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        try:
            form = parse_multipart(headers.get("content-type", ""), body)
        except ValueError as exc:
            raise graph_error(400, f"(#100) {exc}", 100) from exc
        entry.form = form
        if form.get("messaging_product") is None or form["messaging_product"].text != "whatsapp":
            raise graph_error(400, "(#100) The parameter messaging_product is required.", 100)
        file = form.get("file")
        if file is None or not file.data:
            raise graph_error(400, "(#100) The parameter file is required.", 100)
        mime_type = form["type"].text if "type" in form else file.content_type
        if not mime_type:
            raise graph_error(400, "(#100) The parameter type is required.", 100)
        media = Media(str(next(self._ids)), file.data, mime_type, file.filename)
        self.media[media.id] = media
        self.uploads.append(media)
        return json_body({"id": media.id})

    def _message(self, entry: Recorded, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        if not headers.get("content-type", "").startswith("application/json"):
            raise graph_error(400, "(#100) Expected a JSON body", 100)
        payload = json.loads(body)
        entry.json = payload
        if payload.get("messaging_product") != "whatsapp":
            raise graph_error(400, "(#100) The parameter messaging_product is required.", 100)
        if not payload.get("to"):
            raise graph_error(400, "(#100) The parameter to is required.", 100)
        kind = payload.get("type", "text")
        if kind not in SENDABLE or not isinstance(payload.get(kind), dict):
            raise graph_error(400, f"(#100) Param type {kind!r} needs a {kind} object", 100)
        content = payload[kind]
        if kind == "text" and not content.get("body"):
            raise graph_error(400, "(#100) The parameter text['body'] is required.", 100)
        if kind in MEDIA_MESSAGE_TYPES:
            if "id" not in content and "link" not in content:
                raise graph_error(400, f"(#100) {kind} needs id or link", 100)
            if "id" in content and content["id"] not in self.media:
                raise graph_error(400, f"(#131053) Media upload error: unknown id {content['id']}", 131053)
            if kind == "sticker" and "id" in content and self.media[content["id"]].mime_type != "image/webp":
                raise graph_error(400, "(#131053) Stickers must be image/webp", 131053)
            if kind == "sticker" and "caption" in content:
                raise graph_error(400, "(#100) Stickers take no caption", 100)
        context = payload.get("context")
        if context is not None and not (isinstance(context, dict) and context.get("message_id")):
            raise graph_error(400, "(#100) context needs message_id", 100)
        self.sent.append(payload)
        message_id = f"wamid.fake{next(self._ids)}"
        self.sent_ids.append(message_id)
        return json_body(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": payload["to"], "wa_id": payload["to"]}],
                "messages": [{"id": message_id}],
            }
        )
