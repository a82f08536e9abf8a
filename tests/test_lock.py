"""The run directory's lock: host, PID and start; another host's lock is never taken silently."""

import json
import os
import socket

import pytest
from conftest import run_cli, tree_digest

from tuning.errors import UsageError
from tuning.rundir.lock import LOCK_FILE, run_dir_lock

OTHER_HOST = {
    "host": "gpu-node-7.example",
    "pid": os.getpid(),
    "started": "2026-11-30T09:00:00+00:00",
}


def _locked_by(run_dir, record):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LOCK_FILE).write_text(json.dumps(record) + "\n")


def test_the_lock_names_host_pid_and_start_time_and_goes_with_the_search(tmp_path):
    with run_dir_lock(tmp_path):
        record = json.loads((tmp_path / LOCK_FILE).read_text())
        assert record["host"] == socket.gethostname() and record["pid"] == os.getpid()
        assert record["started"][:4].isdigit()
    assert not (tmp_path / LOCK_FILE).exists()


def test_another_hosts_lock_is_refused_naming_the_host_and_the_way_out(tmp_path):
    _locked_by(tmp_path, {**OTHER_HOST, "pid": 999_999_999})  # no such PID here: still refused
    with pytest.raises(
        UsageError,
        match=r"locked by a search on host gpu-node-7\.example "
        r"\(PID 999999999, started 2026-11-30.*--force-unlock",
    ):
        with run_dir_lock(tmp_path):
            pass
    assert json.loads((tmp_path / LOCK_FILE).read_text())["host"] == OTHER_HOST["host"]


def test_force_unlock_removes_another_hosts_lock_with_a_warning(tmp_path):
    _locked_by(tmp_path, OTHER_HOST)
    warnings = []
    with run_dir_lock(tmp_path, warn=warnings.append, force=True):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["host"] == socket.gethostname()
    assert len(warnings) == 1 and "gpu-node-7.example" in warnings[0]


def test_force_unlock_never_removes_a_live_search_of_this_host(tmp_path):
    _locked_by(tmp_path, {**OTHER_HOST, "host": socket.gethostname(), "pid": os.getppid()})
    with pytest.raises(UsageError, match=f"in use by another search \\(PID {os.getppid()}"):
        with run_dir_lock(tmp_path, force=True):
            pass


def test_a_dead_process_of_this_host_loses_its_lock_even_in_the_old_format(tmp_path):
    (tmp_path / LOCK_FILE).write_text("999999999\n")  # a bare PID, as earlier versions wrote
    warnings = []
    with run_dir_lock(tmp_path, warn=warnings.append):
        pass
    assert "from PID 999999999, which is gone" in warnings[0]


def test_the_search_command_refuses_another_hosts_lock_in_one_line(tmp_path):
    run_dir = tmp_path / "scratch"
    _locked_by(run_dir, OTHER_HOST)
    before = tree_digest(run_dir)
    done = run_cli(
        *("search --method scratch --data synthetic --train-size 400 --out").split(),
        tmp_path,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "gpu-node-7.example" in done.stderr and "--force-unlock" in done.stderr
    assert tree_digest(run_dir) == before
