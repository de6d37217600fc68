"""How values are obtained: worker processes, their timing loop and calibration, the A/B pool.

sampling: a side's server and workers, rounds spread over processes, per-process summaries.
worker, calibration, counts, memory: what runs in those processes (always the driving checkout's
copy, loaded from worker.py's folder): the timing loop, its yardstick, the exact counts of a round.
workloads: what a worker builds from a name and parameters (on the harness below).
budget, jobs: how many rounds fit a benchmark's time, the benchmarks' shared job constants.
ab: both sides' workers alive at once and paired, in one session.
May import bench.harness and bench.base; the verdicts, the power tools and the commands sit above.
"""
