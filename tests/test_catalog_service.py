"""CatalogService reads against real databases (each test runs on SQLite, PostgreSQL and MariaDB)."""

from __future__ import annotations

import datetime as dt
import json
import math
from types import SimpleNamespace

import media_factory as mf
import pytest
import sqlalchemy as sa
from test_catalog_support import (
    OWNER,
    add_assets,
    catalog_settings,
    classify,
    listed_keys,
    make_pack,
    numbered_key_suffixes,
    record_engagement,
    set_pack_columns,
)

from omnizap.catalog.derive import SNAPSHOT_SOURCE_VERSION
from omnizap.catalog.service import CatalogService
from omnizap.core.errors import InvalidInput
from omnizap.core.packs.service import PackService
from omnizap.core.stickers.service import StickerService
from omnizap.platform.db.schema import sticker_asset, sticker_pack_score_snapshot
from omnizap.platform.db.types import utcnow
from omnizap.platform.storage import local_storage
from omnizap.web.pages.source import _default_reader

SUMMARY_FIELDS = {
    "id",
    "pack_key",
    "name",
    "publisher",
    "description",
    "visibility",
    "status",
    "sticker_count",
    "is_complete",
    "cover_sticker_id",
    "cover_url",
    "api_url",
    "web_url",
    "download_url",
    "whatsapp",
    "created_at",
    "updated_at",
    "engagement",
    "signals",
    "manual_tags",
}
ENTRY_FIELDS = SUMMARY_FIELDS | {"classification", "tags", "is_nsfw", "nsfw_level"}
SIGNAL_FIELDS = {
    "classification_confidence",
    "quality_score",
    "engagement_score",
    "diversity_score",
    "cohesion_score",
    "duplicate_penalty",
    "trend_score",
    "pack_score",
    "ranking_score",
    "age_decay_factor",
    "age_decay_days",
    "trending_now",
    "nsfw_level",
    "sensitive_content",
    "scoring_weights",
}


@pytest.fixture
def env(db, db_settings):
    settings = catalog_settings(db_settings)
    return SimpleNamespace(
        db=db, settings=settings, packs=PackService(db, settings, key_suffix=numbered_key_suffixes())
    )


def catalog_for(env, **overrides) -> CatalogService:
    settings = catalog_settings(env.settings, **overrides) if overrides else env.settings
    catalog = CatalogService(env.db, settings)
    catalog.refresh_rankings()
    return catalog


