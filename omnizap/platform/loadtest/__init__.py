"""Load testing of the catalog (`omnizap loadtest`): closed and open models, the original's report.

Use `run_load_test(LoadTestConfig(...))` for a report dict and `exit_code_for(report)` for the
original script's exit code. The rollout gate that compares two reports is `omnizap.platform.rollout`.
"""

from omnizap.platform.loadtest.http11 import ProtocolError, ResponseParser, Target, check_request_path
from omnizap.platform.loadtest.report import (
    Tally,
    build_report,
    classify_status,
    exit_code_for,
    latency_summary,
    percentile,
)
from omnizap.platform.loadtest.runner import (
    DEFAULT_HEADERS,
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_PATHS,
    LoadTest,
    LoadTestConfig,
    run_load_test,
)

__all__ = [
    "DEFAULT_HEADERS",
    "DEFAULT_MAX_ERROR_RATE",
    "DEFAULT_PATHS",
    "LoadTest",
    "LoadTestConfig",
    "ProtocolError",
    "ResponseParser",
    "Tally",
    "Target",
    "build_report",
    "check_request_path",
    "classify_status",
    "exit_code_for",
    "latency_summary",
    "percentile",
    "run_load_test",
]
