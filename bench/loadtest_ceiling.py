"""How fast can the load generator itself go? `python -m bench.loadtest_ceiling [--seconds 3]`

Runs a trivial keep-alive HTTP server (fixed 110-byte JSON answer) in a child process, then drives it
with `omnizap loadtest`'s engine and, for comparison, with an httpx AsyncClient, at 1, 40 and 200
connections. The engine's figure is the most a single generator process can measure on this machine;
a server that reaches it is faster than the tool can tell.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time

import httpx

from bench.catalog_slo import free_port
from omnizap.platform.loadtest import LoadTestConfig, run_load_test
from omnizap.platform.loadtest.runner import new_event_loop

SERVER = r"""
import asyncio, sys
BODY = b'{"ok":true}' * 10
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
          + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.pending = transport, b""
    def data_received(self, data):
        self.pending += data
        while (end := self.pending.find(b"\r\n\r\n")) >= 0:
            self.pending = self.pending[end + 4:]
            self.transport.write(ANSWER)
async def main(port):
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", port, backlog=1024)
    await server.serve_forever()
try:
    import uvloop
    uvloop.run(main(int(sys.argv[1])))
except ImportError:
    asyncio.run(main(int(sys.argv[1])))
"""


def _wait_for(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the trivial server did not start")


async def _httpx_run(url: str, concurrency: int, seconds: float) -> tuple[int, float, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    done = 0
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=12) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                response = await client.get("/a")
                await response.aread()
                done += 1

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return done, done / elapsed, (time.process_time() - cpu) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        _wait_for(port)
        url = f"http://127.0.0.1:{port}"
        print("| client | connections | requests/s | p95 ms | generator CPU |")
        print("|---|---:|---:|---:|---:|")
        for concurrency in (1, 40, 200):
            report = run_load_test(
                LoadTestConfig(
                    base_url=url, paths=["/a"], duration_seconds=args.seconds, concurrency=concurrency
                )
            )
            print(
                f"| omnizap loadtest | {concurrency} | {report['throughput_rps']:,.0f} | "
                f"{report['latency_ms']['p95']} | {report['generator']['cpu_utilization']:.0%} |"
            )
        for concurrency in (1, 40, 200):
            loop = new_event_loop()
            try:
                _, rate, cpu = loop.run_until_complete(_httpx_run(url, concurrency, args.seconds))
            finally:
                loop.close()
            print(f"| httpx AsyncClient | {concurrency} | {rate:,.0f} | - | {cpu:.0%} |")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
