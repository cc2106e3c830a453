"""What the classification tests share: real sample photos, generated stickers, the builtin
classifier loaded once per test process, and a real HTTP server speaking the CLIP service's API.

The models' one-off work (EfficientNet-Lite0's ONNX export, the label→theme matrix) is cached in
pytest's cache folder, so only the first run on a machine pays for it.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import http.server
import importlib.resources
import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFont

from omnizap.config import Settings

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


def sample_photo(name: str) -> bytes:
    """A real photograph shipped inside scikit-image (e.g. chelsea.png, a cat)."""
    return importlib.resources.files("skimage.data").joinpath(name).read_bytes()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.truetype(str(FONT), size) if FONT.exists() else ImageFont.load_default(size=size)


def text_sticker(
    lines: list[str],
    *,
    fill: tuple[int, int, int, int] = (0, 0, 0, 255),
    outline: tuple[int, int, int, int] | None = None,
    background: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> bytes:
    """A caption sticker: lines of bold lettering on a transparent (or coloured) 512² canvas."""
    image = Image.new("RGBA", (512, 512), background)
    draw = ImageDraw.Draw(image)
    y = 40
    for line in lines:
        draw.text(
            (30, y),
            line,
            font=_font(64),
            fill=fill,
            stroke_width=5 if outline else 0,
            stroke_fill=outline,
        )
        y += 90
    return png(image)


def animated_from(photo: bytes, frames: int = 6) -> bytes:
    """An animated WebP made from a photo: the picture drifting and changing tone frame by frame."""
    base = Image.open(io.BytesIO(photo)).convert("RGB").resize((320, 320))
    sequence = []
    for index in range(frames):
        shifted = Image.new("RGB", base.size, (255, 255, 255))
        shifted.paste(base, (index * 4, index * 2))
        sequence.append(shifted.point(lambda value, i=index: min(255, value + i * 3)))
    buffer = io.BytesIO()
    sequence[0].save(buffer, "WEBP", save_all=True, append_images=sequence[1:], duration=100, loop=0)
    return buffer.getvalue()


def model_settings(cache_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "sticker_classification_model_dir": cache_dir,
        "sticker_classification_background_concurrency": 2,
        "sticker_storage_dir": cache_dir.parent / "stickers",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def model_dir(request: pytest.FixtureRequest) -> Path:
    return Path(request.config.cache.mkdir("omnizap-classification-models"))


@pytest.fixture(scope="session")
def builtin_classifier(model_dir: Path) -> Any:
    """The real builtin classifier, loaded once per test process."""
    from omnizap.intelligence.classification.providers import classifier_for

    classifier = classifier_for(model_settings(model_dir))
    classifier.load()
    return classifier


# --- a CLIP classifier service on loopback -----------------------------------------------------------


@dataclass
class ClipRequest:
    fields: dict[str, str]
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class ClipServer:
    """A real HTTP server on 127.0.0.1. `respond(request) -> (status, body bytes)` decides answers;
    `release` unblocks handlers that wait (for timeout tests) at teardown."""

    url: str
    requests: list[ClipRequest] = field(default_factory=list)
    respond: Callable[[ClipRequest], tuple[int, bytes]] = lambda request: (200, b"{}")
    release: threading.Event = field(default_factory=threading.Event)


def clip_answer(request: ClipRequest, labels: dict[str, float], **extra: Any) -> tuple[int, bytes]:
    """The CLIP service's response shape (pipeline §1.1) for the given label scores."""
    ranked = sorted(labels.items(), key=lambda pair: -pair[1])
    digest = hashlib.sha256(request.data).hexdigest()
    body = {
        "category": ranked[0][0],
        "confidence": ranked[0][1],
        "all_scores": labels,
        "raw_logits": {label: score * 100 for label, score in labels.items()},
        "top_labels": [
            {"label": label, "score": score, "logit": score * 100, "clip_score": score}
            for label, score in ranked[:5]
        ],
        "entropy": 1.2,
        "entropy_top_k": 1.0,
        "entropy_normalized": 0.4,
        "confidence_margin": ranked[0][1] - (ranked[1][1] if len(ranked) > 1 else 0),
        "nsfw_score": labels.get("nsfw content", 0.01),
        "is_nsfw": labels.get("nsfw content", 0.0) >= 0.6,
        "ambiguous": False,
        "affinity_weight": 0,
        "similar_images": [],
        "image_hash": request.fields.get("asset_sha256", digest).upper(),
        "model": "MobileCLIP-S1",
        "device": "cpu",
        "filename": request.filename,
        "content_type": request.content_type,
        **extra,
    }
    return 200, json.dumps(body).encode()


def _parse_multipart(content_type: str, body: bytes) -> ClipRequest:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, str] = {}
    filename = part_type = None
    data = b""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "file":
            filename = part.get_filename()
            part_type = part.get_content_type()
            data = payload
        elif name:
            fields[str(name)] = payload.decode()
    return ClipRequest(fields, filename, part_type, data)


@pytest.fixture
def clip_server() -> Iterator[ClipServer]:
    server_state = ClipServer(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = _parse_multipart(self.headers.get("Content-Type", ""), self.rfile.read(length))
            server_state.requests.append(request)
            status, body = server_state.respond(request)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state.url = f"http://127.0.0.1:{httpd.server_address[1]}/classify"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server_state
    server_state.release.set()
    httpd.shutdown()
    httpd.server_close()
