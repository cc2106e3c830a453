"""Feature flags stored in `feature_flag`, with deterministic percentage rollout.

`FeatureFlags.is_enabled(name, subject)` is what code asks. The whole table is cached per process for
FEATURE_FLAG_CACHE_TTL_MS, so a change made with plain SQL (the runbook's) takes effect within that
time. Evaluation (pipeline §8, with the bucketing widened from 100 to 10,000 buckets):

1. row present: `is_enabled = 0` → off; `rollout_percent >= 100` → on; `<= 0` → off; otherwise on
   iff `bucket(name, subject) < rollout_percent × 100`. Buckets are fixed per (flag, subject), so
   raising the percentage only adds subjects, never drops one.
2. row absent: the environment's `FEATURE_<NAME>` (1/true/yes/on, 0/false/no/off), else the flag's
   code fallback (`defaults.FLAG_DEFAULTS`), else off.
3. database unreachable: the last table read is kept; before any read succeeded, step 2 applies.
"""

from __future__ import annotations

from omnizap.platform.flags.evaluation import (
    BUCKETS,
    FeatureFlags,
    FlagDecision,
    FlagError,
    FlagRow,
    flag_bucket,
    normalize_flag_name,
)

__all__ = [
    "BUCKETS",
    "FeatureFlags",
    "FlagDecision",
    "FlagError",
    "FlagRow",
    "flag_bucket",
    "normalize_flag_name",
]
