"""What makes a search the same search: resuming (or joining as a worker) anything else is refused.

A search's identity is every setting that changes what a trial computes or how it is scored
(the split, the data, the model space, training), plus fingerprints of the files those settings
name: the `--space` file's content, a `--weights` file's content and a local `--data` path's
size and modification time. They are written into `search_config.json` when the search starts
and compared before anything is touched on a resume. Settings that only say how long or where
to run (`--max-trials`, `--time-budget`, `--verbose`, worker names and timeouts) may change.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tuning.config import SearchConfig
from tuning.errors import UsageError
from tuning.rundir import CONFIG_FILE

IDENTITY = (
    "method",
    "tuner",
    "preset",
    "max_epochs",
    "min_epochs",
    "factor",
    "hyperband_iterations",
    "seed",
    "batch_size",
    "data",
    "backbone",
    "alpha",
    "weights",
    "train_size",
    "val_size",
    "image_size",
    "test_size",
    "skip_bad_images",
    "input_size",
    "fine_tune_head_epochs",
    "cache",
    "space",
    "recipes",
    "patience",
    "max_madds",
    "precision",
)
LISTED_FILES = 100  # a data folder with more files is fingerprinted by a hash of its listing
# The fingerprint of each setting that names a file (not mentioned when the setting changed).
_FINGERPRINT = {
    "space": "space file content",
    "weights": "weights file content",
    "data": "data files (size, modified)",
    "arrays": "in-memory arrays content",
}
_FILE_OF = {fingerprint: setting for setting, fingerprint in _FINGERPRINT.items()}


def config_record(config: SearchConfig, arrays=None, data=None) -> str:
    """`search_config.json`: the settings, with the fingerprints of the files they name (and
    of the training `arrays`, a `tuning.data.sources.Split`, of a search on arrays), and what
    the search's `data` (a `SearchData`) turned out to be: its classes and image side."""
    record = json.loads(config.to_json())
    record["fingerprints"] = fingerprints(config, arrays)
    if data is not None:
        record["classes"] = list(data.names.fine)
        record["image_side"] = data.image_size
    return json.dumps(record, indent=2, sort_keys=True)


def fingerprints(config: SearchConfig, arrays=None) -> dict:
    """Content hashes of the space and weights files and of in-memory arrays, size and time of
    a local data path."""
    from tuning.data.sources import IN_MEMORY

    found = {}
    if config.space:
        found[_FINGERPRINT["space"]] = _sha256(Path(config.space))
    if config.weights not in ("imagenet", "none"):
        found[_FINGERPRINT["weights"]] = _sha256(Path(config.weights))
    if config.data == IN_MEMORY:
        from tuning.data.features import images_hash

        found[_FINGERPRINT["arrays"]] = images_hash(arrays) if arrays is not None else None
    elif config.data not in ("keras", "synthetic"):
        found[_FINGERPRINT["data"]] = _stat(Path(config.data))
    return found


def recorded_config(config: SearchConfig) -> SearchConfig | None:
    """The settings `config`'s run directory recorded, where a resume goes on from them: None for
    a new search, for `--overwrite`, and for a file the identity check will name as wrong."""
    path = config.run_dir / CONFIG_FILE
    if config.overwrite or not path.is_file():
        return None
    try:
        return SearchConfig.from_json(path.read_text())
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def check_resumable(config: SearchConfig, arrays=None) -> None:
    """Refuses (UsageError) to resume a run directory that holds another search."""
    path = config.run_dir / CONFIG_FILE
    if config.overwrite or not path.exists():
        return
    try:
        text = path.read_text()
        previous = SearchConfig.from_json(text)
        stored = json.loads(text).get("fingerprints")
    except (ValueError, TypeError, UsageError):
        raise UsageError(
            f"{path} is unreadable; pass --overwrite to start afresh or choose another --out"
        ) from None
    settings = [k for k in IDENTITY if getattr(previous, k) != getattr(config, k)]
    changed = [f"{k} {getattr(previous, k)!r} (now {getattr(config, k)!r})" for k in settings]
    if stored is not None:  # (written by versions that record them)
        now = fingerprints(config, arrays)
        changed += [
            f"{k} changed"
            for k in sorted(set(stored) | set(now))
            if stored.get(k) != now.get(k) and _FILE_OF.get(k) not in settings
        ]
    if changed:
        raise UsageError(
            f"{config.run_dir} holds another search: {'; '.join(changed)}; resuming "
            f"it would mix two searches: pass --overwrite or another --out"
        )


def check_same_arrays(run_dir: Path, arrays) -> None:
    """Refuses (UsageError) training arrays other than those the search in `run_dir` ran on."""
    from tuning.data.features import images_hash

    stored = json.loads((run_dir / CONFIG_FILE).read_text()).get("fingerprints", {})
    if stored.get(_FINGERPRINT["arrays"]) != images_hash(arrays):
        raise UsageError(
            f"x_train / y_train are not the arrays the search in {run_dir} ran "
            f"on: its trials were selected on a split of those"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stat(path: Path) -> list | dict | None:
    """[name, size, modified] of each file of a data path; for a folder of more than
    LISTED_FILES files (pictures), their count and a hash of that listing."""
    if not path.exists():
        return None  # reading the data says what is wrong
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    listing = [
        [
            str(p.relative_to(path) if path.is_dir() else p.name),
            p.stat().st_size,
            p.stat().st_mtime_ns,
        ]
        for p in files
    ]
    if len(listing) <= LISTED_FILES:
        return listing
    digest = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    return {"files": len(listing), "sha256": digest}
