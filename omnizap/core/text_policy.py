"""The one policy for text people store: pack names, publishers, descriptions, labels and emojis.

Every surface (CLI, HTTP, chat) reaches it through the service layer, so the same input gets the
same answer everywhere. What it does, in order:

1. Unicode NFC, so "é" typed two ways is stored one way.
2. Refuses, naming the field and the character's code point:
   - bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C): they make
     text display differently from what it says ("gpj.exe" shown as "exe.jpg");
   - control characters (C0, DEL, C1) and line breaks, except line breaks in multi-line fields
     (descriptions); a tab counts as a space;
   - lone surrogates (undecodable bytes), which no database can store.
3. Collapses runs of whitespace to one space (line by line in multi-line fields, with at most one
   empty line in a row) and trims the ends, zero-width characters included.
4. Text with no visible character — only spaces, zero-width or format characters, combining marks,
   Hangul fillers or the braille blank — counts as empty: refused where the field is required.
5. Refuses text longer than the field's limit, saying the limit (it is never cut).

Emoji lists: 1–3 real emoji per sticker (checked against the Unicode emoji list of the `emoji`
package, ZWJ sequences, skin tones, flags and keycaps included), given as a list or as text
separated by commas or spaces; emoji written together ("😀😂") count one by one; repeats are dropped.

Text the system derives rather than a person typing it into the field (a chat display name used as
publisher, a settings default) goes through `fit`, which drops what `clean` would refuse and cuts at
a word boundary, because nobody could act on a refusal there.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from omnizap.core.errors import InvalidInput

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# Invisible characters that letters-and-digits categories do not reveal: Hangul fillers (Lo), the
# braille blank (So) and the combining grapheme joiner. Used as "invisible" names in chat apps.
_INVISIBLE_EXTRA = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})
# Trimmed from both ends like spaces. Not every format character: a flag's trailing tag characters
# and an emoji's variation selector are part of it.
_EDGE_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u180e\u00ad") | _INVISIBLE_EXTRA
_LINE_SEPARATORS = frozenset("\u2028\u2029")
_CONTROL_NAMES = {
    "\t": "TAB",
    "\n": "LINE FEED",
    "\r": "CARRIAGE RETURN",
    "\x1b": "ESCAPE",
    "\x00": "NULL",
    "\x7f": "DELETE",
}

EMOJIS_PER_STICKER_MIN = 1
EMOJIS_PER_STICKER_MAX = 3


@dataclass(frozen=True)
class TextField:
    """A kind of stored text: its name in messages, its limit in characters, whether it has lines."""

    label: str
    max_length: int
    multiline: bool = False


PACK_NAME = TextField("pack name", 120)
PUBLISHER = TextField("publisher", 120)
DESCRIPTION = TextField("description", 1024, multiline=True)
ACCESSIBILITY_LABEL = TextField("accessibility label", 255)
THEME_KEY = TextField("theme key", 160)
EMOJIS_LABEL = "emoji list"


def describe_char(char: str) -> str:
    """`U+202E (RIGHT-TO-LEFT OVERRIDE)`: the code point, and its name where Unicode gives one."""
    name = _CONTROL_NAMES.get(char) or unicodedata.name(char, "")
    code = f"U+{ord(char):04X}"
    return f"{code} ({name})" if name else code


def is_visible(char: str) -> bool:
    return unicodedata.category(char) not in _INVISIBLE_CATEGORIES and char not in _INVISIBLE_EXTRA


def _refusal(label: str, char: str, position: int, why: str) -> InvalidInput:
    return InvalidInput(
        f"The {label} contains {describe_char(char)} at character {position}: {why}; "
        "remove it and try again.",
        details={"field": label, "code_point": f"U+{ord(char):04X}", "position": position},
    )


def _check_characters(text: str, label: str, multiline: bool) -> None:
    for position, char in enumerate(text, 1):
        if char in BIDI_CONTROLS:
            raise _refusal(
                label,
                char,
                position,
                "direction controls can make text display differently from what it says",
            )
        category = unicodedata.category(char)
        if category == "Cs":
            raise _refusal(label, char, position, "it is not a valid character (undecodable input)")
        if char == "\t" or (multiline and (char in "\r\n" or char in _LINE_SEPARATORS)):
            continue
        if char in "\r\n" or char in _LINE_SEPARATORS:
            raise _refusal(label, char, position, f"the {label} must be one line")
        if category == "Cc":
            raise _refusal(label, char, position, "control characters are not allowed")


def _trim(text: str) -> str:
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or text[start] in _EDGE_INVISIBLE):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in _EDGE_INVISIBLE):
        end -= 1
    return text[start:end]


def _one_line(text: str) -> str:
    return _trim(" ".join(text.split()))


def _lines(text: str) -> str:
    for separator in ("\r\n", "\r", "\u2028", "\u2029"):
        text = text.replace(separator, "\n")
    lines = [_one_line(line) for line in text.split("\n")]
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):  # at most one empty line in a row
            kept.append(line)
    while kept and not kept[-1]:
        kept.pop()
    return "\n".join(kept)


def normalized(value: object, field: TextField) -> str:
    """NFC, checked characters, collapsed whitespace; "" when nothing visible is left. No length check."""
    text = unicodedata.normalize("NFC", str(value)) if _encodable(str(value)) else str(value)
    _check_characters(text, field.label, field.multiline)
    text = _lines(text) if field.multiline else _one_line(text)
    return text if any(is_visible(char) for char in text) else ""


def _encodable(text: str) -> bool:
    # NFC on text with lone surrogates works, but keep the refusal naming the surrogate itself.
    return not any(unicodedata.category(char) == "Cs" for char in text)


def optional(field: TextField, value: object) -> str | None:
    """The cleaned text, or None when it is absent or has nothing visible (the field is cleared)."""
    if value is None:
        return None
    text = normalized(value, field)
    if not text:
        return None
    if len(text) > field.max_length:
        raise InvalidInput(
            f"The {field.label} has {len(text)} characters; at most {field.max_length} are allowed. "
            "Shorten it and try again.",
            details={"field": field.label, "length": len(text), "max_length": field.max_length},
        )
    return text


def required(field: TextField, value: object) -> str:
    """`optional`, refusing absent or invisible-only text with a message naming the field."""
    text = optional(field, value)
    if text is None:
        raise InvalidInput(
            f"The {field.label} is required: give at least one visible character "
            f"(at most {field.max_length}); spaces and invisible characters alone do not count.",
            details={"field": field.label},
        )
    return text


def fit(field: TextField, value: object) -> str | None:
    """Derived text made to fit instead of refused: refused characters dropped, cut at a word boundary."""
    if value is None:
        return None

    def allowed(char: str) -> bool:
        if char == "\t" or (field.multiline and (char in "\r\n" or char in _LINE_SEPARATORS)):
            return True
        if char in "\r\n" or char in _LINE_SEPARATORS:
            return False
        return char not in BIDI_CONTROLS and unicodedata.category(char) not in ("Cc", "Cs")

    text = "".join(char if allowed(char) else " " for char in str(value))
    text = normalized(text, field)
    if len(text) > field.max_length:
        cut = text[: field.max_length + 1]
        space = cut.rfind(" ")
        text = (cut[:space] if space > field.max_length // 2 else cut[: field.max_length]).rstrip()
    return text or None


# --- emojis ---------------------------------------------------------------------------------------


def _split_emojis(token: str) -> list[str] | None:
    """The emoji that `token` consists of, or None if any part of it is not an emoji."""
    import emoji as emoji_data  # loaded on first use: its tables cost ~150 ms at import

    found = emoji_data.emoji_list(token)
    position = 0
    parts = []
    for match in found:
        if match["match_start"] != position:
            return None
        parts.append(match["emoji"])
        position = match["match_end"]
    return parts if parts and position == len(token) else None


def emoji_list(value: str | Sequence[object] | None, *, label: str = EMOJIS_LABEL) -> list[str]:
    """The emojis of a sticker: [] when none are given, else 1–3 real emoji (refused otherwise)."""
    if value is None:
        return []
    if isinstance(value, str):
        entries: list[object] = list(value.split(","))
    elif isinstance(value, Sequence):
        entries = list(value)
    else:
        raise InvalidInput(f"The {label} must be a list or a text such as 😀,😂.", details={"field": label})
    emojis: list[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise InvalidInput(
                f"Each of the {label} must be text, got {type(entry).__name__}.", details={"field": label}
            )
        text = unicodedata.normalize("NFC", entry) if _encodable(entry) else entry
        _check_characters(text, label, multiline=False)
        for token in text.split():
            token = _trim(token)
            if not token:
                continue
            parts = _split_emojis(token)
            if parts is None:
                shown = token if len(token) <= 20 else token[:20] + "…"
                raise InvalidInput(
                    f"{shown!r} is not an emoji: give 1 to {EMOJIS_PER_STICKER_MAX} emoji such as 😂 "
                    "(separated by commas or spaces).",
                    details={"field": label},
                )
            for part in parts:
                if part not in emojis:
                    emojis.append(part)
    if len(emojis) > EMOJIS_PER_STICKER_MAX:
        raise InvalidInput(
            f"{len(emojis)} emojis given ({' '.join(emojis[:8])}); a sticker takes "
            f"{EMOJIS_PER_STICKER_MIN} to {EMOJIS_PER_STICKER_MAX}.",
            details={"field": label, "count": len(emojis), "max_count": EMOJIS_PER_STICKER_MAX},
        )
    return emojis


__all__ = [
    "ACCESSIBILITY_LABEL",
    "BIDI_CONTROLS",
    "DESCRIPTION",
    "EMOJIS_PER_STICKER_MAX",
    "PACK_NAME",
    "PUBLISHER",
    "THEME_KEY",
    "TextField",
    "describe_char",
    "emoji_list",
    "fit",
    "is_visible",
    "normalized",
    "optional",
    "required",
]
