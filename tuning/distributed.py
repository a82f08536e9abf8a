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
- `worker_environment` and `Heartbeat` are a worker's side.

Workers and the chief share the run directory and the feature cache by path (a shared disk).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from pathlib import Path

from tuning import interrupt
from tuning.errors import UsageError
from tuning.files import atomic_write_text

WORKERS_DIR, HEARTBEAT_SECONDS = "workers", 2.0
LOOPBACK = "127.0.0.1"


def parse_address(text: str, flag: str) -> tuple[str, int]:
    """"HOST:PORT", ":PORT" or "PORT" -> (host, port); the host defaults to 127.0.0.1."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 < number < 65536:
        raise UsageError(f"{flag} expects HOST:PORT (e.g. 127.0.0.1:8470). Received: {text!r}")
    return host.strip("[]") or LOOPBACK, number


def default_worker_id() -> str:
    return f"worker-{socket.gethostname()}-{os.getpid()}"


@contextlib.contextmanager
def worker_environment(host: str, port: int, worker_id: str):
    """keras-tuner's worker variables, set while the block builds and runs the tuner."""
    names = {"KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": str(port),
             "KERASTUNER_TUNER_ID": worker_id}
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
        raise UsageError(f"no chief answered at {host}:{port} within {seconds:.0f} s; start "
                         f"`python -m tuning search ... --chief {host}:{port}` first") from None
    finally:
        channel.close()


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


def serve(oracle, host: str, port: int, run_dir: Path, worker_timeout: float, on_trial_end,
          log=None) -> None:
    """Serves `oracle` at host:port until every trial has ended and every worker was told to stop.

    Args:
        on_trial_end: called with the trial after a worker ends it (exports, progress line).
        worker_timeout: seconds without a heartbeat after which a worker is taken as dead.
    """
    import grpc
    from keras_tuner.src import protos

    servicer = _chief_servicer(oracle, on_trial_end)
    server = grpc.server(_single_thread())
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise UsageError(f"--chief {host}:{port}: cannot listen there (in use, or not an address "
                         f"of this machine)")
    server.start()
    if log:
        log(f"chief: serving the search at {host}:{port}; start workers with the same command "
            f"and --worker {host}:{port} instead of --chief")
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
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer
    from keras_tuner.src.engine import trial as trial_module

    class ChiefServicer(OracleServicer):
        def CreateTrial(self, request, context):
            trial = self.oracle.create_trial(request.tuner_id)
            if trial.status == trial_module.TrialStatus.STOPPED:
                if self.oracle.ongoing_trials:  # one may come back: keep this worker waiting
                    _register(self.oracle, request.tuner_id)
                    trial = trial_module.Trial(self.oracle.get_space(),
                                               status=trial_module.TrialStatus.IDLE)
                else:
                    self.stop_triggered = True
            return protos.get_service().CreateTrialResponse(trial=trial.to_proto())

        def EndTrial(self, request, context):
            response = super().EndTrial(request, context)
            on_trial_end(self.oracle.trials[request.trial.trial_id])
            return response

    return ChiefServicer(oracle)


class _Watchdog:
    """Takes a worker whose heartbeat stopped as dead and puts its trial back in the queue."""

    def __init__(self, oracle, run_dir: Path, timeout: float, log):
        self.oracle, self.folder, self.timeout, self.log = oracle, run_dir / WORKERS_DIR, timeout, log
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
                    self.log(f"chief: {worker} sent no heartbeat for {self.timeout:.0f} s and is "
                             f"taken as dead{again}")

    def _beat(self, worker: str):
        try:
            return json.loads((self.folder / f"{worker}.json").read_text())["beat"]
        except (OSError, ValueError, KeyError):
            return None


def _synchronized(function):
    """keras-tuner's `synchronized` (holds the oracle's lock), imported only when first called."""

    def call(oracle, *args):
        from keras_tuner.src.engine.oracle import synchronized

        return synchronized(function)(oracle, *args)

    return call


@_synchronized
def _finished(oracle) -> bool:
    return not oracle.ongoing_trials and not oracle.tuner_ids


@_synchronized
def _register(oracle, worker: str) -> None:
    oracle.tuner_ids.add(worker)


@_synchronized
def _requeue(oracle, worker: str):
    oracle.tuner_ids.discard(worker)
    trial = oracle.ongoing_trials.pop(worker, None)
    if trial is not None:
        oracle._retry_queue.append(trial.trial_id)
        oracle.save()
    return trial
