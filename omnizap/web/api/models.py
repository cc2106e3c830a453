"""Response models of the JSON API, for the OpenAPI document only.

Routes serialize their answers themselves (orjson, cached per data version), so these models do not
shape or validate anything at run time: they describe what the routes send, and the schemathesis
contract test (tests/test_openapi_contract.py) checks every answer against them. Field names follow
the original OmniZap 2.2.7 API (docs/api.md); open-ended parts (ranking signals, classification
summaries) are objects whose keys may grow.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, for programs: `PACK_NOT_FOUND`, `INVALID_INPUT`, …")
    message: str = Field(description="For people: what is wrong and how to fix it.")
    details: dict[str, Any] | None = Field(
        None, description='Present on some errors, e.g. `{"parameter": "limit"}`.'
    )


class ErrorEnvelope(BaseModel):
    """Every error answer of the API."""

    error: ErrorBody


class Engagement(BaseModel):
    open_count: int
    like_count: int
    dislike_count: int
    score: int = Field(description="likes minus dislikes")
    updated_at: str | None


class WhatsAppLink(BaseModel):
    phone: str
    text: str
    url: str


class PackSummary(BaseModel):
    id: str
    pack_key: str
    name: str
    publisher: str
    description: str | None
    visibility: str
    status: str
    sticker_count: int
    is_complete: bool
    cover_sticker_id: str | None
    cover_url: str | None
    api_url: str
    web_url: str
    download_url: str
    whatsapp: WhatsAppLink | None = Field(description="null when no bot phone is configured")
    created_at: str | None
    updated_at: str | None
    engagement: Engagement
    signals: dict[str, Any] | None = Field(description="Ranking signals (docs/catalog.md).")
    manual_tags: list[str]


class PackEntry(PackSummary):
    """A pack in lists, collections and as a creator's top pack."""

    classification: dict[str, Any] = Field(description="Classification summary of the pack's stickers.")
    tags: list[str]
    is_nsfw: bool
    nsfw_level: str = Field(description="`safe`, `suggestive` or `explicit`")


class StickerAsset(BaseModel):
    id: str
    mimetype: str
    is_animated: bool
    width: int | None
    height: int | None
    size_bytes: int | None
    classification: dict[str, Any] | None


class PackItem(BaseModel):
    id: str
    sticker_id: str
    position: int
    emojis: list[str]
    accessibility_label: str | None
    created_at: str | None
    asset_url: str
    preview_url: str
    tags: list[str]
    is_nsfw: bool
    asset: StickerAsset | None


class TelegramSet(BaseModel):
    url: str = Field(description="https://t.me/addstickers/<set>")
    set_name: str
    synced_version: int
    is_current: bool = Field(description="false when the pack changed after the set was last synced")


class PackDetails(PackEntry):
    items: list[PackItem]
    whatsapp_send_url: str | None = Field(
        None, description="wa.me link that opens the bot chat with `pack send <key>` typed (docs/api.md)"
    )
    telegram_url: str | None = Field(None, description="The pack's Telegram sticker set, when it has one")
    telegram: TelegramSet | None = None


class PackDetailsAnswer(BaseModel):
    data: PackDetails


class Pagination(BaseModel):
    limit: int
    offset: int | None = Field(description="null when paging by cursor")
    has_more: bool
    next_offset: int | None
    next_cursor: str | None


class ListFilters(BaseModel):
    q: str
    visibility: str
    sort: str
    categories: list[str]
    intent: str | None
    nsfw: str


class PackList(BaseModel):
    data: list[PackEntry]
    pagination: Pagination
    filters: ListFilters


class CatalogTotals(BaseModel):
    packs_total: int
    stickers_total: int
    creators_total: int
    downloads_total: int


class CatalogStats(BaseModel):
    data: CatalogTotals
    filters: dict[str, Any]
    meta: dict[str, Any]


class CreatorStats(BaseModel):
    packs_count: int
    total_likes: int
    total_opens: int
    avg_pack_score: float


class Creator(BaseModel):
    creator_score: float
    publisher: str
    verified: bool
    badges: list[str]
    stats: CreatorStats
    top_pack: PackEntry | None = Field(description="The creator's best safe pack, if any.")


class CreatorRanking(BaseModel):
    data: list[Creator]
    filters: dict[str, Any]


class IntentCollections(BaseModel):
    em_alta: list[PackEntry]
    novos: list[PackEntry]
    crescendo_agora: list[PackEntry]
    mais_curtidos: list[PackEntry]
    melhor_avaliados: list[PackEntry]


class Intents(BaseModel):
    data: IntentCollections
    filters: dict[str, Any]


class ReadmeTotals(BaseModel):
    total_packs: int
    total_stickers: int
    total_creators: int
    total_downloads: int
    total_likes: int


