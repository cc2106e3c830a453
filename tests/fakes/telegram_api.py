"""A fake of the Telegram Bot API on loopback, checking what the Bot API documents.

Methods: getMe, getUpdates, deleteWebhook, getFile (+ /file/bot<token>/<path> downloads), sendMessage,
sendSticker, sendPhoto, sendVideo, sendDocument, createNewStickerSet, addStickerToSet, getStickerSet,
deleteStickerFromSet, setStickerPositionInSet, setStickerSetTitle. The token must be in the path.
Parameters are read from JSON, urlencoded or multipart bodies (with `attach://` files), and sticker
files are checked against Telegram's rules: static WEBP 512 px ≤ 512 KB; video WEBM VP9 512 px,
≤ 3 s, ≤ 30 fps, ≤ 256 KB, no audio.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import av
from PIL import Image

from fakes.loopback import HttpFailure, LoopbackServer, Part, Recorded, json_body, parse_multipart

BOT_ID = 7000001
STATIC_MAX = 512 * 1024
VIDEO_MAX = 256 * 1024
NAME_RULE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,63}$")


def bad_request(description: str, status: int = 400) -> HttpFailure:
    return HttpFailure(status, {"ok": False, "error_code": status, "description": description})


def ok(result: Any) -> tuple[int, str, bytes]:
    return json_body({"ok": True, "result": result})


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    path: str


@dataclass
class SetSticker:
    file: StoredFile
    format: str
    emojis: list[str]
    width: int
    height: int
    duration_s: float = 0.0


@dataclass
class StickerSetState:
    name: str
    title: str
    owner: int
    stickers: list[SetSticker] = field(default_factory=list)


def check_static(data: bytes) -> tuple[int, int]:
    if len(data) > STATIC_MAX:
        raise bad_request(f"Bad Request: STICKER_PNG_NOPNG static sticker too big ({len(data)} bytes)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "WEBP":
                raise bad_request(f"Bad Request: static sticker must be WEBP, got {image.format}")
            width, height = image.size
    except OSError as exc:
        raise bad_request("Bad Request: STICKER_FILE_INVALID") from exc
    if max(width, height) != 512 or min(width, height) > 512:
        raise bad_request(f"Bad Request: STICKER_PNG_DIMENSIONS {width}x{height}")
    return width, height


def check_video(data: bytes) -> tuple[int, int, float]:
    if len(data) > VIDEO_MAX:
        raise bad_request(f"Bad Request: STICKER_VIDEO_BIG ({len(data)} bytes)")
    try:
        with av.open(io.BytesIO(data)) as container:
            if "webm" not in container.format.name:
                raise bad_request(f"Bad Request: video sticker must be WEBM, got {container.format.name}")
            if container.streams.audio:
                raise bad_request("Bad Request: STICKER_VIDEO_NOAUDIO video stickers must have no audio")
            [stream] = container.streams.video
            if stream.codec_context.name != "vp9":
                raise bad_request(f"Bad Request: video sticker must be VP9, got {stream.codec_context.name}")
            width, height = stream.width, stream.height
            times = [float(frame.time or 0.0) for frame in container.decode(stream)]
    except av.FFmpegError as exc:
        raise bad_request("Bad Request: STICKER_VIDEO_INVALID") from exc
    if not times:
        raise bad_request("Bad Request: STICKER_VIDEO_INVALID no frames")
    step = min((b - a for a, b in itertools.pairwise(times)), default=1 / 30)
    duration = times[-1] + step
    if duration > 3.0 + 0.0015:
        raise bad_request(f"Bad Request: STICKER_VIDEO_LONG {duration:.2f}s")
    if step < 1 / 30 - 0.0015:  # WEBM stores milliseconds: 1/30 s is written as 33 ms
        raise bad_request(f"Bad Request: video sticker over 30 fps (frame step {step:.4f}s)")
    if max(width, height) != 512:
        raise bad_request(f"Bad Request: STICKER_VIDEO_DIMENSIONS {width}x{height}")
    return width, height, duration


def check_sendable_sticker(data: bytes) -> None:
    """sendSticker takes a static .WEBP, an animated .TGS or a video .WEBM; no animated WebP."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        if b"ANIM" in data[:64]:
            raise bad_request(
                "Bad Request: animated WEBP stickers are not supported; send a WEBM video sticker"
            )
        check_static(data)
    elif data[:4] == b"\x1a\x45\xdf\xa3":
        check_video(data)
    else:
        raise bad_request("Bad Request: wrong file type for a sticker")


