"""Exact counts judged as they are (bench/verdicts/exact.py), and in `compare`, `compare --ab`
(the printing `ab` shares) and the gate's exit codes, on synthetic saved runs and pairs that follow
the counts' contract: `extra_info["exact"]`, a flat dict of whole numbers per benchmark and side."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.base.errors import BenchInputError
from bench.verdicts.exact import (
    COMPILE,
    FAILS,
    IMPROVEMENT,
    KINDS,
    MEMORY,
    NO_GATE,
    WITHIN,
    WORK,
    Compared,
    CountChange,
    ExactSection,
    Gate,
    count_changes,
    counts_of,
    gate_of,
    kind_of,
    summarized,
)

BENCH = "bench/benchmarks/test_train_step.py::test_train_step_fast"
OTHER = "bench/benchmarks/test_attention_step.py::test_attention_step[w32-L512-b2-hf-forward]"
# one round of the embedded model's training step as the issue measured it (flops, saved bytes)
COUNTS = {
    "flops": 1_835_925_504,
    "saved_bytes": 23_361_540,
    "peak_bytes": 60_000_000,
    "op_calls": 1_000,
    "op_calls.aten.mm": 400,
    "op_calls.aten.addmm": 300,
    "op_calls.aten.mul": 200,
    "op_calls.aten.add": 100,
}
SIDES = ("baseline", "candidate")


def grown(**changed: int) -> dict[str, int]:
    """COUNTS with some keys changed (`op_calls_aten_mul` for `op_calls.aten.mul`)."""
    return {**COUNTS, **{key.replace("_aten_", ".aten."): value for key, value in changed.items()}}


def test_each_changed_key_is_listed_with_its_kind_in_a_fixed_order_and_equal_counts_are_not():
    new = grown(flops=1_900_000_000, peak_bytes=61_000_000, op_calls=1_006, op_calls_aten_mul=206)
    assert count_changes(COUNTS, new) == [
        CountChange("flops", WORK, 1_835_925_504, 1_900_000_000),
        CountChange("op_calls", WORK, 1_000, 1_006),
        CountChange("peak_bytes", MEMORY, 60_000_000, 61_000_000),
        CountChange("op_calls.aten.mul", WORK, 200, 206),
    ]
    assert count_changes(COUNTS, dict(COUNTS)) == []
    assert [kind_of(k) for k in ("saved_bytes", "graph_breaks", "unique_graphs", "recompiles")] == [
        MEMORY,
        COMPILE,
        COMPILE,
        COMPILE,
    ]
    assert kind_of("op_calls.aten.bmm") == WORK and kind_of("a_count_no_kind_names") == WORK


def test_memory_fails_only_past_its_tolerance_and_less_memory_is_an_improvement():
    edge = CountChange("peak_bytes", MEMORY, 100_000_000, 101_000_000)  # +1% exactly
    past = CountChange("peak_bytes", MEMORY, 100_000_000, 101_000_001)  # one byte more
    assert edge.judged() == WITHIN and past.judged() == FAILS
    assert edge.judged(0.0) == FAILS and past.judged(1.5) == WITHIN
    assert CountChange("saved_bytes", MEMORY, 1_000, 1_005).judged(0.5) == WITHIN
    assert CountChange("saved_bytes", MEMORY, 1_000, 1_006).judged(0.5) == FAILS
    assert CountChange("saved_bytes", MEMORY, 1_000, 999).judged(0.0) == IMPROVEMENT
    assert CountChange("saved_bytes", MEMORY, 0, 1).judged(1000.0) == FAILS  # from nothing: no percent


def test_compile_counts_fail_on_any_increase_and_work_on_any_change_either_way():
    assert CountChange("graph_breaks", COMPILE, 3, 4).judged() == FAILS
    assert CountChange("recompiles", COMPILE, 1, 0).judged() == IMPROVEMENT
    assert CountChange("flops", WORK, 100, 101).judged() == FAILS
    assert CountChange("flops", WORK, 100, 99).judged() == FAILS  # less work: something stopped running
    assert CountChange("op_calls.aten.mm", WORK, 4, 0).judged(1000.0) == FAILS


def test_a_key_on_one_side_only_is_shown_not_judged_but_an_operator_never_called_is_zero_calls():
    old = {"flops": 10, "op_calls": 5, "op_calls.aten.mm": 5}
    new = {"flops": 10, "op_calls": 6, "op_calls.aten.mm": 5, "op_calls.aten.item": 1, "graph_breaks": 3}
    assert count_changes(old, new) == [
        CountChange("op_calls", WORK, 5, 6),
        CountChange("graph_breaks", COMPILE, None, 3),
        CountChange("op_calls.aten.item", WORK, 0, 1),
    ]
    assert count_changes(new, old)[1] == CountChange("graph_breaks", COMPILE, 3, None)
    assert CountChange("graph_breaks", COMPILE, None, 3).judged() == ""
    # a side that counted no operators at all has no zero to stand for them
    assert count_changes({"flops": 10}, {"flops": 10, "op_calls.aten.mm": 2}) == [
        CountChange("op_calls.aten.mm", WORK, None, 2)
    ]


def test_counts_are_read_from_extra_info_per_side_and_a_run_without_them_has_none():
    assert counts_of({"exact": {"flops": 7, "op_calls": 2.0}}) == {"flops": 7, "op_calls": 2}
    both = {"exact": {"baseline": {"flops": 1}, "candidate": {"flops": 2}}}
    assert counts_of(both, "baseline") == {"flops": 1} and counts_of(both, "candidate") == {"flops": 2}
    assert counts_of({"exact": {"flops": 1}}, "candidate") == {"flops": 1}  # each side's own file
    assert counts_of({"process_medians": [0.1]}) is None and counts_of(None) is None
    # what is stored beside the counts, not judged: reasons, seconds, a parity record, flags
    assert counts_of({"exact": {"flops": 3, "ratio": 0.5, "ok": True, "why": ["x"]}}) == {"flops": 3}


def test_operators_are_summarized_to_the_few_that_changed_most():
    new = grown(op_calls=1_060, op_calls_aten_mm=410, op_calls_aten_addmm=330, op_calls_aten_mul=199) | {
        "op_calls.aten.gelu": 20,
        "op_calls.aten.item": 12,
    }
    changes = count_changes(COUNTS, new)
    shown, left = summarized(changes)
    assert [c.key for c in shown] == [
        "op_calls",
        "op_calls.aten.addmm",  # +30
        "op_calls.aten.gelu",  # +20 from 0
        "op_calls.aten.item",  # +12
    ]
    assert left == 2  # mm +10 and mul -1, in JSON and CSV only
    assert len(changes) == 6


def section(compared: list[Compared], gate: Gate = NO_GATE) -> ExactSection:
    return ExactSection(compared, gate, SIDES)


def test_the_text_shows_the_changes_as_they_are_within_100_columns():
    long_op = "op_calls.aten._scaled_dot_product_flash_attention_for_cpu_backward"
    new = grown(peak_bytes=60_600_001, saved_bytes=23_000_000, op_calls=1_002) | {long_op: 2}
    text = section([Compared(BENCH, COUNTS, new), Compared(OTHER, COUNTS, dict(COUNTS))]).text()
    assert max(len(line) for line in text) <= 100
    at = text.index("train_step_fast")
    assert text[at + 1].split() == ["op_calls", "work", "1,000", "1,002", "+0.20%", "fails"]
    assert text[at + 2].split() == ["peak_bytes", "memory", "60,000,000", "60,600,001", "+1.00%", "fails"]
    assert text[at + 3].split() == [
        "saved_bytes",
        "memory",
        "23,361,540",
        "23,000,000",
        "-1.55%",
        "improvement",
    ]
    assert text[at + 4] == "    " + long_op  # too long for its column: on a line of its own
    assert text[at + 5].split() == ["work", "0", "2", "from", "0", "fails"]
    assert "no exact count changed in 1 of 2 benchmarks" in text
    assert text[-1] == "gate off (--fail-on-growth): 3 counts would fail it"
    words = " ".join(" ".join(text).split())
    assert "no interval" in words and "improvements are reported and never fail" in words


def test_the_gate_names_its_failing_counts_and_gates_only_the_kinds_asked():
    new = grown(peak_bytes=61_000_000) | {"graph_breaks": 4}
    old = COUNTS | {"graph_breaks": 3}
    compared = [Compared(BENCH, old, new)]
    every = section(compared, Gate(KINDS, 1.0))
    assert [(b, c.key) for b, c in every.failing()] == [(BENCH, "peak_bytes"), (BENCH, "graph_breaks")]
    assert " ".join(" ".join(every.text()[-2:]).split()) == (  # wrapped at 100 columns
        "gate (--fail-on-growth: memory, compile, work) fails on 2 counts: train_step_fast: "
        "peak_bytes, graph_breaks"
    )
    assert [c.key for _, c in section(compared, Gate((COMPILE,), 1.0)).failing()] == ["graph_breaks"]
    assert section(compared, Gate((MEMORY,), 2.0)).failing() == []  # +1.67% within 2%
    assert section(compared, Gate((WORK,), 1.0)).text()[-1] == "gate (--fail-on-growth: work) passes"


def test_same_counts_show_no_change_and_pass_the_gate():
    same = section([Compared(BENCH, COUNTS, dict(COUNTS))], Gate(KINDS))
    assert same.failing() == [] and same.rows() == []
    assert same.text()[-2:] == [
        "no exact count changed in 1 of 1 benchmark",
        "gate (--fail-on-growth: memory, compile, work) passes",
    ]


def test_benchmarks_without_counts_are_judged_on_nothing_exact_said_once():
    old_only = section([Compared(BENCH, None, None), Compared(OTHER, None, None)], Gate(KINDS))
    assert old_only.text() == [
        "judged on nothing exact: no counts saved on either side, saved before they were recorded",
        "gate (--fail-on-growth: memory, compile, work) passes: nothing exact to judge",
    ]
    assert section([Compared(BENCH, None, None)]).text() == [  # no gate asked: nothing about it
        "judged on nothing exact: no counts saved on either side, saved before they were recorded"
    ]
    mixed = section([Compared(BENCH, COUNTS, dict(COUNTS)), Compared(OTHER, None, COUNTS)])
    said = " ".join(" ".join(mixed.text()).split())
    assert (
        "judged on nothing exact (no counts saved on the baseline, saved before they were recorded): "
        "attention_step[w32-L512-b2-hf-forward]" in said
    )


@pytest.mark.parametrize(
    ("fail", "kinds", "tolerance", "message"),
    [
        (True, "memory,speed", None, "--growth-kinds memory,speed: expected kinds separated by commas"),
        (True, "", None, "--growth-kinds : expected kinds"),
        (False, "memory", None, "--growth-kinds memory: only with --fail-on-growth"),
        (True, None, "-1", "--memory-tolerance -1: expected a percent >= 0"),
        (True, None, "lots", "--memory-tolerance lots: expected a percent >= 0"),
        (False, None, "nan", "--memory-tolerance nan: expected a percent >= 0"),
    ],
)
def test_bad_gate_options_are_refused_by_name(fail, kinds, tolerance, message):
    with pytest.raises(BenchInputError, match=message):
        gate_of(fail, kinds, tolerance)


def test_gate_options_parse_into_the_gate():
    assert gate_of(False, None, None) == NO_GATE
    assert gate_of(True, None, None) == Gate(KINDS, 1.0)
    assert gate_of(True, "compile, work,compile", "2.5%") == Gate((COMPILE, WORK), 2.5)
    assert gate_of(False, None, "0") == Gate((), 0.0)  # the tolerance also says what `within` means


# ---- the commands, on saved runs and pairs written here ----

FINGERPRINT = {"device": "cpu", "cpu_model": "Test CPU", "torch_threads": 2, "worker_threads": 1}
PROCESS, CALIBRATION = [0.0100, 0.0102, 0.0099], [0.0050, 0.0051, 0.0050]


def extra(exact: dict | None) -> dict:
    """A sampled benchmark's extra_info: per-process values, and exact counts where given."""
    return {
        "process_medians": PROCESS,
        "calibration_medians": CALIBRATION,
        "normalized_medians": [p / c for p, c in zip(PROCESS, CALIBRATION, strict=True)],
        **({"exact": exact} if exact is not None else {}),
    }


