"""`python -m bench ab`: a baseline and this checkout sampled side by side in one session.

pytest runs in this process with fixtures/ab.py's plugin, which sends every sampled benchmark's
rounds to both sides' workers; the pair is saved under RESULTS/ab/ and judged (bench/verdicts/pairs.py).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.base.errors import BenchInputError
from bench.cli.common import add_format, add_gate, check_sampling, gate, judge_and_print_pair
from bench.harness.options import OPTIONS
from bench.measure.ab import (
    BASELINE,
    CANDIDATE,
    assignments,
    check_python,
    checkout_state,
    commit_of,
    worktree,
)
from bench.measure.sampling import Side

NAME = "ab"
SUMMARY = "baseline and candidate sampled side by side in one session: change, interval, verdict"
EXAMPLES = (
    "python -m bench ab --baseline-ref origin/main -m pr --fail-on-regression  # the PR check (make ab)",
    "python -m bench ab --baseline-ref origin/main -m pr --format markdown > comment.md",
    "python -m bench ab --baseline-python ~/venvs/torch-old/bin/python -m fast    # a torch upgrade",
    "python -m bench ab --baseline-option attention=hf -k train_step_fast",
    "python -m bench ab --baseline-ref origin/main -m pr --fail-on-growth --growth-kinds compile,work",
)
MORE = (
    "It samples the benchmarks that pytest's selection picks on a baseline side and on this "
    "checkout as it is; every argument ab does not know goes to pytest. Without -m or -k that is "
    "every benchmark pytest collects, the slow ones included (hours): give -m pr for the PR check "
    "(the fast training step and the attention layers that train), -m fast for every fast one."
)
PASSES_UNKNOWN = True  # every argument ab does not know goes to pytest
NO_TESTS_COLLECTED = 5  # pytest.ExitCode's, without importing pytest before the command line is checked


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline-ref", help="a git ref of this repository: its checkout, this interpreter")
    parser.add_argument("--baseline-python", help="another interpreter (a venv's python or a wrapper script)")
    parser.add_argument("--baseline-env", action="append", default=[], metavar="VAR=VALUE", help="repeatable")
    parser.add_argument(
        "--baseline-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a run option, repeatable",
    )
    parser.add_argument("--processes", default="10", help="worker processes per side (default 10)")
    parser.add_argument(
        "--seconds", default="20", help="timed seconds per benchmark, both sides together (default 20)"
    )
    parser.add_argument("--alpha", type=float, default=0.01, help="significance level (default 0.01)")
    parser.add_argument(
        "--min-effect", type=float, default=0.02, help="smallest change that counts (default 0.02)"
    )
    parser.add_argument(
        "--results", default="results", help="pairs are saved under RESULTS/ab/ (default results)"
    )
    add_format(parser)
    parser.add_argument(
        "--fail-on-regression", action="store_true", help="exit 1 when any benchmark regressed"
    )
    add_gate(parser)
    parser.add_argument(
        "--candidate-ref",
        help="a git ref of this repository as the candidate: its checkout, this interpreter "
        "(default: this checkout as it is; `bisect` steps with it)",
    )
    # the detector's self-tests only: stretch the candidate's timed rounds by this fraction
    parser.add_argument("--inject-slowdown", type=float, default=None, help=argparse.SUPPRESS)


# pytest options that would fight the A/B session: it saves its own pair and needs benchmarks on
AB_REFUSED = (
    "--benchmark-disable",
    "--benchmark-autosave",
    "--benchmark-save",
    "--benchmark-json",
    "--benchmark-skip",
)


def run(args: argparse.Namespace) -> int:
    processes, seconds = check_sampling(args)
    gate(args)  # --fail-on-growth's options, refused here where bad, before anything runs
    slowdown = args.inject_slowdown
    if slowdown is not None and slowdown < 0:
        raise BenchInputError(f"--inject-slowdown {slowdown}: must be >= 0")
    if not (args.baseline_python or args.baseline_ref or args.baseline_env or args.baseline_option):
        raise BenchInputError(
            "ab needs a baseline: --baseline-ref REF, --baseline-python PATH, --baseline-env VAR=VALUE "
            "or --baseline-option NAME=VALUE"
        )
    env = assignments("--baseline-env", args.baseline_env)
    options = assignments("--baseline-option", args.baseline_option, {opt.dest for opt in OPTIONS})
    for arg in args.pytest_args:
        if arg.split("=")[0] in AB_REFUSED:
            raise BenchInputError(f"{arg}: not with ab (it saves both sides under --results itself)")
    python = check_python(args.baseline_python) if args.baseline_python else sys.executable
    # resolved once, before anything runs: the ref may move while the session runs
    baseline_commit = commit_of(args.baseline_ref) if args.baseline_ref else None
    here = candidate_state(args.candidate_ref)  # the candidate's, as it starts
    results = Path(args.results)
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(worktree(args.baseline_ref)) if args.baseline_ref else None
        baseline = Side(BASELINE, python, root or Side().root, env, options, args.baseline_ref)
        candidate = candidate_side(args.candidate_ref, stack)
        code, plugin, candidate_json = run_ab_session(args, baseline, candidate, processes, seconds, slowdown)
    pool = plugin.pool  # None where the session stopped before its servers started
    pairs = {name: (pair.jobs, pair.samples) for name, pair in pool.recorded.items()} if pool else {}
    if code == NO_TESTS_COLLECTED or (code == 0 and not pairs):
        selection = " ".join(args.pytest_args) or "no -m or -k"
        raise BenchInputError(
            f"ab: pytest's selection ({selection}) holds no sampled benchmark: nothing to compare "
            "(python -m pytest --collect-only -q with the same -m/-k lists what it picks)"
        )
    if code != 0:
        print(f"ab: the pytest session ended with exit code {code}; nothing saved", file=sys.stderr)
        return int(code)
    session = f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    sides = {
        BASELINE: {
            **plugin.pool.stacks[BASELINE],
            "interpreter": baseline.python,  # as given: a wrapper script's path, not what it execs
            "ref": args.baseline_ref,
            **({"commit": baseline_commit, "dirty": False} if args.baseline_ref else here),
            "env": env,
            "options": options,
        },
        CANDIDATE: {
            **plugin.pool.stacks[CANDIDATE],
            "interpreter": candidate.python,
            "ref": args.candidate_ref,
            **here,
            "env": {},
            "options": {},
        },
    }
    info = {
        "session": session,
        "sides": sides,
        "processes": processes,
        "servers_per_side": plugin.pool.servers_per_side,
        "seconds_per_benchmark": seconds,
        "candidate_slowdown": slowdown or 0.0,
    }
    threads = {BASELINE: baseline.worker_threads(plugin.threads), CANDIDATE: plugin.threads}
    return judge_and_save(args, results, session, info, pairs, threads, candidate_json)


def candidate_state(ref: str | None) -> dict:
    """The candidate's commit and whether its code differs from it: a ref's commit (resolved
    once, before anything runs: the ref may move), else this checkout's, as it starts."""
    if ref is None:
        return checkout_state()
    return {"commit": commit_of(ref, "--candidate-ref"), "dirty": False}


