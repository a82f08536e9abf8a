"""One search on several processes or machines: keras-tuner's chief oracle and its workers.

keras-tuner ships the protocol: a chief serves the oracle over gRPC and workers, told where by
`KERASTUNER_ORACLE_IP` / `KERASTUNER_ORACLE_PORT` and named by `KERASTUNER_TUNER_ID`, ask it for
trials and report back. This module adds what a run needs around it:

- `serve` replaces keras-tuner's blocking server loop on the chief. It binds the address given
  (127.0.0.1 unless the user names another host), writes the exports as each trial ends, and
  watches the workers: a worker whose heartbeat file (`run_dir/workers/<id>.json`, rewritten every
  few seconds) stops changing for `worker_timeout` seconds is taken as dead, and its trial goes back
  to the queue for another worker to run again. Workers that ask for work while trials are still
  running elsewhere are told to wait rather than to stop, so a trial that has to be run again
  always finds a worker.
- A restarted chief (`running_before` + `serve(..., resumed=...)`) gives each trial that was
  running when it stopped back to its worker instead of queueing it again: the worker may well
  still be running it, and keras-tuner's client waits for the chief to come back. If that worker
  has gone too, the watchdog queues the trial after `worker_timeout` as for any dead worker.
- `worker_environment`, `Heartbeat` and `RetryingStub` are a worker's side.

Workers and the chief share the run directory and the feature cache by path (a shared disk).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from datetime import datetime
from pathlib import Path

from tuning.errors import ConfigError, UsageError
from tuning.host import interrupt
from tuning.host.files import atomic_write_text
from tuning.host.internals import retry_queue, synchronized, trial_display
from tuning.rundir import ENDED

WORKERS_DIR, HEARTBEAT_SECONDS = "workers", 2.0


def default_worker_id() -> str:
    return f"worker-{socket.gethostname()}-{os.getpid()}"


@contextlib.contextmanager
def worker_environment(host: str, port: int, worker_id: str):
    """keras-tuner's worker variables, set while the block builds and runs the tuner."""
    names = {
        "KERASTUNER_ORACLE_IP": host,
        "KERASTUNER_ORACLE_PORT": str(port),
        "KERASTUNER_TUNER_ID": worker_id,
    }
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def wait_for_chief(host: str, port: int, seconds: float) -> None:
    """Returns once the chief answers at host:port; UsageError after `seconds`."""
    import grpc

    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=seconds)
    except grpc.FutureTimeoutError:
        raise UsageError(
            f"no chief answered at {host}:{port} within {seconds:.0f} s; start "
            f"`python -m tuning search ... --chief {host}:{port}` first"
        ) from None
    finally:
        channel.close()


class RetryingStub:
    """A worker's gRPC stub that repeats a call the chief's going away cut off (UNAVAILABLE).

    keras-tuner's client already waits for a chief that is not up (`wait_for_ready`), but a call
    in flight when the chief stops fails at once. Every call is safe to repeat on a restarted
    chief: it gives a worker back the trial it was running (`serve`), and CreateTrial returns the
    trial a worker already has.
    """

    def __init__(self, stub, attempts: int = 5, delay: float = 2.0):
        self._stub, self._attempts, self._delay = stub, attempts, delay

    def __getattr__(self, name):
        import grpc

        call = getattr(self._stub, name)

        def again(*args, **kwargs):
            for attempt in range(1, self._attempts + 1):
                try:
                    return call(*args, **kwargs)
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == self._attempts:
                        raise
                time.sleep(self._delay)

        return again


class Heartbeat:
    """A worker's sign of life: rewrites `run_dir/workers/<id>.json` every few seconds."""

    def __init__(self, run_dir: Path, worker_id: str):
        self.path = Path(run_dir) / WORKERS_DIR / f"{worker_id}.json"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.path.unlink(missing_ok=True)

    def _beat(self) -> None:
        beat = 0
        while not self._stop.is_set():
            beat += 1
            record = {"beat": beat, "pid": os.getpid(), "host": socket.gethostname()}
            with contextlib.suppress(OSError):
                atomic_write_text(self.path, json.dumps(record))
            self._stop.wait(HEARTBEAT_SECONDS)


