"""Measurements; each run writes JSON with its machine under benchmarks/results/."""

import tuning  # noqa: F401  (TensorFlow's settings, before anything imports it)
