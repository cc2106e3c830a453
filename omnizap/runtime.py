"""The composition root: settings, database and storage built once and handed to services.

The CLI, the web server and the workers each build one `Runtime`; nothing below them reaches for
global state.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from omnizap.config import Settings, get_settings
from omnizap.platform.db import Database
from omnizap.platform.flags import FeatureFlags
from omnizap.platform.storage import LocalStorage, local_storage


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

    def close(self) -> None:
        if "database" in self.__dict__:
            self.database.dispose()
