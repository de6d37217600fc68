"""Per-process sampling: each benchmark is timed in several worker processes, one at a time.

Rounds inside one process are not independent samples: a process keeps its memory layout, thread
placement and allocator state, and on a 2-core CPU process-to-process differences are larger than
round-to-round ones. So every benchmark runs in each of N worker processes (never two computing at
once), each building the same seeded work, warming it up and timing rounds; a process's median is
one sample. On the CPU the rounds are interleaved across the workers (see `schedule`).

A side (`Side`: an interpreter, a checkout of the suite, extra variables, option overrides) has one
server process (bench/measure/worker.py) that imports torch, transformers and the side's workloads once and
forks a worker per request, so a worker costs milliseconds to start, yet allocates, spawns its
threads and places its memory on its own. After every timed round a worker times one round of the
calibration workload, so that a round and its yardstick see the machine in the same state.
`WorkerPool` is one side's workers (a pytest run); bench/measure/ab.py pairs the workers of two sides.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.reduction import sendfds
from pathlib import Path

from bench.harness.options import option_defaults, positive_int

SUITE_ROOT = Path(__file__).resolve().parents[2]
WORKER_FILE = Path(__file__).with_name("worker.py")
PRELOAD = ["torch", "transformers"]  # then the side's workloads, wherever its checkout keeps them
# Run this checkout's worker.py by path, so that `import bench` finds the side's checkout (the cwd).
BOOTSTRAP = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


@dataclass(frozen=True)
class Job:
    """What one worker runs for one benchmark: a workload of bench/measure/workloads.py and how to time it.

    `slowdown` is for the detector's self-tests only: it stretches every timed round by that fraction
    of the round's own time with extra work inside the timed region (bench/measure/worker.py's ExtraWork).
    `counted`: each worker counts one untimed round exactly after its warm-up (bench/measure/counts.py);
    a probe that only sizes a benchmark skips it. `profiled`: after the timed rounds, workers profile
    one more round each (bench/measure/profile.py; `schedule` says which), for `ab --explain`.
    """

    workload: str
    params: dict
    rounds: int
    warmup: int = 1
    slowdown: float = 0.0
    counted: bool = True
    profiled: bool = False

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.workload}({args})"

    def message(self) -> dict:
        return {
            "workload": self.workload,
            "params": self.params,
            "rounds": self.rounds,
            "warmup": self.warmup,
            "slowdown": self.slowdown,
            "counted": self.counted,
        }


@dataclass(frozen=True)
class Side:
    """Who runs the work: an interpreter, a checkout of the suite, variables and run options on top
    of the session's. The default is this interpreter and this checkout, as they are."""

    name: str = ""
    python: str = sys.executable
    root: Path = SUITE_ROOT
    env: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    ref: str | None = None

    def __post_init__(self) -> None:
        self.worker_threads(1)  # a bad thread count is refused where the side is made

    def label(self) -> str:
        return f" of the {self.name} side" if self.name else ""

    def worker_threads(self, session: int) -> int:
        """The threads its workers compute with: its own `threads` option (a baseline's
        `--baseline-option threads=N`), else the session's."""
        return positive_int("--baseline-option threads", self.options.get("threads")) or session


@dataclass
class ProcessSample:
    """One worker process's timings of one benchmark: its rounds and the calibration rounds beside
    them, the exact counts of its counted round (None where it counted none), and the per-operator
    table of its profiled round (bench/measure/profile.py; None where it profiled none)."""

    pid: int
    seconds: list[float] = field(default_factory=list)
    calibration: list[float] = field(default_factory=list)
    info: list = field(default_factory=list)
    exact: dict[str, int] | None = None
    profile: dict | None = None

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
    """A worker or a side's server raised (its traceback is in the message) or died."""


def _answer(conn: Connection, what: str, on_eof: Callable[[], str]):
    try:
        status, value = conn.recv()
    except (EOFError, OSError):
        raise WorkerFailed(on_eof()) from None
    if status == "error":
        raise WorkerFailed(f"{what}:\n{value}")
    return value


