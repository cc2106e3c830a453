"""`omnizap flags`: list, change and check the feature flags of the `feature_flag` table.

The same rows the runbook's SQL changes; this is the checked way to do it. Rules:

- Names are taken as typed, except for case: anything outside `a-z 0-9 _ : -` is refused (with
  the name it would have become) rather than silently normalized, so a typo never changes a
  different flag than the operator meant.
- `set` refuses a name that is neither one of the known flags (FLAG_DEFAULTS) nor already a row,
  unless `--create` is given: in an emergency a misspelt `--enabled 0` must fail loudly instead of
  creating a useless row while the real flag stays on.
- Creating the row of a known flag keeps what was in effect (environment, else code fallback) for
  the fields not given, so `set enable_ranking_snapshot_read --rollout 50` does not switch a flag
  that was on by fallback off.
- Bad input exits 2, a refused change 1, each with one `error: …` line; nothing is written then.
- Running processes read the table through a cache, so a change reaches them within their
  FEATURE_FLAG_CACHE_TTL_MS; every change says so.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click

from omnizap.cli.common import AppContext, echo_json, fail, pass_app
from omnizap.config import FALSE_WORDS, TRUE_WORDS
from omnizap.platform.flags import BUCKETS, FeatureFlags, FlagDecision, FlagError, FlagRow
from omnizap.platform.flags import normalize_flag_name as _normalize
from omnizap.platform.flags.defaults import FLAG_DEFAULTS

EXIT_REFUSED, EXIT_BAD_INPUT = 1, 2
_NAME = re.compile(r"[a-z0-9_:-]{1,120}")
_ROLLOUT = re.compile(r"[0-9]{1,3}%?")  # not \d: int() would take other scripts' digits
_BY_MAX, _DESCRIPTION_MAX = 120, 255
_SHOWN_MAX = 80


# --- input ------------------------------------------------------------------------------------------


def _shown(text: str) -> str:
    """Operator input quoted for an error line: escapes instead of control characters, cut short."""
    quoted = ascii(text) if not text.isprintable() else repr(text)
    return quoted if len(quoted) <= _SHOWN_MAX else quoted[: _SHOWN_MAX - 4] + "…'"


def parse_flag_name(raw: str) -> str:
    name = raw.strip().lower()
    # isascii: str.lower() turns some non-ASCII letters (the Kelvin sign) into ASCII ones.
    if raw.isascii() and _NAME.fullmatch(name):
        return name
    try:
        suggestion = _normalize(raw)
    except FlagError:
        fail(
            f"flag name {_shown(raw)} has no usable characters; flag names use a-z, 0-9, _, : and -",
            EXIT_BAD_INPUT,
        )
    fail(
        f"flag name {_shown(raw)} may only contain a-z, 0-9, _, : and - (at most 120); "
        f"did you mean {suggestion}?",
        EXIT_BAD_INPUT,
    )


def parse_enabled(raw: str | None) -> bool | None:
    if raw is None:
        return None
    word = raw.strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    fail(f"--enabled takes 0 or 1 (or yes/no, on/off), got {_shown(raw)}", EXIT_BAD_INPUT)


def parse_rollout(raw: str | None) -> int | None:
    if raw is None:
        return None
    text = raw.strip()
    if _ROLLOUT.fullmatch(text) and int(text.rstrip("%")) <= 100:
        return int(text.rstrip("%"))
    fail(f"--rollout takes a whole number from 0 to 100, got {_shown(raw)}", EXIT_BAD_INPUT)


def _has_controls(text: str) -> bool:
    return any(unicodedata.category(char) in {"Cc", "Cf", "Cs", "Zl", "Zp"} for char in text)


def parse_by(raw: str | None) -> str:
    who = (raw or "").strip()
    if not who:
        fail("say who makes the change with --by NAME (it is kept in updated_by)", EXIT_BAD_INPUT)
    if _has_controls(who) or len(who) > _BY_MAX:
        fail(
            f"--by takes printable text of at most {_BY_MAX} characters, got {_shown(raw or '')}",
            EXIT_BAD_INPUT,
        )
    return who


def parse_description(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = raw.strip()
    if _has_controls(text) or len(text) > _DESCRIPTION_MAX:
        fail(
            f"--description takes printable text of at most {_DESCRIPTION_MAX} characters",
            EXIT_BAD_INPUT,
        )
    return text


# --- what a flag is now -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FlagState:
    """One flag as an operator sees it: its row if any, else what decides without one."""

    name: str
    row: FlagRow | None
    environment: bool | None  # FEATURE_<NAME>, if set
    fallback: bool | None  # code fallback of a known flag

    @property
    def known(self) -> bool:
        return self.name in FLAG_DEFAULTS

    @property
    def exists(self) -> bool:
        return self.row is not None or self.environment is not None or self.known

    @property
    def source(self) -> str:
        if self.row is not None:
            return "table"
        if self.environment is not None:
            return "environment"
        return "fallback"

    @property
    def enabled(self) -> bool:
        """Whether the flag is switched on at all (for some subjects, with a row)."""
        if self.row is not None:
            return self.row.is_enabled and self.row.rollout_percent > 0
        if self.environment is not None:
            return self.environment
        return bool(self.fallback)

    def effect(self) -> str:
        """`on`, `off` or `on for N%` of subjects."""
        if self.row is not None and self.enabled and self.row.rollout_percent < 100:
            return f"on for {self.row.rollout_percent}%"
        return "on" if self.enabled else "off"

    def describe(self) -> str:
        env_name = f"FEATURE_{self.name.upper()}"
        if self.row is not None:
            text = f"row is_enabled={int(self.row.is_enabled)} rollout_percent={self.row.rollout_percent}"
            if self.row.is_enabled and 0 < self.row.rollout_percent < 100:
                threshold = self.row.rollout_percent * (BUCKETS // 100)
                text += f": on for subjects in buckets 0-{threshold - 1} of {BUCKETS}"
            else:
                text += f": {self.effect()} for every subject"
            if self.environment is not None:
                text += f" ({env_name} is ignored while the row exists)"
            return text
        if self.environment is not None:
            return f"no row; {env_name}={int(self.environment)} from the environment: {self.effect()}"
        if self.known:
            return f"no row; code fallback: {self.effect()} (set {env_name}=1|0 or add a row to change it)"
        return (
            "unknown flag: no row, no FEATURE_ variable, not a known flag; "
            "code asking for it gets its own fallback"
        )

    def as_json(self) -> dict[str, Any]:
        row = self.row
        return {
            "name": self.name,
            "row": row is not None,
            "is_enabled": int(row.is_enabled) if row else None,
            "rollout_percent": row.rollout_percent if row else None,
            "updated_by": row.updated_by if row else None,
            "updated_at": _timestamp(row.updated_at) if row else None,
            "description": _description(self),
            "source": self.source,
            "effective": self.effect(),
            "known": self.known,
            "fallback": self.fallback,
            "environment": self.environment,
        }


def _timestamp(value: object) -> str | None:
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat()
    return None if value is None else str(value)


def _description(state: FlagState) -> str | None:
    if state.row is not None and state.row.description:
        return state.row.description
    default = FLAG_DEFAULTS.get(state.name)
    return default.description if default else None


def _plain(value: object) -> str:
    """Text from the table made safe for a terminal: a row written with SQL may hold anything."""
    if value is None:
        return "-"
    text = "".join(" " if _has_controls(char) else char for char in str(value))
    return " ".join(text.split()) or "-"


def read_states(flags: FeatureFlags, environment: Mapping[str, bool]) -> dict[str, FlagState]:
    """Every row, every known flag and every FEATURE_ variable, read now (never from the cache)."""
    rows = {row.flag_name: row for row in flags.list_flags()}
    states = {}
    for name in sorted({*rows, *FLAG_DEFAULTS, *environment}):
        default = FLAG_DEFAULTS.get(name)
        states[name] = FlagState(
            name=name,
            row=rows.get(name),
            environment=environment.get(name),
            fallback=default.fallback if default else None,
        )
    return states


def _propagation(app: AppContext) -> str:
    ttl_ms = app.runtime.settings.feature_flag_cache_ttl_ms
    if ttl_ms <= 0:
        return "running processes see it on their next check (FEATURE_FLAG_CACHE_TTL_MS=0)"
    return (
        f"running processes see it within {ttl_ms / 1000:g} s (their flag cache, "
        f"FEATURE_FLAG_CACHE_TTL_MS={ttl_ms})"
    )


# --- commands ---------------------------------------------------------------------------------------


@click.group("flags")
def flags() -> None:
    """List and change feature flags (the `feature_flag` table) and see who a rollout includes.

    A change reaches running servers and workers within FEATURE_FLAG_CACHE_TTL_MS (30 s by
    default). A flag without a row follows FEATURE_<NAME>=1|0 in the environment, else its code
    fallback.
    """


@flags.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@pass_app
def list_command(app: AppContext, as_json: bool) -> None:
    """Every flag row, plus the known flags and FEATURE_ variables that decide without a row."""
    runtime = app.runtime
    states = read_states(runtime.flags, runtime.settings.feature_env)
    ttl_ms = runtime.settings.feature_flag_cache_ttl_ms
    if as_json:
        echo_json({"flags": [state.as_json() for state in states.values()], "cache_ttl_ms": ttl_ms})
        return
    header = ("NAME", "STATE", "ENABLED", "ROLLOUT", "SOURCE", "UPDATED_BY", "UPDATED_AT", "DESCRIPTION")
    lines = [header]
    for state in states.values():
        row = state.row
        source = state.source
        if source == "environment":
            source = f"env FEATURE_{state.name.upper()}"
        elif row is not None and state.environment is not None:
            source = "table (env ignored)"
        lines.append(
            (
                state.name,
                state.effect(),
                str(int(row.is_enabled)) if row else str(int(state.enabled)),
                f"{row.rollout_percent}%" if row else "-",
                source,
                _plain(row.updated_by) if row else "-",
                _plain(_timestamp(row.updated_at)) if row else "-",
                _plain(_description(state))[:60],
            )
        )
    widths = [max(len(line[column]) for line in lines) for column in range(len(header) - 1)]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        click.echo("  ".join([*cells, line[-1]]).rstrip())
    click.echo(f"(changes reach running processes within FEATURE_FLAG_CACHE_TTL_MS={ttl_ms} ms)")


@flags.command("set")
@click.argument("name")
@click.option("--enabled", metavar="0|1", help="Switch the flag on (1) or off (0).")
@click.option("--rollout", metavar="P", help="Percentage of subjects it is on for, 0-100.")
@click.option("--by", "by", metavar="WHO", help="Who makes the change (required; kept in updated_by).")
@click.option("--description", metavar="TEXT", help="What the flag does (at most 255 characters).")
@click.option("--create", is_flag=True, help="Allow a flag name that is neither known nor in the table.")
@click.option("--json", "as_json", is_flag=True, help="Print the change as one JSON object.")
@pass_app
def set_command(
    app: AppContext,
    name: str,
    enabled: str | None,
    rollout: str | None,
    by: str | None,
    description: str | None,
    create: bool,
    as_json: bool,
) -> None:
    """Change flag NAME (fields not given keep their value) and print old -> new.

    Example: omnizap flags set enable_worker_dedicated_processes --enabled 1 --rollout 10 --by ops
    """
    flag = parse_flag_name(name)
    new_enabled = parse_enabled(enabled)
    new_rollout = parse_rollout(rollout)
    who = parse_by(by)
    new_description = parse_description(description)
    if new_enabled is None and new_rollout is None and new_description is None:
        fail("nothing to change: give --enabled, --rollout or --description", EXIT_BAD_INPUT)

    runtime = app.runtime
    states = read_states(runtime.flags, runtime.settings.feature_env)
    before = states.get(flag) or FlagState(flag, None, None, None)
    if before.row is None and not before.known and not create:
        candidates = [state.name for state in states.values() if state.row or state.known]
        close = difflib.get_close_matches(flag, candidates, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        fail(
            f"unknown flag {flag}: neither a known flag nor in feature_flag; {hint}"
            "pass --create to add a new flag",
            EXIT_REFUSED,
        )
    if before.row is None and new_enabled is None:
        # A new row must not flip what the environment or the code fallback had in effect.
        new_enabled = before.enabled
    row = runtime.flags.set_flag(
        flag,
        enabled=new_enabled,
        rollout_percent=new_rollout,
        updated_by=who,
        description=new_description,
    )
    after = FlagState(flag, row, before.environment, before.fallback)
    if as_json:
        echo_json(
            {
                "flag": flag,
                "created": before.row is None,
                "before": before.as_json(),
                "after": after.as_json(),
                "cache_ttl_ms": runtime.settings.feature_flag_cache_ttl_ms,
            }
        )
        return
    click.echo(f"{flag}: {_change_line(before, row)} (by {_plain(who)})")
    click.echo(f"  before: {before.describe()}")
    click.echo(f"  now:    {after.describe()}")
    click.echo(f"  {_propagation(app)}")


def _change_line(before: FlagState, row: FlagRow) -> str:
    if before.row is None:
        return (
            f"row created: is_enabled {int(row.is_enabled)}, rollout_percent {row.rollout_percent}% "
            f"(was {before.effect()} by {before.source})"
        )
    old = before.row
    parts = [
        f"is_enabled {int(old.is_enabled)} -> {int(row.is_enabled)}",
        f"rollout_percent {old.rollout_percent}% -> {row.rollout_percent}%",
    ]
    if (old.description or "") != (row.description or ""):
        parts.append("description changed")
    return ", ".join(parts)


@flags.command("check")
@click.argument("name")
@click.option(
    "--subject",
    "subjects",
    multiple=True,
    metavar="S",
    help="A subject to decide for (repeatable), e.g. host-a:classification_cycle. "
    "Without one: the deployment-wide decision (the flag name as subject).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_app
def check_command(app: AppContext, name: str, subjects: tuple[str, ...], as_json: bool) -> None:
    """Show whether flag NAME is on for each subject, why, and the subject's bucket (0-9999).

    The dedicated-worker flag's subject is `<cohort>:<task_type>`, the outbox counting as the type
    `domain_event_outbox` (cohort: the host name unless STICKER_WORKER_PIPELINE_COHORT_KEY /
    STICKER_DEDICATED_WORKER_COHORT_KEY say otherwise).
    """
    flag = parse_flag_name(name)
    runtime = app.runtime
    # Read the table now (errors reported, never hidden behind fallbacks), then decide fresh.
    state = read_states(runtime.flags, runtime.settings.feature_env).get(flag)
    state = state or FlagState(flag, None, None, None)
    runtime.flags.invalidate()
    asked = list(subjects) or [""]
    decisions = [runtime.flags.decide(flag, subject) for subject in asked]
    if as_json:
        echo_json(
            {
                "flag": flag,
                "state": state.as_json(),
                "decisions": [
                    {
                        "subject": decision.subject,
                        "enabled": decision.enabled,
                        "source": decision.source,
                        "bucket": decision.bucket,
                        "rollout_percent": decision.rollout_percent,
                        "why": _why(decision),
                    }
                    for decision in decisions
                ],
            }
        )
        return
    if not state.exists:
        click.secho(f"warning: {flag} is not a known flag and has no row: check the spelling", err=True)
    click.echo(f"{flag}: {state.describe()}")
    labels = [_subject_label(decision.subject) for decision in decisions]
    width = max(len(label) for label in labels)
    for label, decision in zip(labels, decisions, strict=True):
        verdict = "on " if decision.enabled else "off"
        click.echo(f"  {verdict}  bucket {decision.bucket:>4}  {label.ljust(width)}  {_why(decision)}")


def _subject_label(subject: str) -> str:
    if not subject:
        return "(deployment-wide)"
    return subject if subject.isprintable() and subject.strip() == subject else ascii(subject)


def _why(decision: FlagDecision) -> str:
    if decision.source == "environment":
        return "FEATURE_ variable (no row)"
    if decision.source == "fallback":
        return "code fallback (no row)"
    percent = decision.rollout_percent or 0
    if not decision.row_enabled:
        return "row switched off (is_enabled=0)"
    if percent >= 100:
        return "rollout 100%"
    if percent <= 0:
        return "rollout 0%"
    threshold = percent * (BUCKETS // 100)
    if decision.enabled:
        return f"in the {percent}% rollout (bucket < {threshold})"
    return f"outside the {percent}% rollout (bucket >= {threshold})"
