"""The test split, read only here: searches select on validation data and never see it."""

from __future__ import annotations

from tuning.data.sources import ReadOptions, Split, read_split


def load_test_split(source: str, options: ReadOptions | None = None) -> Split:
    """All test images of `source` ("keras", "synthetic", a local path or a folder, read with
    `options`), validated."""
    return read_split(source, "test", options)
