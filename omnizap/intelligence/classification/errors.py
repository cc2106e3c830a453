"""How a classification attempt can fail, and what each failure means for the asset.

- `InvalidImage`: the file itself cannot be classified (undecodable, too large, refused by the
  classifier as bad input). Retrying will not help, so the asset gets the documented fallback row.
- `ClassifierFailure`: this attempt failed for a reason outside the file (timeout, 5xx, junk
  answer, missing file in storage). The asset is left as it was (pending, or its old row) and is
  tried again later; nothing is written.
- `ClassifierUnavailable`: the classifier cannot work at all (models not installed, service down).
  The cycle stops early and reports it; assets stay pending.
"""

from __future__ import annotations


class ClassificationError(RuntimeError):
    """Base class of classification failures."""


class InvalidImage(ClassificationError):
    """Non-retryable: the bytes are not an image the classifier can read.

    `code` is the marker stored in the fallback row's signals: `decoder-error`, `too-large` or
    `non-retryable-error` (the original's llm_subtags)."""

    def __init__(self, message: str, code: str = "decoder-error") -> None:
        super().__init__(message)
        self.code = code


class ClassifierFailure(ClassificationError):
    """Retryable failure of one attempt; the asset stays as it was."""


class FileMissing(ClassifierFailure):
    """The asset's file could not be read from storage (not the classifier's fault)."""


class ClassifierUnavailable(ClassificationError):
    """The classifier cannot run at all right now (not installed, unreachable)."""
