"""A/B in one session: the workers of two sides, alive at once, their rounds side by side.

The machine this suite runs on drifts 1.3-1.5x between runs and within seconds, so two runs saved
minutes apart cannot tell a 5% change from the weather. Here both sides (bench/measure/sampling.py `Side`:
the baseline's interpreter, checkout, variables or options; the candidate is this checkout as it
is) sample every benchmark in one time window: P worker processes per side, paired; every round
of a baseline worker sits next to a round of its candidate partner, the pair's order drawn afresh
each time; a calibration round after every round; never two processes computing at once. On a
GPU, where both sides' copies might not fit, the pair's processes run one after the other, each
giving its memory back (the same verdicts; the CPU design is what the detection table measured).

Every worker is forked from a server of its own (see `one server a process` below).
How many rounds: as many as fit a time budget per benchmark (`seconds`: the wall time of both
sides' timed rounds and their calibration rounds), at least the benchmark's own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.base.errors import BenchInputError
from bench.measure.sampling import (
    SUITE_ROOT,
    Job,
    ProcessSample,
    Server,
    Side,
    Worker,
    WorkerFailed,
    agreed_counts,
    schedule,
)

BASELINE, CANDIDATE = "baseline", "candidate"
# `ab --explain`: which rows get the profiled pass (and show where the time went). auto: every
# row whose pass costs at most PROFILE_SHARE of its --seconds (its rows judged a change show it);
# all: every row, whatever it costs; none: no pass.
EXPLAIN_AUTO, EXPLAIN_ALL, EXPLAIN_NONE = "auto", "all", "none"
EXPLAIN = (EXPLAIN_AUTO, EXPLAIN_ALL, EXPLAIN_NONE)
PROFILE_SHARE = 0.10
# One server a process: workers forked from one server share its memory layout (one exec: one
# draw of address-space randomization and allocator state), which shifts them all alike. Measured
# over 41 trials of blocked w128-L2048 with two servers a side, the two servers' worker means
# differed by 2.0% (SD) where the processes' own spread predicts 1.2%: a server effect of about 1.2%
# that Welch's test, counting 10 processes as independent, did not see, and one same-code trial in
# 11 was judged a regression (1.021, p = 0.004). With a server per process that effect is part of
# the process-to-process spread the test measures. It costs a server start per process (an
# interpreter importing torch, in parallel) once a session.


class Progress:
    """What a session reports as it goes (`python -m bench ab` draws it: fixtures/ab.py); this
    one reports nothing."""

    def servers(self, ready: int, total: int) -> None:
        """`ready` of the session's `total` servers have imported everything."""

    def sampling(self, started: int, workers: int, rounds: int, elapsed: float, ratio: float | None) -> None:
        """The benchmark being sampled: workers started, rounds done (a worker's, on average),
        seconds since its rounds began, and the candidate's median round over the baseline's."""


@dataclass
class Pair:
    """One benchmark sampled on both sides: each side's per-process samples and the jobs it ran."""

    jobs: dict[str, Job]
    samples: dict[str, list[ProcessSample]]
    looks: list[int] = field(default_factory=list)  # processes a side after each look, where resampled

    def exact(self, name: str) -> dict[str, dict[str, int]]:
        """Each side's exact counts of a round, `{"baseline": {...}, "candidate": {...}}` (a side
        that counted nothing is left out); CountsDiffer where a side's processes disagree."""
        counts = {side: agreed_counts(samples, f"{name} ({side})") for side, samples in self.samples.items()}
        return {side: c for side, c in counts.items() if c is not None}


