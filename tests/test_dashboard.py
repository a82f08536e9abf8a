"""The dashboard as a person sees it: TensorBoard's HParams table in headless Chromium."""

import re
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import ROOT, free_port, run_cli

CHROMIUM = shutil.which("chromium")
SEARCH = (
    "search --method scratch --data synthetic --train-size 1000 "
    "--tuner random --max-epochs 1 --batch-size 64"
).split()


def _trial_ids_in_table(page) -> set[str]:
    cells = page.locator("vaadin-grid-cell-content").all_inner_texts()
    return {text.strip() for text in cells if re.fullmatch(r"\d{1,4}", text.strip())}


def _wait_for_rows(page, url, expected: set[str], timeout=60) -> set[str]:
    deadline, seen = time.monotonic() + timeout, set()
    page.goto(url + "#hparams")
    while time.monotonic() < deadline:
        page.reload()  # as a person presses F5: the table is fetched when the page loads
        page.wait_for_timeout(3000)
        seen = _trial_ids_in_table(page)
        if seen == expected:
            return seen
    return seen


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_hparams_table_lists_every_trial_and_new_ones_as_they_end(tmp_path):
    from playwright.sync_api import sync_playwright

    first = run_cli(*SEARCH, "--max-trials", "2", "--out", tmp_path)
    assert first.returncode == 0, first.stderr
    board = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tuning",
            "dashboard",
            "--out",
            tmp_path,
            "--method",
            "scratch",
            "--port",
            str(free_port()),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = board.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+/) ", line).group(1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=(
                    "--no-sandbox --disable-gpu --disable-quic --no-first-run "
                    "--disable-background-networking --disable-component-update "
                    "--disable-sync"
                ).split(),
            )
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            trials = pd.read_csv(tmp_path / "scratch" / "trials.csv", dtype={"trial_id": str})
            assert _wait_for_rows(page, url, set(trials.trial_id)) == set(trials.trial_id)
            page.screenshot(path=tmp_path / "hparams.png")
            assert (tmp_path / "hparams.png").stat().st_size > 20_000

            more = run_cli(*SEARCH, "--max-trials", "3", "--out", tmp_path)  # resumes: +1 trial
            assert more.returncode == 0, more.stderr
            trials = pd.read_csv(tmp_path / "scratch" / "trials.csv", dtype={"trial_id": str})
            assert len(trials) == 3
            assert _wait_for_rows(page, url, set(trials.trial_id)) == set(trials.trial_id)
            page.screenshot(path=tmp_path / "hparams-after.png")
            browser.close()
    finally:
        board.terminate()
        board.wait(timeout=30)
    print(f"screenshots: {tmp_path / 'hparams.png'}, {tmp_path / 'hparams-after.png'}")


def test_dashboard_without_logs_is_a_one_line_usage_error(tmp_path):
    done = run_cli("dashboard", "--out", tmp_path, "--method", "feature")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "python -m tuning search --method feature" in done.stderr
