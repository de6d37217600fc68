"""Exact counts judged as they are: what changed between two rounds' counts, and the gate on growth.

A benchmark's exact counts (`extra_info["exact"]`, one round: FLOPs, bytes saved for backward, the
peak of live tensor bytes, aten operator calls, and under torch.compile its graph breaks, unique
graphs and recompiles) are the same for the same code, stack and input. So a change is shown as it
is, old -> new, with no interval and no test: any difference is a difference. The gate judges a key
by its kind, as PyTorch's CI does (benchmarks/dynamo/check_graph_breaks.py fails on any change of
its counts, check_memory_compression_ratio.py when memory grows past a ratio):

- `memory` (peak_bytes, saved_bytes): growth past a tolerance fails (default 1%), less is an
  improvement; the allocator's rounding can move a peak a little without any change of the code;
- `compile` (graph_breaks, unique_graphs, recompiles): any increase fails, fewer is an improvement;
- `work` (flops, op_calls and op_calls.<operator>): any change fails, either way: the model's work
  is fixed by its code, so fewer FLOPs means something no longer runs. A key no kind names is work.

Improvements are reported and never fail. A key on one side only (the sides counted different
things: one compiled, one not) is reported and not judged; an operator the other side never called
is 0 calls there (when that side counted operators at all). A saved benchmark without counts (every
run saved before they were recorded) is judged on nothing exact, said once, never an error.
No torch import.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from bench.base.errors import BenchInputError
from bench.base.history import Run, label_changes
from bench.verdicts.notation import WIDTH, plural, run_name, short_name, wrap

MEMORY, COMPILE, WORK = "memory", "compile", "work"
KINDS = (MEMORY, COMPILE, WORK)
OP_CALLS, OP_PREFIX = "op_calls", "op_calls."
# Each kind's keys in the order shown; per-operator keys follow the total, by size of change.
KIND_KEYS = {
    WORK: ("flops", OP_CALLS),
    MEMORY: ("peak_bytes", "saved_bytes"),
    COMPILE: ("graph_breaks", "unique_graphs", "recompiles"),
}
ORDER = [key for keys in KIND_KEYS.values() for key in keys]
DEFAULT_TOLERANCE = 1.0  # percent of growth a memory count may grow by and pass
TOP_OPERATORS = 3  # per-operator changes a table shows (the largest); --format json lists all

FAILS, WITHIN, IMPROVEMENT = "fails", "within", "improvement"
INDENT = "    "


def kind_of(key: str) -> str:
    """A key's kind: memory, compile, or work (the FLOPs and operator calls, and any other key)."""
    return next((kind for kind, keys in KIND_KEYS.items() if key in keys), WORK)


def counts_of(extra: Mapping | None, side: str | None = None) -> dict[str, int] | None:
    """A saved benchmark's exact counts from its extra_info, or None where it saved none. A pair
    may hold both sides' counts in one dict, `{"baseline": {...}, "candidate": {...}}`: `side`
    picks its own. Values that are not whole numbers are no counts and are left out."""
    exact = (extra or {}).get("exact")
    if isinstance(exact, Mapping) and side is not None and isinstance(exact.get(side), Mapping):
        exact = exact[side]
    if not isinstance(exact, Mapping):
        return None
    counts = {}
    for key, value in exact.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            continue
        counts[str(key)] = int(value)
    return counts


@dataclass(frozen=True)
class CountChange:
    """One key that differs: `old` or `new` is None where that side has no such key."""

    key: str
    kind: str
    old: int | None
    new: int | None

    @property
    def operator(self) -> bool:
        return self.key.startswith(OP_PREFIX)

    def growth(self) -> Fraction | None:
        """(new - old) / old exactly; None where a side lacks the key or old is 0."""
        if self.old is None or self.new is None or self.old == 0:
            return None
        return Fraction(self.new - self.old, self.old)

    def judged(self, tolerance: float = DEFAULT_TOLERANCE) -> str:
        """FAILS, WITHIN (memory grown by at most the tolerance, in percent), IMPROVEMENT, or ''
        for a key on one side only (not judged)."""
        if self.old is None or self.new is None:
            return ""
        if self.kind == WORK:
            return FAILS
        if self.new < self.old:
            return IMPROVEMENT
        if self.kind == MEMORY:
            growth = self.growth()
            if growth is not None and growth <= Fraction(str(tolerance)) / 100:
                return WITHIN
        return FAILS

    def fails(self, tolerance: float = DEFAULT_TOLERANCE) -> bool:
        return self.judged(tolerance) == FAILS


