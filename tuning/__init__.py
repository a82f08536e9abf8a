"""cifar-tune: hyperparameter search for CIFAR-100 CNNs with Keras-Tuner.

Library entry points: `tuning.config.SearchConfig` and `tuning.search.run_search`.
"""

__version__ = "0.1.0"

from tuning.runtime import prefer_malloc as _prefer_malloc

_prefer_malloc()  # before TensorFlow's first allocation; see its docstring
