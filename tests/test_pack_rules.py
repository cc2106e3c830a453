"""Property tests of the pure pack rules: text cleaning, keys, emojis, visibility, positions."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnizap.core.errors import InvalidInput
from omnizap.core.packs import rules

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
any_text = st.text(st.characters(codec="utf-8") | st.sampled_from("\n\r\t\x00\x1b\x7f\x85\u2028 "))


# --- sanitize_text ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\nb", "a b"),
        ("a\r\n\tb", "a b"),
        ("  Meus   memes 😂 ", "Meus memes 😂"),
        ("a\x00b\x1b[31mc", "a b [31mc"),
        ("line\u2028break", "line break"),
        ("\n\t  ", None),
        ("", None),
        (None, None),
        ("bad\ud800half", "bad\ufffdhalf"),
    ],
)
def test_sanitize_examples(raw, expected):
    assert rules.sanitize_text(raw, 120) == expected


def test_sanitize_cuts_by_characters_and_never_ends_in_a_space():
    assert rules.sanitize_text("😂" * 200, 120) == "😂" * 120
    assert rules.sanitize_text("abc def", 4) == "abc"


@given(any_text, st.integers(min_value=1, max_value=300))
def test_sanitize_properties(raw, max_len):
    cleaned = rules.sanitize_text(raw, max_len)
    if cleaned is None:
        return
    assert 0 < len(cleaned) <= max_len
    assert not any(unicodedata.category(char) in {"Cc", "Zl", "Zp", "Cs"} for char in cleaned)
    assert cleaned == cleaned.strip() and "  " not in cleaned
    assert all(char == " " or not char.isspace() for char in cleaned)
    assert rules.sanitize_text(cleaned, max_len) == cleaned  # idempotent
    cleaned.encode("utf-8")  # always storable


@given(st.lists(st.text(st.characters(categories=["L", "N"]), min_size=1), min_size=1))
def test_sanitize_keeps_words_apart(words):
    joined = "\n".join(words)
    assert rules.sanitize_text(joined, 10_000) == " ".join(words)


def test_pack_field_limits_come_from_the_text_policy():
    assert (rules.NAME_MAX, rules.PUBLISHER_MAX, rules.DESCRIPTION_MAX, rules.LABEL_MAX) == (
        120,
        120,
        1024,
        255,
    )
    assert rules.EMOJIS_MAX == 3


@pytest.mark.parametrize("value", [None, "", "-", "clear", "CLEAR", " \t "])
def test_description_clear_words(value):
    assert rules.optional_description(value) is None


# --- pack keys ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Meus memes 😂", "meus-memes"),
        ("Ação & Reação!!", "acao-reacao"),
        ("😂😂😂", "pack"),
        ("", "pack"),
        ("a" * 31 + " b", "a" * 31),  # the cut lands on a dash, which is dropped
        ("--x--", "x"),
    ],
)
def test_slugify_examples(name, slug):
    assert rules.slugify(name) == slug


@given(any_text)
def test_slug_and_key_format(name):
    slug = rules.slugify(name)
    assert SLUG.match(slug) and len(slug) <= 32
    key = rules.make_pack_key(name)
    assert rules.is_valid_pack_key(key)
    assert key.startswith(slug + "-")


@given(st.text(alphabet=rules.KEY_ALPHABET, min_size=5, max_size=5), any_text)
def test_key_uses_the_given_suffix(suffix, name):
    assert rules.make_pack_key(name, lambda: suffix).endswith("-" + suffix)


@pytest.mark.parametrize("suffix", ["", "abcd", "abcdef", "ABCDE", "ab-de", "abçde"])
def test_key_refuses_a_bad_suffix(suffix):
    with pytest.raises(ValueError, match="suffix"):
        rules.make_pack_key("x", lambda: suffix)


def test_random_suffixes_vary_and_use_the_alphabet():
    suffixes = {rules.random_key_suffix() for _ in range(200)}
    assert len(suffixes) > 190
    assert all(len(suffix) == 5 and set(suffix) <= set(rules.KEY_ALPHABET) for suffix in suffixes)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("meus-memes-k3x9q", True),
        ("pack-00000", True),
        ("a" * 32 + "-abcde", True),
        ("a" * 33 + "-abcde", False),
        ("Meus-memes-k3x9q", False),
        ("meus-memes-k3x9", False),
        ("-abcde", False),
        ("meus memes-k3x9q", False),
        (None, False),
        (12345, False),
    ],
)
def test_is_valid_pack_key(value, valid):
    assert rules.is_valid_pack_key(value) is valid


# --- references -------------------------------------------------------------------------------------
def test_reference_candidates():
    candidates = rules.reference_candidates("https://site/stickers/Meus_Memes-k3x9q?ref=1).")
    assert "meus-memes-k3x9q" in candidates
    assert rules.reference_candidates("Wow!")[:2] == ["Wow!", "wow!"]  # as given comes first
    assert "Wow" in rules.reference_candidates("Wow!")
    assert rules.reference_candidates("  \n ") == []
    assert rules.reference_candidates(None) == []


@given(any_text)
def test_reference_candidates_are_clean_and_bounded(raw):
    for candidate in rules.reference_candidates(raw):
        assert 0 < len(candidate) <= rules.REFERENCE_MAX
        assert not any(unicodedata.category(char) == "Cc" for char in candidate)


# --- emojis, visibility, status ---------------------------------------------------------------------
def test_emojis_examples():
    assert rules.normalize_emojis("😀, 😂,,😎") == ["😀", "😂", "😎"]
    assert rules.normalize_emojis(["😀 😂", " ", "😀"]) == ["😀", "😂"]
    assert rules.normalize_emojis(None) == []
    with pytest.raises(InvalidInput, match="not an emoji"):  # digits are not emoji (keycaps are)
        rules.normalize_emojis(",".join(str(n) for n in range(20)))
    with pytest.raises(InvalidInput):
        rules.normalize_emojis(["😀", 3])  # type: ignore[list-item]
    with pytest.raises(InvalidInput):
        rules.normalize_emojis(42)  # type: ignore[arg-type]


@given(st.one_of(any_text, st.lists(any_text, max_size=30)))
def test_emoji_properties(value):
    """Pack items follow the text policy: anything is either refused or 0–3 distinct emoji."""
    try:
        emojis = rules.normalize_emojis(value)
    except InvalidInput:
        return
    assert len(emojis) <= rules.EMOJIS_MAX
    assert len(set(emojis)) == len(emojis)
    assert all(emoji and not any(char.isspace() for char in emoji) for emoji in emojis)


@pytest.mark.parametrize("value", ["public", "PUBLIC", " Unlisted ", "private", "public\n"])
def test_visibility_accepts_any_case(value):
    assert rules.validate_visibility(value) == value.strip().lower()


@pytest.mark.parametrize("value", ["", None, "everyone", "publico", "pub lic", "pub\x00lic", 1])
def test_visibility_refuses_with_the_choices(value):
    with pytest.raises(InvalidInput, match="private, public or unlisted"):
        rules.validate_visibility(value)


def test_status_validation():
    assert rules.validate_status("Published") == "published"
    with pytest.raises(InvalidInput, match="draft"):
        rules.validate_status("live")


# --- positions --------------------------------------------------------------------------------------
def test_reorder_examples():
    assert rules.reorder_positions(["a", "b", "c", "d"], ["d", "a"]) == ["d", "a", "b", "c"]
    assert rules.reorder_positions(["a", "b", "c"], ["x", "c", "c", "b"]) == ["c", "b", "a"]
    assert rules.reorder_positions(["a", "b"], []) == ["a", "b"]


@given(st.lists(st.integers(0, 40), unique=True), st.lists(st.integers(0, 60)))
def test_reorder_is_a_permutation_with_requested_first(current, requested):
    order = rules.reorder_positions(current, requested)
    assert sorted(order) == sorted(current)
    wanted = [item for item in dict.fromkeys(requested) if item in set(current)]
    assert order[: len(wanted)] == wanted
    rest = order[len(wanted) :]
    assert rest == [item for item in current if item not in set(wanted)]


operations = st.lists(
    st.one_of(
        st.just(("add",)),
        st.tuples(st.just("remove"), st.integers(0, 50)),
        st.tuples(st.just("reorder"), st.lists(st.integers(0, 50), max_size=10)),
    ),
    max_size=80,
)


@given(operations)
def test_any_sequence_of_operations_keeps_positions_contiguous(ops):
    positions: dict[int, int] = {}  # item -> position, changed only through the rules' functions
    next_item = 0
    for op in ops:
        order = sorted(positions, key=positions.__getitem__)
        if op[0] == "add":
            positions[next_item] = rules.next_position(positions.values())
            next_item += 1
        elif op[0] == "remove" and order:
            removed = order[op[1] % len(order)]
            moves = rules.positions_after_remove(order, removed)
            del positions[removed]
            positions.update(moves)
        elif op[0] == "reorder" and order:
            requested = [order[index % len(order)] for index in op[1]]
            new_order = rules.reorder_positions(order, requested)
            positions.update(rules.position_moves(positions, new_order))
        assert sorted(positions.values()) == list(range(1, len(positions) + 1))


def test_position_moves_lists_only_changes():
    assert rules.position_moves({"a": 1, "b": 2, "c": 3}, ["a", "c", "b"]) == {"c": 2, "b": 3}
    assert rules.position_moves({"a": 1, "b": 2}, ["a", "b"]) == {}


# --- kinds of packs and auto names -----------------------------------------------------------------
def test_theme_and_collector_predicates():
    assert rules.is_theme_pack("[auto] Cats", None, None)
    assert rules.is_theme_pack("Cats", "best [auto-theme:cats]", None)
    assert rules.is_theme_pack("Cats", None, "cats")
    assert not rules.is_theme_pack("Cats", "plain", " ")
    assert rules.is_collector_pack("x", rules.COLLECTOR_DESCRIPTION, None, False, "pack")
    assert rules.is_collector_pack(
        "x", "Coleção automática de figurinhas criadas pelo usuário.", None, False, "pack"
    )
    assert rules.is_collector_pack("pack12", None, None, False, "pack")
    assert rules.is_collector_pack("anything", None, None, True, "pack")
    # A user's "Pack 2" is the user's (the original squeezed it into "pack2" and took it).
    assert not rules.is_collector_pack("Pack 2", None, None, False, "pack")
    assert not rules.is_collector_pack("pack-10", None, None, False, "pack")
    assert not rules.is_collector_pack("pack", None, None, False, "pack")
    assert not rules.is_collector_pack("[auto] x", rules.COLLECTOR_DESCRIPTION, None, True, "pack")


def test_next_auto_pack_name():
    assert rules.next_auto_pack_name([], "pack") == "pack1"
    assert rules.next_auto_pack_name(["pack", "pack2", "Memes"], "pack") == "pack3"
    assert rules.next_auto_pack_name(["pack1", "pack3"], "pack") == "pack2"
    assert rules.next_auto_pack_name(["Pack 1"], "pack") == "pack2"  # same name once normalised
    long_base = "a" * 120
    assert len(rules.next_auto_pack_name([], long_base)) == 120


@given(st.lists(st.text(max_size=20), max_size=30))
def test_next_auto_pack_name_is_fresh(names):
    name = rules.next_auto_pack_name(names, "pack")
    assert re.fullmatch(r"pack\d+", name)
    assert name not in {rules.normalize_auto_pack_name(existing, fallback="") for existing in names}


def test_normalize_auto_pack_name():
    assert rules.normalize_auto_pack_name("Minhas Figurinhas!") == "minhasfigurinhas"
    assert rules.normalize_auto_pack_name("😂") == "pack"
