"""WhatsApp Cloud API transport: Meta's webhook in, pywa's Graph API client out.

Webhook (`WHATSAPP_WEBHOOK_PATH`, mounted by `omnizap serve`): the GET verify handshake, then POSTed
updates whose `X-Hub-Signature-256` must be the HMAC-SHA256 of the raw body with the app secret.
Each message becomes an `IncomingMessage` handed to `accept` (which queues a `chat_message` task),
and Meta gets its 200 at once. Replies and downloads run in the worker through `WhatsAppCloudTransport`.

The Cloud API's webhook only names the quoted message (`context.id`), never its media: the mapping
sets `quoted_message_id` and leaves `quoted_media` empty; the chat task fills it from the media it
remembered for that id (incoming messages, and the stickers this transport reports as `SentMedia`).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pywa import WhatsApp
from pywa.errors import WhatsAppError
from pywa.utils import webhook_updates_validator
from starlette.concurrency import run_in_threadpool

from omnizap.chat.messages import (
    IncomingMessage,
    MediaKind,
    MediaRef,
    MediaUnavailable,
    Reply,
    ReplyKind,
    ReplyNotSupported,
    SentMedia,
    SentPack,
)
from omnizap.chat.transports.media_fetch import TransientFailure, too_large, with_retries
from omnizap.config import Settings

logger = logging.getLogger(__name__)

NETWORK = "whatsapp_cloud"
GRAPH_HOST = "graph.facebook.com"
SIGNATURE_HEADER = "X-Hub-Signature-256"

# Cloud API message type -> our media kind. Types not listed (reaction, location, interactive, …)
# carry nothing a sticker command can use and are ignored.
MEDIA_TYPES: dict[str, MediaKind] = {
    "image": MediaKind.IMAGE,
    "video": MediaKind.VIDEO,
    "sticker": MediaKind.STICKER,
    "document": MediaKind.DOCUMENT,
    "audio": MediaKind.AUDIO,
}
HANDLED_TYPES = frozenset({"text", *MEDIA_TYPES})

Accept = Callable[[IncomingMessage], bool]


def is_configured(settings: Settings) -> bool:
    return all(
        (
            settings.whatsapp_cloud_phone_number_id,
            settings.whatsapp_cloud_token,
            settings.whatsapp_cloud_app_secret,
            settings.whatsapp_cloud_verify_token,
        )
    )


def user_jid(wa_id: str) -> str:
    digits = "".join(character for character in wa_id if character.isdigit())
    return f"{digits or wa_id}@s.whatsapp.net"


# --- webhook payload -> IncomingMessage -----------------------------------------------------------


def map_update(payload: Any, *, phone_number_id: str) -> list[IncomingMessage]:
    """Every message of one webhook POST addressed to our phone number, mapped.

    Status updates, other phone numbers' messages and unknown message types are left out. Raises
    ValueError when the payload is not a WhatsApp Business Account notification at all."""
    if not isinstance(payload, Mapping) or payload.get("object") != "whatsapp_business_account":
        raise ValueError('expected a JSON object with "object": "whatsapp_business_account"')
    mapped: list[IncomingMessage] = []
    for value in _message_values(payload):
        metadata = _mapping(value.get("metadata"))
        if str(metadata.get("phone_number_id", "")) != phone_number_id:
            logger.info("whatsapp webhook: message for another phone number id ignored")
            continue
        names = {
            str(contact.get("wa_id", "")): str(_mapping(contact.get("profile")).get("name", ""))
            for contact in _mappings(value.get("contacts"))
        }
        for message in _mappings(value.get("messages")):
            incoming = map_message(message, names)
            if incoming is not None:
                mapped.append(incoming)
    return mapped


def _message_values(payload: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for entry in _mappings(payload.get("entry")):
        for change in _mappings(entry.get("changes")):
            if change.get("field") == "messages":
                yield _mapping(change.get("value"))


def map_message(message: Mapping[str, Any], names: Mapping[str, str]) -> IncomingMessage | None:
    """One Cloud API message object, or None for a type the bot does not handle."""
    kind = str(message.get("type", ""))
    sender = str(message.get("from", ""))
    message_id = str(message.get("id", ""))
    if kind not in HANDLED_TYPES or not sender or not message_id:
        logger.info("whatsapp webhook: message of type %r ignored", kind or "?")
        return None
    text = ""
    media = None
    if kind == "text":
        text = str(_mapping(message.get("text")).get("body", ""))
    else:
        body = _mapping(message.get(kind))
        media_id = str(body.get("id", ""))
        if not media_id:
            return None
        text = str(body.get("caption", ""))
        media_kind = MEDIA_TYPES[kind]
        if kind == "audio" and body.get("voice"):
            media_kind = MediaKind.VOICE
        media = MediaRef(
            kind=media_kind,
            ref=media_id,
            mimetype=str(body.get("mime_type", "")),
            animated=bool(body["animated"]) if kind == "sticker" and "animated" in body else None,
            filename=str(body.get("filename", "")),
        )
    context = _mapping(message.get("context"))
    group_id = str(message.get("group_id", ""))
    return IncomingMessage(
        network=NETWORK,
        chat_id=group_id or sender,
        sender_id=user_jid(sender),
        message_id=message_id,
        text=text,
        sender_name=names.get(sender, ""),
        is_group=bool(group_id),
        media=media,
        quoted_message_id=str(context.get("id", "")),
        timestamp=_seconds(message.get("timestamp")),
        extra={"wa_id": sender},
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _mappings(value: Any) -> Iterable[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _seconds(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


# --- webhook HTTP ---------------------------------------------------------------------------------


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def read_body_capped(request: Request, max_bytes: int) -> bytes | None:
    """The request body, or None once it passes `max_bytes` (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def build_router(settings: Settings, accept: Accept) -> APIRouter:
    """The webhook routes. `accept` queues one message (False: a redelivery already queued)."""
    path = "/" + settings.whatsapp_webhook_path.strip("/")
    phone_number_id = settings.whatsapp_cloud_phone_number_id
    app_secret = settings.whatsapp_cloud_app_secret
    verify_token = settings.whatsapp_cloud_verify_token
    max_bytes = settings.http_max_body_bytes
    router = APIRouter()

    @router.get(path, include_in_schema=False)
    async def verify(request: Request) -> Response:
        params = request.query_params
        given = params.get("hub.verify_token", "")
        if params.get("hub.mode") != "subscribe" or not hmac.compare_digest(
            given.encode(), verify_token.encode()
        ):
            return _error(403, "FORBIDDEN", "hub.mode must be subscribe and hub.verify_token must match.")
        return PlainTextResponse(params.get("hub.challenge", ""))

    @router.post(path, include_in_schema=False)
    async def receive(request: Request) -> Response:
        body = await read_body_capped(request, max_bytes)
        if body is None:
            return _error(413, "PAYLOAD_TOO_LARGE", f"The webhook body is larger than {max_bytes} bytes.")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature:
            return _error(401, "UNAUTHORIZED", f"Missing {SIGNATURE_HEADER}; configure the app secret.")
        if not webhook_updates_validator(app_secret, body, signature):
            logger.warning("whatsapp webhook: bad %s, update dropped", SIGNATURE_HEADER)
            return _error(403, "FORBIDDEN", f"{SIGNATURE_HEADER} does not match the body.")
        try:
            payload = orjson.loads(body)
            messages = map_update(payload, phone_number_id=phone_number_id)
        except (orjson.JSONDecodeError, ValueError) as exc:
            return _error(400, "INVALID_INPUT", f"The webhook body is not a WhatsApp notification: {exc}")
        accepted = 0
        for message in messages:
            if await run_in_threadpool(accept, message):
                accepted += 1
        return JSONResponse({"accepted": accepted, "redelivered": len(messages) - accepted})

    return router


# --- sending and downloading ----------------------------------------------------------------------


class GraphOriginTransport(httpx.HTTPTransport):
    """Sends pywa's requests for graph.facebook.com to `WHATSAPP_GRAPH_API_BASE_URL` instead.

    pywa fixes the Graph origin in its client; a transport on our own httpx session moves it
    (a proxy, a regional endpoint, or the fake Graph API in tests) without touching pywa."""

    def __init__(self, origin: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._origin = httpx.URL(origin.rstrip("/"))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == GRAPH_HOST and self._origin.host != GRAPH_HOST:
            prefix = self._origin.path.rstrip("/")
            request.url = request.url.copy_with(
                scheme=self._origin.scheme,
                host=self._origin.host,
                port=self._origin.port,
                path=prefix + request.url.path,
            )
            request.headers["Host"] = request.url.netloc.decode("ascii")
        return super().handle_request(request)


class WhatsAppCloudTransport:
    network = NETWORK

    def __init__(self, settings: Settings, *, sleep: Callable[[float], None] | None = None) -> None:
        if not (settings.whatsapp_cloud_phone_number_id and settings.whatsapp_cloud_token):
            raise ValueError("WHATSAPP_CLOUD_PHONE_NUMBER_ID and WHATSAPP_CLOUD_TOKEN must be set")
        self._attempts = settings.chat_media_download_attempts
        self._retry_options: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        session = httpx.Client(
            transport=GraphOriginTransport(settings.whatsapp_graph_api_base_url),
            timeout=settings.chat_media_download_timeout_seconds,
        )
        self.client = WhatsApp(
            phone_id=settings.whatsapp_cloud_phone_number_id,
            token=settings.whatsapp_cloud_token,
            session=session,
        )

    # download ------------------------------------------------------------------------------------
    def download(self, media: MediaRef, *, max_bytes: int) -> bytes:
        if media.declared_size is not None and media.declared_size > max_bytes:
            raise too_large(media.declared_size, max_bytes)
        located = with_retries(
            lambda: self._graph_call(lambda: self.client.get_media_url(media.ref), "media lookup"),
            attempts=self._attempts,
            what="WhatsApp media lookup",
            **self._retry_options,
        )
        if located.file_size and located.file_size > max_bytes:
            raise too_large(located.file_size, max_bytes)
        return with_retries(
            lambda: self._fetch(located.url, max_bytes),
            attempts=self._attempts,
            what="WhatsApp media download",
            **self._retry_options,
        )

    def _fetch(self, url: str, max_bytes: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in self.client.stream_media(url):
                total += len(chunk)
                if total > max_bytes:
                    raise too_large(total, max_bytes)
                chunks.append(chunk)
        except httpx.HTTPStatusError as exc:
            _raise_for_status(exc.response.status_code, "media download")
        return b"".join(chunks)

    @staticmethod
    def _graph_call(call: Callable[[], Any], what: str) -> Any:
        try:
            return call()
        except WhatsAppError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 0
            _raise_for_status(status, f"{what} ({exc.message})")

    # send ----------------------------------------------------------------------------------------
    def send(self, message: IncomingMessage, reply: Reply) -> SentPack | SentMedia | None:
        to = message.chat_id
        quoted = message.message_id if reply.quote else None
        client = self.client
        if reply.kind is ReplyKind.STICKER_PACK:
            raise ReplyNotSupported("The WhatsApp Cloud API cannot send a native sticker pack")
        if reply.kind is ReplyKind.TEXT:
            client.send_message(to=to, text=reply.text, reply_to_message_id=quoted)
        elif reply.kind is ReplyKind.STICKER:
            # Uploaded first so its media id is known: a later quote of this sticker names only the
            # message id, and the core maps that id to this media (`/toimg` replying to the bot).
            mime_type = reply.mimetype or "image/webp"
            uploaded = client.upload_media(reply.data, mime_type=mime_type, media_type="sticker")
            sent = client.send_sticker(to=to, sticker=uploaded.id, reply_to_message_id=quoted)
            if reply.text:  # stickers take no caption
                client.send_message(to=to, text=reply.text)
            media = MediaRef(MediaKind.STICKER, ref=str(uploaded.id), mimetype=mime_type)
            return SentMedia(message_id=str(sent.id), media=media)
        elif reply.kind is ReplyKind.IMAGE:
            client.send_image(
                to=to,
                image=reply.data,
                caption=reply.text or None,
                mime_type=reply.mimetype or "image/png",
                reply_to_message_id=quoted,
            )
        elif reply.kind is ReplyKind.VIDEO:
            client.send_video(
                to=to,
                video=reply.data,
                caption=reply.text or None,
                mime_type=reply.mimetype or "video/mp4",
                reply_to_message_id=quoted,
            )
        elif reply.kind is ReplyKind.DOCUMENT:
            client.send_document(
                to=to,
                document=reply.data,
                filename=reply.filename or "file",
                caption=reply.text or None,
                mime_type=reply.mimetype or "application/octet-stream",
                reply_to_message_id=quoted,
            )
        else:  # pragma: no cover - every ReplyKind is handled above
            raise ReplyNotSupported(f"unknown reply kind {reply.kind}")
        return None


def _raise_for_status(status: int, what: str) -> None:
    if status in (0, 408, 429) or status >= 500:
        raise TransientFailure(f"{what}: HTTP {status}")
    raise MediaUnavailable(f"{what}: HTTP {status}")


def create(settings: Settings) -> WhatsAppCloudTransport:
    """Registry factory."""
    return WhatsAppCloudTransport(settings)
