"""deploy/Procfile, deploy/systemd/* and deploy/supervisord.conf: they parse, every process runs a
command the CLI has (parsed by click itself where the command's module exists), the stop settings
let a running task finish, and the three files run the same set of processes."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from omnizap.cli.main import LAZY_COMMANDS, cli
from omnizap.cli.workers import WORKER_NAMES
from omnizap.config import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PROCFILE = DEPLOY / "Procfile"
SYSTEMD = DEPLOY / "systemd"
WEB_UNIT = SYSTEMD / "omnizap-web.service"
WORKER_UNIT = SYSTEMD / "omnizap-worker@.service"
TARGET = SYSTEMD / "omnizap.target"
SUPERVISORD = DEPLOY / "supervisord.conf"
BINARY = "/opt/omnizap/.venv/bin/omnizap"
DATA_DIR = "/var/lib/omnizap"
MIN_STOP_SECONDS = 60  # a running cycle must be able to finish before SIGKILL
# Not started by default: the scheduler (the server schedules) and storage (idles unless
# STICKER_OBJECT_STORAGE_ENABLED=true).
OPTIONAL_WORKERS = {"scheduler", "storage"}
WORKER_OPTIONS = "$OMNIZAP_WORKER_OPTIONS"


def worker_names() -> tuple[str, ...]:
    return tuple(WORKER_NAMES)


# --- parsing ---------------------------------------------------------------------------------------


def procfile() -> dict[str, list[str]]:
    """process name -> argv, the way honcho and foreman read the file."""
    processes: dict[str, list[str]] = {}
    for line in PROCFILE.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_-]+):\s*(.+)", line)
        assert match, f"not a Procfile line: {line!r}"
        assert match.group(1) not in processes, f"duplicate process {match.group(1)}"
        argv = shlex.split(match.group(2))
        processes[match.group(1)] = argv[1:] if argv[:1] == ["exec"] else argv
    return processes


def test_procfile_server_replaces_its_shell():
    """honcho and foreman run each line with `sh -c`; with `exec` their TERM/KILL reach the server
    (and its HTTP workers die with it) instead of a shell that would leave it running."""
    (web,) = [line for line in PROCFILE.read_text().splitlines() if line.startswith("web:")]
    assert shlex.split(web.removeprefix("web:"))[:2] == ["exec", "omnizap"]


def systemd_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values (systemd keeps every value of a repeated key, configparser would not)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("["):
            assert line.endswith("]"), f"{path.name}: bad section line {line!r}"
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: {line!r} outside a section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not key=value: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, f"{section}.{key} set {len(values)} times"
    return values[0]


def supervisord() -> configparser.RawConfigParser:
    # supervisord reads its file with a RawConfigParser too; %(program_name)s is its own expansion.
    parser = configparser.RawConfigParser(interpolation=None, strict=True)
    parser.read_string(SUPERVISORD.read_text(), source=str(SUPERVISORD))
    return parser


def supervisor_programs() -> dict[str, configparser.SectionProxy]:
    parser = supervisord()
    return {
        name.removeprefix("program:"): parser[name]
        for name in parser.sections()
        if name.startswith("program:")
    }


# --- commands --------------------------------------------------------------------------------------


def check_command(argv: list[str]) -> None:
    """Fail unless argv is an omnizap command the CLI accepts.

    The command must be one of LAZY_COMMANDS (or a built-in like `migrate`) and a worker one of the
    worker names; where the command's module exists, click parses the arguments exactly as it would
    at start-up (unknown options, missing or invalid arguments fail here, not at 3 a.m.).
    """
    assert argv and (argv[0] == "omnizap" or argv[0] == BINARY), f"not the omnizap command: {argv}"
    args = argv[1:]
    assert args, "omnizap without a subcommand"
    name = args[0]
    assert name in LAZY_COMMANDS or name in cli.commands, f"`omnizap {name}` is not a command"
    if name == "worker":
        assert len(args) >= 2 and args[1] in worker_names(), f"unknown worker in {argv}"
    parse_with_click(args)


def parse_with_click(args: list[str]) -> None:
    context = click.Context(cli, info_name="omnizap")
    command: click.Command = cli
    while isinstance(command, click.Group):
        name, args = args[0], args[1:]
        sub = command.get_command(context, name)
        if sub is None:
            # Only acceptable while the lead's module is not merged yet: it is then absent as a whole.
            assert command is cli and name in LAZY_COMMANDS, f"no subcommand {name!r} in {context.info_name}"
            return
        if isinstance(sub, click.Group) and args and not args[0].startswith("-"):
            context = click.Context(sub, info_name=name, parent=context)
            command = sub
            continue
        try:
            sub.make_context(name, list(args), parent=context)
        except click.ClickException as exc:  # UsageError, BadParameter
            pytest.fail(f"`omnizap {name} {' '.join(args)}` does not parse: {exc.format_message()}")
        return


def test_the_command_check_catches_mistakes():
    check_command(["omnizap", "serve", "--port", "9102"])
    check_command([BINARY, "migrate"])
    for bad in (
        ["omnizap", "serve", "--prot", "9102"],
        ["omnizap", "serve", "--port", "many"],
        ["omnizap", "frobnicate"],
        ["omnizap", "worker", "gardening"],
        ["python", "-m", "omnizap", "serve"],
    ):
        with pytest.raises((AssertionError, pytest.fail.Exception)):
            check_command(bad)


# --- Procfile --------------------------------------------------------------------------------------


def metrics_port(argv: list[str]) -> int | None:
    return int(argv[argv.index("--metrics-port") + 1]) if "--metrics-port" in argv else None


def test_procfile_runs_the_server_and_every_worker():
    processes = procfile()
    assert processes["web"] == ["omnizap", "serve", "--port", "9102"]
    workers = {argv[2] for name, argv in processes.items() if name != "web"}
    assert workers == set(worker_names()) - OPTIONAL_WORKERS
    for name, argv in processes.items():
        check_command(argv)
        if argv[1] == "worker":
            assert name == argv[2], "process names match worker names (log prefixes, `honcho start NAME`)"
    # the storage worker is there to uncomment
    assert "# storage: omnizap worker storage" in PROCFILE.read_text()


def test_every_started_worker_serves_metrics_on_its_own_port():
    ports = {argv[2]: metrics_port(argv) for argv in procfile().values() if argv[1] == "worker"}
    assert all(ports.values()) and len(set(ports.values())) == len(ports)
    assert 9102 not in ports.values()
    supervised = {
        shlex.split(program["command"])[2]: metrics_port(shlex.split(program["command"]))
        for name, program in supervisor_programs().items()
        if name != "omnizap-web" and name != "omnizap-worker-scheduler"
    }
    assert {name: supervised[name] for name in ports} == ports


# --- systemd ---------------------------------------------------------------------------------------


def service_units() -> dict[str, dict[str, dict[str, list[str]]]]:
    return {WEB_UNIT.name: systemd_unit(WEB_UNIT), WORKER_UNIT.name: systemd_unit(WORKER_UNIT)}


def target_wants() -> list[str]:
    return [unit for value in systemd_unit(TARGET)["Unit"]["Wants"] for unit in value.split()]


def test_systemd_units_run_cli_commands():
    web = systemd_unit(WEB_UNIT)
    assert shlex.split(one(web, "Service", "ExecStart")) == [BINARY, "serve", "--port", "9102"]
    check_command(shlex.split(one(web, "Service", "ExecStart")))
    check_command(shlex.split(one(web, "Service", "ExecStartPre")))
    template = one(systemd_unit(WORKER_UNIT), "Service", "ExecStart")
    assert shlex.split(template) == [BINARY, "worker", "%i", WORKER_OPTIONS]
    assert "-/etc/omnizap/worker-%i.env" in systemd_unit(WORKER_UNIT)["Service"]["EnvironmentFile"]
    instances = [unit.removeprefix("omnizap-worker@").removesuffix(".service") for unit in target_wants()[1:]]
    for instance in [*instances, *OPTIONAL_WORKERS]:
        command = template.replace("%i", instance)
        # systemd turns an unquoted $VAR into zero or more words: unset, and set to a metrics port
        check_command(shlex.split(command.replace(WORKER_OPTIONS, "")))
        check_command(shlex.split(command.replace(WORKER_OPTIONS, "--metrics-port 9211")))


def test_target_wants_the_server_and_every_worker():
    wanted = target_wants()
    assert wanted[0] == WEB_UNIT.name
    instances = {unit.removeprefix("omnizap-worker@").removesuffix(".service") for unit in wanted[1:]}
    assert all(unit.startswith("omnizap-worker@") and unit.endswith(".service") for unit in wanted[1:])
    assert instances == set(worker_names()) - OPTIONAL_WORKERS
    assert one(systemd_unit(TARGET), "Install", "WantedBy") == "multi-user.target"


@pytest.mark.parametrize("name", [WEB_UNIT.name, WORKER_UNIT.name])
def test_systemd_services_stop_gracefully_restart_and_are_hardened(name: str):
    unit = service_units()[name]
    service = unit["Service"]
    assert one(unit, "Service", "KillSignal") == "SIGTERM"
    if name == WEB_UNIT.name:
        # SIGTERM to the supervisor and its HTTP workers alike, also when the supervisor died
        # first: none is left holding port 9102 for the restart.
        assert one(unit, "Service", "KillMode") == "control-group"
    else:
        # SIGTERM to the worker process (it finishes its task), SIGKILL to all at the end
        assert one(unit, "Service", "KillMode") in {"mixed", "control-group"}
    stop = int(one(unit, "Service", "TimeoutStopSec"))
    assert stop >= MIN_STOP_SECONDS
    assert stop > Settings(_env_file=None).http_graceful_shutdown_seconds
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Service", "User") not in {"root", "0"}
    assert one(unit, "Service", "WorkingDirectory") == "/opt/omnizap"
    assert one(unit, "Service", "NoNewPrivileges") == "yes"
    assert one(unit, "Service", "ProtectSystem") == "strict"
    assert DATA_DIR in one(unit, "Service", "ReadWritePaths").split()
    assert one(unit, "Service", "ProtectHome") == "yes"
    assert one(unit, "Service", "PrivateTmp") == "yes"
    assert one(unit, "Service", "CapabilityBoundingSet") == ""  # port 9102 needs no capability
    assert one(unit, "Service", "MemoryMax").endswith("G")
    assert "EnvironmentFile" in service
    assert one(unit, "Unit", "PartOf") == TARGET.name
    assert one(unit, "Install", "WantedBy") == TARGET.name


def test_workers_start_after_the_server_that_migrates():
    assert WEB_UNIT.name in one(systemd_unit(WORKER_UNIT), "Unit", "After").split()
    assert "ExecStartPre" not in systemd_unit(WORKER_UNIT)["Service"]


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    executable = Path(sys.executable).with_name("omnizap")
    if not executable.exists():
        pytest.skip("the omnizap entry point is not installed next to the interpreter")
    # verify checks that ExecStart's binary exists: point the placeholder at the installed one.
    for source in (WEB_UNIT, WORKER_UNIT, TARGET):
        (tmp_path / source.name).write_text(source.read_text().replace(BINARY, str(executable)))
    instances = []
    for unit in target_wants()[1:]:
        (tmp_path / unit).write_text((tmp_path / WORKER_UNIT.name).read_text())
        instances.append(str(tmp_path / unit))
    result = subprocess.run(
        [
            analyze,
            "verify",
            "--man=no",
            str(tmp_path / WEB_UNIT.name),
            str(tmp_path / TARGET.name),
            *instances,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    ours = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "omnizap" in line  # warnings about other units of the host are not ours
    ]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr


# --- supervisord -----------------------------------------------------------------------------------


def test_supervisord_conf_parses_with_the_sections_supervisorctl_needs():
    parser = supervisord()
    for section in ("supervisord", "unix_http_server", "supervisorctl", "rpcinterface:supervisor"):
        assert parser.has_section(section), section
    assert parser["supervisorctl"]["serverurl"] == "unix://" + parser["unix_http_server"]["file"]


def test_every_supervised_program_stops_gracefully_and_runs_a_cli_command():
    programs = supervisor_programs()
    assert programs
    for name, program in programs.items():
        assert program["stopsignal"] == "TERM", name
        assert int(program["stopwaitsecs"]) >= 30, name
        assert int(program["stopwaitsecs"]) >= MIN_STOP_SECONDS, name
        assert program["autorestart"] == "true", name
        assert program["killasgroup"] == "true", name
        assert program["directory"] == "/opt/omnizap", name  # where .env is read
        assert int(program["startsecs"]) > 0 and int(program["startretries"]) > 0, name
        check_command(shlex.split(program["command"]))
    # TERM and KILL reach the HTTP workers too, not only their supervisor
    assert programs["omnizap-web"]["stopasgroup"] == "true"


def test_supervisord_group_holds_every_worker_program():
    parser = supervisord()
    grouped = set(parser["group:omnizap-workers"]["programs"].split(","))
    workers = {name for name in supervisor_programs() if name != "omnizap-web"}
    assert grouped == workers


# --- the three files agree -------------------------------------------------------------------------


def test_the_three_files_run_the_same_processes():
    def process(argv: list[str]) -> tuple[str, ...]:
        return tuple(argv[1:3]) if argv[1] == "worker" else tuple(argv[1:])

    from_procfile = {process(argv) for argv in procfile().values()}
    from_systemd = {("serve", "--port", "9102")} | {
        ("worker", unit.removeprefix("omnizap-worker@").removesuffix(".service"))
        for unit in target_wants()[1:]
    }
    from_supervisor = {
        process(shlex.split(program["command"]))
        for program in supervisor_programs().values()
        if program.get("autostart", "true") == "true"
    }
    assert from_procfile == from_systemd == from_supervisor
    # the optional workers are configured, and started nowhere by default
    for name in OPTIONAL_WORKERS:
        assert supervisor_programs()[f"omnizap-worker-{name}"]["autostart"] == "false"