class ReadmeTopPack(BaseModel):
    pack_key: str
    name: str
    publisher: str
    sticker_count: int
    like_count: int
    open_count: int
    web_url: str


class ReadmeData(BaseModel):
    generated_at: str
    cache_seconds: int
    totals: ReadmeTotals
    top_packs: list[ReadmeTopPack]
    markdown: str


class ReadmeSummary(BaseModel):
    data: ReadmeData


class MarketplaceDay(BaseModel):
    date: str
    packs_published: int
    stickers_created: int
    clicks: int
    likes: int


class MarketplaceStats(BaseModel):
    """Flat (no `data` wrapper), as in the original."""

    total_packs: int
    total_stickers: int
    total_clicks: int
    total_likes: int
    packs_last_7_days: int
    stickers_without_pack: int
    creators_total: int
    clicks_last_7_days: int
    likes_last_7_days: int
    series_last_7_days: list[MarketplaceDay]
    updated_at: str
    cache_seconds: int


class InteractionResult(BaseModel):
    pack_key: str
    interaction: str = Field(description="`open`, `like` or `dislike`")
    counted: bool = Field(description="false when this viewer's interaction was already counted")
    engagement: Engagement


class InteractionAnswer(BaseModel):
    data: InteractionResult


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str = Field(description="`ready` or `unavailable`")
    reason: str | None = Field(None, description="Why the server is not ready (503 only).")


# --- declaring answers in routes -------------------------------------------------------------------
class SessionUser(BaseModel):
    sub: str | None
    email: str | None
    name: str | None
    picture: str | None


class GoogleSessionData(BaseModel):
    """The signed-in person, or `authenticated: false` (http §2.6). `owner_phone` is only ever the
    caller's own number."""

    authenticated: bool
    provider: str
    user: SessionUser | None
    owner_jid: str | None
    owner_phone: str | None
    expires_at: str | None


class SessionAnswer(BaseModel):
    data: GoogleSessionData


class SignedOut(BaseModel):
    cleared: bool


class SignedOutAnswer(BaseModel):
    data: SignedOut


class MyPacksData(BaseModel):
    """The caller's own packs, all statuses and visibilities (http §7.3); empty when anonymous."""

    auth: dict[str, Any]
    session: dict[str, Any]
    owner_jid: str | None
    owner_jids: list[str] | None = None
    packs: list[dict[str, Any]]
    stats: dict[str, int]


class MyPacksAnswer(BaseModel):
    data: MyPacksData


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "A parameter is invalid (`INVALID_INPUT`, `INVALID_CURSOR`); the message names it.",
    401: "The ID token was not accepted (bad signature, audience, issuer, expiry or nonce).",
    403: "Refused (`LINK_INVALID`, `LINK_EXPIRED`, `SIGNED_LINKS_DISABLED`, `CSRF_REJECTED`, a ban).",
    404: "Not publicly reachable (`PACK_NOT_FOUND`, `STICKER_NOT_FOUND`, `STICKER_FILE_MISSING`).",
    413: "The request body is larger than HTTP_MAX_BODY_BYTES (`PAYLOAD_TOO_LARGE`).",
    422: "The pack breaks a WhatsApp rule (`EXPORT_INVALID`); the message names it.",
    429: "Too many requests from this client (`RATE_LIMITED`); see `Retry-After`.",
    502: "The sign-in provider could not be reached or answered nonsense.",
}
NOT_MODIFIED: dict[str, Any] = {"description": "Not modified: the `If-None-Match` ETag is current."}


def json_answer(model: type[BaseModel], description: str, example: Any = None) -> dict[str, Any]:
    """A `responses` entry: `model` as the JSON schema, with an example when given."""
    answer: dict[str, Any] = {"model": model, "description": description}
    if example is not None:
        answer["content"] = {"application/json": {"example": example}}
    return answer


def error_answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses` entries for these error statuses, each the JSON error envelope."""
    return {status: json_answer(ErrorEnvelope, ERROR_DESCRIPTIONS[status]) for status in statuses}


def without_validation_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents a 422 `HTTPValidationError` on every route with parameters; this API answers
    invalid parameters with 400 and the error envelope instead, so those entries are dropped (a real
    422, `EXPORT_INVALID`, refers to the envelope and stays)."""
    unused = {"HTTPValidationError", "ValidationError"}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            content = responses.get("422", {}).get("content", {})
            reference = content.get("application/json", {}).get("schema", {}).get("$ref", "")
            if reference.rsplit("/", 1)[-1] in unused:
                del responses["422"]
    schemas = document.get("components", {}).get("schemas", {})
    for name in unused:
        schemas.pop(name, None)
    return document