def _json_only(value: object) -> None:
    """JSON-ready: dict/list/str/int/float/bool/None only, with string keys."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            _json_only(item)
    elif isinstance(value, list):
        for item in value:
            _json_only(item)
    else:
        assert value is None or isinstance(value, str | int | float | bool), type(value)


# --- shapes ---------------------------------------------------------------------------------------
def test_list_entry_and_details_have_the_original_field_names(env, tmp_path):
    stickers = StickerService(env.db, local_storage(env.settings), env.settings)
    sticker_ids = [
        stickers.ingest(mf.encode_image(mf.graphic_image(300, 200, seed), "PNG"), owner_jid=OWNER).asset.id
        for seed in (1, 2)
    ]
    pack = env.packs.create_pack(
        OWNER,
        "Sunny Cats",
        publisher="Ana",
        description="Cats in the sun [auto-pack:collector] [pack-tags:Cats,Animais Fofos]",
        initial_sticker_ids=sticker_ids,
    )
    env.packs.set_fields(OWNER, pack.pack_key, item=2, emojis="😺,🌞", accessibility_label="A cat")
    catalog = catalog_for(env, whatsapp_bot_number="+55 (11) 98888-7777")

    body = catalog.list_packs()
    _json_only(body)
    json.dumps(body)
    assert set(body) == {"data", "pagination", "filters"}
    assert set(body["pagination"]) == {"limit", "offset", "has_more", "next_offset", "next_cursor"}
    entry = body["data"][0]
    assert set(entry) == ENTRY_FIELDS
    assert entry["pack_key"] == pack.pack_key
    assert entry["description"] == "Cats in the sun"
    assert entry["manual_tags"] == ["cats", "animais-fofos"]
    assert entry["tags"] == ["cats", "animais-fofos"]
    assert entry["classification"]["tags"] == ["cats", "animais-fofos"]
    assert entry["sticker_count"] == 2 and entry["is_complete"] is False
    assert entry["cover_sticker_id"] == sticker_ids[0]
    assert entry["cover_url"] == f"/api/sticker-packs/{pack.pack_key}/stickers/{sticker_ids[0]}.webp"
    assert entry["api_url"] == f"/api/sticker-packs/{pack.pack_key}"
    assert entry["web_url"] == f"/stickers/{pack.pack_key}"
    assert entry["download_url"] == f"/api/sticker-packs/{pack.pack_key}/download/whatsapp"
    assert entry["whatsapp"] == {
        "phone": "5511988887777",
        "text": f"/pack send {pack.pack_key}",
        "url": f"https://wa.me/5511988887777?text=%2Fpack%20send%20{pack.pack_key}",
    }
    assert entry["engagement"] == {
        "open_count": 0,
        "like_count": 0,
        "dislike_count": 0,
        "score": 0,
        "updated_at": None,
    }
    assert set(entry["signals"]) == SIGNAL_FIELDS
    assert entry["is_nsfw"] is False and entry["nsfw_level"] == "safe"

    details = catalog.pack_detail(pack.pack_key)
    _json_only(details)
    assert set(details) == ENTRY_FIELDS | {"items", "whatsapp_send_url", "telegram", "telegram_url"}
    assert details["whatsapp_send_url"] == entry["whatsapp"]["url"]
    assert details["telegram"] is None and details["telegram_url"] is None
    assert [item["position"] for item in details["items"]] == [1, 2]
    second = details["items"][1]
    assert set(second) == {
        "id",
        "sticker_id",
        "position",
        "emojis",
        "accessibility_label",
        "created_at",
        "asset_url",
        "preview_url",
        "tags",
        "is_nsfw",
        "asset",
    }
    assert second["sticker_id"] == sticker_ids[1]
    assert second["emojis"] == ["😺", "🌞"] and second["accessibility_label"] == "A cat"
    assert second["asset_url"] == f"/api/sticker-packs/{pack.pack_key}/stickers/{sticker_ids[1]}.webp"
    assert second["preview_url"] == second["asset_url"] + "?size=128"
    assert second["asset"]["mimetype"] == "image/webp"
    assert second["asset"]["width"] == 512 and second["asset"]["height"] == 512
    assert second["asset"]["size_bytes"] > 0 and second["asset"]["classification"] is None

    everything = json.dumps([body, details, catalog.intents(), catalog.creators()])
    assert OWNER not in everything and "5511999999999" not in everything
    assert "owner_jid" not in everything and "storage_path" not in everything


def test_whatsapp_link_is_null_without_a_configured_bot_number(env):
    make_pack(env.packs, env.db, "Plain")
    catalog = catalog_for(env, whatsapp_bot_number="123")  # too short to be a phone number
    assert catalog.list_packs()["data"][0]["whatsapp"] is None


def test_whatsapp_send_link_types_the_configured_command_prefix(env):
    pack = make_pack(env.packs, env.db, "Plain")
    catalog = catalog_for(env, whatsapp_bot_number="5511988887777", command_prefix="!")
    details = catalog.pack_detail(pack.pack_key)
    assert details["whatsapp"]["text"] == f"!pack send {pack.pack_key}"
    assert (
        details["whatsapp_send_url"] == f"https://wa.me/5511988887777?text=%21pack%20send%20{pack.pack_key}"
    )
    assert catalog_for(env).pack_detail(pack.pack_key)["whatsapp_send_url"] is None


@pytest.mark.parametrize(
    "raw", ["123", "55 11 9888x7777", "+5511988887777999999", "５５１１９８８８８７７７７"]
)
def test_bot_number_setting_refuses_what_is_not_a_phone_number(raw: str):
    from pydantic import ValidationError

    from omnizap.config import Settings

    with pytest.raises(ValidationError, match="WHATSAPP_BOT_NUMBER must be the bot's phone number"):
        Settings(_env_file=None, whatsapp_bot_number=raw)
    assert Settings(_env_file=None, whatsapp_bot_number="+55 (11) 98888-7777").whatsapp_bot_number == (
        "5511988887777"
    )


def _record_telegram_set(db, pack, *, synced_version: int) -> str:
    """The row `/pack send` on Telegram leaves, written by the transport's own repository."""
    from omnizap.chat.transports.telegram_sets import SetEntry, SetRecord, StickerSetRepository, set_name_for

    name = set_name_for(pack.pack_key, "omnizap_test_bot")
    record = SetRecord(pack.pack_key, name, 42, synced_version, (SetEntry("0" * 64, "AgAD"),))
    StickerSetRepository(db).save(record, pack_id=pack.id)
    return name


