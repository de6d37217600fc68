"""N `python -m bench ab` sessions, the candidate's transformers injected, the baseline's not.

    python scripts/structural/sessions.py N INJECTION [--out FOLDER] [ab's arguments ...]

INJECTION is a value of LFBENCH_STRUCTURAL (sitecustomize.py beside this file: `item`,
`saved-activation,mlm-matmul`, ...), or `none` for same-code sessions. Each injected session runs
ab with this folder on PYTHONPATH and the variable set, and `--baseline-env LFBENCH_STRUCTURAL=`
(the baseline: the same checkout, the injection off; a variable differs, so raw time decides the
timing verdicts); a same-code session is `ab --baseline-ref HEAD`, nothing injected. Each session's
JSON (`--format json`) and log are kept in FOLDER (default results/structural/).
One line a session and row: the exact count that changed (old -> new; the first that moved of
EXACT_ORDER, and how many others moved), the row's timing verdict and, where ab explained the row
(`--explain`), the operator first in its attribution; then a summary (with `--explain`, how often
each operator came first in a regression row, and in how many rows any operator was significant).

The exact counts are read as issue 30's contract stores them: a row's `exact` in ab's JSON
(`{"baseline": {...}, "candidate": {...}}`), else `extra_info["exact"]` of the row in the saved
pair's baseline.json and candidate.json. An ab without them (before the exact counts) says so on
every line and the timing verdicts are still shown.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
ROOT = FOLDER.parents[1]
SAME_CODE = "none"
VARIABLE = "LFBENCH_STRUCTURAL"
# the count a line names when several moved: compile's, then FLOPs, memory, operator calls
EXACT_ORDER = (
    "graph_breaks",
    "unique_graphs",
    "recompiles",
    "flops",
    "saved_bytes",
    "peak_bytes",
    "op_calls",
)
WIDTH = 100  # the columns a line may take


def injections_of(value: str) -> list[str]:
    """The names in `value` (`none`: no name), checked by sitecustomize.py itself (ValueError)."""
    if value == SAME_CODE:
        return []
    spec = importlib.util.spec_from_file_location("lfbench_structural", FOLDER / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = module.requested(value)
    if not names:
        raise ValueError(f"INJECTION {value!r}: name an injection, or `{SAME_CODE}` for same-code sessions")
    return names


def side_counts(row: dict, pair: dict[str, dict]) -> tuple[dict, dict] | None:
    """(baseline, candidate) exact counts of an ab JSON row, or None where ab recorded none."""
    exact = row.get("exact")
    if isinstance(exact, dict) and {"baseline", "candidate"} <= exact.keys():
        return exact["baseline"], exact["candidate"]
    found = []
    for side in ("baseline", "candidate"):
        entries = pair.get(side, {}).get("benchmarks", [])
        extra = next((e.get("extra_info", {}) for e in entries if e.get("fullname") == row["benchmark"]), {})
        found.append(extra.get("exact"))
    return tuple(found) if all(isinstance(counts, dict) for counts in found) else None


def moved(old: dict, new: dict) -> list[str]:
    """The numeric counts that differ between the sides, in EXACT_ORDER, then the rest by name."""
    keys = [
        key
        for key in sorted(old.keys() | new.keys())
        if isinstance(old.get(key, 0), int | float) and old.get(key, 0) != new.get(key, 0)
    ]
    rank = {key: i for i, key in enumerate(EXACT_ORDER)}
    return sorted(keys, key=lambda key: (rank.get(key, len(rank)), key))


def change_text(key: str, old: float, new: float) -> str:
    percent = f"{(new - old) / old:+.2%}" if old else "new"
    return f"{key} {old} -> {new} ({percent})"


def row_line(label: str, row: dict, pair: dict[str, dict]) -> tuple[str, bool | None]:
    """The row's line and whether an exact count changed (None: no counts recorded)."""
    name = row["benchmark"].rpartition("::")[2].removeprefix("test_")
    ratio = row.get("ratio")
    timing = f"{row['verdict']}" + (f" {ratio - 1:+.1%}" if ratio is not None else "")
    counts = side_counts(row, pair)
    if counts is None:
        return f"{label} {name}: no exact counts in ab's output; timing {timing}", None
    old, new = counts
    keys = moved(old, new)
    if not keys:
        return f"{label} {name}: no exact change; timing {timing}{where_text(row)}", False
    first = change_text(keys[0], old.get(keys[0], 0), new.get(keys[0], 0))
    more = f", {len(keys) - 1} more" if len(keys) > 1 else ""
    return f"{label} {name}: {first}{more}; timing {timing}{where_text(row)}", True


def attributed(row: dict) -> dict | None:
    """The row's attribution (`ab --explain`), where ab's JSON has one with figures."""
    attribution = row.get("attribution")
    return attribution if isinstance(attribution, dict) and attribution.get("top") else None


def where_text(row: dict) -> str:
    """`; where aten::gelu +1.52 ms*`: the operator first in the row's attribution (* significant)."""
    attribution = attributed(row)
    if attribution is None:
        return ""
    top = attribution["top"][0]
    return f"; where {top['op']} {top['change_ms']:+.2f} ms{'*' if top['significant'] else ''}"


