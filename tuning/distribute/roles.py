"""A search's worker and chief sides: what `run_search` does with `--worker` or `--chief`.

The protocol and its repairs are `tuning.distribute.protocol`; this is the glue to a search: a
worker checks it joins the same search, builds the same tuner and runs trials until the chief has
none left; a chief serves its oracle instead of running trials.
"""

from __future__ import annotations

from tuning.config import SearchConfig, parse_address
from tuning.errors import SearchFailed, UsageError
from tuning.host import interrupt
from tuning.host.cpu import onednn_line
from tuning.rundir import CONFIG_FILE
from tuning.rundir.identity import check_resumable

CHIEF_WAIT_SECONDS = 600  # how long a worker waits for its chief to start serving


def worker_search(config: SearchConfig, log, start):
    """Runs trials for the chief at `config.worker` until it has none left.

    Needs no lock (the chief holds it) and must find the chief's `search_config.json` in the run
    directory with the same defining settings: a worker never runs another search's trials.

    Args:
        start: `(worker_id) -> (tuner, run_trials)` from `tuning.engine.search`: the search's
            checked inputs and its tuner on the chief's oracle (built inside the worker's
            environment, which tells keras-tuner where the chief is), and its search loop.
    Returns:
        (worker id, completed trials, failed trials) of this worker.
    """
    from tuning.distribute.protocol import (
        Heartbeat,
        RetryingStub,
        default_worker_id,
        wait_for_chief,
        worker_environment,
    )

    host, port = parse_address(config.worker, "worker")
    worker_id = config.worker_id or default_worker_id()
    with Heartbeat(config.run_dir, worker_id):
        if log:
            log(f"{worker_id}: joining the search served at {host}:{port} ({onednn_line()})")
        wait_for_chief(host, port, CHIEF_WAIT_SECONDS)
        if not (config.run_dir / CONFIG_FILE).is_file():
            raise UsageError(
                f"no search_config.json in {config.run_dir}: give the worker the "
                f"chief's --out, on a disk both can reach"
            )
        check_resumable(config)
        with interrupt.recorded(), worker_environment(host, port, worker_id):
            tuner, run_trials = start(worker_id)
            tuner.oracle.stub = RetryingStub(tuner.oracle.stub)
            _run_worker_trials(run_trials, f"{host}:{port}", worker_id)
    ran = tuner.recorder.ran
    return worker_id, ran.count("COMPLETED"), ran.count("FAILED")


def _run_worker_trials(run, address: str, worker_id: str) -> None:
    """A worker's trials; a chief that went away ends it with one line, not a traceback.

    keras-tuner's client waits (up to an hour a call) for a chief that went away, and
    `RetryingStub` repeats a call its going away cut off; a chief gone for longer, or an error
    the chief raised, ends the worker here.
    """
    import grpc

    try:
        run()
    except grpc.RpcError as error:
        code = error.code().name if hasattr(error, "code") else type(error).__name__
        raise SearchFailed(
            f"{worker_id}: lost the chief at {address} ({code}); start this "
            f"worker again once the chief runs"
        ) from None


def running_on_workers(config: SearchConfig) -> dict[str, str]:
    """{worker: trial id} a restarted chief finds running (see `tuning.distribute.protocol`)."""
    from tuning.distribute.protocol import running_before

    return running_before(config.run_dir) if config.chief and not config.overwrite else {}


def serve_search(config: SearchConfig, tuner, resumed: dict) -> None:
    """Serves the search's oracle to workers until every trial has ended."""
    from tuning.distribute.protocol import serve

    host, port = parse_address(config.chief, "chief")
    tuner.save()
    serve(
        tuner.oracle,
        host,
        port,
        config.run_dir,
        config.worker_timeout,
        on_trial_end=lambda trial: tuner.recorder.trial_ended(tuner.oracle.trials.values(), trial),
        log=tuner.recorder.log,
        resumed=resumed,
    )
