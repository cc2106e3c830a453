"""What every subcommand shares: the runtime, JSON output, and turning domain errors into messages."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
import pydantic

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

    return wrapper  # type: ignore[return-value]


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, default=str))
