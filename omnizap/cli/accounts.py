"""`omnizap accounts`: one-time sign-in links and bans (docs/accounts.md).

- `login-link OWNER [--ttl SECONDS]` prints a link that signs OWNER in once (the token is stored only
  as a digest; the printed link is the only copy).
- `ban` (by --owner, --email and/or --subject), `unban BAN_ID`, `list` (active bans; --all for every row).
"""

from __future__ import annotations

import datetime as dt

import click

from omnizap.accounts.service import AccountService
from omnizap.cli.common import AppContext, echo_json, pass_app


def _service(app: AppContext) -> AccountService:
    runtime = app.runtime
    return AccountService(runtime.database, runtime.settings)


@click.group("accounts")
def accounts() -> None:
    """Sign-in links and bans of web accounts."""


@accounts.command("login-link")
@click.argument("owner")
@click.option(
    "--ttl",
    "ttl_seconds",
    type=click.IntRange(1, 7 * 86_400),
    default=None,
    help="Seconds the link stays valid (default STICKER_WEB_LOGIN_LINK_TTL_SECONDS, 900).",
)
@pass_app
def login_link(app: AppContext, owner: str, ttl_seconds: int | None) -> None:
    """Print a one-time link that signs OWNER (a WhatsApp JID or handle) in to the web site."""
    link = _service(app).create_login_link(owner, ttl_seconds=ttl_seconds)
    click.echo(link.url)
    click.echo(
        f"valid once, until {link.expires_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC, for {link.owner_jid}",
        err=True,
    )


@accounts.command("ban")
@click.option("--owner", default=None, help="Owner JID or handle.")
@click.option("--email", default=None, help="E-mail address of the account.")
@click.option("--subject", default=None, help="OpenID Connect subject (`sub`) of the account.")
@click.option("--reason", default="", help="Why (shown to moderators, never to the person).")
@click.option(
    "--days", type=click.IntRange(1, 36_500), default=None, help="Ban length; default: until unban."
)
@pass_app
def ban(
    app: AppContext, owner: str | None, email: str | None, subject: str | None, reason: str, days: int | None
) -> None:
    """Ban a person: refused at sign-in, and their sessions end at their next request."""
    expires_in = dt.timedelta(days=days) if days else None
    ban_id = _service(app).ban(
        owner=owner, email=email, subject=subject, reason=reason, expires_in=expires_in, created_by="cli"
    )
    click.echo(f"ban {ban_id} recorded")


@accounts.command("unban")
@click.argument("ban_id", type=click.IntRange(1))
@pass_app
def unban(app: AppContext, ban_id: int) -> None:
    """Lift ban BAN_ID (see `omnizap accounts list`)."""
    if not _service(app).unban(ban_id):
        raise click.ClickException(f"no active ban with id {ban_id}")
    click.echo(f"ban {ban_id} lifted")


@accounts.command("list")
@click.option("--all", "include_inactive", is_flag=True, help="Include lifted and expired bans.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_bans(app: AppContext, include_inactive: bool, as_json: bool) -> None:
    """List bans, newest first."""
    rows = _service(app).list_bans(include_inactive=include_inactive)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no bans")
        return
    for row in rows:
        target = ", ".join(
            f"{label}={row[column]}"
            for label, column in (("owner", "owner_jid"), ("email", "email"), ("subject", "oidc_subject"))
            if row[column]
        )
        until = row["expires_at"].strftime("%Y-%m-%d") if row["expires_at"] else "unban"
        state = " (lifted)" if row["revoked_at"] else ""
        click.echo(f"{row['id']}\t{target}\tuntil {until}{state}\t{row['reason']}")
