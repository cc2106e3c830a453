"""`omnizap --version` and `omnizap --help` import click and nothing heavy, and the web app (what each
HTTP worker imports before it can serve) leaves out what only other commands need. Checked through
sys.modules in a fresh interpreter, not by timing (bench/startup.py measures the time)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Not needed to print a version or the list of commands.
HEAVY_FOR_THE_CLI = (
    "sqlalchemy",
    "pydantic",
    "pydantic_settings",
    "fastapi",
    "starlette",
    "uvicorn",
    "prometheus_client",
    "alembic",
    "jinja2",
    "boto3",
    "botocore",
    "numpy",
    "PIL",
    "av",
    "torch",
    "onnxruntime",
    "omnizap.config",
    "omnizap.runtime",
)
# Not needed to serve the catalog: media decoding, object storage clients, models, migrations.
# The chat networks' clients and the sign-in libraries load when a webhook or a sign-in needs them.
HEAVY_FOR_THE_WEB_APP = (
    "boto3",
    "botocore",
    "numpy",
    "av",
    "torch",
    "onnxruntime",
    "alembic",
    "authlib",
    "joserfc",
    "telegram",
    "pywa",
)


def _imported_after(code: str, watched: tuple[str, ...]) -> list[str]:
    probe = (
        "import json, sys\n"
        f"{code}\n"
        f"watched = {watched!r}\n"
        "loaded = sorted(name for name in watched if name in sys.modules)\n"
        "print(json.dumps(loaded))\n"
    )
    finished = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


RUN_CLI = """
from omnizap.cli.main import cli
try:
    cli.main(args={args!r}, prog_name="omnizap", standalone_mode=True)
except SystemExit as exit:
    assert exit.code in {codes!r}, exit.code
"""


@pytest.mark.parametrize(
    ("args", "codes"),
    [(["--version"], (0, None)), (["--help"], (0, None)), ([], (0, 2, None))],  # bare: help, exit 2
    ids=["version", "help", "bare"],
)
def test_version_and_help_import_nothing_heavy(args: list[str], codes: tuple[int | None, ...]):
    assert _imported_after(RUN_CLI.format(args=args, codes=codes), HEAVY_FOR_THE_CLI) == []


def test_every_command_is_still_listed_and_loads():
    finished = subprocess.run(
        [sys.executable, "-m", "omnizap.cli.main", "--help"], capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    from omnizap.cli.main import LAZY_COMMANDS, cli

    for name in ("config", "migrate", "serve", "worker", "pack", "sticker"):
        assert f"\n  {name} " in finished.stdout
    import click

    context = click.Context(cli, info_name="omnizap")
    for name in LAZY_COMMANDS:
        assert isinstance(cli.get_command(context, name), click.Command), name


def test_the_web_app_leaves_out_what_only_other_commands_need():
    assert _imported_after("import omnizap.web.app", HEAVY_FOR_THE_WEB_APP) == []
