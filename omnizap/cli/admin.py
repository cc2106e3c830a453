"""`omnizap config` and `omnizap migrate`: the settings in effect and the database schema."""

from __future__ import annotations

import json

import click

from omnizap.cli.common import AppContext, pass_app


@click.command("config")
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


@click.command("migrate")
@pass_app
def migrate(app: AppContext) -> None:
    """Bring the database to the latest schema version (safe to run again)."""
    from omnizap.platform.db.migrate import upgrade

    before, after = upgrade(app.runtime.database)
    if before == after:
        click.echo(f"database already at version {after} ({app.runtime.database.dialect})")
    else:
        click.echo(f"database migrated from {before or 'empty'} to {after} ({app.runtime.database.dialect})")