def test_pack_detail_links_the_telegram_set_and_says_when_it_is_older(env):
    pack = make_pack(env.packs, env.db, "Telegram Cats")
    name = _record_telegram_set(env.db, pack, synced_version=pack.version)
    details = catalog_for(env).pack_detail(pack.pack_key)
    assert details["telegram_url"] == f"https://t.me/addstickers/{name}"
    assert details["telegram"] == {
        "url": f"https://t.me/addstickers/{name}",
        "set_name": name,
        "synced_version": pack.version,
        "is_current": True,
    }
    # The pack changes after the sync: still linked, flagged as possibly older.
    env.packs.rename(OWNER, pack.pack_key, "Telegram Cats 2")
    details = catalog_for(env).pack_detail(pack.pack_key)
    assert details["telegram_url"] == f"https://t.me/addstickers/{name}"
    assert details["telegram"]["is_current"] is False
    # Lists carry no Telegram fields (only the detail read looks the set up).
    assert "telegram_url" not in catalog_for(env).list_packs()["data"][0]


def test_private_packs_telegram_set_name_appears_in_no_public_read(env):
    public = make_pack(env.packs, env.db, "Open Cats")
    private = make_pack(env.packs, env.db, "Secret Cats", visibility="private")
    _record_telegram_set(env.db, public, synced_version=public.version)
    secret_name = _record_telegram_set(env.db, private, synced_version=private.version)
    catalog = catalog_for(env, whatsapp_bot_number="5511988887777")
    assert catalog.pack_detail(private.pack_key) is None
    everything = json.dumps(
        [
            catalog.list_packs(),
            catalog.pack_detail(public.pack_key),
            catalog.intents(),
            catalog.creators(),
            catalog.stats(),
        ]
    )
    assert secret_name not in everything and "secret" not in everything.lower()


# --- visibility -----------------------------------------------------------------------------------
def test_only_listed_packs_appear_in_lists_stats_and_sitemap(env):
    public = make_pack(env.packs, env.db, "Public One", stickers=2)
    unlisted = make_pack(env.packs, env.db, "Unlisted One", visibility="unlisted")
    private = make_pack(env.packs, env.db, "Private One", visibility="private")
    deleted = make_pack(env.packs, env.db, "Deleted One")
    env.packs.delete(OWNER, deleted.pack_key)
    empty = make_pack(env.packs, env.db, "Empty One", stickers=0)
    draft = make_pack(env.packs, env.db, "Draft One")
    set_pack_columns(env.db, draft.id, status="draft")
    building = make_pack(env.packs, env.db, "Building One")
    set_pack_columns(env.db, building.id, pack_status="building")
    catalog = catalog_for(env)

    for sort in ("", "trending", "new", "liked", "downloads"):
        assert listed_keys(catalog, sort=sort) == [public.pack_key]
    assert listed_keys(catalog, q="one") == [public.pack_key]
    assert [key for key, _ in catalog.sitemap_entries()] == [public.pack_key]
    assert catalog.stats()["data"] == {
        "packs_total": 1,
        "stickers_total": 2,
        "creators_total": 1,
        "downloads_total": 0,
    }
    intents = catalog.intents()["data"]
    assert {entry["pack_key"] for entries in intents.values() for entry in entries} <= {public.pack_key}
    assert [creator["top_pack"]["pack_key"] for creator in catalog.creators()["data"]] == [public.pack_key]

    assert catalog.pack_detail(unlisted.pack_key)["visibility"] == "unlisted"
    assert catalog.pack_detail(public.pack_key.upper())["pack_key"] == public.pack_key
    for hidden in (private, deleted, draft, building):
        assert catalog.pack_detail(hidden.pack_key) is None
    assert catalog.pack_detail(empty.pack_key)["items"] == []
    assert catalog.pack_detail("no-such-pack-zzzzz") is None
    with pytest.raises(InvalidInput, match="Invalid pack key: it holds nothing but control characters"):
        catalog.pack_detail("  \x00 ")
    with pytest.raises(InvalidInput, match="pack_key is required"):
        catalog.pack_detail("   ")


