"""The test split, read only here: searches select on validation data and never see it."""

from __future__ import annotations

from tuning.data.sources import Split, read_split


def load_test_split(source: str) -> Split:
    """All 10,000 test images of `source` ("keras", "synthetic" or a local path), validated."""
    return read_split(source, "test")
