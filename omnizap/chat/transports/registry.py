"""Which `Transport` serves which network, for the worker that runs `chat_message` tasks.

`build` registers the HTTP networks (WhatsApp Cloud API, Telegram) on first use, so a worker process
needs no list of networks; their factories build a working transport from `Settings` alone. The
console and WhatsApp Web hold a live session, so they register themselves in the process that has it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from omnizap.chat.messages import Transport
from omnizap.config import Settings

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
    """Register the networks that a worker can serve from Settings alone (the HTTP APIs). The console
    and WhatsApp Web register their live transports themselves, in the process that holds them."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    from omnizap.chat.transports.webhooks import register_network_transports

    register_network_transports(register)


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
