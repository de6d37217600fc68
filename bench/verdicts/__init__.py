"""What the values mean: changes with intervals, verdicts, history comparisons, change points.

stats, verdict: the tests and the rule that turns an interval into a verdict.
compare, changes, pairs: a run against earlier runs, steps over a series, an A/B pair.
summary, report: the lines after a pytest run, the HTML page over the saved runs.
notation: how a change, a time and a benchmark's name are written, the same in every command.
Reads saved values alone: it never imports torch or transformers (checked by `make lint`). May
import bench.measure's record types, bench.harness's torch-free parts and bench.base.
"""