def save_run(folder: Path, number: int, exact: dict | None, work: dict | None = None) -> None:
    """A saved run of two benchmarks, both with `exact` (None: a run saved before counts were)."""
    folder.mkdir(parents=True, exist_ok=True)
    run = {
        "machine_info": {"longformer_bench": FINGERPRINT},
        "commit_info": {"id": f"{number:02d}" + "c" * 38},
        "datetime": f"2026-12-03T10:{number:02d}:00",
        "benchmarks": [
            {
                "fullname": name,
                "name": name.split("::")[-1],
                "stats": {"median": PROCESS[0]},
                "extra_info": {**extra(exact), **(work or {})},
            }
            for name in (BENCH, OTHER)
        ],
    }
    (folder / f"{number:04d}_run.json").write_text(json.dumps(run))


def compare(results: Path, *options: str) -> int:
    return main(["compare", "--results", str(results), *options])


def test_compare_shows_the_latest_runs_counts_against_its_baselines_and_gates_them(tmp_path, capsys):
    save_run(tmp_path / "cpu", 1, COUNTS)
    save_run(tmp_path / "cpu", 2, grown(peak_bytes=60_900_000, op_calls_aten_mul=201, op_calls=1_001))
    assert compare(tmp_path) == 0  # shown, not gated
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    exact_at = next(i for i, line in enumerate(lines) if line.startswith("exact counts of one round"))
    assert "latest against baseline" in lines[exact_at]
    at = lines.index("train_step_fast", exact_at)
    assert lines[at + 1].split() == ["op_calls", "work", "1,000", "1,001", "+0.10%", "fails"]
    assert lines[at + 2].split() == ["peak_bytes", "memory", "60,000,000", "60,900,000", "+1.50%", "fails"]
    assert lines[at + 3].split() == ["op_calls.aten.mul", "work", "200", "201", "+0.50%", "fails"]
    assert "gate off (--fail-on-growth): 6 counts would fail it" in out  # 3 counts in 2 benchmarks
    assert compare(tmp_path, "--fail-on-growth") == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "exact gate: fails on train_step_fast: op_calls, peak_bytes, op_calls.aten.mul;" in err
    assert compare(tmp_path, "--fail-on-growth", "--growth-kinds", "memory", "--memory-tolerance", "1.5") == 0
    assert (
        compare(tmp_path, "--fail-on-growth", "--growth-kinds", "memory", "--memory-tolerance", "1.49") == 1
    )
    assert compare(tmp_path, "--fail-on-growth", "--growth-kinds", "compile") == 0


