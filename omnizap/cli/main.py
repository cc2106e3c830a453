"""Entry point of the `omnizap` command. Subcommands live in their own modules and load on demand."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from typing import Any

import click

from omnizap.cli.common import AppContext, fail, pass_app
from omnizap.core.errors import StickerPackError
from omnizap.platform.db import DatabaseConfigError

# name -> (module, attribute, one-line help). Listed here so `omnizap --help` stays fast.
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "sticker": ("omnizap.cli.stickers", "sticker", "Import images and videos as WhatsApp-ready stickers."),
    "pack": ("omnizap.cli.packs", "pack", "Create, edit, publish, clone and export sticker packs."),
    "demo": ("omnizap.cli.demo", "demo", "Generate a realistic demo catalog."),
    "serve": ("omnizap.cli.serve", "serve", "Run the web catalog and JSON API."),
    "loadtest": ("omnizap.cli.loadtest", "loadtest", "Load-test the catalog and report SLO figures."),
    "rollout": ("omnizap.cli.rollout", "rollout", "Rollout gates comparing load-test reports."),
    "queue": ("omnizap.cli.queue", "queue", "Inspect the task queue and its dead-letter queue."),
    "worker": ("omnizap.cli.workers", "worker", "Run a dedicated worker process."),
    "flags": ("omnizap.cli.flags", "flags", "List and change feature flags."),
    "storage": ("omnizap.cli.storage", "storage", "Object storage: backfill and verify."),
    "intel": ("omnizap.cli.intelligence", "intel", "Classification, curation and ranking jobs."),
    "bot": ("omnizap.cli.bot", "bot", "The sticker chat bot: console, Telegram polling, WhatsApp Web."),
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand runs (or its help is shown)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        available = [name for name, (module, _, _) in LAZY_COMMANDS.items() if _module_exists(module)]
        return sorted([*super().list_commands(ctx), *available])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in LAZY_COMMANDS:
            return command
        module_name, attribute, _ = LAZY_COMMANDS[cmd_name]
        if not _module_exists(module_name):
            return None
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in LAZY_COMMANDS and name not in self.commands:
                rows.append((name, LAZY_COMMANDS[name][2]))
            else:
                command = self.commands[name]
                rows.append((name, command.get_short_help_str(limit=70)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}
)
@click.version_option(package_name="omnizap")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """OmniZap Stickers: turn images and videos into WhatsApp stickers, collect them into packs,
    and serve a public catalog.

    Settings come from environment variables (and ./.env); `omnizap config` shows them.
    """
    ctx.obj = AppContext()
    ctx.call_on_close(ctx.obj.close)


@cli.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of NAME=value lines.")
@pass_app
def show_config(app: AppContext, as_json: bool) -> None:
    """Print the effective settings, secrets masked."""
    values = app.runtime.settings.masked()
    if as_json:
        click.echo(json.dumps(values, indent=2, default=str))
        return
    for name, value in values.items():
        click.echo(f"{name}={'' if value is None else value}")


@cli.command("migrate")
@pass_app
def migrate(app: AppContext) -> None:
    """Bring the database to the latest schema version (safe to run again)."""
    from omnizap.platform.db.migrate import upgrade

    before, after = upgrade(app.runtime.database)
    if before == after:
        click.echo(f"database already at version {after} ({app.runtime.database.dialect})")
    else:
        click.echo(f"database migrated from {before or 'empty'} to {after} ({app.runtime.database.dialect})")


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="omnizap", standalone_mode=True)
    except (StickerPackError, DatabaseConfigError) as exc:  # pragma: no cover - standalone_mode handles most
        fail(str(exc))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
