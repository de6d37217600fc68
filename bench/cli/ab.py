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
from bench.harness.options import OPTIONS, positive_float, positive_int
from bench.measure.ab import (
    BASELINE,
    CANDIDATE,
    EXPLAIN,
    EXPLAIN_AUTO,
    PROFILE_SHARE,
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
# The defaults keep `make ab` (-m pr: 9 rows, ~50 s of server starts, ~7 s of building and warm-up
# a row) within about 6 minutes: 9 x (12 + 7) s + 50 s is ~3.8 min for the first look, and the
# later looks take at most LOOKS_BUDGET more (docs/ab.md, "Sampling until decided", to retune).
FIRST_LOOK_SECONDS = 12
LOOKS = 2
LOOKS_BUDGET = 120
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
        "--seconds",
        default=str(FIRST_LOOK_SECONDS),
        help=f"timed seconds per benchmark at the first look, both sides (default {FIRST_LOOK_SECONDS})",
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
    # sampling until decided (bench/verdicts/sequential.py, bench/cli/looks.py)
    parser.add_argument(
        "--looks",
        default=str(LOOKS),
        help=f"planned looks: the rows still inconclusive after one are sampled again, the alpha "
        f"spent across them; 1 judges once (default {LOOKS})",
    )
    parser.add_argument(
        "--budget",
        default=str(LOOKS_BUDGET),
        metavar="SECONDS",
        help=f"wall time the looks after the first may take in all (default {LOOKS_BUDGET})",
    )
    parser.add_argument(
        "--explain",
        choices=EXPLAIN,
        default=EXPLAIN_AUTO,
        help="where the time went, by aten operator, from one profiled round a process after the timed "
        f"ones: auto (default) profiles rows whose pass costs at most {PROFILE_SHARE:.0%}% of --seconds "
        "and shows it under rows judged a change; all profiles and shows every row; none profiles nothing",
    )
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
    plan, budget = looks_plan(args)
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
        code, plugin, candidate_json = run_ab_session(
            args, baseline, candidate, processes, seconds, slowdown, plan.looks > 1
        )
        stack.callback(close_pool, plugin)
        # later looks sample in the session's pool, from the baseline's checkout: both kept till then
        kept = (
            stack.pop_all() if code == 0 and plugin.pool and plugin.pool.recorded else contextlib.ExitStack()
        )
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
        "explain": args.explain,
    }
    threads = {BASELINE: baseline.worker_threads(plugin.threads), CANDIDATE: plugin.threads}
    with kept:
        looks = {name: pair.looks for name, pair in pool.recorded.items()}  # filled by later looks
        if plan.looks > 1:  # the rows still inconclusive sampled again (bench/cli/looks.py)
            info["looks"] = plan.as_json()
            saved_now = lambda: sides_json(candidate_json, pairs, threads, info, looks)  # noqa: E731
            more_looks(args, pool, plan, budget, saved_now)
        return judge_and_save(args, results, session, info, pairs, threads, candidate_json, looks)


def looks_plan(args: argparse.Namespace):
    """--looks and --budget, refused by name where bad, before anything runs."""
    from bench.verdicts.sequential import Plan

    return Plan.of(args.alpha, positive_int("--looks", args.looks)), positive_float("--budget", args.budget)


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


def run_ab_session(args, baseline, candidate, processes, seconds, slowdown, keep_pool=False):
    """pytest in this process, its sampled benchmarks on both sides. The session is shown as bars
    on stderr (fixtures/ab.py); pytest's own output is held back, and then printed whole where the
    session failed, else its summary alone (skip reasons, counts)."""
    import pytest

    from fixtures.ab import ABPlugin
    from fixtures.options import joined_values

    # the terminal as it is now: pytest captures fd 2 while its tests run
    out = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
    plugin = ABPlugin(
        baseline, candidate, processes, seconds, slowdown, out, keep_pool=keep_pool, explain=args.explain
    )
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


def sides_json(candidate_json, pairs, threads, info, looks=None) -> dict[str, dict]:
    """Both sides' JSON as the pair is saved (each side with its own worker thread count, each
    benchmark with its processes after each look where it was sampled again)."""
    from bench.verdicts.pairs import side_json

    return {
        side: side_json(candidate_json, side, pairs, threads[side], info, looks)
        for side in (BASELINE, CANDIDATE)
    }


def judge_and_save(args, results, session, info, pairs, threads, candidate_json, looks=None) -> int:
    """Both sides saved as a pair and judged."""
    from bench.verdicts.pairs import save_pair

    saved = sides_json(candidate_json, pairs, threads, info, looks)
    return judge_and_print_pair(args, saved, save_pair(results, session, saved))


def close_pool(plugin) -> None:
    """The pool that pytest's session left open for later looks (fixtures/ab.py `keep_pool`)."""
    if plugin.keep_pool and plugin.pool is not None:
        plugin.pool.close()


def more_looks(args, pool, plan, budget, saved_now) -> None:
    """Looks 2..K on the rows still inconclusive (imported here: it imports the verdict layer)."""
    from bench.cli.looks import sample_until_decided

    sample_until_decided(pool, plan, budget, saved_now, args.alpha, args.min_effect)
