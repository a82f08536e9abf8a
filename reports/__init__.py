"""Reports on finished searches: the only code that reads the CIFAR-100 test split."""

import tuning  # noqa: F401  (TensorFlow's settings, before anything imports it)