@dataclass
class ABPool:
    """The paired workers of a baseline and a candidate side (see the module's docstring)."""

    baseline: Side
    candidate: Side
    options: dict
    processes: int
    threads: int
    interleave: bool = True
    seconds: float = 20.0
    candidate_slowdown: float | None = None  # the detector's self-tests and power table only
    seed: int = 0
    servers_per_side: int = 0  # 0: one a process; fewer only in self-tests that need speed
    progress: Progress = field(default_factory=Progress)
    explain: str = EXPLAIN_NONE  # which benchmarks get the profiled pass (EXPLAIN)
    stacks: dict[str, dict] = field(default_factory=dict)
    last: Pair | None = None
    recorded: dict[str, Pair] = field(default_factory=dict)  # by benchmark, filled by fixtures/sampling.py

    def __post_init__(self) -> None:
        self.servers_per_side = min(self.servers_per_side or self.processes, self.processes)
        self.order = random.Random(self.seed)
        self.servers: dict[str, list[Server]] = {}
        self.pairs = []
        try:
            # one server a side first: a bad interpreter or option is refused after one import of
            # torch (seconds), not after 2 x servers_per_side of them; then the rest, all at once
            sides = (self.baseline, self.candidate)
            self.servers = {side.name: [] for side in sides}
            self.progress.servers(0, 2 * self.servers_per_side)
            for count in (1, self.servers_per_side):
                for side in sides:
                    more = count - len(self.servers[side.name])
                    self.servers[side.name] += [Server(side, self.options, self.threads) for _ in range(more)]
                for side in sides:
                    self.wait_for_servers(side)
                    self.stacks[side.name] = self.servers[side.name][0].stack
                check_stacks(self.baseline, self.candidate, self.stacks)
            self.spawn(self.processes)
        except BaseException:
            self.close()
            raise

    def wait_for_servers(self, side: Side) -> None:
        """Until each of the side's servers has imported everything; one that cannot is the user's
        to fix (the side's flags named), before anything is timed."""
        for server in self.servers[side.name]:
            if server.stack is not None:
                continue
            try:
                server.ready()
            except WorkerFailed as err:
                raise BenchInputError(f"{side_flags(side)}: cannot start its workers: {err}") from None
            ready = sum(s.stack is not None for servers in self.servers.values() for s in servers)
            self.progress.servers(ready, 2 * self.servers_per_side)

    def spawn(self, processes: int) -> None:
        """The session's workers, in pairs."""
        self.pairs += self.fresh_pairs(processes)

    def fresh_pairs(self, processes: int, first: int = 0) -> list[tuple[Worker, Worker]]:
        """Workers in pairs, each side's spread over its servers in turn from server `first`."""
        pairs = []
        for index in range(first, first + processes):
            base = self.servers[BASELINE][index % self.servers_per_side]
            cand = self.servers[CANDIDATE][index % self.servers_per_side]
            worker = cand.spawn(want_facts=True)
            worker.slowdown = self.candidate_slowdown
            pairs.append((base.spawn(want_facts=False), worker))
        return pairs

    def renew(self) -> None:
        """Fresh worker processes from the same servers (the power table: one set per trial)."""
        for pair in self.pairs:
            for worker in pair:
                worker.close()
        self.pairs = []
        self.spawn(self.processes)

    def sample(self, job: Job) -> list[ProcessSample]:
        """Sample `job` on both sides (kept in `last`); the candidate's samples, as WorkerPool's
        `sample` returns them, so a benchmark's own recording code runs unchanged."""
        job = dataclasses.replace(job, profiled=self.explain != EXPLAIN_NONE)
        budget = math.inf if self.explain == EXPLAIN_ALL else PROFILE_SHARE * self.seconds
        by_pid = schedule(self.pairs, job, self.interleave, self.seconds, self.order, self.watch(), budget)
        samples = {
            BASELINE: [by_pid[base.pid] for base, _ in self.pairs],
            CANDIDATE: [by_pid[cand.pid] for _, cand in self.pairs],
        }
        slowdown = job.slowdown if self.candidate_slowdown is None else self.candidate_slowdown
        jobs = {BASELINE: job, CANDIDATE: dataclasses.replace(job, slowdown=slowdown)}
        self.last = Pair(jobs, samples)
        return samples[CANDIDATE]

    def resample(self, name: str, processes: int, seconds: float) -> Pair:
        """A recorded benchmark sampled again (a later look: bench/cli/looks.py) in `processes`
        fresh worker pairs, its rounds filling `seconds`, their samples appended to its recorded
        Pair and the processes a side after this look to its `looks`; the workers are closed after."""
        pair = self.recorded[name]
        if not pair.looks:
            pair.looks.append(len(pair.samples[BASELINE]))
        fresh = self.fresh_pairs(processes, first=pair.looks[-1])
        try:
            by_pid = schedule(
                fresh, pair.jobs[BASELINE], self.interleave, seconds, self.order, self.watch(fresh)
            )
        finally:
            for workers in fresh:
                for worker in workers:
                    worker.close()
        pair.samples[BASELINE] += [by_pid[base.pid] for base, _ in fresh]
        pair.samples[CANDIDATE] += [by_pid[cand.pid] for _, cand in fresh]
        pair.looks.append(len(pair.samples[BASELINE]))
        return pair

    def watch(
        self, pairs: list[tuple[Worker, Worker]] | None = None
    ) -> Callable[[dict[int, ProcessSample]], None]:
        """schedule's `tick` for these pairs (the session's): what `progress.sampling` reports."""
        pairs = self.pairs if pairs is None else pairs
        baseline = {base.pid for base, _ in pairs}
        workers, began = 2 * len(pairs), None

        def tick(samples: dict[int, ProcessSample]) -> None:
            nonlocal began
            rounds = sum(len(s.seconds) for s in samples.values()) // workers
            if began is None and rounds:
                began = time.perf_counter()
            sides: tuple[list[float], list[float]] = ([], [])
            for pid, sample in samples.items():
                sides[pid in baseline].extend(sample.seconds)
            ratio = statistics.median(sides[0]) / statistics.median(sides[1]) if all(sides) else None
            elapsed = 0.0 if began is None else time.perf_counter() - began
            self.progress.sampling(len(samples), workers, rounds, elapsed, ratio)

        return tick

    def probe(self, job: Job) -> ProcessSample:
        """The job's own rounds in one candidate worker, outside the budget and the verdicts: a
        measurement that sizes a benchmark (both sides then run the size it chose)."""
        (sample,) = schedule([[self.pairs[0][1]]], job, self.interleave).values()
        return sample

    def close(self) -> None:
        for pair in self.pairs:
            for worker in pair:
                worker.close()
        self.pairs = []
        servers = [server for side in self.servers.values() for server in side]
        for server in servers:  # all exit at once: each interpreter's exit takes a while
            server.stop()
        for server in servers:
            server.close()

    def __enter__(self) -> ABPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_stacks(baseline: Side, candidate: Side, stacks: dict[str, dict]) -> None:
    """Each side imported the suite from its own checkout, and both compute on one device."""
    for side in (baseline, candidate):
        suite = Path(stacks[side.name]["suite"]).resolve()
        if suite != (side.root / "bench").resolve():
            raise BenchInputError(
                f"{side_flags(side)}: {side.python} imports the suite from {suite.parent}, "
                f"not from {side.root}"
            )
    devices = {side.name: stacks[side.name]["device"] for side in (baseline, candidate)}
    if devices[BASELINE] != devices[CANDIDATE]:
        raise BenchInputError(
            f"{side_flags(baseline)}: the sides would run on different devices (baseline "
            f"{devices[BASELINE]}, candidate {devices[CANDIDATE]}); an A/B comparison needs one"
        )