def test_compare_of_same_counts_shows_no_change_and_passes(tmp_path, capsys):
    save_run(tmp_path / "cpu", 1, COUNTS)
    save_run(tmp_path / "cpu", 2, dict(COUNTS))
    assert compare(tmp_path, "--fail-on-growth") == 0
    out = capsys.readouterr().out
    assert "no exact count changed in 2 of 2 benchmarks" in out and "fails" not in out
    assert "gate (--fail-on-growth: memory, compile, work) passes" in out


def test_compare_of_runs_saved_before_counts_says_so_once_and_never_fails(tmp_path, capsys):
    save_run(tmp_path / "cpu", 1, None)
    save_run(tmp_path / "cpu", 2, COUNTS)  # the first run with counts: its baseline has none
    assert compare(tmp_path, "--fail-on-growth") == 0
    out = capsys.readouterr().out
    words = " ".join(out.split())
    assert words.count("judged on nothing exact") == 1
    assert "no counts saved on the baseline, saved before they were recorded" in words
    save_run(tmp_path / "cpu", 3, None)
    assert compare(tmp_path, "--json", "--fail-on-growth") == 0
    saved = json.loads(capsys.readouterr().out)
    assert saved["benchmarks"][0]["exact"] == {"baseline": COUNTS, "latest": None, "changes": []}
    assert saved["exact_gate"]["failing"] == [] and "nothing exact" in saved["exact_gate"]["not_judged"]