def test_only_classified_setting_hides_unclassified_packs_and_stickers(env):
    classified = make_pack(env.packs, env.db, "Half Classified", stickers=3)
    plain = make_pack(env.packs, env.db, "Not Classified")
    first = env.packs.items(classified.id)[0].sticker_id
    classify(env.db, first, category="cartoon", scores={"cartoon": 0.9, "anime illustration": 0.1})
    catalog = catalog_for(env, sticker_catalog_only_classified=True)

    assert listed_keys(catalog) == [classified.pack_key]
    details = catalog.pack_detail(classified.pack_key)
    assert [item["sticker_id"] for item in details["items"]] == [first]
    assert details["sticker_count"] == 1 and details["cover_sticker_id"] == first
    assert details["items"][0]["tags"] == ["cartoon"]
    assert details["items"][0]["asset"]["classification"]["category"] == "cartoon"
    assert catalog.pack_detail(plain.pack_key) is None
    everyone = catalog_for(env)
    assert set(listed_keys(everyone)) == {classified.pack_key, plain.pack_key}


# --- search ---------------------------------------------------------------------------------------
def test_search_is_case_and_accent_insensitive_and_takes_like_metacharacters_literally(env):
    cafe = make_pack(env.packs, env.db, "Café Com Leite", publisher="Zé")
    percent = make_pack(env.packs, env.db, "100% Fun")
    underscore = make_pack(env.packs, env.db, "under_score", publisher="Bea")
    backslash = make_pack(env.packs, env.db, "back\\slash")
    other = make_pack(
        env.packs, env.db, "Plain Pack", publisher="Caio", description="about dogs [pack-tags:dog]"
    )
    catalog = catalog_for(env)

    assert listed_keys(catalog, q="café") == [cafe.pack_key]
    assert listed_keys(catalog, q="CAFE") == [cafe.pack_key]
    assert listed_keys(catalog, q="ze") == [cafe.pack_key]
    assert listed_keys(catalog, q="%") == [percent.pack_key]
    assert listed_keys(catalog, q="0% f") == [percent.pack_key]
    assert listed_keys(catalog, q="_") == [underscore.pack_key]
    assert listed_keys(catalog, q="\\") == [backslash.pack_key]
    assert listed_keys(catalog, q="r_s") == [underscore.pack_key]
    assert listed_keys(catalog, q="about DOGS") == [other.pack_key]  # description
    assert listed_keys(catalog, q="caio") == [other.pack_key]  # publisher
    assert listed_keys(catalog, q="dog") == [other.pack_key]  # manual tag
    assert listed_keys(catalog, q=other.pack_key[-5:]) == [other.pack_key]  # pack key
    assert listed_keys(catalog, q="  plain\t\npack ") == [other.pack_key]  # whitespace collapses
    assert listed_keys(catalog, q="plain\x00pack") == [other.pack_key]  # a control character is a space
    assert listed_keys(catalog, q="nothing like this") == []
    assert catalog.list_packs(q="  café\x07 ")["filters"]["q"] == "café"


# --- sorts ----------------------------------------------------------------------------------------
def test_each_sort_order(env, db):
    now = utcnow()
    old = make_pack(env.packs, db, "Old Liked")
    mid = make_pack(env.packs, db, "Mid Opened")
    hot = make_pack(env.packs, db, "New Trending")
    record_engagement(db, old.id, likes=100)
    record_engagement(db, mid.id, opens=500, opened_at=[now - dt.timedelta(days=3)] * 20)
    recent_opens = [now - dt.timedelta(hours=2)] * 3 + [now - dt.timedelta(days=3)] * 11
    record_engagement(db, hot.id, opens=14, opened_at=recent_opens)  # 3 today vs 2/day: trend 1.5
    catalog = catalog_for(env)

    assert listed_keys(catalog) == [old.pack_key, mid.pack_key, hot.pack_key]
    # An explicit sort=popular is the default ranking (the original turned it into trending).
    assert listed_keys(catalog, sort="popular") == listed_keys(catalog)
    assert listed_keys(catalog, sort="trending") == [hot.pack_key, old.pack_key, mid.pack_key]
    assert listed_keys(catalog, sort="new") == [hot.pack_key, mid.pack_key, old.pack_key]
    assert listed_keys(catalog, sort="recent") == listed_keys(catalog, sort="new")
    assert listed_keys(catalog, sort="liked") == [old.pack_key, mid.pack_key, hot.pack_key]
    assert listed_keys(catalog, sort="likes") == listed_keys(catalog, sort="liked")
    assert listed_keys(catalog, sort="comments") == listed_keys(catalog, sort="liked")
    assert listed_keys(catalog, sort="downloads") == [mid.pack_key, hot.pack_key, old.pack_key]
    assert catalog.list_packs(sort="likes")["filters"]["sort"] == "liked"

    popular = catalog.list_packs()["data"]
    scores = [entry["signals"]["ranking_score"] for entry in popular]
    assert scores == sorted(scores, reverse=True)
    trending = catalog.list_packs(sort="trending")["data"][0]["signals"]
    assert trending["trending_now"] is True and trending["trend_score"] == pytest.approx(1.5)
    with pytest.raises(InvalidInput, match="sort") as raised:
        catalog.list_packs(sort="random")
    assert "popular" in raised.value.message and "trending" in raised.value.message


