"""What every subcommand shares: the runtime, JSON output, and turning domain errors into messages."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
import pydantic
import sqlalchemy.exc

from omnizap.core.errors import StickerPackError
from omnizap.platform.db import DatabaseConfigError
from omnizap.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])


class AppContext:
    """Lazily builds the runtime so `--help` and `config` errors never touch the database."""

    def __init__(self) -> None:
        self._runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            try:
                self._runtime = Runtime()
            except pydantic.ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in error['loc']).upper()}: {error['msg']}"
                    for error in exc.errors()
                )
                fail(f"invalid configuration: {problems}")
        return self._runtime

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()


def fail(message: str, exit_code: int = 1) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    raise SystemExit(exit_code)


def pass_app(function: F) -> F:
    """Inject the AppContext and report domain errors as one clear line (exit code 1)."""

    @click.pass_obj
    @functools.wraps(function)
    def wrapper(app: AppContext, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(app, *args, **kwargs)
        except StickerPackError as exc:
            fail(f"{exc.message} [{exc.code}]")
        except DatabaseConfigError as exc:
            fail(str(exc))
        except sqlalchemy.exc.DBAPIError as exc:
            fail(describe_database_error(app, exc))

    return wrapper  # type: ignore[return-value]


def require_migrated_database(app: AppContext) -> None:
    """Stop with one clear line unless the database answers and is at this release's schema."""
    from omnizap.platform.db.migrate import current_revision, head_revision

    try:
        current = current_revision(app.runtime.database)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fail(f"cannot reach the database ({type(exc).__name__}: {detail}); check DATABASE_URL")
    head = head_revision()
    if current != head:
        fail(
            f"the database is not migrated (schema {current or 'empty'}, this release needs {head}): "
            "run `omnizap migrate` first"
        )


def describe_database_error(app: AppContext, exc: sqlalchemy.exc.DBAPIError) -> str:
    """One line for a failed database statement: the most likely fix first, never a traceback."""
    from omnizap.platform.db.migrate import current_revision, head_revision

    database = app.runtime.database
    try:
        current = current_revision(database)
    except sqlalchemy.exc.DBAPIError:
        return (
            f"the database ({database.dialect}) cannot be reached or used: {_first_line(exc.orig)}; "
            "check DATABASE_URL (`omnizap config` shows it)"
        )
    head = head_revision()
    if current != head:
        return (
            f"the database is not migrated (schema {current or 'empty'}, this release needs {head}): "
            "run `omnizap migrate` first"
        )
    return f"database error ({database.dialect}): {_first_line(exc.orig)}"


def _first_line(error: BaseException | None) -> str:
    text = str(error or "unknown error").strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, default=str))
