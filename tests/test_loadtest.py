"""The load generator against a real local HTTP server: counts and classification, never durations."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from omnizap.cli.main import cli
from omnizap.config import reset_settings_cache
from omnizap.platform.loadtest import (
    DEFAULT_PATHS,
    LoadTestConfig,
    ProtocolError,
    ResponseParser,
    Tally,
    Target,
    build_report,
    classify_status,
    exit_code_for,
    latency_summary,
    percentile,
    run_load_test,
)
from omnizap.platform.loadtest.http11 import build_get_request

REPORT_FIELDS = {
    "started_at",
    "ended_at",
    "base_url",
    "mode",
    "duration_seconds",
    "concurrency",
    "timeout_ms",
    "paths",
    "requests_total",
    "requests_success",
    "requests_error",
    "error_rate",
    "client_errors",
    "client_error_rate",
    "throughput_rps",
    "latency_ms",
    "by_status",
    "slo",
    "sample_errors",
    "generator",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen_headers: list[dict[str, str]] = []  # noqa: RUF012 - shared on purpose, read by one test

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, *, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/headers":
            _Handler.seen_headers.append(dict(self.headers.items()))
            self._send(200, b"{}")
        elif url.path == "/ok":
            self._send(200, b'{"data": [1, 2, 3]}' * 20)
        elif url.path == "/missing":
            self._send(404, b'{"error": "not found"}')
        elif url.path == "/boom":
            self._send(500, b'{"error": "internal"}')
        elif url.path == "/slow":
            time.sleep(int(query.get("ms", ["1000"])[0]) / 1000)
            self._send(200, b"{}")
        elif url.path == "/close":
            self._send(200, b'{"closing": true}', close=True)
        elif url.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b'{"a":', b"1" * 3000, b"}"):
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif url.path == "/until-close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"body without a length")
            self.close_connection = True
        elif url.path == "/garbage":
            self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
            self.close_connection = True
        else:
            self._send(404, b"{}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(url: str, paths: list[str], **options: object) -> dict:
    values = {"duration_seconds": 30.0, "concurrency": 1, "timeout_ms": 5000.0, **options}
    return run_load_test(LoadTestConfig(base_url=url, paths=paths, **values))  # type: ignore[arg-type]


# --- engine against a real server ---------------------------------------------------------------


def test_closed_model_counts_and_classifies_each_status(server_url: str):
    report = _run(server_url, ["/ok", "/missing", "/boom"], max_requests=30)

    assert set(report) == REPORT_FIELDS
    assert report["mode"] == "closed"
    assert report["requests_total"] == 30
    assert report["by_status"] == {"200": 10, "404": 10, "500": 10}
    assert report["requests_success"] == 10
    assert report["requests_error"] == 10  # 5xx only: 4xx is not an error ...
    assert report["client_errors"] == 10  # ... it is reported apart
    assert report["error_rate"] == pytest.approx(0.333333)
    assert report["client_error_rate"] == pytest.approx(0.333333)
    assert len(report["sample_errors"]) == 10
    assert {(e["path"], e["status_code"]) for e in report["sample_errors"]} == {("/boom", 500)}
    assert set(report["latency_ms"]) == {"p50", "p90", "p95", "p99", "max"}
    assert report["slo"]["error_rate_within_target"] is False
    assert report["slo"]["passed"] is False
    assert exit_code_for(report) == 1


def test_many_workers_share_the_request_budget_and_every_answer_is_counted_once(server_url: str):
    report = _run(server_url, ["/ok", "/missing"], concurrency=4, max_requests=40)

    assert report["requests_total"] == 40
    assert sum(report["by_status"].values()) == 40
    assert report["requests_success"] + report["requests_error"] + report["client_errors"] == 40
    assert set(report["by_status"]) <= {"200", "404"}


def test_chunked_close_and_read_until_close_responses_are_all_successes(server_url: str):
    report = _run(server_url, ["/chunked", "/close", "/until-close", "/ok"], max_requests=24)

    assert report["by_status"] == {"200": 24}
    assert report["requests_error"] == 0
    assert report["slo"]["passed"] is True
    assert exit_code_for(report) == 0


def test_requests_past_the_timeout_are_errors_with_status_zero(server_url: str):
    report = _run(server_url, ["/slow?ms=1500"], concurrency=2, duration_seconds=0.3, timeout_ms=100.0)

    assert report["requests_total"] >= 2
    assert report["by_status"] == {"0": report["requests_total"]}
    assert report["requests_error"] == report["requests_total"]
    assert report["error_rate"] == 1.0
    assert all("timeout" in sample["error"] for sample in report["sample_errors"])


def test_a_refused_connection_is_an_error_not_a_crash():
    report = _run(f"http://127.0.0.1:{_closed_port()}", ["/"], max_requests=5)

    assert report["by_status"] == {"0": 5}
    assert report["sample_errors"][0]["error"] == "connection refused"
    assert exit_code_for(report) == 1


def test_a_response_that_is_not_http_is_an_error(server_url: str):
    report = _run(server_url, ["/garbage"], max_requests=3)

    assert report["by_status"] == {"0": 3}
    assert "invalid response" in report["sample_errors"][0]["error"]


def test_requests_carry_the_original_headers(server_url: str):
    _Handler.seen_headers.clear()
    _run(server_url, ["/headers"], max_requests=2)

    headers = {name.lower(): value for name, value in _Handler.seen_headers[0].items()}
    assert headers["x-viewer-key"] == "loadtest"
    assert headers["x-session-key"] == "loadtest"
    assert headers["accept"] == "application/json"
    assert headers["user-agent"] == "omnizap-sticker-loadtest/1.0"
    assert headers["host"] == server_url.removeprefix("http://")


def test_open_model_schedules_every_arrival_and_each_is_sent_or_dropped(server_url: str):
    report = _run(server_url, ["/ok", "/missing"], concurrency=4, duration_seconds=0.5, rate=200.0)

    stats = report["open_model"]
    assert report["mode"] == "open"
    assert stats["scheduled"] == 100  # arrivals at k/200 s for k < 0.5 * 200
    assert stats["sent"] + stats["dropped"] == stats["scheduled"]
    assert report["requests_total"] == stats["sent"]
    assert stats["latency_measured_from"] == "scheduled_send_time"


def test_open_model_counts_arrivals_a_stuck_server_never_got_as_dropped(server_url: str):
    # One connection, a server that holds it for 1 s, and a 0.4 s window: only the first of the
    # 20 scheduled arrivals can be sent; the rest wait in the backlog until the window closes.
    report = _run(server_url, ["/slow?ms=1000"], concurrency=1, duration_seconds=0.4, rate=50.0)

    stats = report["open_model"]
    assert stats["scheduled"] == 20
    assert stats["sent"] == 1
    assert stats["dropped"] == 19
    assert stats["dropped_rate"] == pytest.approx(0.95)
    assert report["slo"]["passed"] is False  # dropped arrivals count against the error budget
    assert report["latency_ms"]["max"] >= stats["service_latency_ms"]["max"]


def test_open_model_respects_the_request_budget(server_url: str):
    report = _run(server_url, ["/ok"], concurrency=2, duration_seconds=5.0, rate=100.0, max_requests=7)

    assert report["open_model"]["scheduled"] == 7
    assert report["requests_total"] + report["open_model"]["dropped"] == 7


# --- configuration and request building ---------------------------------------------------------


@pytest.mark.parametrize(
    "bad_url",
    ["", "   ", "ftp://host", "127.0.0.1:9102", "http://", "http://host:99999", "http://a b",
     "http://host/?q=1", "http://user:pw@host", "http://host\r\nX: y"],
)  # fmt: skip
def test_bad_base_urls_are_refused_with_a_reason(bad_url: str):
    with pytest.raises(ValueError, match="base URL"):
        Target.parse(bad_url)


def test_base_url_keeps_a_path_prefix_and_drops_the_trailing_slash():
    target = Target.parse("http://example.test:8080/prefix/")
    request = build_get_request(target, "/api/x?y=1", {"Accept": "application/json"})
    assert target.url == "http://example.test:8080/prefix"
    assert request.startswith(b"GET /prefix/api/x?y=1 HTTP/1.1\r\nHost: example.test:8080\r\n")
    assert request.endswith(b"\r\n\r\n")
    assert Target.parse("https://example.test").host_header == "example.test"
    assert Target.parse("http://[::1]:9102").host_header == "[::1]:9102"


@pytest.mark.parametrize("bad_path", ["api", "/a b", "/a\r\nX-Injected: 1", "/caf\u00e9", "/tab\there"])
def test_paths_that_could_break_the_request_line_are_refused(bad_path: str):
    with pytest.raises(ValueError, match="path"):
        build_get_request(Target.parse("http://h"), bad_path, {})


def test_header_values_cannot_inject_lines():
    with pytest.raises(ValueError, match="forbidden"):
        build_get_request(Target.parse("http://h"), "/", {"X-Viewer-Key": "a\r\nEvil: 1"})


@pytest.mark.parametrize(
    "options",
    [{"paths": []}, {"duration_seconds": 0}, {"concurrency": 0}, {"timeout_ms": 0}, {"rate": 0.0},
     {"max_requests": 0}, {"max_error_rate": 1.5}],
)  # fmt: skip
def test_config_refuses_impossible_values(options: dict):
    values = {"base_url": "http://h", **options}
    with pytest.raises(ValueError):
        LoadTestConfig(**values)


# --- the response parser --------------------------------------------------------------------------

RESPONSES = [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, 5, True),
    (b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n", 404, 0, True),
    (b"HTTP/1.1 204 No Content\r\n\r\n", 204, 0, True),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, 2, True),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"4;ext=1\r\nabcd\r\n2\r\nef\r\n0\r\nX-T: 1\r\n\r\n", 200, 6, True),
    (b"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 3\r\n\r\nerr", 500, 3, False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 200, 1, False),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "status", "body", "keep_alive"), RESPONSES)
def test_parser_reads_framed_responses(raw: bytes, status: int, body: int, keep_alive: bool):
    parser = ResponseParser()
    parser.feed(raw)
    assert parser.done
    assert (parser.status, parser.body_bytes, parser.keep_alive) == (status, body, keep_alive)


@settings(max_examples=200, deadline=None)
@given(
    index=st.integers(0, len(RESPONSES) - 1),
    cuts=st.lists(st.integers(0, 200), max_size=8),
)
def test_parser_result_does_not_depend_on_how_bytes_are_split(index: int, cuts: list[int]):
    raw, status, body, keep_alive = RESPONSES[index]
    points = sorted({min(cut, len(raw)) for cut in cuts})
    parser = ResponseParser()
    previous = 0
    for point in [*points, len(raw)]:
        parser.feed(raw[previous:point])
        previous = point
    assert parser.done
    assert (parser.status, parser.body_bytes, parser.keep_alive) == (status, body, keep_alive)


def test_parser_body_until_close_ends_at_eof():
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\n\r\nsome bytes")
    assert not parser.done
    parser.feed_eof()
    assert parser.done and parser.body_bytes == 10 and not parser.keep_alive


def test_parser_eof_in_the_middle_of_a_body_is_a_reset():
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    with pytest.raises(ConnectionResetError):
        parser.feed_eof()


@pytest.mark.parametrize(
    "raw",
    [
        b"HELLO\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX",
        b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 70_000,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 5000,
    ],
)
def test_parser_refuses_malformed_responses(raw: bytes):
    with pytest.raises(ProtocolError):
        ResponseParser().feed(raw)


# --- report arithmetic ----------------------------------------------------------------------------


def test_percentiles_follow_the_original_index_rule():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0.5) == 50.0  # index floor(99 * 0.5) = 49
    assert percentile(values, 0.95) == 95.0  # index floor(99 * 0.95) = 94
    assert percentile(values, 0.99) == 99.0
    assert percentile([], 0.5) == 0.0
    assert latency_summary([3.333, 1.0, 2.0]) == {"p50": 2.0, "p90": 2.0, "p95": 2.0, "p99": 2.0, "max": 3.33}
    with pytest.raises(ValueError):
        percentile(values, 1.5)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(0, "error"), (500, "error"), (503, "error"), (404, "client_error"), (429, "client_error"),
     (200, "success"), (304, "success")],
)  # fmt: skip
def test_status_classification(status: int, kind: str):
    assert classify_status(status) == kind


def test_an_empty_run_has_error_rate_one_and_exit_code_two():
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    report = build_report(
        base_url="http://h", paths=["/"], concurrency=1, timeout_ms=1000, slo_ms=750, max_error_rate=0.02,
        started_at=now, ended_at=now, elapsed_seconds=0.0, tally=Tally(),
    )  # fmt: skip
    assert report["requests_total"] == 0
    assert report["error_rate"] == 1
    assert report["throughput_rps"] == 0.0
    assert report["slo"]["p95_within_target"] is False
    assert report["started_at"].endswith("Z")
    assert exit_code_for(report) == 2


# --- the CLI ----------------------------------------------------------------------------------------


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[object]:
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
    reset_settings_cache()

    def run(*args: str):
        return CliRunner().invoke(cli, ["loadtest", *args], catch_exceptions=False)

    yield run
    reset_settings_cache()


def test_cli_writes_the_report_and_exits_one_when_errors_exceed_two_percent(invoke, server_url, tmp_path):
    out = tmp_path / "report.json"
    result = invoke(
        "--base-url", server_url + "/", "--duration-seconds", "5", "--concurrency", "1",
        "--paths", "/ok,/boom", "--max-requests", "10", "--out", str(out), "--slo-ms", "5000",
    )  # fmt: skip

    assert result.exit_code == 1, result.output
    text = out.read_text()
    assert text.endswith("}\n")
    written = json.loads(text)
    assert written["base_url"] == server_url
    assert written["by_status"] == {"200": 5, "500": 5}
    assert written["slo"]["target_ms"] == 5000
    assert "[loadtest] base_url=" in result.stderr
    assert f"[loadtest] report_written={out}" in result.stderr
    assert json.loads(result.stdout) == written


def test_cli_takes_defaults_from_the_environment_and_passes(invoke, server_url, monkeypatch):
    monkeypatch.setenv("STICKER_LOADTEST_BASE_URL", server_url)
    monkeypatch.setenv("HTTP_SLO_TARGET_MS", "4321")
    result = invoke("--duration-seconds", "5", "--paths", "/ok", "--max-requests", "4", "--quiet")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["slo"]["target_ms"] == 4321
    assert report["base_url"] == server_url
    assert result.stderr == ""


def test_cli_default_paths_are_the_originals(invoke, server_url):
    result = invoke("--base-url", server_url, "--duration-seconds", "5", "--max-requests", "3", "--quiet")

    report = json.loads(result.stdout)
    assert report["paths"] == list(DEFAULT_PATHS)
    assert DEFAULT_PATHS[0] == "/api/sticker-packs?limit=24&offset=0&sort=popular"
    assert report["client_errors"] == 3  # the test server has no catalog: 404s, reported apart
    assert "4xx" in result.stderr


def test_cli_open_model_reports_arrivals(invoke, server_url):
    result = invoke(
        "--base-url", server_url, "--duration-seconds", "5", "--paths", "/ok", "--rate", "50",
        "--max-requests", "5", "--quiet",
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["mode"] == "open"
    assert report["open_model"]["scheduled"] == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration-seconds", "1"], "x>=5"),
        (["--concurrency", "0"], "1<=x"),
        (["--timeout-ms", "999"], "x>=1000"),
        (["--slo-ms", "10"], "x>=50"),
        (["--rate", "0"], "0<x"),
        (["--rate", "-3"], "0<x"),
        (["--paths", " , "], "no path given"),
        (["--paths", "api/sticker-packs"], "must start with '/'"),
        (["--paths", "/a b"], "percent-encode"),
        (["--base-url", "ftp://x"], "http:// or https://"),
        (["--base-url", "http://"], "no host"),
        (["--out", "/nonexistent-folder-xyz/report.json"], "does not exist"),
        (["--max-error-rate", "2"], "0<=x<=1"),
    ],
)
def test_cli_refuses_bad_flags_before_sending_anything(invoke, args: list[str], message: str):
    result = invoke("--base-url", "http://127.0.0.1:1", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_cli_refuses_a_directory_as_out(invoke, tmp_path):
    result = invoke("--out", str(tmp_path))
    assert result.exit_code == 2
    assert "directory" in result.output