def test_signals_follow_the_published_formulas(env, db):
    pack = make_pack(env.packs, db, "Formula", stickers=2)
    record_engagement(db, pack.id, opens=40, likes=10, dislikes=2)
    signals = catalog_for(env).list_packs()["data"][0]["signals"]
    assert signals["engagement_score"] == pytest.approx((2 * 10 + 0.15 * 40 - 1.25 * 2) / 100)
    # 512×512 stickers of 20,000 bytes: area score 1, size score 1
    assert signals["quality_score"] == pytest.approx(1.0)
    weights = signals["scoring_weights"]
    expected_pack = 0.5 * weights["classification"] + signals["engagement_score"] * weights["engagement"]
    expected_pack += 1.0 * weights["quality"] + 0.25 * weights["diversity"]  # no tags: diversity 0.25
    assert signals["pack_score"] == pytest.approx(expected_pack, abs=1e-5)
    assert signals["age_decay_factor"] == pytest.approx(1.0, abs=1e-3)
    expected_ranking = (
        signals["pack_score"] * signals["age_decay_factor"] + 0.08 * signals["trend_score"] + 0.025
    )
    assert signals["ranking_score"] == pytest.approx(expected_ranking, abs=1e-5)


# --- categories and NSFW ----------------------------------------------------------------------------
def test_categories_match_any_merged_tag_and_the_nsfw_ceiling_holds(env, db):
    cats = make_pack(env.packs, db, "Cats", description="[pack-tags:cats,cute]")
    dogs = make_pack(env.packs, db, "Dogs", description="[pack-tags:dogs]")
    anime = make_pack(env.packs, db, "Anime")
    for item in env.packs.items(anime.id):
        classify(
            db,
            item.sticker_id,
            category="anime illustration",
            scores={"anime illustration": 0.8, "cartoon": 0.2},
        )
    spicy = make_pack(env.packs, db, "Spicy", description="[pack-tags:cute]")
    for item in env.packs.items(spicy.id):
        classify(
            db, item.sticker_id, category="cartoon", scores={"cartoon": 0.5, "nsfw content": 0.5}, nsfw=0.5
        )
    flagged = make_pack(env.packs, db, "Flagged", description="[pack-tags:cute]")
    set_pack_columns(db, flagged.id, is_sensitive=1)
    explicit = make_pack(env.packs, db, "Explicit", description="[pack-tags:cute]")
    for item in env.packs.items(explicit.id):
        classify(db, item.sticker_id, category="nsfw content", scores={"nsfw content": 0.95}, nsfw=0.95)
    catalog = catalog_for(env)

    assert set(listed_keys(catalog, categories=["cats"])) == {cats.pack_key}
    assert set(listed_keys(catalog, categories="Cats,DOGS")) == {cats.pack_key, dogs.pack_key}
    assert set(listed_keys(catalog, categories=["anime"])) == {anime.pack_key}  # a classification tag
    assert set(listed_keys(catalog, categories=["cute"])) == {cats.pack_key}  # safe by default
    assert set(listed_keys(catalog, categories=["cute"], nsfw="suggestive")) == {
        cats.pack_key,
        spicy.pack_key,
    }
    assert set(listed_keys(catalog, categories=["cute"], nsfw="explicit")) == {
        cats.pack_key,
        spicy.pack_key,
        flagged.pack_key,
        explicit.pack_key,
    }
    everything = {entry["pack_key"]: entry for entry in catalog.list_packs(nsfw="explicit")["data"]}
    assert everything[spicy.pack_key]["nsfw_level"] == "suggestive"
    assert everything[spicy.pack_key]["is_nsfw"] is True
    assert everything[flagged.pack_key]["nsfw_level"] == "explicit"
    assert everything[explicit.pack_key]["signals"]["nsfw_level"] == "explicit"
    assert everything[anime.pack_key]["classification"]["category"] == "anime illustration"
    assert "nsfw" in everything[explicit.pack_key]["tags"]
    assert set(listed_keys(catalog)) == {cats.pack_key, dogs.pack_key, anime.pack_key}
    # A name with "2018" is not sensitive (the original's substring rule flagged it).
    retro = make_pack(env.packs, db, "Copa 2018 Memes")
    assert retro.pack_key in listed_keys(catalog_for(env), q="2018")
    with pytest.raises(InvalidInput, match="nsfw"):
        catalog.list_packs(nsfw="all")