def test_compare_counts_only_rows_of_the_same_work(tmp_path, capsys):
    save_run(tmp_path / "cpu", 1, COUNTS, work={"batch_size": 2})
    save_run(tmp_path / "cpu", 2, grown(flops=2 * COUNTS["flops"]), work={"batch_size": 4})
    assert compare(tmp_path, "--fail-on-growth") == 0  # another batch: other work, not compared
    assert "exact counts of one round" not in capsys.readouterr().out


def test_compare_json_and_csv_carry_every_change(tmp_path, capsys):
    save_run(tmp_path / "cpu", 1, COUNTS)
    save_run(tmp_path / "cpu", 2, grown(flops=1_835_925_505) | {"graph_breaks": 1})
    assert compare(tmp_path, "--json") == 0
    saved = json.loads(capsys.readouterr().out)
    (row,) = [b for b in saved["benchmarks"] if b["benchmark"] == BENCH]
    assert row["exact"]["changes"] == [
        {
            "key": "flops",
            "kind": "work",
            "baseline": 1_835_925_504,
            "latest": 1_835_925_505,
            "growth": 1 / 1_835_925_504,
            "judged": "fails",
        },
        {
            "key": "graph_breaks",
            "kind": "compile",
            "baseline": None,
            "latest": 1,
            "growth": None,
            "judged": "not judged: on one side only",
        },
    ]
    assert compare(tmp_path, "--format", "csv") == 0
    rows = {r["benchmark"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert rows[BENCH]["exact_changed"] == "2" and rows[BENCH]["exact_failing"] == "1"
    assert rows[BENCH]["exact_changes"] == "flops 1835925504 -> 1835925505; graph_breaks - -> 1"


def save_pair(results: Path, baseline: dict | None, candidate: dict | None) -> Path:
    """A saved A/B pair of one benchmark, each side's counts in its own file's extra_info."""
    folder = results / "ab" / "0001_s1"
    folder.mkdir(parents=True)
    sides = {"processes": 3, "sides": {side: {"torch": "2.13.0"} for side in SIDES}, "session": "s1"}
    for side, exact in zip(SIDES, (baseline, candidate), strict=True):
        entry = {"fullname": BENCH, "name": "test_train_step_fast", "extra_info": extra(exact)}
        saved = {"ab": {**sides, "side": side}, "benchmarks": [entry]}
        (folder / f"{side}.json").write_text(json.dumps(saved))
    return folder


def test_a_pair_shows_its_exact_changes_apart_and_the_gate_fails_on_them(tmp_path, capsys):
    new = grown(op_calls=1_012) | {f"op_calls.aten.op{i}": 2 for i in range(6)}
    pair = save_pair(tmp_path, COUNTS, new)
    assert main(["compare", "--ab", str(pair)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert lines[-1] == "1 inconclusive"  # the timing verdicts' count stays the last line
    exact_at = next(i for i, line in enumerate(lines) if line.startswith("exact counts of one round"))
    at = lines.index("train_step_fast", exact_at)
    assert lines[at + 1].split() == ["op_calls", "work", "1,000", "1,012", "+1.20%", "fails"]
    assert [line.split()[0] for line in lines[at + 2 : at + 5]] == [f"op_calls.aten.op{i}" for i in range(3)]
    assert lines[at + 5] == "    and 3 more operators (--format json lists all)"
    assert main(["compare", "--ab", str(pair), "--fail-on-growth", "--growth-kinds", "memory"]) == 0
    assert main(["compare", "--ab", str(pair), "--fail-on-growth", "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert "| `train_step_fast` | op_calls | work | 1,000 | 1,012 | +1.20% | fails |" in out
    assert "| `train_step_fast` | and 3 more operators | | | | | |" in out
    assert main(["compare", "--ab", str(pair), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["benchmarks"]
    assert row["exact"]["baseline"] == COUNTS and row["exact"]["candidate"] == new
    assert len(row["exact"]["changes"]) == 7  # every operator, unsummarized


def test_a_pair_saved_without_counts_is_judged_on_time_alone(tmp_path, capsys):
    pair = save_pair(tmp_path, None, None)
    assert main(["compare", "--ab", str(pair), "--fail-on-growth"]) == 0
    out = capsys.readouterr().out
    assert " ".join(out.split()).count("judged on nothing exact") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-on-growth", "--growth-kinds", "speed"], "--growth-kinds speed: expected kinds"),
        (["--memory-tolerance", "-2"], "--memory-tolerance -2: expected a percent >= 0"),
    ],
)
@pytest.mark.parametrize("command", ["compare", "ab"])
def test_bad_gate_options_exit_2_before_anything_runs(tmp_path, capsys, command, args, message):
    """`ab` would start a pytest session and servers: refused before (no pair saved, at once)."""
    given = ["--results", str(tmp_path / "nothing-here"), *args]
    given += ["--baseline-env", "X=1"] if command == "ab" else []
    assert main([command, *given]) == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "nothing-here").exists()


def counted_history(results: Path) -> None:
    """Six runs: #1 saved before counts were recorded, #2-#3 the same counts, #4 one more saved
    activation's bytes and a new operator, #5 the same again, #6 a graph break fewer."""
    saved_more = grown(saved_bytes=COUNTS["saved_bytes"] + 131_072, op_calls=1_001) | {
        "op_calls.aten.gelu": 1
    }
    for number, exact in enumerate(
        [None, COUNTS, COUNTS, saved_more, saved_more, saved_more | {"graph_breaks": 2}], 1
    ):
        save_run(results / "cpu", number, exact)


def test_changes_lists_where_a_count_changed_between_runs_by_key(tmp_path, capsys):
    counted_history(tmp_path)
    assert main(["changes", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    at = lines.index("  train_step_fast")
    assert lines[at + 1 : at + 6] == [
        "    counts changed between #3 03cccccccc 2026-12-03 10:03 and #4 04cccccccc 2026-12-03 10:04",
        "      differs: commit 03cccccccc -> 04cccccccc",
        "      op_calls (work) 1,000 -> 1,001, +0.10%",
        "      saved_bytes (memory) 23,361,540 -> 23,492,612, +0.56%",
        "      op_calls.aten.gelu (work) 0 -> 1, from 0",
    ]
    assert lines[at + 6 : at + 9] == [
        "    counts changed between #5 05cccccccc 2026-12-03 10:05 and #6 06cccccccc 2026-12-03 10:06",
        "      differs: commit 05cccccccc -> 06cccccccc",
        "      graph_breaks (compile) - -> 2, added",
    ]
    assert out.count("counts changed between") == 4  # both benchmarks, at the same two places
    assert "judged on nothing exact" not in out  # run #1 alone lacks them: passed over, not a change
    assert main(["changes", "--results", str(tmp_path), "--json"]) == 0
    (series,) = [s for s in json.loads(capsys.readouterr().out) if s["benchmark"] == BENCH]
    assert series["counted"] == 5 and [s["after"] for s in series["exact"]] == [
        "cpu/0004_run.json",
        "cpu/0006_run.json",
    ]
    assert series["exact"][0]["changes"][1] == {
        "key": "saved_bytes",
        "kind": "memory",
        "old": 23_361_540,
        "new": 23_492_612,
    }


def test_changes_over_history_without_counts_says_so_once(tmp_path, capsys):
    for number in range(1, 4):
        save_run(tmp_path / "cpu", number, None)
    assert main(["changes", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "counts changed" not in out and out.count("judged on nothing exact") == 1
    assert (
        "judged on nothing exact: 2 of 2 benchmark series saved no exact counts (runs saved before they "
        "were recorded)" in " ".join(out.split())
    )


def test_the_report_lists_count_changes_and_shows_the_latest_runs_counts(tmp_path):
    from bench.verdicts.report import write_report

    counted_history(tmp_path)
    out = tmp_path / "report.html"
    write_report(tmp_path, out, print)
    page = out.read_text()
    assert "<h2>Exact count changes (4)</h2>" in page
    assert (
        "between #5 05cccccccc 2026-12-03 10:05 and #6 06cccccccc 2026-12-03 10:06 (differs: commit "
        "05cccccccc -&gt; 06cccccccc): graph_breaks - -&gt; 2 (added)</li>" in page
    )
    assert "saved_bytes 23,361,540 -&gt; 23,492,612 (+0.56%)" in page  # the older change, listed too
    assert "<th>exact counts vs previous</th>" in page
    assert "<td>graph_breaks - -&gt; 2 (added, one side)</td>" in page  # the latest run against #5
    assert "judged on nothing exact" not in page


def test_the_report_of_runs_without_counts_says_so_once_per_series(tmp_path):
    from bench.verdicts.report import write_report

    for number in range(1, 4):
        save_run(tmp_path / "cpu", number, None)
    out = tmp_path / "report.html"
    write_report(tmp_path, out, print)
    page = out.read_text()
    assert page.count("judged on nothing exact") == 1 and "Exact count changes" not in page


def test_a_pair_whose_candidate_file_holds_both_sides_counts_reads_each_its_own(tmp_path, capsys):
    """The contract's other form: `"exact": {"baseline": {...}, "candidate": {...}}` in one file."""
    pair = save_pair(tmp_path, None, None)
    both = {"baseline": COUNTS, "candidate": grown(flops=COUNTS["flops"] + 1)}
    path = pair / "candidate.json"
    saved = json.loads(path.read_text())
    saved["benchmarks"][0]["extra_info"]["exact"] = both
    path.write_text(json.dumps(saved))
    assert main(["compare", "--ab", str(pair), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["benchmarks"]
    assert row["exact"]["baseline"] == COUNTS and [c["key"] for c in row["exact"]["changes"]] == ["flops"]


def test_ab_judges_the_counts_of_the_pair_it_saves_and_its_gate_sets_the_exit_code(tmp_path, capsys):
    """`ab`'s last step on a session's samples (no live session): the candidate's pytest JSON holds
    both sides' counts by side, the contract's form for a pair; each side is judged on its own."""
    import argparse

    from bench.cli.ab import judge_and_save
    from bench.measure.sampling import Job, ProcessSample

    job = Job("training_step", {"batch_size": 2}, rounds=3)
    samples = [ProcessSample(pid, [0.01 * (1 + 0.01 * pid)] * 3, [0.005] * 3) for pid in range(3)]
    pairs = {BENCH: ({side: job for side in SIDES}, {side: samples for side in SIDES})}
    both = {"baseline": COUNTS, "candidate": grown(peak_bytes=COUNTS["peak_bytes"] * 2)}
    entry = {"fullname": BENCH, "name": "test_train_step_fast", "extra_info": {"exact": both}, "stats": {}}
    candidate_json = {"machine_info": {"longformer_bench": {}}, "benchmarks": [entry]}
    info = {"session": "s1", "sides": {side: {"torch": "2.13.0"} for side in SIDES}}

    def ab(*options: str) -> int:
        args = argparse.Namespace(
            alpha=0.01, min_effect=0.02, json=False, format="text", fail_on_regression=False
        )
        args.fail_on_growth = "--fail-on-growth" in options
        args.growth_kinds = options[-1] if "--growth-kinds" in options else None
        args.memory_tolerance = None
        threads = dict.fromkeys(SIDES, 1)
        return judge_and_save(args, tmp_path, "s1", info, pairs, threads, candidate_json)

    assert ab() == 0
    out = capsys.readouterr().out
    assert "peak_bytes  memory  60,000,000  120,000,000  +100.00%  fails" in out
    assert ab("--fail-on-growth") == 1
    assert "exact gate: fails on train_step_fast: peak_bytes" in capsys.readouterr().err
    assert ab("--fail-on-growth", "--growth-kinds", "compile,work") == 0
    assert len(list((tmp_path / "ab").iterdir())) == 3  # each session saved its pair
