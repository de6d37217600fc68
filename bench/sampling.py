"""Per-process sampling: each benchmark is timed in several worker processes, one at a time.

Rounds inside one process are not independent samples: a process keeps its memory layout, thread
placement and allocator state, and on a 2-core CPU process-to-process differences are larger than
round-to-round ones. So every benchmark runs in each of N worker processes (never two computing at
once), each building the same seeded work, warming it up and timing a few rounds; a process's
median is one sample. On the CPU the rounds are interleaved across the workers (see WorkerPool).

The workers are forked from a server that has imported torch and transformers but run nothing
(multiprocessing's forkserver), so a worker costs milliseconds to start instead of seconds, yet
allocates, spawns its threads and places its memory on its own. Workers live for the session; each
benchmark's N values still come from N different processes. After every timed round the worker
times one round of the calibration workload (bench/calibration.py), so that a round and its
yardstick see the machine in the same state.
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
    of the round's own time with extra work inside the timed region (`ExtraWork`).
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
    """One worker process's timings of one benchmark: its rounds and the calibration rounds beside them."""

    pid: int
    seconds: list[float] = field(default_factory=list)
    calibration: list[float] = field(default_factory=list)
    info: list = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def calibration_median(self) -> float:
        return statistics.median(self.calibration)

    @property
    def normalized_median(self) -> float:
        """Median of each round over the calibration round right after it (same machine state)."""
        return statistics.median(s / c for s, c in zip(self.seconds, self.calibration, strict=True))


class WorkerFailed(RuntimeError):
    """A worker raised (its traceback is in the message) or died while running a job."""


class ExtraWork:
    """The injected slowdown: more of the same kind of work (small matmuls on the device) until the
    wanted time has passed. A bare Python busy loop would not do: on the 2-core CPU an injected 25%
    of it made the rounds 45-75% longer (the torch work after it ran slower), so the slowdown would
    not be the one injected."""

    def __init__(self, device) -> None:
        import torch

        self.device = device
        self.x = torch.randn(64, 64, device=device, generator=torch.Generator(device=device).manual_seed(0))

    def run_for(self, seconds: float) -> None:
        import torch

        from bench.device import synchronize

        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            torch.mm(self.x, self.x)
            synchronize(self.device)


class TimedJob:
    """A job inside a worker: built and warmed up once, then timed one round at a time."""

    def __init__(self, spec, job: Job) -> None:
        from bench.calibration import Calibration
        from bench.workloads import build

        self.device, self.slowdown = spec.device, job.slowdown
        self.workload = build(spec, job.workload, job.params)
        self.calibration = Calibration(spec.device)
        self.extra = ExtraWork(spec.device)
        self.calibration.seconds()  # its first round is cold (2-3x): never time that one
        for _ in range(job.warmup):
            self.workload.step()
            self.calibration.seconds()

    def round(self) -> tuple[float, float, object]:
        """(seconds of one synchronized round, seconds of one calibration round right after, facts)."""
        from bench.device import synchronize

        synchronize(self.device)
        start = time.perf_counter()
        facts = self.workload.step()
        synchronize(self.device)
        if self.slowdown:
            self.extra.run_for(self.slowdown * (time.perf_counter() - start))
        seconds = time.perf_counter() - start
        return seconds, self.calibration.seconds(), facts


def worker_main(conn: Connection, options: dict, threads: int) -> None:
    """A worker's life: build the run spec once, then answer start/round/finish until told to stop."""
    from bench.device import use_threads
    from bench.spec import build_spec

    use_threads(threads)
    spec = build_spec(**options)
    timed: TimedJob | None = None
    while (message := conn.recv()) is not None:
        command, job = message
        try:
            if command == "start":
                timed = None  # free the previous job's memory first
                timed = TimedJob(spec, job)
                conn.send(os.getpid())
            elif command == "round":
                conn.send(timed.round())
            else:  # finish
                timed = None
                conn.send(os.getpid())
        except Exception:
            timed = None
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
    """N worker processes; one of them computes at any moment, never two.

    `interleave` (the CPU default) starts the job in every worker and then times round 1 in each,
    round 2 in each, and so on, so every process's rounds span the whole benchmark's time: a machine
    that changes speed for a few seconds then affects all processes alike instead of a few of them
    entirely. On a GPU, where N copies of the work might not fit, each worker runs all its rounds in
    turn.
    """

    def __init__(self, options: dict, workers: int, threads: int, interleave: bool = True) -> None:
        context = start_server()
        self.interleave = interleave
        self.workers: list[tuple[multiprocessing.Process, Connection]] = []
        for _ in range(workers):
            ours, theirs = context.Pipe()
            # not a daemon: FlagPerf's data path starts DataLoader workers of its own
            process = context.Process(target=worker_main, args=(theirs, options, threads), daemon=False)
            process.start()
            theirs.close()
            self.workers.append((process, ours))

    def ask(self, index: int, command: str, job: Job):
        process, conn = self.workers[index]
        try:
            conn.send((command, job))
            answer = conn.recv()
        except (EOFError, OSError):
            process.join(timeout=5)
            raise WorkerFailed(
                f"{job.describe()}: worker {process.pid} died (exit code {process.exitcode})"
            ) from None
        if isinstance(answer, Exception):
            raise answer
        return answer

    def sample(self, job: Job) -> list[ProcessSample]:
        """The job's rounds in every worker; the first failure stops the benchmark with its cause."""
        indices = range(len(self.workers))
        samples: list[ProcessSample] = []
        batches = [list(indices)] if self.interleave else [[i] for i in indices]
        for batch in batches:
            started = {i: ProcessSample(self.ask(i, "start", job)) for i in batch}
            for _ in range(job.rounds):
                for i, sample in started.items():
                    seconds, calibration, facts = self.ask(i, "round", job)
                    sample.seconds.append(seconds)
                    sample.calibration.append(calibration)
                    sample.info.append(facts)
            for i in batch:
                self.ask(i, "finish", job)
            samples.extend(started.values())
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
    """What a saved result keeps about its sampling: every round and calibration round by process,
    and per process the medians, raw and normalized (the values the comparison tests)."""
    return {
        "workers": len(samples),
        "rounds_per_worker": job.rounds,
        "warmup_rounds_per_worker": job.warmup,
        "worker_threads": threads,
        "process_rounds": [s.seconds for s in samples],
        "calibration_rounds": [s.calibration for s in samples],
        "process_medians": [s.median for s in samples],
        "calibration_medians": [s.calibration_median for s in samples],
        "normalized_medians": [s.normalized_median for s in samples],
        "injected_slowdown": job.slowdown,
    }