# --- intents --------------------------------------------------------------------------------------
def test_intents_and_the_intent_filter(env, db):
    now = utcnow()
    rising = make_pack(env.packs, db, "Rising")
    record_engagement(db, rising.id, opens=5, opened_at=[now - dt.timedelta(hours=1)] * 5)
    liked = make_pack(env.packs, db, "Liked")
    record_engagement(db, liked.id, likes=12)
    quiet = make_pack(env.packs, db, "Quiet")
    hidden = make_pack(env.packs, db, "Sensitive")
    set_pack_columns(db, hidden.id, is_sensitive=1)
    record_engagement(db, hidden.id, likes=40)
    catalog = catalog_for(env)

    body = catalog.intents()
    assert set(body["data"]) == {"em_alta", "novos", "crescendo_agora", "mais_curtidos", "melhor_avaliados"}
    assert body["filters"]["limit"] == 18
    data = body["data"]
    keys = {name: [entry["pack_key"] for entry in entries] for name, entries in data.items()}
    assert keys["crescendo_agora"] == [rising.pack_key]
    assert keys["mais_curtidos"] == [liked.pack_key]
    assert keys["melhor_avaliados"] == [liked.pack_key]
    assert keys["novos"] == [quiet.pack_key, liked.pack_key, rising.pack_key]
    assert set(keys["em_alta"]) == {rising.pack_key, liked.pack_key, quiet.pack_key}
    assert all(hidden.pack_key not in entries for entries in keys.values())  # safe packs only

    assert listed_keys(catalog, intent="crescendo_agora") == [rising.pack_key]
    assert listed_keys(catalog, intent="Mais Curtidos") == [liked.pack_key]
    assert set(listed_keys(catalog, intent="novos")) == {quiet.pack_key}
    assert listed_keys(catalog, intent="em_alta") == []
    assert catalog.intents(limit=1)["data"]["novos"] == [data["novos"][0]]
    assert catalog.intents(q="rising")["data"]["novos"][0]["pack_key"] == rising.pack_key
    with pytest.raises(InvalidInput, match="intent"):
        catalog.list_packs(intent="hot")
    for bad in (0, 51, "x"):
        with pytest.raises(InvalidInput, match="limit"):
            catalog.intents(limit=bad)


