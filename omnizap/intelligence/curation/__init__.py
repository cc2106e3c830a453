"""Theme curation and rebuild of auto packs (pipeline §2-§3; docs/curation.md).

`rows` reads classification rows defensively, `planner` turns rows plus the current auto packs
into a plan (pure functions), `applier` writes a plan through PackService within the per-cycle
budgets, `cycle` runs one curation or rebuild cycle under the shared `auto_theme_packs` lease, and
`tasks` exposes them to the worker queue.
"""
