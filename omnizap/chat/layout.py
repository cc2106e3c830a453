"""The layout of every `/pack` reply (chat §2 "Message layout"): header, intro, sections, footer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from omnizap.chat.i18n import Translator

DIVIDER = "━" * 19


@dataclass(frozen=True)
class Section:
    title: str
    lines: Sequence[str]


@dataclass(frozen=True)
class PackMessage:
    intro: Sequence[str]
    sections: Sequence[Section] = ()
    footer: Sequence[str] = field(default_factory=tuple)


def render(_: Translator, message: PackMessage) -> str:
    parts = [_("📦 *STICKER PACKS — MANAGEMENT CENTER*"), "", *message.intro]
    for section in message.sections:
        parts += ["", DIVIDER, section.title, "", *section.lines]
    if message.footer:
        parts += ["", DIVIDER, *message.footer]
    return "\n".join(parts)


def success(
    _: Translator, title: str, explanation: str, details: Sequence[str], next_actions: Sequence[str] = ()
) -> str:
    sections = [Section(_("📌 *DETAILS*"), details)]
    if next_actions:
        sections.append(Section(_("➡️ *NEXT ACTIONS*"), next_actions))
    return render(_, PackMessage([title, explanation], sections))


def error(_: Translator, title: str, explanation: str, steps: Sequence[str], prefix: str) -> str:
    return render(
        _,
        PackMessage(
            [title, explanation],
            [Section(_("🧭 *HOW TO FIX*"), steps)],
            [_("💡 Full guide: `{prefix}pack`", prefix=prefix)],
        ),
    )


def visibility_label(_: Translator, visibility: str) -> str:
    if visibility == "public":
        return _("🌍 Public")
    if visibility == "unlisted":
        return _("🔗 Unlisted")
    return _("🔒 Private")
