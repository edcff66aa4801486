"""Benchmark suite: the kit against Hugging Face transformers on PyTorch.

Run `.venv/bin/python -m bench` (see `bench/run.py`).
"""
