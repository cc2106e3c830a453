"""Reply language: gettext catalogues (compiled with Babel), Portuguese by default, English on request.

Message ids are the English texts; `locale/pt_BR/LC_MESSAGES/omnizap_chat.po` holds the Portuguese
(the original bot's wording, chat reference) and ships compiled as `.mo` next to it. A checkout
without the `.mo` compiles the `.po` in memory with Babel, so a forgotten compile never shows
English to Portuguese users. Placeholders are `str.format` fields: `_("Items: {count}", count=3)`.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

DOMAIN = "omnizap_chat"
DEFAULT_LOCALE = "pt_BR"
LOCALES = ("pt_BR", "en")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

_ALIASES = {
    "pt": "pt_BR",
    "pt_br": "pt_BR",
    "pt-br": "pt_BR",
    "br": "pt_BR",
    "portugues": "pt_BR",
    "português": "pt_BR",
    "portuguese": "pt_BR",
    "en": "en",
    "en_us": "en",
    "en-us": "en",
    "english": "en",
    "ingles": "en",
    "inglês": "en",
}


def normalize_locale(value: str | None) -> str | None:
    """`pt`, `pt-BR`, `português` → `pt_BR`; `en`, `english` → `en`; anything else None."""
    return _ALIASES.get((value or "").strip().lower())


def compile_po(po_path: Path) -> bytes:
    """The `.mo` bytes of a `.po` file (what `pybabel compile` writes)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po_path.open("rb") as source:
        catalog = read_po(source, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


@functools.cache
def translations(locale: str) -> gettext.NullTranslations:
    """The catalogue of `locale`; English (the message ids) needs none."""
    if locale == "en":
        return gettext.NullTranslations()
    folder = LOCALE_DIR / locale / "LC_MESSAGES"
    compiled = folder / f"{DOMAIN}.mo"
    if compiled.exists():
        with compiled.open("rb") as handle:
            return gettext.GNUTranslations(handle)
    source = folder / f"{DOMAIN}.po"
    if source.exists():
        return gettext.GNUTranslations(io.BytesIO(compile_po(source)))
    raise FileNotFoundError(f"no catalogue for {locale} in {folder}")


class Translator:
    """`_("text {n}", n=1)`: the translated text with its fields filled in."""

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in LOCALES else DEFAULT_LOCALE
        self._catalogue = translations(self.locale)

    def __call__(self, message: str, **fields: object) -> str:
        text = self._catalogue.gettext(message)
        return text.format(**fields) if fields else text
