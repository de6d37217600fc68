"""What runs inside the worker processes: a side's server, its workers, and the timing loop.

A side (bench/measure/sampling.py: an interpreter, a checkout of the suite, variables, options) is one
server process started with that side's interpreter, in that side's checkout, with this file run by
path. The server imports torch, transformers and the side's workloads once, then forks one
worker per request (a fork costs milliseconds; a fresh interpreter importing torch costs seconds).

This file is the measuring instrument of both sides of an A/B comparison, so it is always the
*driving* checkout's copy, run by path: the timing loop, the calibration (calibration.py beside it,
loaded from this file's folder too), the exact counts (counts.py, likewise), the profiled pass
(profile.py, likewise) and the injected slowdown are the same on both sides, and only what is
measured (the side's `build_spec` and workloads' `build`, on the side's torch) differs. It imports
nothing of the suite by name but those two modules, found where the side's checkout keeps them
(`SIDE_MODULES`: a baseline from before the layered layout keeps them at the package's top), and
messages are builtins only (dicts, lists, floats, strings), never classes of one side's checkout.
"""

from __future__ import annotations

import functools
import gc
import importlib
import inspect
import json
import os
import signal
import socket
import sys
import time
import traceback
import types
from multiprocessing.connection import Connection
from multiprocessing.reduction import recvfds

# Where a side's checkout keeps what the worker builds from: the layered layout first, then the flat
# one of checkouts from before it (so that `ab --baseline-ref` reaches back across the move).
SIDE_MODULES = {
    "workloads": ("bench.measure.workloads", "bench.workloads"),
    "spec": ("bench.harness.spec", "bench.spec"),
}


@functools.cache  # found once in the server, before it forks: a flat-layout side fails one import
def side_module(name: str):
    """The side's module `name` (a key of SIDE_MODULES), from the first place its checkout has it."""
    paths = SIDE_MODULES[name]
    for path in paths:
        try:
            return importlib.import_module(path)
        except ModuleNotFoundError as err:
            if err.name is None or not path.startswith(err.name):  # a missing import inside it
                raise
    raise ModuleNotFoundError(f"the side's checkout has none of {', '.join(paths)}")


DRIVER_PACKAGE = "lfbench_driver"


def driver_module(name: str):
    """`name`.py beside this file, as a module of a package whose folder is this file's: the
    driving checkout's yardstick (calibration.py) and counter (counts.py, which imports memory.py
    beside it relatively), the same code on both sides, whichever checkout `bench` is."""
    if DRIVER_PACKAGE not in sys.modules:
        package = types.ModuleType(DRIVER_PACKAGE)
        package.__path__ = [os.path.dirname(os.path.abspath(__file__))]
        sys.modules[DRIVER_PACKAGE] = package
    return importlib.import_module(f"{DRIVER_PACKAGE}.{name}")


yardstick = driver_module("calibration")
synchronize, Calibration = yardstick.synchronize, yardstick.Calibration
counter = functools.cache(lambda: driver_module("counts"))  # it imports torch: not before serve() does
profiler = functools.cache(lambda: driver_module("profile"))


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

        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            torch.mm(self.x, self.x)
            synchronize(self.device)


class TimedJob:
    """A job inside a worker: built and warmed up once, then timed one round at a time.

    `job` is a message: {"workload", "params", "rounds", "warmup", "slowdown", "counted"};
    `slowdown` (the detector's self-tests only) stretches every timed round by that fraction of its
    own time. Where `counted`, one more round after the warm-up, never timed, is counted exactly
    (`exact`: counts.py): a steady-state round (the optimizer's state exists, caches are filled),
    in the process that times the rounds, so every process's counts can be checked to agree."""

    def __init__(self, spec, job: dict) -> None:
        import torch

        if spec.device.type == "cuda":  # so that whatever uses "the current device" uses this one
            torch.cuda.set_device(spec.device)
        build = side_module("workloads").build
        self.device, self.slowdown = spec.device, job["slowdown"]
        self.workload = build(spec, job["workload"], job["params"])
        self.calibration = Calibration(spec.device)
        self.extra = ExtraWork(spec.device)
        self.calibration.seconds()  # its first round is cold (2-3x): never time that one
        self.warmup = [self.round()[:2] for _ in range(job["warmup"])]
        self.exact = self.count() if job["counted"] else None

    def count(self) -> dict[str, int] | None:
        """The exact counts of one round: `eager_step` where the step is compiled (dispatch modes
        and dynamo do not mix), the workload's own counts merged in; None where nothing could be
        counted. A workload of a checkout from before `held` existed says nothing of what it
        holds: its peak is left out. One that no dispatch mode can run (`uncounted`: flex
        attention) gets only what needs none (on CUDA the allocator's peak)."""
        work = self.workload
        step = getattr(work, "eager_step", None) or work.step
        modes = not getattr(work, "uncounted", "")
        held = getattr(work, "held", None)
        exact = counter().count_round(step, self.device, held, hasattr(work, "held"), modes)
        known = getattr(work, "counts", None)
        if known is not None:
            exact.update(known())
        return exact or None

    def profile(self) -> dict:
        """More rounds of the timed `step` (warm: after the timed rounds) under the profiler,
        the injected slowdown included as the timed rounds have it (profile.py)."""

        def step() -> None:
            start = time.perf_counter()
            self.workload.step()
            synchronize(self.device)
            if self.slowdown:
                self.extra.run_for(self.slowdown * (time.perf_counter() - start))

        return profiler().profile_round(step, self.device)

    def round(self) -> tuple[float, float, object]:
        """(seconds of one synchronized round, seconds of one calibration round right after, facts)."""
        synchronize(self.device)
        start = time.perf_counter()
        facts = self.workload.step()
        synchronize(self.device)
        if self.slowdown:
            self.extra.run_for(self.slowdown * (time.perf_counter() - start))
        seconds = time.perf_counter() - start
        return seconds, self.calibration.seconds(), facts