# --- creators -------------------------------------------------------------------------------------
def test_creators_group_publishers_and_score_them(env, db):
    first = make_pack(env.packs, db, "Ana One", publisher="Ana")
    second = make_pack(env.packs, db, "Ana Two", publisher="ANA")
    bea = make_pack(env.packs, db, "Bea Only", publisher="Bea")
    make_pack(env.packs, db, "Bea Unlisted", publisher="Bea", visibility="unlisted")
    record_engagement(db, first.id, likes=10, opens=100)
    record_engagement(db, second.id, likes=5)
    record_engagement(db, bea.id, opens=10)
    catalog = catalog_for(env, sticker_creator_verified_publishers="bea, Someone Else")

    body = catalog.creators()
    assert body["filters"] == {"visibility": "public", "q": "", "limit": 50}
    creators = {creator["publisher"].lower(): creator for creator in body["data"]}
    assert set(creators) == {"ana", "bea"}
    ana = creators["ana"]
    assert ana["stats"]["packs_count"] == 2
    assert ana["stats"]["total_likes"] == 15 and ana["stats"]["total_opens"] == 100
    expected = ana["stats"]["avg_pack_score"] * 0.45 + 15 * 0.0008 + 100 * 0.00015
    assert ana["creator_score"] == pytest.approx(expected, abs=1e-5)
    assert ana["top_pack"]["pack_key"] == first.pack_key
    assert ana["verified"] is False and ana["badges"] == []
    assert creators["bea"]["verified"] is True and creators["bea"]["badges"] == ["verified_creator"]
    assert creators["bea"]["stats"]["packs_count"] == 1  # the unlisted pack does not count
    assert [creator["publisher"].lower() for creator in body["data"]] == ["ana", "bea"]
    assert [creator["publisher"] for creator in catalog.creators(q="be")["data"]] == ["Bea"]
    assert len(catalog.creators(limit=1)["data"]) == 1
    for bad in (0, 201, "many"):
        with pytest.raises(InvalidInput, match="limit"):
            catalog.creators(limit=bad)


# --- stats ----------------------------------------------------------------------------------------
def test_marketplace_stats_are_flat_and_count_listed_packs_only(env, db):
    now = utcnow()
    listed = make_pack(env.packs, db, "Listed", stickers=3)
    unlisted = make_pack(env.packs, db, "Unlisted", stickers=2, visibility="unlisted")
    orphans = add_assets(db, 4)  # stickers in no pack; two of them were once in a public pack
    with db.transaction() as connection:
        connection.execute(
            sticker_asset.update().where(sticker_asset.c.id.in_(orphans[:2])).values(shared_at=now)
        )
    record_engagement(db, listed.id, opens=7, likes=2, opened_at=[now] * 3 + [now - dt.timedelta(days=2)] * 2)
    record_engagement(db, unlisted.id, opens=50, likes=9, opened_at=[now] * 9)
    body = catalog_for(env).marketplace_stats()

    assert "data" not in body
    assert body["total_packs"] == 1
    assert body["total_stickers"] == 3
    assert body["stickers_without_pack"] == 2  # never-shared stickers are private: not counted
    assert body["total_clicks"] == 7 and body["total_likes"] == 2
    assert body["creators_total"] == 1
    assert body["packs_last_7_days"] == 1
    series = body["series_last_7_days"]
    assert len(series) == 7
    days = [dt.date.fromisoformat(day["date"]) for day in series]
    assert days == [now.date() - dt.timedelta(days=offset) for offset in range(6, -1, -1)]
    assert series[-1] == {
        "date": now.date().isoformat(),
        "packs_published": 1,
        "stickers_created": 3,
        "clicks": 3,
        "likes": 2,
    }
    assert series[-3]["clicks"] == 2
    assert body["clicks_last_7_days"] == 5 and body["likes_last_7_days"] == 2
    assert body["cache_seconds"] == 45 and body["updated_at"]


def test_readme_summary_and_markdown(env, db):
    tricky = make_pack(env.packs, db, "Pipes | and [links](x)", publisher="Ana*")
    record_engagement(db, tricky.id, likes=3, opens=9)
    catalog = catalog_for(env)
    summary = catalog.readme_summary()["data"]
    assert summary["totals"] == {
        "total_packs": 1,
        "total_stickers": 3,
        "total_creators": 1,
        "total_downloads": 9,
        "total_likes": 3,
    }
    assert summary["top_packs"][0]["pack_key"] == tricky.pack_key
    markdown = catalog.readme_markdown()
    assert markdown == summary["markdown"]
    assert "| Packs | 1 |" in markdown and "| Likes | 3 |" in markdown
    assert "Pipes \\| and \\[links\\]\\(x\\)" in markdown and "Ana\\*" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| 1 |"))
    assert row.count(" | ") == 4  # the pipe in the name did not add a column


