"""Chat media speed: text stickers (/st, /stb) and sticker conversions (/toimg, /tovideo, Telegram).

    python -m bench.chat_media [--runs 15] [--json results.json]

Times the public functions one call at a time in one process (fonts and the emoji index are
loaded by a warm-up call first, as in a running bot). The blink sticker used as input for the
conversions is the one `render_blink_sticker` makes for "bom dia seus lindos 😀".
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from omnizap.core.stickers.convert import sticker_to_mp4, sticker_to_png, sticker_to_telegram_webm
from omnizap.core.stickers.text_render import render_blink_sticker, render_text_sticker


@dataclass
class CaseResult:
    case: str
    runs: int
    median_ms: float
    p95_ms: float
    output_kb: float


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: a reported p95 is a measured run)."""
    ordered = sorted(samples)
    rank = max(1, round(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def measure(case: str, call: Callable[[], bytes], runs: int) -> CaseResult:
    output = call()  # warm-up: fonts, emoji index, PyAV import
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        output = call()
        samples.append((time.perf_counter() - started) * 1000)
    return CaseResult(
        case=case,
        runs=runs,
        median_ms=round(statistics.median(samples), 1),
        p95_ms=round(percentile(samples, 0.95), 1),
        output_kb=round(len(output) / 1024, 1),
    )


def run(runs: int) -> list[CaseResult]:
    static = render_text_sticker("bom dia seus lindos 😀", color="white")
    blink = render_blink_sticker("bom dia seus lindos 😀", color="green")
    cases: list[tuple[str, Callable[[], bytes]]] = [
        ("render_text_sticker, short text + emoji", lambda: render_text_sticker("bom dia 😀", color="white")),
        ("render_text_sticker, 80 characters", lambda: render_text_sticker("palavra " * 10, color="black")),
        ("render_blink_sticker, text + emoji", lambda: render_blink_sticker("bom dia 😀", color="green")),
        ("render_blink_sticker, 80 characters", lambda: render_blink_sticker("palavra " * 10, color="red")),
        ("sticker_to_png, static", lambda: sticker_to_png(static)),
        ("sticker_to_mp4, blink (38 frames, 5 s)", lambda: sticker_to_mp4(blink)),
        ("sticker_to_mp4, static (2 s still)", lambda: sticker_to_mp4(static)),
        ("sticker_to_telegram_webm, blink", lambda: sticker_to_telegram_webm(blink)),
    ]
    return [measure(case, call, runs) for case, call in cases]


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", help="also write the results to this file")
    arguments = parser.parse_args()
    results = run(arguments.runs)
    print("| case | median ms | p95 ms | output |")
    print("|---|---:|---:|---:|")
    for result in results:
        print(f"| {result.case} | {result.median_ms} | {result.p95_ms} | {result.output_kb} KB |")
    if arguments.json:
        with open(arguments.json, "w", encoding="utf-8") as handle:
            json.dump([asdict(result) for result in results], handle, indent=2)


if __name__ == "__main__":
    main()