def count_changes(old: Mapping[str, int], new: Mapping[str, int]) -> list[CountChange]:
    """Every key whose count differs, in the order shown (the kinds' keys, other keys by name, then
    the operators, most changed first); nothing where the counts are equal. An operator one side
    never called is 0 calls there, if that side counted operators (has the op_calls total)."""

    def value(counts: Mapping[str, int], key: str) -> int | None:
        if key in counts:
            return counts[key]
        return 0 if key.startswith(OP_PREFIX) and OP_CALLS in counts else None

    keys = set(old) | set(new)
    changes = [
        CountChange(key, kind_of(key), value(old, key), value(new, key))
        for key in keys
        if value(old, key) != value(new, key)
    ]

    def order(change: CountChange) -> tuple:
        if change.operator:
            return (2, -abs((change.new or 0) - (change.old or 0)), change.key)
        return (0, ORDER.index(change.key), "") if change.key in ORDER else (1, 0, change.key)

    return sorted(changes, key=order)


def summarized(changes: Sequence[CountChange], top: int = TOP_OPERATORS) -> tuple[list[CountChange], int]:
    """(what a table shows, how many operators it leaves out): every count but the per-operator
    ones, and the `top` operators that changed most; JSON and CSV list them all."""
    operators = [c for c in changes if c.operator]
    return [c for c in changes if not c.operator] + operators[:top], max(0, len(operators) - top)


@dataclass(frozen=True)
class Compared:
    """One benchmark's counts on both sides and what changed; `missing` names the side that
    saved no counts ('' where both did, 'both' where neither did)."""

    benchmark: str
    old: dict[str, int] | None
    new: dict[str, int] | None

    @property
    def missing(self) -> str:
        if self.old is None and self.new is None:
            return "both"
        return "old" if self.old is None else "new" if self.new is None else ""

    @property
    def changes(self) -> list[CountChange]:
        return [] if self.missing else count_changes(self.old or {}, self.new or {})


@dataclass(frozen=True)
class Gate:
    """`--fail-on-growth`: the kinds it gates (none: off) and the memory tolerance in percent."""

    kinds: tuple[str, ...] = ()
    tolerance: float = DEFAULT_TOLERANCE

    def failing(self, compared: Iterable[Compared]) -> list[tuple[str, CountChange]]:
        """(benchmark, change) of every count that fails a gated kind."""
        return [
            (c.benchmark, change)
            for c in compared
            for change in c.changes
            if change.kind in self.kinds and change.fails(self.tolerance)
        ]

    def rule(self) -> str:
        """What fails, in words."""
        return (
            f"memory fails on growth past {self.tolerance:g}%, compile on any increase, work on any "
            "change; improvements are reported and never fail"
        )


NO_GATE = Gate()  # --fail-on-growth not given: changes shown, nothing fails


def parse_kinds(text: str) -> tuple[str, ...]:
    """--growth-kinds: a comma-separated list of kinds (memory, compile, work)."""
    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",")))
    unknown = [k for k in kinds if k not in KINDS]
    if not kinds or unknown:
        raise BenchInputError(
            f"--growth-kinds {text}: expected kinds separated by commas among {', '.join(KINDS)}"
            + (f" (not {', '.join(repr(k) for k in unknown)})" if unknown else "")
        )
    return kinds


def parse_tolerance(text: str) -> float:
    """--memory-tolerance: a percent of growth, >= 0 (`1`, `1%` or `0.5`)."""
    try:
        value = float(str(text).strip().removesuffix("%"))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise BenchInputError(f"--memory-tolerance {text}: expected a percent >= 0, such as 1 or 0.5")
    return value


def gate_of(fail_on_growth: bool, kinds: str | None, tolerance: str | None) -> Gate:
    """The gate the options ask for, each value checked before anything runs."""
    if kinds is not None and not fail_on_growth:
        raise BenchInputError(f"--growth-kinds {kinds}: only with --fail-on-growth, which it narrows")
    chosen = parse_kinds(kinds) if kinds is not None else KINDS
    limit = parse_tolerance(tolerance) if tolerance is not None else DEFAULT_TOLERANCE
    return Gate(chosen if fail_on_growth else (), limit)


def number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def change_text(change: CountChange) -> str:
    """How much, as a percent of the old count (`+1.46%`, `+<0.01%`); `from 0`, or `added` and
    `gone` for a key on one side only. The counts themselves stand beside it."""
    if change.old is None:
        return "added"
    if change.new is None:
        return "gone"
    growth = change.growth()
    if growth is None:
        return "from 0"
    pct = float(growth) * 100
    return f"{pct:+.2f}%" if abs(pct) >= 0.005 else ("+" if pct > 0 else "-") + "<0.01%"


def judged_text(change: CountChange, tolerance: float, sides: tuple[str, str]) -> str:
    said = change.judged(tolerance)
    if said == WITHIN:
        return f"within {tolerance:g}%"
    return said or f"only in {sides[0] if change.new is None else sides[1]}"


