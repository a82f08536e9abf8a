"""`python -m tuning dashboard`: TensorBoard on 127.0.0.1 over one search's logs, or all of them.

TensorBoard re-reads the log folder every few seconds, so trials of a running search appear as
they end. The HParams tab (`URL/#hparams`) is where trials are compared.
"""

from __future__ import annotations

import time
from pathlib import Path

from tuning.errors import UsageError

HOST, RELOAD_SECONDS = "127.0.0.1", 5


def log_dirs(out: str | Path, method: str | None) -> dict[str, Path]:
    """{run name: its tensorboard folder} for `method` (e.g. "feature", "feature-seed") or all."""
    out = Path(out)
    runs = sorted(p for p in out.iterdir() if (p / "tensorboard").is_dir()) if out.is_dir() else []
    if method is not None:
        runs = [p for p in runs if p.name == method]
    if not runs:
        what = f"--method {method}" if method else "--method M"
        raise UsageError(
            f"no search logs under {out / (method or '*')}/tensorboard; run "
            f"`python -m tuning search {what} --out {out}` first"
        )
    return {p.name: p / "tensorboard" for p in runs}


def launch(out: str | Path, method: str | None = None, port: int = 6006) -> str:
    """Starts TensorBoard in this process (its server runs in a thread). Returns its URL.

    It watches `out/method/tensorboard`, or all of `out`, so that new trials (and, without a
    method, new searches) appear while it runs.
    """
    from tensorboard import program

    dirs = log_dirs(out, method)
    logdir = next(iter(dirs.values())) if method else Path(out)
    board = program.TensorBoard()
    board.configure(
        argv=[
            None,
            "--logdir",
            str(logdir),
            "--host",
            HOST,
            "--port",
            str(port),
            "--reload_interval",
            str(RELOAD_SECONDS),
        ]
    )
    try:
        return board.launch()
    except program.TensorBoardPortInUseError:
        raise UsageError(f"--port {port} is in use; pick another with --port") from None


def serve_forever(out: str | Path, method: str | None, port: int, log=print) -> None:
    url = launch(out, method, port)
    log(
        f"TensorBoard for {', '.join(log_dirs(out, method))} at {url} (trials: {url}#hparams); "
        f"Ctrl-C stops it"
    )
    while True:
        time.sleep(3600)
