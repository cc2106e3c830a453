"""Where the pages get their data: the catalog's read service, the same one behind the JSON API.

The pages never call the API over HTTP. `CatalogReader` names the four reads they need, each
returning the JSON API's body for the matching endpoint (reference http §3 and §6).

Wiring (in the web app's `create_app(runtime)`):

    app.state.runtime = runtime
    app.state.pages_catalog_reader = <object with list_packs / intents / stats / pack_detail>
    app.include_router(omnizap.web.pages.router)

The reader's methods are thin calls into the functions the JSON endpoints use, so both show the
same packs, filters, NSFW hiding and visibility rules. Without a reader the pages answer 503.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class CatalogUnavailable(RuntimeError):
    """The catalog service is not part of this installation or could not be built."""


class CatalogReader(Protocol):
    def list_packs(
        self, *, q: str, sort: str, categories: list[str], intent: str, limit: int, offset: int
    ) -> Mapping[str, Any]:
        """Body of GET /api/sticker-packs: {data: [ListEntry], pagination: {...}, filters: {...}}."""
        ...

    def intents(self, *, limit: int) -> Mapping[str, Any]:
        """Body of GET /api/sticker-packs/intents: {data: {em_alta: [...], novos: [...], ...}}."""
        ...

    def stats(self) -> Mapping[str, Any]:
        """Body of GET /api/sticker-packs/stats: {data: {packs_total, stickers_total, ...}}."""
        ...

    def pack_detail(self, pack_key: str) -> Mapping[str, Any] | None:
        """PackDetails of a publicly reachable pack (public or unlisted), None when there is none."""
        ...


def catalog_reader_for(app: Any) -> CatalogReader:
    """The reader for this app: `app.state.pages_catalog_reader` when the app set one, else the
    catalog service built from `app.state.runtime` (kept on the app for the next request)."""
    reader = getattr(app.state, "pages_catalog_reader", None)
    if reader is None:
        runtime = getattr(app.state, "runtime", None)
        if runtime is None:
            raise CatalogUnavailable("the web app has no runtime (app.state.runtime)")
        reader = _default_reader(runtime)
        app.state.pages_catalog_reader = reader
    return reader


def _default_reader(runtime: Any) -> CatalogReader:
    """The catalog read service over the runtime's database (without its background threads:
    it then picks up committed changes on reads, at most one poll interval late)."""
    database = getattr(runtime, "database", None)
    settings = getattr(runtime, "settings", None)
    if database is None or settings is None:
        raise CatalogUnavailable("the runtime has no database or settings to build the catalog from")
    from omnizap.catalog.service import CatalogService

    return CatalogService(database, settings, flags=getattr(runtime, "flags", None))
