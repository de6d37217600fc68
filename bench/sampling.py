"""Per-process sampling: each benchmark is timed in several worker processes, one after another.

Rounds inside one process are not independent samples: a process keeps its memory layout, thread
placement and allocator state, and on a 2-core CPU process-to-process differences are larger than
round-to-round ones. So every benchmark runs in each of N worker processes in turn (never two at
once), each building the same seeded work, warming it up and timing a few rounds; a process's
median is one sample, and comparisons test the spread between processes (bench/stats.py).

The workers are forked from a server that has imported torch and transformers but run nothing
(multiprocessing's forkserver), so a worker costs milliseconds to start instead of seconds, yet
allocates, spawns its threads and places its memory on its own. Workers live for the session; each
benchmark's N values still come from N different processes. Each job also times the calibration
workload (bench/calibration.py) in the same process, right after the benchmark.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import statistics
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

PRELOAD = ["torch", "transformers", "bench.workloads"]


@dataclass(frozen=True)
class Job:
    """What one worker runs for one benchmark: a workload of bench/workloads.py and how to time it.

    `slowdown` is for the detector's self-tests only: it stretches every timed round by that fraction
    of the round's own time, spinning on the CPU inside the timed region.
    """

    workload: str
    params: dict
    rounds: int
    warmup: int = 1
    slowdown: float = 0.0

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.workload}({args})"


@dataclass
class ProcessSample:
    """One worker process's timings of one benchmark."""

    pid: int
    seconds: list[float]
    calibration_seconds: float
    info: list = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


class WorkerFailed(RuntimeError):
    """A worker raised (its traceback is in the message) or died while running a job."""


def spin(seconds: float) -> None:
    """Busy-wait on this core: added work, not an idle sleep the scheduler could hide."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def run_job(spec, job: Job) -> ProcessSample:
    """Build the workload, warm it up, then time `job.rounds` synchronized rounds, each followed by
    one round of the calibration workload (so both see the machine as it was at that moment)."""
    from bench.calibration import Calibration
    from bench.device import synchronize
    from bench.workloads import build

    workload = build(spec, job.workload, job.params)
    calibration = Calibration(spec.device)
    for _ in range(job.warmup):
        workload.step()
        calibration.seconds()
    synchronize(spec.device)
    seconds, calibration_seconds, info = [], [], []
    for _ in range(job.rounds):
        start = time.perf_counter()
        facts = workload.step()
        synchronize(spec.device)
        if job.slowdown:
            spin(job.slowdown * (time.perf_counter() - start))
        seconds.append(time.perf_counter() - start)
        info.append(facts)
        calibration_seconds.append(calibration.seconds())
    return ProcessSample(os.getpid(), seconds, statistics.median(calibration_seconds), info)


def worker_main(conn: Connection, options: dict, threads: int) -> None:
    """A worker's life: build the run spec once, then run jobs until told to stop (None)."""
    from bench.device import use_threads
    from bench.spec import build_spec

    use_threads(threads)
    spec = build_spec(**options)
    while (job := conn.recv()) is not None:
        try:
            conn.send(run_job(spec, job))
        except Exception:
            conn.send(
                WorkerFailed(f"{job.describe()} failed in worker {os.getpid()}:\n{traceback.format_exc()}")
            )
    conn.close()


def start_server() -> multiprocessing.context.BaseContext:
    """Start the fork server now; its imports (seconds) overlap with whatever the caller does next."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    multiprocessing.forkserver.ensure_running()
    return context


class WorkerPool:
    """N worker processes that run each job one after another, never two at once."""

    def __init__(self, options: dict, workers: int, threads: int) -> None:
        context = start_server()
        self.size, self.threads = workers, threads
        self.workers: list[tuple[multiprocessing.Process, Connection]] = []
        for _ in range(workers):
            ours, theirs = context.Pipe()
            # not a daemon: FlagPerf's data path starts DataLoader workers of its own
            process = context.Process(target=worker_main, args=(theirs, options, threads), daemon=False)
            process.start()
            theirs.close()
            self.workers.append((process, ours))

    def sample(self, job: Job) -> list[ProcessSample]:
        """The job in every worker, in turn; the first failure stops the benchmark with its cause."""
        samples = []
        for process, conn in self.workers:
            conn.send(job)
            try:
                result = conn.recv()
            except (EOFError, OSError):
                process.join(timeout=5)
                raise WorkerFailed(
                    f"{job.describe()}: worker {process.pid} died (exit code {process.exitcode})"
                ) from None
            if isinstance(result, Exception):
                raise result
            samples.append(result)
        return samples

    def close(self) -> None:
        for _, conn in self.workers:
            with contextlib.suppress(OSError):  # already gone
                conn.send(None)
        for process, _ in self.workers:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        self.workers = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def summary(samples: list[ProcessSample], job: Job, threads: int) -> dict:
    """What a saved result keeps about its sampling: per-process values, raw and normalized."""
    medians = [s.median for s in samples]
    calibration = [s.calibration_seconds for s in samples]
    return {
        "workers": len(samples),
        "rounds_per_worker": job.rounds,
        "warmup_rounds_per_worker": job.warmup,
        "worker_threads": threads,
        "process_medians": medians,
        "calibration_medians": calibration,
        "normalized_medians": [m / c for m, c in zip(medians, calibration, strict=True)],
        "injected_slowdown": job.slowdown,
    }