class Server:
    """A side's server process (bench/measure/worker.py `serve`); `ready()` waits for its imports."""

    def __init__(self, side: Side, options: dict, threads: int) -> None:
        self.side = side
        ours, theirs = socket.socketpair()
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - open for the server's life; closed in close()
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, **side.env, "PYTHONPATH": os.pathsep.join(filter(None, [str(side.root), path]))}
        config = {
            "options": {**options, **side.options},
            "threads": side.worker_threads(threads),
            "preload": PRELOAD,
            "defaults": option_defaults(),  # an option at its default may be one an older side lacks
        }
        self.process = subprocess.Popen(
            [side.python, "-c", BOOTSTRAP, str(WORKER_FILE), str(theirs.fileno()), json.dumps(config)],
            cwd=side.root,
            env=env,
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=self.stderr,  # nothing a worker prints may mix into the driver's output (ab --json)
            stderr=self.stderr,
        )
        theirs.close()
        self.channel = ours
        self.conn = Connection(os.dup(ours.fileno()))
        self.stack: dict | None = None

    def output(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace").strip()

    def died(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        return (
            f"the worker server{self.side.label()} ({self.side.python}) exited with code "
            f"{self.process.returncode}:\n{self.output()}"
        )

    def ready(self) -> dict:
        """The side's stack (python, torch, transformers, suite folder, device) once it has imported
        everything and validated the options; WorkerFailed with its output if it could not."""
        if self.stack is None:
            self.stack = _answer(
                self.conn,
                f"the worker server{self.side.label()} could not start ({self.side.python})",
                self.died,
            )
        return self.stack

    def spawn(self, want_facts: bool) -> Worker:
        self.ready()
        ours, theirs = socket.socketpair()
        try:
            self.conn.send(("spawn", None))
            sendfds(self.channel, [theirs.fileno()])
        except OSError:
            raise WorkerFailed(self.died()) from None
        theirs.close()
        pid = _answer(self.conn, "spawning a worker", self.died)
        return Worker(self, Connection(ours.detach()), pid, want_facts)

    def exitcode(self, pid: int) -> int | str:
        try:
            self.conn.send(("exitcode", pid))
            code = _answer(self.conn, "", lambda: "unknown")
            return "unknown" if code is None else code  # None: reaped already
        except (OSError, WorkerFailed):
            return "unknown"

    def stop(self) -> None:
        """Tell the server to reap its workers and exit; `close` waits for it."""
        with contextlib.suppress(OSError):
            self.conn.send(None)

    def close(self) -> None:
        """Wait for the server to exit; one that never became ready (another side's failed, or
        the session was interrupted) is killed at once: it has no workers to reap."""
        self.stop()
        self.conn.close()
        self.channel.close()
        try:
            self.process.wait(timeout=30 if self.stack is not None else 0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


@dataclass
class Worker:
    """One worker process, talked to over its own socket. `slowdown`, when set, replaces the job's
    injected slowdown in this worker (the candidate side of an A/B self-test)."""

    server: Server
    conn: Connection
    pid: int
    want_facts: bool = True
    slowdown: float | None = None

    def ask(self, command: str, job: Job):
        self.post(command, job)
        return self.reply(job)

    def post(self, command: str, job: Job) -> None:
        """Send a command without waiting for its answer (`reply` takes it)."""
        if self.slowdown is not None:
            job = dataclasses.replace(job, slowdown=self.slowdown)
        try:
            self.conn.send((command, job.message(), self.want_facts))
        except OSError:
            raise WorkerFailed(self.died(job)) from None

    def reply(self, job: Job):
        label = self.server.side.label()
        return _answer(
            self.conn, f"{job.describe()} failed in worker {self.pid}{label}", lambda: self.died(job)
        )

    def died(self, job: Job) -> str:
        return (
            f"{job.describe()}: worker {self.pid}{self.server.side.label()} died "
            f"(exit code {self.server.exitcode(self.pid)})"
        )

    def close(self) -> None:
        """Stop the worker and wait until it has exited (its server reaps it), so that the next
        workers never start beside one still giving its memory back: without this wait the first
        two pairs of a renewed A/B pool ran 5-22% slower for their whole life, with it the first
        (README, "The detector checked on itself")."""
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.conn.close()
        self.server.exitcode(self.pid)


# Rounds per process when a time budget decides them (bench/measure/ab.py): at most this many.
MAX_ROUNDS = 400


def schedule(
    slots: Sequence[Sequence[Worker]],
    job: Job,
    interleave: bool,
    seconds: float = 0.0,
    order: random.Random | None = None,
    tick: Callable[[dict[int, ProcessSample]], None] = lambda samples: None,
    profile_seconds: float = math.inf,
) -> dict[int, ProcessSample]:
    """The job's rounds in every worker, one worker computing at a time; samples by worker pid.

    A slot is a group of workers whose rounds sit next to each other (one worker, or an A/B pair;
    with `order`, a pair's order is drawn afresh every time). Interleaved (the CPU): start every
    worker, then round 1 in every slot, round 2 in every slot..., so every process's rounds span the
    job's whole time and a machine that changes speed for a few seconds affects all alike. Not
    interleaved (a GPU, where the copies might not fit): each worker starts, runs its rounds and
    gives its memory back before the next starts.

    Rounds: `job.rounds`; with a budget of `seconds` (the wall time of all timed rounds, their
    calibration rounds included), more sweeps while the budget lasts, every process the same number
    (at most MAX_ROUNDS). Not interleaved, the first worker's share of the budget sets the count.
    `tick` sees the samples so far after every start and every sweep (or round, not interleaved).

    `job.profiled`: after its timed rounds and before "finish", every worker profiles one more round
    (`ProcessSample.profile`), one at a time, slot by slot, within `profile_seconds` (`Profiling`).
    """

    def in_order(slot: Sequence[Worker]) -> list[Worker]:
        return order.sample(list(slot), len(slot)) if order else list(slot)

    samples: dict[int, ProcessSample] = {}

    def record_start(worker: Worker, answer: dict) -> None:
        samples[worker.pid] = ProcessSample(answer["pid"], exact=answer["exact"])
        tick(samples)

    def ask_all(
        workers: list[Worker], command: str, each: Callable[[Worker, object], None] = lambda w, a: None
    ) -> None:
        """`command` to every worker at once, for what is not timed (building and warming up a
        job, giving its memory back): on 2 cores the 20 workers of an A/B session take half the
        time. `each` gets every answer as it comes; every answer is read, so none is left for the
        next command, before a failure is raised."""
        for worker in workers:
            worker.post(command, job)
        failed: WorkerFailed | None = None
        for worker in workers:
            try:
                each(worker, worker.reply(job))
            except WorkerFailed as err:
                failed = failed or err
        if failed:
            raise failed

    def one_round(worker: Worker) -> None:
        seconds, calibration, facts = worker.ask("round", job)
        sample = samples[worker.pid]
        sample.seconds.append(seconds)
        sample.calibration.append(calibration)
        sample.info.append(facts)

    profiling = Profiling(job, samples, profile_seconds)

    def more(done: int, started: float, budget: float) -> bool:
        return done < job.rounds or (done < MAX_ROUNDS and time.perf_counter() - started < budget)

    if interleave:
        ask_all([worker for slot in slots for worker in in_order(slot)], "start", record_start)
        done, started = 0, time.perf_counter()
        while more(done, started, seconds):
            for slot in slots:
                for worker in in_order(slot):
                    one_round(worker)
            done += 1
            tick(samples)
        for slot in profiling.order.sample(list(slots), len(slots)):
            profiling.run(slot)
        ask_all([worker for slot in slots for worker in slot], "finish")
        return samples
    rounds = None
    share = seconds / max(1, sum(len(slot) for slot in slots))
    for slot in slots:  # a slot's workers finish as they go: the slot is profiled worker by worker
        for worker in in_order(slot):
            record_start(worker, worker.ask("start", job))
            if rounds is None:  # decided once, by the first worker's share of the budget
                rounds, started = 0, time.perf_counter()
                while more(rounds, started, share):
                    one_round(worker)
                    rounds += 1
                    tick(samples)
            else:
                for _ in range(rounds):
                    one_round(worker)
                    tick(samples)
            profiling.run([worker])
            worker.ask("finish", job)
    return samples


# The profiled pass's cost before any was measured, in timed rounds of the worker it profiles: on
# the 2-core CPU one profiled round of the fast training step took 4-7x a timed round, the
# profiler's start in a fresh process included (docs/ab.md, "Where the time went").
PROFILE_ROUNDS = 3  # a pass's profiled rounds: bench/measure/profile.py's, which imports no suite module
PROFILE_OVERHEAD = 6.0 * PROFILE_ROUNDS
PROFILE_SEED = 0  # the profiled pass draws its order apart from the rounds' (those stay as they were)


class Profiling:
    """The profiled pass of one job: one round under the profiler in each worker, one at a time, a
    slot's workers (and, interleaved, the slots) in an order of their own (drawn with PROFILE_SEED).
    Within `budget` seconds: the first slot only where two slots' estimate fits (one pair alone gives
    no spread), each later one where the cost so far plus the mean slot's cost fits; an infinite
    budget profiles every worker."""

    def __init__(self, job: Job, samples: dict[int, ProcessSample], budget: float) -> None:
        self.job, self.samples, self.budget = job, samples, budget
        self.order = random.Random(PROFILE_SEED)
        self.spent, self.slots = 0.0, 0

    def estimate(self, slot: Sequence[Worker]) -> float:
        if self.slots:
            return self.spent / self.slots
        return 2 * PROFILE_OVERHEAD * sum(self.samples[worker.pid].median for worker in slot)

    def run(self, slot: Sequence[Worker]) -> None:
        if not self.job.profiled or self.spent + self.estimate(slot) > self.budget:
            return
        started = time.perf_counter()
        for worker in self.order.sample(list(slot), len(slot)):
            self.samples[worker.pid].profile = worker.ask("profile", self.job)
        self.spent += time.perf_counter() - started
        self.slots += 1


class WorkerPool:
    """One side's N worker processes, alive until `close()`; one of them computes at any moment.

    It forks them from `server` when given (the caller's, left running at `close()`, so that
    several pools can be forked from one interpreter's imports), else from a server of its own."""

    def __init__(
        self,
        options: dict,
        workers: int,
        threads: int,
        interleave: bool = True,
        side: Side | None = None,
        server: Server | None = None,
    ) -> None:
        self.owns_server = server is None
        self.server = server or Server(side or Side(), options, threads)
        self.interleave = interleave
        self.workers: list[Worker] = []
        try:
            self.workers = [self.server.spawn(want_facts=True) for _ in range(workers)]
        except BaseException:
            self.close()
            raise

    def sample(self, job: Job) -> list[ProcessSample]:
        """The job's rounds in every worker; the first failure stops the benchmark with its cause."""
        samples = schedule([[w] for w in self.workers], job, self.interleave)
        return [samples[w.pid] for w in self.workers]

    def probe(self, job: Job) -> ProcessSample:
        """The job's rounds in one worker: a measurement that sizes a benchmark, not a sample of it."""
        (sample,) = schedule([self.workers[:1]], job, self.interleave).values()
        return sample

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.workers = []
        if self.owns_server:
            self.server.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CountsDiffer(RuntimeError):
    """The worker processes of one benchmark counted its round differently: the counts are not
    deterministic, so no change of them could be told from noise."""


def agreed_counts(samples: list[ProcessSample], name: str) -> dict[str, int] | None:
    """The exact counts every process of benchmark `name` gave (None where none counted); a
    CountsDiffer naming the benchmark and each key that differs, with every process's value."""
    counted = [s for s in samples if s.exact is not None]
    if not counted:
        return None
    keys = sorted({key for s in counted for key in s.exact})
    differ = [key for key in keys if len({s.exact.get(key) for s in counted}) > 1]
    if differ:
        values = "; ".join(
            f"{key}: " + ", ".join(f"{s.exact.get(key)} (process {s.pid})" for s in counted) for key in differ
        )
        raise CountsDiffer(
            f"{name}: its {len(counted)} worker processes counted one round differently "
            f"({len(differ)} of {len(keys)} keys: {values}); exact counts must not depend on the process"
        )
    return dict(counted[0].exact)


def summary(
    samples: list[ProcessSample], job: Job, threads: int, name: str = "", looks: list[int] | None = None
) -> dict:
    """What a saved result keeps about its sampling: every round and calibration round by process,
    per process the medians, raw and normalized (the values the comparison tests), the exact
    counts of a round that every process agreed on (`exact`; CountsDiffer if they did not), the
    profiled round's per-operator table of each process that profiled one (`profile`), and where
    `ab` sampled it again (bench/verdicts/sequential.py) its processes after each look."""
    exact = agreed_counts(samples, name or job.describe())
    return {
        "workers": len(samples),
        "rounds_per_worker": len(samples[0].seconds) if samples else job.rounds,
        "warmup_rounds_per_worker": job.warmup,
        "worker_threads": threads,
        "process_rounds": [s.seconds for s in samples],
        "calibration_rounds": [s.calibration for s in samples],
        "process_medians": [s.median for s in samples],
        "calibration_medians": [s.calibration_median for s in samples],
        "normalized_medians": [s.normalized_median for s in samples],
        "injected_slowdown": job.slowdown,
        **({"exact": exact} if exact is not None else {}),
        **({"looks": list(looks)} if looks and len(looks) > 1 else {}),
        **({"profile": profiled} if (profiled := profile_summary(samples)) else {}),
    }


def profile_summary(samples: list[ProcessSample]) -> dict | None:
    """The profiled processes' tables, compact: the operators once (`ops`), then per process its
    self CPU time of each (`self_us`), its calls (`calls`), on CUDA its self device time
    (`device_us`), and the pass's wall time (`seconds`); None where no process profiled."""
    profiles = [s.profile for s in samples if s.profile is not None]
    if not profiles:
        return None
    ops = sorted({op for p in profiles for op in p["ops"]})

    def column(index: int) -> list[list[float]]:
        return [[p["ops"].get(op, [0, 0, 0])[index] for op in ops] for p in profiles]

    device = any(p["device"] for p in profiles)
    return {
        "ops": ops,
        "self_us": column(0),
        "calls": column(1),
        **({"device_us": column(2)} if device else {}),
        "seconds": [p["seconds"] for p in profiles],
    }