def release_memory(device) -> None:
    """Give a finished job's memory back: to the OS on the CPU as far as Python lets go of it, and
    the caching allocator's blocks on CUDA, so the next job (or the other side's process) has the
    whole card."""
    import torch

    release = getattr(side_module("workloads"), "release", None)
    if release is not None:  # the side's cached initial model (a side's checkout may predate it)
        release()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def worker_loop(conn: Connection, spec) -> None:
    """A worker's life: answer start/round/profile/finish until told to stop (None) or the pipe closes.

    Answers are ("ok", value) or ("error", traceback text)."""
    timed: TimedJob | None = None
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        command, job, want_facts = message
        try:
            if command == "start":
                timed = None  # free the previous job's memory first
                release_memory(spec.device)
                timed = TimedJob(spec, job)
                answer = {"pid": os.getpid(), "warmup": timed.warmup, "exact": timed.exact}
            elif command == "round":
                seconds, calibration, facts = timed.round()
                answer = (seconds, calibration, facts if want_facts else None)
            elif command == "profile":
                answer = timed.profile()
            else:  # finish
                timed = None
                release_memory(spec.device)
                answer = os.getpid()
            conn.send(("ok", answer))
        except Exception:
            timed = None
            release_memory(spec.device)
            conn.send(("error", traceback.format_exc()))


def side_options(build_spec, options: dict, defaults: dict) -> dict:
    """The options the side's `build_spec` takes. One that an older checkout lacks (a baseline from
    before `--compile`) is left out while it has its default, and refused, by name, otherwise."""
    accepted = inspect.signature(build_spec).parameters
    for name, value in options.items():
        if name not in accepted and value != defaults.get(name):
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} {value!r}: the side's checkout has no {flag} option")
    return {name: value for name, value in options.items() if name in accepted}


def describe_stack(spec) -> dict:
    """What the side is: its interpreter, torch, transformers, the suite it imported, the device,
    the threads its workers compute with. No CUDA call here: the server must not initialize CUDA
    before it forks."""
    import torch
    import transformers

    import bench

    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "suite": os.path.dirname(os.path.abspath(bench.__file__)),
        "device": str(spec.device),
        "threads": torch.get_num_threads(),
    }


def reap(pid: int, timeout: float = 60.0) -> int | None:
    """Wait for a worker to exit (killed after `timeout`: it should only be finishing a round) and
    return its exit code; None when it was reaped already."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.005)
    except ChildProcessError:
        return None


def serve(fd: int, config: dict) -> None:
    """The side's server: build the run spec once (every bad option named before timing), report
    the stack, then fork one worker per "spawn" request, each given the socket that came with it."""
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # is_available() without a CUDA init
    conn = Connection(fd)
    try:
        import torch

        torch.set_num_threads(config["threads"])
        for module in config["preload"]:
            importlib.import_module(module)
        side_module("workloads")
        build_spec = side_module("spec").build_spec
        spec = build_spec(**side_options(build_spec, config["options"], config.get("defaults", {})))
        conn.send(("ok", describe_stack(spec)))
    except BaseException as err:  # whatever it is, the driver must hear it, not hang
        # a bad option is the user's to fix: its message alone; anything else with its traceback
        bad_input = type(err).__name__ == "BenchInputError"
        conn.send(("error", str(err) if bad_input else traceback.format_exc()))
        return
    channel = socket.socket(fileno=os.dup(fd))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            break
        if message is None:
            break
        command, argument = message
        if command == "spawn":
            (worker_fd,) = recvfds(channel, 1)
            pid = os.fork()
            if pid == 0:  # the worker
                status = 0
                try:
                    conn.close()
                    channel.close()
                    worker_loop(Connection(worker_fd), spec)
                except BaseException:
                    traceback.print_exc()
                    status = 1
                finally:
                    os._exit(status)
            os.close(worker_fd)
            conn.send(("ok", pid))
        elif command == "exitcode":  # a worker was told to stop, or its pipe closed: its end
            conn.send(("ok", reap(argument)))
    channel.close()
    while True:  # reap the workers before leaving
        try:
            os.wait()
        except ChildProcessError:
            break
    # nothing left to flush but our output: skip the interpreter's teardown of torch (a second or
    # more of CPU a server; a session's 20 servers exit at once on 2 cores)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    serve(int(sys.argv[1]), json.loads(sys.argv[2]))
