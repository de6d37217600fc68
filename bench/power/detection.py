"""What every detection-power mode shares: a trial's values, the table's text, the fast case.

A detection table has one row per injected slowdown: how many trials, how many were judged a
regression (at level 0 that is the false-alarm rate), and columns of the mode's own.
"""

from __future__ import annotations

from bench.measure.jobs import ATTENTION_ROUNDS, ATTENTION_WARMUP
from bench.measure.sampling import Job, summary
from bench.verdicts.stats import Values


def values(samples, job: Job, threads: int) -> Values:
    return Values.from_extra_info(summary(samples, job, threads))


Column = tuple[str, str, str]  # (header, key in a table row, format spec)


def format_detection(
    table: dict[float, dict],
    columns: tuple[Column, ...] = (("calibrated decided", "decided_by_calibrated", "d"),),
) -> str:
    """A detection table as text: per injected level, trials, regressions found, rate, and `columns`."""
    lines = [
        "injected slowdown   trials  flagged as regression  rate     " + "  ".join(c[0] for c in columns)
    ]
    for level, row in table.items():
        label = "none (false alarm)" if level == 0 else f"{level:.0%}"
        cells = "  ".join(f"{row[key]:>{len(header)}{spec}}" for header, key, spec in columns)
        lines.append(f"{label:<18}  {row['trials']:>6}  {row['flagged']:>21}  {row['rate']:>6.1%}  {cells}")
    return "\n".join(lines)


FAST_CASE = {"implementation": "hf", "window": 32, "seq_len": 512, "batch": 2, "passes": "forward_backward"}


def fast_profile_job() -> Job:
    """A fast-profile benchmark sampled as the fast profile samples it (test_attention_step.py)."""
    return Job("attention_step", FAST_CASE, ATTENTION_ROUNDS, ATTENTION_WARMUP)