# --- parameters -----------------------------------------------------------------------------------
def test_hostile_parameters_are_refused_or_tamed(env):
    make_pack(env.packs, env.db, "Something")
    catalog = catalog_for(env)

    huge = "a" * 1_000_000
    assert catalog.list_packs(q=huge)["filters"]["q"] == "a" * 120
    for bad in (0, -1, 61, "abc", "1.5", "1e3", True, " 9" * 10):
        with pytest.raises(InvalidInput, match="limit") as raised:
            catalog.list_packs(limit=bad)
        assert raised.value.code == "INVALID_INPUT"
    assert catalog.list_packs(limit="60")["pagination"]["limit"] == 60
    assert catalog.list_packs(limit=None)["pagination"]["limit"] == 24
    for bad in (-1, 100_001, "ten", 10**30):
        with pytest.raises(InvalidInput, match="offset"):
            catalog.list_packs(offset=bad)
    assert catalog.list_packs(offset=100_000)["data"] == []
    with pytest.raises(InvalidInput, match="categories"):
        catalog.list_packs(categories=[f"tag{number}" for number in range(1000)])
    with pytest.raises(InvalidInput, match="categories"):
        catalog.list_packs(categories=",".join(f"t{number}" for number in range(21)))
    assert catalog.list_packs(categories=[f"t{number}" for number in range(20)])["data"] == []
    assert catalog.list_packs(categories=["", " ", "!!!"])["filters"]["categories"] == []
    assert catalog.list_packs(categories=["x" * 5000])["filters"]["categories"] == ["x" * 40]
    with pytest.raises(InvalidInput, match="sort"):
        catalog.list_packs(sort="\x00popular")
    with pytest.raises(InvalidInput, match="intent"):
        catalog.list_packs(intent="x" * 10_000)


# --- snapshots ------------------------------------------------------------------------------------
def test_generation_writes_snapshots_and_stale_ones_are_recomputed(env, db):
    pack = make_pack(env.packs, db, "Snapshotted")
    catalog = catalog_for(env)
    with db.read() as connection:
        row = connection.execute(sa.select(sticker_pack_score_snapshot)).mappings().one()
    assert row["pack_id"] == pack.id and row["source_version"] == SNAPSHOT_SOURCE_VERSION
    assert row["refreshed_at"] >= pack.updated_at
    real = catalog.list_packs()["data"][0]["signals"]
    assert real["ranking_score"] == pytest.approx(row["ranking_score"])

    max_age = dt.timedelta(milliseconds=env.settings.sticker_score_snapshot_max_age_ms)
    tampered = {**row["scores_json"], "ranking_score": 99.0, "pack_score": 1.5}
    with db.transaction() as connection:
        connection.execute(
            sticker_pack_score_snapshot.update().values(
                ranking_score=99.0, scores_json=tampered, refreshed_at=utcnow() - 2 * max_age
            )
        )
    fresh_reader = CatalogService(db, env.settings)  # a new process: no generation built by it
    signals = fresh_reader.list_packs()["data"][0]["signals"]
    assert signals["ranking_score"] == pytest.approx(real["ranking_score"], abs=1e-3)  # recomputed
    assert fresh_reader.pack_detail(pack.pack_key)["signals"]["ranking_score"] != 99.0

    with db.transaction() as connection:  # fresh by age, but older than the pack's last change
        connection.execute(sticker_pack_score_snapshot.update().values(refreshed_at=pack.updated_at))
    env.packs.rename(OWNER, pack.pack_key, "Renamed")
    another = CatalogService(db, env.settings)
    assert another.pack_detail(pack.pack_key)["signals"]["ranking_score"] != 99.0
    assert another.list_packs()["data"][0]["signals"]["ranking_score"] != 99.0
    assert math.isfinite(another.list_packs()["data"][0]["signals"]["ranking_score"])


def test_the_pages_build_the_catalog_service_from_the_runtime(env):
    pack = make_pack(env.packs, env.db, "Paged")
    reader = _default_reader(SimpleNamespace(database=env.db, settings=env.settings))
    assert isinstance(reader, CatalogService)
    listing = reader.list_packs(q="", sort="", categories=[], intent="", limit=24, offset=0)
    assert [entry["pack_key"] for entry in listing["data"]] == [pack.pack_key]
    assert set(reader.intents(limit=12)["data"]) >= {"em_alta", "novos"}
    assert reader.stats()["data"]["packs_total"] == 1
    assert reader.pack_detail(pack.pack_key)["name"] == "Paged"
    for sort in ("", "trending", "recent", "likes", "downloads"):  # the pages' sort options
        reader.list_packs(q="", sort=sort, categories=[], intent="", limit=24, offset=0)
