"""Which `Transport` serves which network, for the worker that runs `chat_message` tasks.

A transport module calls `register("telegram", factory)` when imported; `build` imports every module
of `omnizap.chat.transports` once if the network is not registered yet, so a worker process needs
no list of networks. The factory must build a working transport from `Settings` alone.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import threading
from collections.abc import Callable

from omnizap.chat.messages import Transport
from omnizap.config import Settings

logger = logging.getLogger(__name__)

TransportFactory = Callable[[Settings], Transport]

_factories: dict[str, TransportFactory] = {}
_lock = threading.Lock()
_discovered = False


class UnknownNetwork(LookupError):
    """No transport is registered for this network (its module failed to import or does not exist)."""


def register(network: str, factory: TransportFactory) -> None:
    """Make `factory` the transport of `network` (a later registration replaces an earlier one)."""
    name = network.strip()
    if not name:
        raise ValueError("a transport needs a network name")
    with _lock:
        _factories[name] = factory


def unregister(network: str) -> None:
    with _lock:
        _factories.pop(network, None)


def networks() -> list[str]:
    return sorted(_factories)


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    import omnizap.chat.transports as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name == "registry":
            continue
        try:
            importlib.import_module(f"{package.__name__}.{module.name}")
        except Exception:  # a transport whose optional library is missing must not stop the others
            logger.warning("chat transport module %s could not be imported", module.name, exc_info=True)


def build(network: str, settings: Settings) -> Transport:
    """A transport for `network`; UnknownNetwork if none is registered."""
    factory = _factories.get(network)
    if factory is None:
        _discover()
        factory = _factories.get(network)
    if factory is None:
        known = ", ".join(networks()) or "none"
        raise UnknownNetwork(f"no chat transport registered for {network!r} (registered: {known})")
    return factory(settings)