def running_before(run_dir: Path) -> dict[str, str]:
    """{worker: trial id} running on workers when the chief last saved its oracle.

    Read before keras-tuner reloads the oracle (which queues them). Only workers that left a
    heartbeat file: a trial the chief itself was running has no worker to give it back to.
    """
    try:
        running = dict(json.loads((Path(run_dir) / "oracle.json").read_text())["ongoing_trials"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    folder = Path(run_dir) / WORKERS_DIR
    return {
        worker: trial_id
        for worker, trial_id in running.items()
        if (folder / f"{worker}.json").is_file()
    }


def serve(
    oracle,
    host: str,
    port: int,
    run_dir: Path,
    worker_timeout: float,
    on_trial_end,
    log=None,
    resumed: dict[str, str] | None = None,
) -> None:
    """Serves `oracle` at host:port until every trial has ended and every worker was told to stop.

    Args:
        on_trial_end: called with the trial after a worker ends it (exports, progress line).
        worker_timeout: seconds without a heartbeat after which a worker is taken as dead.
        resumed: `running_before(run_dir)` when the chief restarts a search: those trials stay
            with their workers.
    """
    import grpc

    from tuning.host.internals import oracle_protos

    for worker, trial_id in _give_back(oracle, resumed or {}):
        if log:
            log(
                f"chief: resuming; trial {trial_id} stays with {worker} (queued again if it "
                f"sends no heartbeat for {worker_timeout:.0f} s)"
            )
    servicer = _chief_servicer(oracle, on_trial_end)
    server = grpc.server(_single_thread())
    oracle_protos().get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise ConfigError(
            f"{{chief}} {host}:{port}: cannot listen there (in use, or not an address "
            f"of this machine)"
        )
    server.start()
    if log:
        log(
            f"chief: serving the search at {host}:{port}; start workers with the same command "
            f"and --worker {host}:{port} instead of --chief"
        )
    watchdog = _Watchdog(oracle, Path(run_dir), worker_timeout, log)
    try:
        while not (servicer.stop_triggered and _finished(oracle)):
            time.sleep(1)
            watchdog.check()
            interrupt.raise_if_interrupted()
    finally:
        server.stop(grace=2)


def _single_thread():
    from concurrent import futures

    return futures.ThreadPoolExecutor(max_workers=1)  # as keras-tuner's own server


def _chief_servicer(oracle, on_trial_end):
    from tuning.host import internals

    protos, trial_module = internals.oracle_protos(), internals.trial_module()

    class ChiefServicer(internals.oracle_servicer_class()):
        def CreateTrial(self, request, context):
            trial = self.oracle.create_trial(request.tuner_id)
            if trial.status == trial_module.TrialStatus.STOPPED:
                if self.oracle.ongoing_trials:  # one may come back: keep this worker waiting
                    _register(self.oracle, request.tuner_id)
                    trial = trial_module.Trial(
                        self.oracle.get_space(), status=trial_module.TrialStatus.IDLE
                    )
                else:
                    self.stop_triggered = True
            return protos.get_service().CreateTrialResponse(trial=trial.to_proto())

        def UpdateTrial(self, request, context):
            trial = self.oracle.trials.get(request.trial_id)
            if trial is not None and trial.status in ENDED:  # a second worker's late metrics
                return protos.get_service().UpdateTrialResponse(trial=trial.to_proto())
            return super().UpdateTrial(request, context)

        def EndTrial(self, request, context):
            trial_id = request.trial.trial_id
            if not _take_report(self.oracle, trial_id):
                return protos.get_service().EndTrialResponse()
            response = super().EndTrial(request, context)
            on_trial_end(self.oracle.trials[trial_id])
            return response

    return ChiefServicer(oracle)


class _Watchdog:
    """Takes a worker whose heartbeat stopped as dead and puts its trial back in the queue."""

    def __init__(self, oracle, run_dir: Path, timeout: float, log):
        self.oracle, self.folder, self.timeout, self.log = (
            oracle,
            run_dir / WORKERS_DIR,
            timeout,
            log,
        )
        self._seen: dict[str, tuple[object, float]] = {}  # worker -> (last beat, when it changed)

    def check(self) -> None:
        now = time.monotonic()
        for worker in set(self.oracle.tuner_ids) | set(self.oracle.ongoing_trials):
            beat = self._beat(worker)
            last = self._seen.get(worker)
            if last is None or last[0] != beat:
                self._seen[worker] = (beat, now)
            elif now - last[1] > self.timeout:
                trial = _requeue(self.oracle, worker)
                self._seen.pop(worker)
                if self.log:
                    again = f"; trial {trial.trial_id} goes back to the queue" if trial else ""
                    self.log(
                        f"chief: {worker} sent no heartbeat for {self.timeout:.0f} s and is "
                        f"taken as dead{again}"
                    )

    def _beat(self, worker: str):
        try:
            return json.loads((self.folder / f"{worker}.json").read_text())["beat"]
        except (OSError, ValueError, KeyError):
            return None


@synchronized
def _finished(oracle) -> bool:
    return not oracle.ongoing_trials and not oracle.tuner_ids


@synchronized
def _register(oracle, worker: str) -> None:
    oracle.tuner_ids.add(worker)


@synchronized
def _give_back(oracle, running: dict[str, str]) -> list[tuple[str, str]]:
    """Undoes keras-tuner's reload for `running`: it queues every trial that was running, so a
    worker still running one would later end a trial another worker had been given meanwhile."""
    given = []
    for worker, trial_id in running.items():
        if trial_id in retry_queue(oracle):
            retry_queue(oracle).remove(trial_id)
            oracle.ongoing_trials[worker] = oracle.trials[trial_id]
            oracle.tuner_ids.add(worker)
            given.append((worker, trial_id))
    if given:
        oracle.save()
    return given


@synchronized
def _take_report(oracle, trial_id: str) -> bool:
    """Whether a worker's end of `trial_id` counts: the first report does, a second does not.

    Two reports come when a trial was queued again (its worker taken as dead, or a restarted
    chief) while its first worker was still running it; the first report also takes the trial
    off the queue, so it is not run once more.
    """
    trial = oracle.trials.get(trial_id)
    if trial is None or trial.status in ENDED:
        return False
    if trial_id in retry_queue(oracle):
        retry_queue(oracle).remove(trial_id)
    # keras-tuner's display prints the trial's time taken, from when this process began it; a
    # restarted chief did not (its saved state is written just before a trial begins).
    display = trial_display(oracle)
    display.trial_start.setdefault(trial_id, datetime.now())
    display.trial_number.setdefault(trial_id, len(oracle.trials))
    display.search_start = display.search_start or datetime.now()
    return True


@synchronized
def _requeue(oracle, worker: str):
    oracle.tuner_ids.discard(worker)
    trial = oracle.ongoing_trials.pop(worker, None)
    if trial is not None:
        retry_queue(oracle).append(trial.trial_id)
        oracle.save()
    return trial
