"""Sticker packs: pack and item rules, the pack service, and the auto-collector.

Names are loaded on first use, so importing one submodule (or replacing it in a test) does not pull
in the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Pack": "omnizap.core.packs.models",
    "PackItem": "omnizap.core.packs.models",
    "PackService": "omnizap.core.packs.service",
    "AutoCollector": "omnizap.core.packs.autocollect",
    "CollectResult": "omnizap.core.packs.autocollect",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
