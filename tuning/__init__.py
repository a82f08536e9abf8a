"""cifar-tune: hyperparameter search for CIFAR-100 CNNs with Keras-Tuner.

Library entry points: `tuning.config.SearchConfig` and `tuning.search.run_search`.
"""

__version__ = "0.1.0"

from tuning.cpu import prefer_onednn as _prefer_onednn
from tuning.runtime import prefer_malloc as _prefer_malloc

# Both before TensorFlow's import and first allocation read them; see their docstrings.
_prefer_onednn()
_prefer_malloc()
