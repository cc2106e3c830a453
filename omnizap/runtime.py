"""The composition root: settings, database and storage built once and handed to services.

The CLI, the web server and the workers each build one `Runtime`; nothing below them reaches for
global state.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

from omnizap.config import Settings, get_settings
from omnizap.platform.db import Database
from omnizap.platform.flags import FeatureFlags
from omnizap.platform.storage import (
    LocalStorage,
    ObjectStorageConfigError,
    S3Storage,
    local_storage,
    object_storage,
)

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings = field(default_factory=get_settings)

    @functools.cached_property
    def database(self) -> Database:
        return Database(self.settings.database_url, pool_size=self.settings.database_pool_size)

    @functools.cached_property
    def flags(self) -> FeatureFlags:
        return FeatureFlags(
            self.database,
            cache_ttl_ms=self.settings.feature_flag_cache_ttl_ms,
            environment=self.settings.feature_env,
        )

    @functools.cached_property
    def storage(self) -> LocalStorage:
        return local_storage(self.settings)

    @functools.cached_property
    def object_storage(self) -> S3Storage | None:
        """The S3-compatible store when STICKER_OBJECT_STORAGE_ENABLED is on and usable, else None.

        A configuration that cannot work is logged and treated as off: sticker files are then served
        from local disk (the runbook's fallback) instead of the server refusing to start.
        `omnizap storage status` reports the same problem as an error."""
        try:
            return object_storage(self.settings)
        except ObjectStorageConfigError as exc:
            logger.error("object storage disabled: %s", exc)
            return None

    def close(self) -> None:
        if "database" in self.__dict__:
            self.database.dispose()