def side_flags(side: Side) -> str:
    """The command-line flags that made a side, for error messages."""
    flags = []
    if side.ref:
        flags.append(f"--{side.name or BASELINE}-ref {side.ref}")
    if side.python and side.name == BASELINE and side.root == SUITE_ROOT and not side.ref:
        flags.append(f"--baseline-python {side.python}")
    flags += [f"--baseline-env {k}={v}" for k, v in side.env.items()]
    flags += [f"--baseline-option {k}={v}" for k, v in side.options.items()]
    return " ".join(flags) or f"the {side.name} side"


def assignments(flag: str, given: list[str], known: set[str] | None = None) -> dict[str, str]:
    """`NAME=VALUE` strings as a dict; a malformed one, or an unknown NAME, named with its flag."""
    out = {}
    for item in given:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise BenchInputError(f"{flag} {item!r}: expected NAME=VALUE")
        if known is not None:
            name = name.lstrip("-").replace("-", "_")
            if name not in known:
                raise BenchInputError(
                    f"{flag} {item!r}: unknown option {name!r}; expected one of {', '.join(sorted(known))}"
                )
        out[name] = value
    return out


def check_python(python: str) -> str:
    """The baseline interpreter exists and can be executed (whether it imports torch and the suite
    is checked when its server starts, still before anything is timed)."""
    path = Path(python)
    found = shutil.which(python) if not path.parent.parts else None
    if found:
        return found
    if not path.exists():
        raise BenchInputError(f"--baseline-python {python}: no such file")
    if path.is_dir() or not path.stat().st_mode & 0o111:
        raise BenchInputError(f"--baseline-python {python}: not an executable file")
    return str(path.absolute())


def git(*args: str, cwd: Path = SUITE_ROOT) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        raise BenchInputError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def commit_of(ref: str, flag: str = "--baseline-ref") -> str:
    """The commit `ref` names in this repository; an unknown one refused, named with its flag."""
    try:
        return git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except BenchInputError:
        raise BenchInputError(f"{flag} {ref}: no such commit in {SUITE_ROOT}") from None


# where a checkout keeps its workloads: the layered layout, then the flat one before it (worker.py's
# SIDE_MODULES finds the module the same way)
WORKLOADS_PATHS = ("measure/workloads.py", "workloads.py")


@contextlib.contextmanager
def worktree(ref: str, flag: str = "--baseline-ref") -> Iterator[Path]:
    """A detached checkout of `ref` in a temporary folder, removed afterwards."""
    commit = commit_of(ref, flag)
    folder = Path(tempfile.mkdtemp(prefix="lfbench-ab-"))
    git("worktree", "add", "--detach", "--quiet", str(folder), commit)
    try:
        if not any((folder / "bench" / path).exists() for path in WORKLOADS_PATHS):
            raise BenchInputError(
                f"{flag} {ref}: that checkout has no bench/measure/workloads.py or "
                f"bench/workloads.py (the worker interface A/B needs; it came with per-process sampling)"
            )
        yield folder
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(folder)], cwd=SUITE_ROOT, capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


def checkout_state() -> dict:
    """This checkout's commit, and whether tracked files differ from it (the candidate's code)."""
    try:
        return {
            "commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        }
    except BenchInputError:
        return {"commit": None, "dirty": None}
