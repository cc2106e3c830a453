"""Command text → command name and arguments (chat §2 "Argument parsing helpers").

Pure functions: no database, no transport. Every helper tolerates hostile text (huge, control
characters, a flood of `|`): the work is linear in the input and nothing is evaluated.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_OPTIONS = 16  # `key=value` segments read after the main argument; the rest are ignored
_NAME = re.compile(r"(\S+)\s*(.*)", re.DOTALL)  # a newline also ends the name
_TOKEN = re.compile(r"""\s*("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|\S+)\s*""", re.DOTALL)


@dataclass(frozen=True)
class ParsedCommand:
    name: str  # lowercased, without the prefix
    args: str  # the rest of the text, trimmed


def parse_command(text: str, prefix: str) -> ParsedCommand | None:
    """`/pack add Memes` with prefix `/` → ParsedCommand("pack", "add Memes"); None for plain text."""
    stripped = (text or "").lstrip()
    if not prefix or not stripped.startswith(prefix):
        return None
    body = stripped[len(prefix) :]
    match = _NAME.match(body)
    if match is None:
        return None
    name, rest = match.group(1), match.group(2)
    return ParsedCommand(name.lower(), rest.strip())


def strip_quotes(value: str) -> str:
    """Remove one outer pair of matching quotes (`"a b"` → `a b`); anything else is returned trimmed."""
    text = (value or "").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def first_token(text: str) -> tuple[str, str]:
    """The first argument (quoted, or a run of non-space characters) without its quotes, and the rest."""
    match = _TOKEN.match(text or "")
    if not match:
        return "", ""
    return strip_quotes(match.group(1)), (text or "")[match.end() :].strip()


def split_subcommand(text: str) -> tuple[str, str]:
    """`add Memes | emojis=😀` → ("add", "Memes | emojis=😀"): the first word lowercased and the rest."""
    parts = (text or "").strip().split(maxsplit=1)
    if not parts:
        return "", ""
    return parts[0].lower(), parts[1].strip() if len(parts) > 1 else ""


def identifier_and_value(text: str) -> tuple[str, str]:
    """`"Meus memes" Nova descrição` → ("Meus memes", "Nova descrição"): multi-word packs need quotes."""
    identifier, rest = first_token(text)
    return identifier, strip_quotes(rest)


def pipe_options(text: str) -> tuple[str, dict[str, str]]:
    """`"Memes" | publisher=Ana | desc="x"` → ("Memes", {"publisher": "Ana", "desc": "x"}).

    Segments are trimmed and empty ones dropped; segments after the first without `=` are ignored,
    as are those past MAX_OPTIONS (a flood of `|` costs one split, nothing more).
    """
    segments = [segment.strip() for segment in (text or "").split("|")]
    segments = [segment for segment in segments if segment]
    if not segments:
        return "", {}
    options: dict[str, str] = {}
    for segment in segments[1 : 1 + MAX_OPTIONS]:
        key, sep, value = segment.partition("=")
        if not sep or not key.strip():
            continue
        options[key.strip().lower()] = strip_quotes(value.strip())
    return strip_quotes(segments[0]), options


def fold(text: str) -> str:
    """Lowercase without diacritics and surrounding space: `  Iniciár ` → `iniciar`."""
    decomposed = unicodedata.normalize("NFD", (text or "").strip().lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))
