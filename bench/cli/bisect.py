"""`python -m bench bisect`: the first commit between two refs whose benchmark regressed against
the good one, found with `ab` at midpoints (asv's `find`, with ab's intervals and verdicts).

Each step is one `python -m bench ab --baseline-ref GOOD --candidate-ref COMMIT -k ... --format
json` in a process of its own (its stdout is the JSON read here); the bad end first, so that a range
whose end did not regress stops at once; then midpoints: a regression there puts the culprit at or
before it, anything else after it. The question is one-sided (slower than good, or not?): an
inconclusive row whose interval lies below +min-effect is no regression. A step still undecided
(an interval reaching past +min-effect) is sampled again,
at most --retries times, with twice the unit that narrows its interval (ab's `decides_with`: twice the
processes, and the seconds with them, where the spread between processes dominates, else twice the
seconds); still undecided, the search stops and names the range left (Pinpoint answers "unknown"
with more attempts of that comparison alone).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.base.errors import BenchInputError
from bench.cli.common import check_sampling
from bench.measure.ab import commit_of, git
from bench.measure.sampling import SUITE_ROOT
from bench.verdicts.notation import WIDTH, percent, short_name

NAME = "bisect"
SUMMARY = "the first commit between two refs whose benchmark regressed against the good one"
EXAMPLES = (
    "python -m bench bisect --good v1.0 --bad main -k train_step_fast",
    "python -m bench bisect --good HEAD~8 --bad HEAD -k train_step_fast --processes 6 --retries 3",
    "python -m bench bisect --good HEAD~8 --bad HEAD -k 'blocked and forward' --format json",
)
MORE = (
    "It runs `python -m bench ab` with --baseline-ref GOOD and --candidate-ref at the bad end, then "
    "at midpoints of `git rev-list --ancestry-path GOOD..BAD`, on the rows -k selects (a regression "
    "of any of them counts). Every option it does not know goes to ab untouched (--results, "
    "pytest's -m, --looks). Set --min-effect to the size sought: a step is no regression where its "
    "interval lies below +min-effect. Exit codes: 0 the commit found, 1 the bad end is no "
    "regression, 2 bad input, 3 a step stayed inconclusive after --retries (the range left is "
    "printed), 4 an ab step failed (its output is printed)."
)
PASSES_UNKNOWN = True  # every argument bisect does not know goes to ab

FOUND, NOT_REGRESSED, UNDECIDED = "found", "not a regression", "undecided"
EXIT = {FOUND: 0, NOT_REGRESSED: 1, UNDECIDED: 3}
STEP_FAILED = 4
REGRESSION, NO_REGRESSION = "regression", "no regression"  # a step's outcome, or UNDECIDED
UNDECIDED_VERDICTS = ("inconclusive", "cannot tell")
SUBJECT = 24  # columns of a step line for the commit's subject, at most
ALPHA, MIN_EFFECT = 0.01, 0.02  # ab's defaults of --alpha and --min-effect
NOT_SLOWER = "not slower"  # an inconclusive row cleared of a regression (Step.cleared)
MORE_PROCESSES = "more processes"  # ab's `decides_with` where the spread between processes dominates
# what bisect sets on every step itself (both sides this interpreter, nothing else differing)
REFUSED = ("--baseline-", "--candidate-ref", "--json")


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--good", required=True, help="a ref whose benchmark is as it should be")
    parser.add_argument("--bad", required=True, help="a later ref (good is its ancestor) that regressed")
    parser.add_argument(
        "-k", dest="keyword", required=True, metavar="EXPRESSION", help="pytest's -k: the rows to bisect on"
    )
    parser.add_argument("--processes", default="10", help="ab's worker processes per side (default 10)")
    parser.add_argument(
        "--seconds",
        default="20",
        help="ab's timed seconds per benchmark at a step's first look (default 20, longer than ab's own "
        "12: a step decides more often on its first look)",
    )
    parser.add_argument(
        "--retries",
        default="2",
        help="reruns of an inconclusive step, each with twice the processes or the seconds (default 2)",
    )
    parser.add_argument(
        "--alpha", type=float, default=ALPHA, help=f"ab's significance level (default {ALPHA})"
    )
    parser.add_argument(
        "--min-effect",
        type=float,
        default=MIN_EFFECT,
        help=f"ab's smallest change that counts; set it to the size sought (default {MIN_EFFECT})",
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or json (steps on stderr)"
    )


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str

    @property
    def short(self) -> str:
        return self.sha[:7]


@dataclass
class Step:
    """One ab session: a commit against good, its rows (ab's JSON `benchmarks`) and what they say."""

    commit: Commit
    attempt: int  # 0 the first session, then the retries
    processes: int  # ab's --processes and --seconds
    seconds: float
    rows: list[dict]
    elapsed: float
    min_effect: float = MIN_EFFECT  # ab's --min-effect: the smallest slowdown that counts

    def cleared(self, row: dict) -> bool:
        """Whether a row is no regression: its verdict says so, or, bisect's question being one-sided
        (slower than good, or not?), an `inconclusive` interval lies below +min-effect: undecided
        only on the side of an improvement, which no step of a bisection needs decided."""
        if row["verdict"] not in UNDECIDED_VERDICTS:
            return row["verdict"] != REGRESSION
        return row["high"] is not None and row["high"] < 1 + self.min_effect

    @property
    def outcome(self) -> str:
        """A regression of any row; else no regression where every row is cleared; else undecided."""
        if any(row["verdict"] == REGRESSION for row in self.rows):
            return REGRESSION
        return NO_REGRESSION if all(self.cleared(row) for row in self.rows) else UNDECIDED

    @property
    def row(self) -> dict:
        """The row that decided: a regression's (the largest), an undecided one, else the largest change."""
        wanted = {REGRESSION: (REGRESSION,), UNDECIDED: UNDECIDED_VERDICTS}.get(self.outcome)
        rows = [r for r in self.rows if wanted is None or r["verdict"] in wanted]
        return max(rows, key=lambda r: r["ratio"] if r["ratio"] is not None else 0.0)

    def line(self) -> str:
        """The step in one line within 100 columns (the subject cut to fit); the row's name on a
        second where several rows were selected."""
        row = self.row
        change = "-"
        if row["ratio"] is not None:
            change = f"{percent(row['ratio'])} [{percent(row['low'])}, {percent(row['high'])}]"
        retry = f"  retry {self.attempt}: {self.processes}x{self.seconds:g} s" if self.attempt else ""
        verdict = NOT_SLOWER if row["verdict"] in UNDECIDED_VERDICTS and self.cleared(row) else row["verdict"]
        tail = f"  {verdict:<12}  {change:<26}  {self.elapsed:>4.0f} s{retry}"
        room = max(0, min(SUBJECT, WIDTH - len(self.commit.short) - 2 - len(tail)))
        text = f"{self.commit.short}  {self.commit.subject[:room]:<{room}}{tail}"
        if len(self.rows) > 1:
            text += f"\n         on {short_name(row['benchmark'])}"[: WIDTH + 1]
        return text

    def as_json(self) -> dict:
        keys = ("benchmark", "verdict", "ratio", "low", "high", "decides_with")
        return {
            "commit": self.commit.sha,
            "subject": self.commit.subject,
            "attempt": self.attempt,
            "processes": self.processes,
            "seconds": self.seconds,
            "outcome": self.outcome,
            "row": self.row["benchmark"],
            "rows": [{key: row.get(key) for key in keys} for row in self.rows],
            "elapsed": self.elapsed,
        }


@dataclass
class Bisection:
    """Where the search ended: the culprit and the steps beside it, or the commits left undecided."""

    status: str  # FOUND, NOT_REGRESSED or UNDECIDED
    steps: list[Step] = field(default_factory=list)
    culprit: Step | None = None  # the first regressing commit's deciding step
    parent: Step | None = None  # the commit before it, None where that is good itself
    left: list[Commit] = field(default_factory=list)  # UNDECIDED: the culprit is one of these
    after: Commit | None = None  # UNDECIDED: the commit before `left` (None: good itself)


def search(
    commits: Sequence[Commit],
    run: Callable[[Commit, Step | None], Step],
    retries: int,
    shown: Callable[[Step], None],
) -> Bisection:
    """Binary search of `commits` (good's descendants, oldest first, the bad end last) for the first
    whose step is a regression; `run(commit, previous)` samples one (`previous`: its undecided step
    before, None the first time), `shown` gets each step as it ends."""
    steps: list[Step] = []

    def judge(index: int) -> Step:
        step = None
        for _ in range(retries + 1):
            step = run(commits[index], step)
            steps.append(step)
            shown(step)
            if step.outcome != UNDECIDED:
                break
        return step

    low, high = -1, len(commits) - 1  # the culprit is in commits[low + 1 : high + 1]; -1 is good
    decided = {high: judge(high)}
    if decided[high].outcome == NO_REGRESSION:
        return Bisection(NOT_REGRESSED, steps)
    while decided[high].outcome == REGRESSION and high - low > 1:
        middle = (low + high) // 2
        step = judge(middle)
        if step.outcome == UNDECIDED:
            break
        decided[middle] = step
        low, high = (low, middle) if step.outcome == REGRESSION else (middle, high)
    if decided[high].outcome != REGRESSION or high - low > 1:
        after = commits[low] if low >= 0 else None
        return Bisection(UNDECIDED, steps, left=list(commits[low + 1 : high + 1]), after=after)
    return Bisection(FOUND, steps, decided[high], decided.get(low))


def check_range(good: str, bad: str) -> tuple[str, str, list[Commit]]:
    """Good's and bad's commits, and those of good..bad on the ancestry path, oldest first; refused
    (the flag named) where a ref is unknown, the range is empty or good is not an ancestor of bad."""
    good_sha, bad_sha = commit_of(good, "--good"), commit_of(bad, "--bad")
    if good_sha == bad_sha:
        raise BenchInputError(f"--good {good} and --bad {bad}: the same commit, an empty range")
    ancestor = subprocess.run(
        ["git", "merge-base", "--is-ancestor", good_sha, bad_sha], cwd=SUITE_ROOT, capture_output=True
    )
    if ancestor.returncode:
        raise BenchInputError(f"--good {good}: not an ancestor of --bad {bad}; bisect needs good before bad")
    listed = git("log", "--ancestry-path", "--reverse", "--format=%H %s", f"{good_sha}..{bad_sha}")
    commits = [
        Commit(sha, subject) for sha, _, subject in (line.partition(" ") for line in listed.splitlines())
    ]
    return good_sha, bad_sha, commits


class StepFailed(RuntimeError):
    """An ab step ended without verdicts: its exit code and what it printed."""

    def __init__(self, code: int, output: str) -> None:
        super().__init__(output)
        self.code = code


@dataclass
class AbSteps:
    """Runs the steps: `python -m bench ab` of this checkout, good against a commit."""

    good: str
    keyword: str
    processes: int
    seconds: float
    passed: list[str]  # ab's options, untouched
    alpha: float = ALPHA
    min_effect: float = MIN_EFFECT

    def size(self, previous: Step | None) -> tuple[int, float]:
        """(processes, seconds) of a step: the options', or twice what narrows an undecided step's
        interval (ab's `decides_with`): processes, with the seconds so each keeps its rounds, where
        the spread between processes dominates; else the seconds."""
        if previous is None:
            return self.processes, self.seconds
        if previous.row.get("decides_with") == MORE_PROCESSES:
            return 2 * previous.processes, 2 * previous.seconds
        return previous.processes, 2 * previous.seconds

    def command(self, commit: Commit, processes: int, seconds: float) -> list[str]:
        return [
            *(sys.executable, "-m", "bench", "ab", "--baseline-ref", self.good),
            *("--candidate-ref", commit.sha),
            *("-k", self.keyword, "--processes", str(processes), "--seconds", f"{seconds:g}"),
            *("--alpha", f"{self.alpha:g}", "--min-effect", f"{self.min_effect:g}"),
            *("--format", "json", *self.passed),
        ]

    def __call__(self, commit: Commit, previous: Step | None) -> Step:
        processes, seconds = self.size(previous)
        started = time.perf_counter()
        command = self.command(commit, processes, seconds)
        done = subprocess.run(command, cwd=SUITE_ROOT, capture_output=True, text=True)
        try:  # 1: ab's --fail-on-regression (passed through) with its verdicts on stdout
            rows = json.loads(done.stdout)["benchmarks"] if done.returncode in (0, 1) else None
        except (json.JSONDecodeError, KeyError):
            rows = None
        if not rows:
            raise StepFailed(done.returncode, f"{done.stdout}{done.stderr}".strip())
        attempt = 0 if previous is None else previous.attempt + 1
        elapsed = time.perf_counter() - started
        return Step(commit, attempt, processes, seconds, rows, elapsed, self.min_effect)


def run(args: argparse.Namespace) -> int:
    processes, seconds = check_sampling(args)
    try:
        retries = int(args.retries)
    except ValueError:
        retries = -1
    if retries < 0:
        raise BenchInputError(f"--retries {args.retries}: expected a whole number >= 0")
    for arg in args.pytest_args:
        if arg.split("=")[0].startswith(REFUSED):
            raise BenchInputError(f"{arg}: not with bisect (it sets that on every ab step itself)")
    good, bad, commits = check_range(args.good, args.bad)
    steps = AbSteps(
        good, args.keyword, processes, seconds, list(args.pytest_args), args.alpha, args.min_effect
    )
    out = sys.stdout if args.format == "text" else sys.stderr  # stdout: the JSON alone
    print(f"bisect: {len(commits)} commits, {args.good} ({good[:7]}) to {args.bad} ({bad[:7]})", file=out)
    try:
        result = search(commits, steps, retries, lambda step: print(step.line(), file=out, flush=True))
    except StepFailed as err:
        print(f"{err}\nbisect: an ab step ended with exit code {err.code}, without verdicts", file=sys.stderr)
        return 2 if err.code == 2 else STEP_FAILED
    if args.format == "json":
        print(json.dumps(as_json(result, good, bad, args.keyword), indent=1))
    else:
        print("\n".join(conclusion(result, args.good)))
    return EXIT[result.status]


def conclusion(result: Bisection, good: str) -> list[str]:
    """What the search found, with the evidence: the culprit's step and its parent's (or what is
    left undecided, and the range to bisect again)."""
    if result.status == NOT_REGRESSED:
        return ["bisect: the bad end is no regression against the good one: nothing to find"]
    if result.status == UNDECIDED:
        left, since = result.left, result.after.short if result.after else good
        maybe = ", if any," if result.steps[0].outcome == UNDECIDED else ""
        return [
            f"bisect: undecided after the retries: the first regression{maybe} is one of {len(left)} commits",
            f"  {left[0].short}..{left[-1].short}: bisect again with --good {since} --bad {left[-1].short}",
            "  and more --processes, --seconds or --retries",
        ]
    culprit = result.culprit
    parent = result.parent.line() if result.parent else f"its parent is --good {good} itself"
    return [
        f"bisect: the first regression is {culprit.commit.short} {culprit.commit.subject}"[:WIDTH],
        "the evidence, each against good: its step, and its parent's",
        culprit.line(),
        parent,
    ]


def as_json(result: Bisection, good: str, bad: str, keyword: str) -> dict:
    def step(s: Step | None) -> dict | None:
        return None if s is None else s.as_json()

    return {
        "good": good,
        "bad": bad,
        "keyword": keyword,
        "status": result.status,
        "culprit": step(result.culprit),
        "parent": step(result.parent),
        "left": [c.sha for c in result.left],
        "steps": [s.as_json() for s in result.steps],
    }