def candidate_side(ref: str | None, stack: contextlib.ExitStack) -> Side:
    """This checkout as it is, or a detached worktree of --candidate-ref (as the baseline's),
    removed when `stack` closes; this interpreter either way."""
    if ref is None:
        return Side(CANDIDATE)
    return Side(CANDIDATE, root=stack.enter_context(worktree(ref, "--candidate-ref")), ref=ref)


def run_ab_session(args, baseline, candidate, processes, seconds, slowdown):
    """pytest in this process, its sampled benchmarks on both sides. The session is shown as bars
    on stderr (fixtures/ab.py); pytest's own output is held back, and then printed whole where the
    session failed, else its summary alone (skip reasons, counts)."""
    import pytest

    from fixtures.ab import ABPlugin
    from fixtures.options import joined_values

    # the terminal as it is now: pytest captures fd 2 while its tests run
    out = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
    plugin = ABPlugin(baseline, candidate, processes, seconds, slowdown, out)
    held = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp, out:
        report = Path(tmp) / "candidate.json"
        pytest_args = [
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::pytest.PytestAssertRewriteWarning",  # this command imported the plugin first
            "--benchmark-quiet",  # not "Wrote benchmark data in" a temporary file
            *joined_values(args.pytest_args),
            f"--benchmark-json={report}",
        ]
        started = time.perf_counter()
        with contextlib.redirect_stdout(held):
            code = pytest.main(pytest_args, plugins=[plugin])
        text = held.getvalue()
        print(text if code else pytest_summary(text), file=out)
        print(f"ab: the session took {time.perf_counter() - started:.0f} s", file=out)
        candidate_json = json.loads(report.read_text()) if report.exists() else {}
    return code, plugin, candidate_json


def pytest_summary(text: str) -> str:
    """pytest's output from its short test summary on (skip reasons and counts), or its last line."""
    marker = text.rfind(" short test summary info ")
    start = text.rfind("\n", 0, marker) + 1 if marker >= 0 else text.rstrip().rfind("\n") + 1
    return text[start:].rstrip()


def judge_and_save(args, results, session, info, pairs, threads, candidate_json) -> int:
    """Both sides saved as a pair (each with its own worker thread count) and judged."""
    from bench.verdicts.pairs import save_pair, side_json

    saved = {
        side: side_json(candidate_json, side, pairs, threads[side], info) for side in (BASELINE, CANDIDATE)
    }
    return judge_and_print_pair(args, saved, save_pair(results, session, saved))
