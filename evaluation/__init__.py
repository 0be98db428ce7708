"""Evaluation: accuracy of any model file on a dataset split (``evaluate``), model-only latency
(``latency``) and the end-to-end benchmark (``bench``). Above the backends, the run loop and
conversion; below the CLI (see tests/test_layers.py)."""