def aligned(header: Sequence[str], rows: list[tuple[str, list[Sequence[str]], int]]) -> list[str]:
    """Each benchmark's name on its line and its changed counts in columns under it, within WIDTH
    (a key too long for that stands on a line of its own, its cells under it), then how many of
    its operators the table leaves out."""
    every = [header, *(cells for _, table, _ in rows for cells in table)]
    widths = [max(len(cells[i]) for cells in every) for i in range(len(header))]
    room = WIDTH - len(INDENT) - sum(w + 2 for w in widths[1:])
    widths[0] = max(len(cells[0]) for cells in every if len(cells[0]) <= room or cells is header)

    def line(cells: Sequence[str]) -> str:
        return (INDENT + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))).rstrip()

    out = ["benchmark", line(header)]
    for name, table, left in rows:
        out.append(name)
        for cells in table:
            text = line(cells)
            out += [INDENT + cells[0], line(["", *cells[1:]])] if len(text) > WIDTH else [text]
        out += [f"{INDENT}and {plural(left, 'more operator')} (--format json lists all)"] if left else []
    return out


@dataclass(frozen=True)
class ExactSection:
    """The exact counts of a comparison, listed apart from the timing verdicts in each format:
    per benchmark what changed, what the gate says, and which benchmarks had no counts to judge."""

    compared: list[Compared]
    gate: Gate
    sides: tuple[str, str]  # the old side's name and the new one's: baseline, candidate or latest
    note: str = ""  # why nothing was compared at all ('' where the counts were)

    @property
    def judged(self) -> list[Compared]:
        return [c for c in self.compared if not c.missing]

    def failing(self) -> list[tuple[str, CountChange]]:
        return self.gate.failing(self.compared)

    def title(self) -> str:
        old, new = self.sides
        return f"exact counts of one round, {new} against {old}, as they are"

    def heading(self) -> str:
        return (
            f"{self.title()}: no interval (the same code, stack and input count the same); "
            + self.gate.rule()
        )

    def rows(self) -> list[tuple[str, list[Sequence[str]], int]]:
        """(benchmark, its shown changes' cells, operators left out) of each that changed."""
        out = []
        for c in self.judged:
            shown, left = summarized(c.changes)
            if shown:
                table = [
                    (
                        x.key,
                        x.kind,
                        number(x.old),
                        number(x.new),
                        change_text(x),
                        judged_text(x, self.gate.tolerance, self.sides),
                    )
                    for x in shown
                ]
                out.append((short_name(c.benchmark), table, left))
        return out

    def lacking(self) -> str:
        """The benchmarks judged on nothing exact, said once ('' where every one had counts)."""
        if self.note:
            return f"exact counts not compared: {self.note}"
        lacking = [c for c in self.compared if c.missing]
        if not lacking:
            return ""
        old, new = self.sides
        where = {"both": "either side", "old": f"the {old}", "new": f"the {new}"}
        sides = " or ".join(sorted({where[c.missing] for c in lacking}))
        why = f"no counts saved on {sides}, saved before they were recorded"
        if len(lacking) == len(self.compared):
            return f"judged on nothing exact: {why}"
        return f"judged on nothing exact ({why}): {', '.join(self.names(lacking))}"

    @staticmethod
    def names(compared: Iterable[Compared]) -> list[str]:
        return [short_name(c.benchmark) for c in compared]

    def verdict(self) -> str:
        """What the gate says: off (and what would fail it), passes, or fails on which counts."""
        failing = self.failing()
        if not self.gate.kinds:
            every = Gate(KINDS, self.gate.tolerance).failing(self.compared)
            return "gate off (--fail-on-growth)" + (
                f": {plural(len(every), 'count')} would fail it" if every else ""
            )
        said = f"gate (--fail-on-growth: {', '.join(self.gate.kinds)})"
        if not failing:
            return f"{said} passes" + ("" if self.judged else ": nothing exact to judge")
        return f"{said} fails on {plural(len(failing), 'count')}: {failing_names(failing)}"

    def unjudged(self) -> list[str]:
        """All there is to say where no benchmark had counts on both sides."""
        return [said for said in (self.lacking(), self.verdict() if self.gate.kinds else "") if said]

    def quiet(self) -> str:
        judged = self.judged
        same = [c for c in judged if not c.changes]
        return f"no exact count changed in {len(same)} of {plural(len(judged), 'benchmark')}" if same else ""

    def text(self) -> list[str]:
        """Within WIDTH: the rule, the changed counts per benchmark, the quiet ones, the gate."""
        if not self.judged:  # the gate's line only where a gate was asked for
            return [line for said in self.unjudged() for line in wrap(said, "")]
        rows = self.rows()
        header = ("count", "kind", *self.sides, "change", "judged")
        lines = [*wrap(self.heading(), ""), *aligned(header, rows)] if rows else []
        for said in (self.quiet(), self.lacking(), self.verdict()):
            lines += wrap(said, "") if said else []
        return lines

    def markdown(self) -> list[str]:
        """The same for a pull-request comment: one table, the notes under it."""
        if not self.judged:
            return [f"{said}  " for said in self.unjudged()]
        header = ("benchmark", "count", "kind", *self.sides, "change", "judged")
        lines = []
        rows = self.rows()
        if rows:
            lines += [f"**{self.title().capitalize()}**", "", f"{self.heading()}  ", ""]
            lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
            for name, table, left in rows:
                lines += [f"| `{name}` | " + " | ".join(cells) + " |" for cells in table]
                lines += [f"| `{name}` | and {plural(left, 'more operator')} | | | | | |"] if left else []
            lines.append("")
        return lines + [f"{said}  " for said in (self.quiet(), self.lacking(), self.verdict()) if said]

    def of(self, benchmark: str) -> Compared | None:
        return next((c for c in self.compared if c.benchmark == benchmark), None)

    def csv_cells(self, benchmark: str) -> list[str]:
        """One benchmark's CSV cells: how many counts changed, how many fail, and every change
        (`key old -> new` joined by `; `); empty where it has no counts to judge."""
        c = self.of(benchmark)
        if c is None or c.missing:
            return ["", "", ""]
        changes = c.changes
        fails = sum(x.fails(self.gate.tolerance) for x in changes)
        every = "; ".join(f"{x.key} {number(x.old)} -> {number(x.new)}".replace(",", "") for x in changes)
        return [str(len(changes)), str(fails), every]

    def as_json(self, benchmark: str) -> dict | None:
        """One benchmark's counts on both sides and every change, unsummarized."""
        c = self.of(benchmark)
        if c is None:
            return None
        old, new = self.sides
        return {
            old: c.old,
            new: c.new,
            "changes": [
                {
                    "key": x.key,
                    "kind": x.kind,
                    old: x.old,
                    new: x.new,
                    "growth": None if x.growth() is None else float(x.growth()),
                    "judged": x.judged(self.gate.tolerance) or "not judged: on one side only",
                }
                for x in c.changes
            ],
        }

    def gate_json(self) -> dict:
        return {
            "kinds": list(self.gate.kinds),
            "memory_tolerance_percent": self.gate.tolerance,
            "failing": [{"benchmark": b, "key": x.key} for b, x in self.failing()],
            "not_judged": self.lacking() or None,
        }


