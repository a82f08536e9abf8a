"""The README and the pages it links: every relative link leads to a file that is there."""

import re

import pytest
from conftest import ROOT

PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_resolves(page):
    text = (ROOT / page).read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert local or page != "README.md"
    missing = [t for t in local if not (ROOT / page).parent.joinpath(t).exists()]
    assert not missing, f"{page} links to missing files: {missing}"