def where_summary(results: list[dict]) -> list[str]:
    """How often each operator came first in a regression row's attribution, and in how many
    explained rows any operator was significant (the goal's two figures); nothing where no row
    was explained."""
    explained = [row for row in results if attributed(row)]
    if not explained:
        return []
    firsts = collections.Counter(
        attributed(row)["top"][0]["op"] for row in explained if row["verdict"] == "regression"
    )
    flagged = sum(bool(attributed(row)["significant"]) for row in explained)
    ranked = ", ".join(f"{op} {n}" for op, n in firsts.most_common()) or "no regression row"
    return [
        f"where: first operator of the regression rows: {ranked}",
        f"where: an operator significant in {flagged} of {len(explained)} explained rows",
    ]


def read_pair(result: dict) -> dict[str, dict]:
    """The saved pair's two sides, where ab saved one (its JSON names the folder)."""
    folder = Path(result["pair"]) if result.get("pair") else None
    sides = {}
    for side in ("baseline", "candidate"):
        path = folder / f"{side}.json" if folder else None
        if path is not None and path.exists():
            sides[side] = json.loads(path.read_text())
    return sides


def session(
    label: str, command: list[str], env: dict, out: Path, run: Callable = subprocess.run
) -> list[tuple[str, bool | None, str, dict]]:
    """One ab session: (line, exact change?, timing verdict, ab's JSON row) a row, or one line
    saying it failed."""
    stem = label.replace("/", "-of-")
    json_path, log_path = out / f"{stem}.json", out / f"{stem}.log"
    with open(json_path, "w") as stdout, open(log_path, "w") as stderr:
        code = run(command, env=env, stdout=stdout, stderr=stderr, cwd=ROOT).returncode
    if code != 0:
        return [
            (
                f"{label} ab exited with code {code}: see {log_path.name} in the output folder",
                None,
                "failed",
                {},
            )
        ]
    result = json.loads(json_path.read_text())
    pair = read_pair(result)
    return [(*row_line(label, row, pair), row["verdict"], row) for row in result["benchmarks"]]


def summary(injection: str, rows: list[tuple[str, bool | None, str]], sessions: int) -> list[str]:
    verdicts = collections.Counter(verdict for _, _, verdict in rows)
    found = collections.Counter(changed for _, changed, _ in rows)
    what = "same code" if injection == SAME_CODE else f"LFBENCH_STRUCTURAL={injection}"
    return [
        f"{what}: {sessions} sessions, {len(rows)} rows",
        f"an exact change in {found[True]} rows, none in {found[False]}, no counts in {found[None]}",
        "timing verdicts: " + ", ".join(f"{n} {verdict}" for verdict, n in sorted(verdicts.items())),
    ]


def ab_command(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """ab's command line and environment: the candidate injected with `names`, the baseline not;
    without names, this checkout against its HEAD and nothing on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    command = [sys.executable, "-m", "bench", "ab", "--format", "json"]
    if not names:
        return [*command, "--baseline-ref", "HEAD"], env
    paths = os.pathsep.join(filter(None, [str(FOLDER), env.get("PYTHONPATH")]))
    env.update({VARIABLE: ",".join(names), "PYTHONPATH": paths})
    return [*command, "--baseline-env", f"{VARIABLE}="], env


def main(argv: list[str], run: Callable = subprocess.run) -> int:
    parser = argparse.ArgumentParser(
        prog="sessions.py", description=__doc__.split("\n")[0], allow_abbrev=False
    )
    parser.add_argument("sessions", help="how many ab sessions")
    parser.add_argument("injection", help=f"a value of LFBENCH_STRUCTURAL, or {SAME_CODE}")
    parser.add_argument("--out", type=Path, help="where each session's JSON and log go")
    args, ab_args = parser.parse_known_args(argv)
    try:
        sessions = int(args.sessions)
        if sessions < 1:
            raise ValueError
    except ValueError:
        print(f"sessions.py: N {args.sessions!r}: expected a positive integer", file=sys.stderr)
        return 2
    try:
        names = injections_of(args.injection)
    except ValueError as err:
        print(f"sessions.py: {err}", file=sys.stderr)
        return 2
    stamp = f"{datetime.datetime.now():%Y%m%d-%H%M%S}"
    out = args.out or ROOT / "results" / "structural" / f"{args.injection.replace(',', '+')}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    command, env = ab_command(names)
    shown = " ".join(["python", *command[1:], *ab_args])
    print("\n".join(textwrap.wrap(f"{sessions} sessions of: {shown}", WIDTH, subsequent_indent="    ")))
    print(f"their JSON and logs in {out}")
    rows, results = [], []
    for i in range(1, sessions + 1):
        for line, changed, verdict, row in session(f"{i}/{sessions}", command + ab_args, env, out, run):
            print("\n".join(textwrap.wrap(line, WIDTH, subsequent_indent="    ")), flush=True)
            rows.append((line, changed, verdict))
            results.append(row)
    print("\n".join([*summary(args.injection, rows, sessions), *where_summary(results)]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
