"""cifar-tune: hyperparameter search for CIFAR-100 CNNs with Keras-Tuner.

    from tuning import SearchConfig, run_search

    result = run_search(SearchConfig(method="scratch", data="synthetic", max_epochs=2))
    result.best_hyperparameters, result.trials, result.load_best_model()

Names are imported when first used, so `import tuning` (and `python -m tuning --help`) does not
import TensorFlow. `build_report` lives in `reports` (which imports `tuning`, never the other way
round); the face forwards the name so that one import serves a search and its report, and only
when it is asked for.
"""

__version__ = "0.1.0"

from tuning.host.cpu import prefer_onednn as _prefer_onednn
from tuning.host.runtime import prefer_malloc as _prefer_malloc

# Both before TensorFlow's import and first allocation read them; see their docstrings.
_prefer_onednn()
_prefer_malloc()

_EXPORTS = {
    "SearchConfig": "tuning.config",
    "run_search": "tuning.engine.search",
    "SearchResult": "tuning.result",
    "load_trials": "tuning.rundir.trials_table",
    "top_trials": "tuning.rundir.trials_table",
    "load_trained_model": "tuning.predict",
    "predict_images": "tuning.predict",
    "build_report": "reports.report",
    "ConfigError": "tuning.errors",
    "UsageError": "tuning.errors",
    "SearchFailed": "tuning.errors",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tuning' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *__all__])