class FakeTelegramApi(LoopbackServer):
    def __init__(self, *, token: str, username: str = "omnizap_test_bot") -> None:
        super().__init__()
        self.token = token
        self.username = username
        self.files: dict[str, StoredFile] = {}
        self.sets: dict[str, StickerSetState] = {}
        self.sent: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.webhook_url = ""  # getUpdates is refused while a webhook is set, as on Telegram
        self._ids = itertools.count(1)

    # test helpers -----------------------------------------------------------------------------
    def add_file(self, data: bytes, path: str = "photos/file.jpg") -> StoredFile:
        number = next(self._ids)
        stored = StoredFile(f"FILE{number}", f"UNIQ{number}", data, f"{number}/{path}")
        self.files[stored.file_id] = stored
        return stored

    # routing ----------------------------------------------------------------------------------
    def route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        entry = Recorded(method, path, headers)
        self.record(entry)
        file_prefix = f"/file/bot{self.token}/"
        if path.startswith("/file/bot"):
            if not path.startswith(file_prefix):
                raise bad_request("Unauthorized", 401)
            wanted = path[len(file_prefix) :]
            for stored in self.files.values():
                if stored.path == wanted:
                    return 200, "application/octet-stream", stored.data
            raise bad_request("Not Found", 404)
        match = re.fullmatch(r"/bot([^/]+)/(\w+)", path.split("?")[0])
        if match is None:
            raise bad_request("Not Found", 404)
        if match.group(1) != self.token:
            raise bad_request("Unauthorized", 401)
        name = match.group(2)
        params, files = self._params(headers.get("content-type", ""), body, path)
        entry.json = params
        self.calls.append(name)
        handler = getattr(self, f"m_{name}", None)
        if handler is None:
            raise bad_request(f"Not Found: method {name} not found", 404)
        return ok(handler(params, files))

    @staticmethod
    def _params(content_type: str, body: bytes, path: str) -> tuple[dict[str, Any], dict[str, Part]]:
        files: dict[str, Part] = {}
        if content_type.startswith("application/json"):
            return (json.loads(body) if body else {}), files
        if content_type.startswith("multipart/form-data"):
            params: dict[str, Any] = {}
            for name, part in parse_multipart(content_type, body).items():
                if part.filename is not None:
                    files[name] = part
                else:
                    params[name] = part.text
            return params, files
        query = path.partition("?")[2]
        text = body.decode() if body else query
        return dict(parse_qsl(text)), files

    @staticmethod
    def _json(params: dict[str, Any], name: str, default: Any = None) -> Any:
        value = params.get(name, default)
        return json.loads(value) if isinstance(value, str) else value

    def _require(self, params: dict[str, Any], *names: str) -> None:
        for name in names:
            if params.get(name) in (None, ""):
                raise bad_request(f"Bad Request: parameter {name} is required")

    def _file_input(self, value: Any, files: dict[str, Part], field_name: str) -> bytes:
        if field_name in files:
            return files[field_name].data
        if isinstance(value, str) and value.startswith("attach://"):
            part = files.get(value.removeprefix("attach://"))
            if part is None:
                raise bad_request(f"Bad Request: {value} is not in the request")
            return part.data
        if isinstance(value, str) and value in self.files:
            return self.files[value].data
        raise bad_request(f"Bad Request: wrong file identifier/HTTP URL specified for {field_name}")

    def _me(self) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "OmniZap", "username": self.username}

    def _message(self, chat_id: Any, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": int(chat_id), "type": "private"},
            "from": self._me(),
            **extra,
        }

    # methods ----------------------------------------------------------------------------------
    def m_getMe(self, params: dict[str, Any], files: dict[str, Part]) -> Any:
        return self._me()

    def m_deleteWebhook(self, params: dict[str, Any], files: dict[str, Part]) -> Any:
        self.webhook_url = ""
        return True

    def m_getUpdates(self, params: dict[str, Any], files: dict[str, Part]) -> Any:
        if self.webhook_url:
            raise bad_request(
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
                409,
            )
        offset = int(params.get("offset") or 0)
        self.updates = [update for update in self.updates if update["update_id"] >= offset]
        return list(self.updates)

    def m_getFile(self, params: dict[str, Any], files: dict[str, Part]) -> Any:
        self._require(params, "file_id")
        stored = self.files.get(params["file_id"])
        if stored is None:
            raise bad_request("Bad Request: invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.path,
        }

    def _send(
        self, method: str, params: dict[str, Any], files: dict[str, Part], field_name: str | None
    ) -> Any:
        self._require(params, "chat_id", *([field_name] if field_name and field_name not in files else []))
        reply = self._json(params, "reply_parameters")
        if reply is not None and not isinstance(reply.get("message_id"), int):
            raise bad_request("Bad Request: reply_parameters.message_id must be an integer")
        record: dict[str, Any] = {"method": method, "chat_id": int(params["chat_id"]), "params": params}
        if field_name is None:
            self._require(params, "text")
        else:
            record["file"] = self._file_input(params.get(field_name), files, field_name)
            if method == "sendSticker":
                check_sendable_sticker(record["file"])
            record["filename"] = files[field_name].filename if field_name in files else None
        self.sent.append(record)
        return self._message(
            params["chat_id"], {"text": params.get("text", "")} if field_name is None else {}
        )

    def m_sendMessage(self, params: dict[str, Any], files: dict[str, Part]) -> Any:
        return self._send("sendMessage", params, files, None)

    def m_sendSticker(self, params: dict[str, Any], files: dict[str, Part]) -> Any:
        return self._send("sendSticker", params, files, "sticker")

    def m_sendPhoto(self, params: dict[str, Any], files: dict[str, Part]) -> Any:
        return self._send("sendPhoto", params, files, "photo")

    def m_sendVideo(self, params: dict[str, Any], files: dict[str, Part]) -> Any:
        return self._send("sendVideo", params, files, "video")

    def m_sendDocument(self, params: dict[str, Any], files: dict[str, Part]) -> Any:
        return self._send("sendDocument", params, files, "document")

    # sticker sets -----------------------------------------------------------------------------
    def _input_sticker(self, sticker: Any, files: dict[str, Part]) -> SetSticker:
        if not isinstance(sticker, dict):
            raise bad_request("Bad Request: InputSticker must be an object")
        emojis = sticker.get("emoji_list")
        if not isinstance(emojis, list) or not 1 <= len(emojis) <= 20:
            raise bad_request("Bad Request: emoji_list must have 1-20 emoji")
        data = self._file_input(sticker.get("sticker"), files, "sticker")
        fmt = sticker.get("format")
        if fmt == "static":
            width, height = check_static(data)
            duration = 0.0
        elif fmt == "video":
            width, height, duration = check_video(data)
        else:
            raise bad_request(f"Bad Request: sticker format {fmt!r} not supported by this fake")
        stored = self.add_file(data, f"stickers/file.{'webp' if fmt == 'static' else 'webm'}")
        return SetSticker(stored, fmt, emojis, width, height, duration)

    def _check_name(self, name: str) -> None:
        suffix = f"_by_{self.username}"
        if not NAME_RULE.match(name) or "__" in name or not name.lower().endswith(suffix.lower()):
            raise bad_request("Bad Request: STICKERSET_INVALID invalid sticker set name is specified")

    def _set(self, name: str) -> StickerSetState:
        found = self.sets.get(name.lower())
        if found is None:
            raise bad_request("Bad Request: STICKERSET_INVALID")
        return found

    def _owner(self, params: dict[str, Any], state: StickerSetState | None = None) -> int:
        self._require(params, "user_id")
        user_id = int(params["user_id"])
        if user_id <= 0 or (state is not None and state.owner != user_id):
            raise bad_request("Bad Request: USER_ID_INVALID")
        return user_id

    def m_createNewStickerSet(self, params: dict[str, Any], files: dict[str, Part]) -> Any:
        self._require(params, "name", "title", "stickers")
        name = params["name"]
        self._check_name(name)
        if name.lower() in self.sets:
            raise bad_request("Bad Request: sticker set name is already occupied")
        if not 1 <= len(params["title"]) <= 64:
            raise bad_request("Bad Request: title must be 1-64 characters")
        if params.get("sticker_type", "regular") != "regular":
            raise bad_request("Bad Request: only regular sets in this fake")
        stickers = self._json(params, "stickers")
        if not isinstance(stickers, list) or not 1 <= len(stickers) <= 50:
            raise bad_request("Bad Request: stickers must hold 1-50 InputSticker")
        state = StickerSetState(name, params["title"], self._owner(params))
        state.stickers = [self._input_sticker(sticker, files) for sticker in stickers]
        self.sets[name.lower()] = state
        return True

    def m_addStickerToSet(self, params: dict[str, Any], files: dict[str, Part]) -> Any:
        self._require(params, "name", "sticker")
        state = self._set(params["name"])
        self._owner(params, state)
        if len(state.stickers) >= 120:
            raise bad_request("Bad Request: STICKERS_TOO_MUCH")
        state.stickers.append(self._input_sticker(self._json(params, "sticker"), files))
        return True

    def _find(self, file_id: str) -> tuple[StickerSetState, int]:
        for state in self.sets.values():
            for index, sticker in enumerate(state.stickers):
                if sticker.file.file_id == file_id:
                    return state, index
        raise bad_request("Bad Request: STICKER_INVALID")

    def m_deleteStickerFromSet(self, params: dict[str, Any], files: dict[str, Part]) -> Any:
        self._require(params, "sticker")
        state, index = self._find(params["sticker"])
        del state.stickers[index]
        return True

    def m_setStickerPositionInSet(self, params: dict[str, Any], files: dict[str, Part]) -> Any:
        self._require(params, "sticker", "position")
        state, index = self._find(params["sticker"])
        position = int(params["position"])
        if not 0 <= position < len(state.stickers):
            raise bad_request("Bad Request: STICKER_POSITION_INVALID")
        state.stickers.insert(position, state.stickers.pop(index))
        return True

    def m_setStickerSetTitle(self, params: dict[str, Any], files: dict[str, Part]) -> Any:
        self._require(params, "name", "title")
        self._set(params["name"]).title = params["title"]
        return True

    def m_getStickerSet(self, params: dict[str, Any], files: dict[str, Part]) -> Any:
        self._require(params, "name")
        state = self._set(params["name"])
        return {
            "name": state.name,
            "title": state.title,
            "sticker_type": "regular",
            "stickers": [
                {
                    "file_id": sticker.file.file_id,
                    "file_unique_id": sticker.file.file_unique_id,
                    "type": "regular",
                    "width": sticker.width,
                    "height": sticker.height,
                    "is_animated": False,
                    "is_video": sticker.format == "video",
                    "emoji": sticker.emojis[0],
                    "set_name": state.name,
                    "file_size": len(sticker.file.data),
                }
                for sticker in state.stickers
            ],
        }