def failing_names(failing: list[tuple[str, CountChange]]) -> str:
    """The failing counts by benchmark, `train_step_fast: peak_bytes, op_calls.aten.mul and 2 more
    operators`: the operators summarized as a table shows them."""
    by_benchmark: dict[str, list[CountChange]] = {}
    for benchmark, change in failing:
        by_benchmark.setdefault(benchmark, []).append(change)
    said = []
    for benchmark, changes in by_benchmark.items():
        shown, left = summarized(changes)
        keys = ", ".join(x.key for x in shown) + (f" and {plural(left, 'more operator')}" if left else "")
        said.append(f"{short_name(benchmark)}: {keys}")
    return "; ".join(said)


CSV_COLUMNS = ("exact_changed", "exact_failing", "exact_changes")


@dataclass(frozen=True)
class CountStep:
    """Where a benchmark's counts changed in its history: the runs either side (names as --json
    gives them, labels as the text does), what differed between them, and every change."""

    before: str
    after: str
    before_label: str
    after_label: str
    differs: list[str]
    changes: list[CountChange]


def count_steps(runs: Sequence[Run], fullname: str) -> tuple[list[CountStep], int]:
    """(each change of `fullname`'s counts between successive runs that saved them, how many runs
    saved them): runs of one series and one work, oldest first; a run without counts is passed
    over (judged on nothing exact), never a change."""
    counted = [
        (run, found)
        for run in runs
        if (found := counts_of(run.benchmarks().get(fullname, {}).get("extra_info"))) is not None
    ]
    steps = [
        CountStep(a.name, b.name, run_name(a), run_name(b), label_changes(a, b), changes)
        for (a, old), (b, new) in itertools.pairwise(counted)
        if (changes := count_changes(old, new))
    ]
    return steps, len(counted)


def step_lines(step: CountStep, indent: str) -> list[str]:
    """A history's count step in text: between which runs, what differed, each change as it is
    (the operators summarized), each wrapped within WIDTH."""
    shown, left = summarized(step.changes)
    lines = wrap(f"counts changed between {step.before_label} and {step.after_label}", indent)
    lines += wrap(f"differs: {', '.join(step.differs) or 'nothing recorded'}", indent + "  ")
    for change in shown:
        said = f"{change.key} ({change.kind}) {number(change.old)} -> {number(change.new)}, "
        lines += wrap(said + change_text(change), indent + "  ")
    return lines + ([f"{indent}  and {plural(left, 'more operator')} (--json lists all)"] if left else [])
