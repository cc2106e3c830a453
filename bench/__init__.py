"""Benchmarks: `python -m bench.<name>` from the repository root. Results go in docs/benchmarks.md."""
