"""Sticker classification: providers (builtin offline models, the original's CLIP HTTP service),
the classification cycle over pending assets and the reprocess queue, and its producers.

Light to import: the models (onnxruntime, torch for the one-off export, tokenizers) load on first
use inside the builtin provider, so the web server and `omnizap --help` never import them.
See docs/intelligence.md ("Classification").
"""
