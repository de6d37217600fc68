"""Options and hooks only: validate the run before anything is timed, describe the machine, and
file saved runs under their series (hardware and run configuration, bench/base/history.py).

The options themselves live in fixtures/options.py (loaded before pytest parses the command line);
the fixtures live in fixtures/.
"""

from __future__ import annotations

import pytest

from fixtures.options import RUN_SPEC, option_values

pytest_plugins = (
    "fixtures.options",
    "fixtures.run",
    "fixtures.model",
    "fixtures.data",
    "fixtures.sampling",
    "fixtures.storage",
)

FINGERPRINT = pytest.StashKey[dict]()
SELECTION = pytest.StashKey[dict]()
COMPARE = pytest.StashKey[object]()


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark's own (trylast) pytest_configure
def pytest_configure(config: pytest.Config) -> None:
    """pytest-benchmark loads the run to compare with (--benchmark-compare) while it configures,
    before the run's series (and so its folder) is known: hold the flag back until the session
    starts, where the storage points at the series folder (pytest_sessionstart)."""
    config.stash[COMPARE] = getattr(config.option, "benchmark_compare", None)
    if config.stash[COMPARE]:
        config.option.benchmark_compare = None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Every bad option or input file stops the run here, with its message, before any timing."""
    from bench.base.errors import BenchInputError
    from bench.base.history import series_folder
    from bench.harness.device import use_threads
    from bench.harness.options import as_given
    from bench.harness.spec import build_spec
    from bench.verdicts.notation import WIDTH, wrap
    from fixtures.sampling import injected_slowdown
    from fixtures.storage import selection, use_series_storage

    try:
        spec = build_spec(**option_values(session.config))
    except BenchInputError as err:
        message = as_given(str(err), list(session.config.invocation_params.args))
        # pytest prints it after "ERROR: ": wrapped so that every line fits 100 columns
        raise pytest.UsageError("\n".join(wrap(message, "", WIDTH - len("ERROR: ")))) from None
    injected_slowdown()  # the self-tests' variable: refused here, not in the first benchmark
    session.config.stash[RUN_SPEC] = spec
    use_threads(spec.threads)
    fingerprint = spec.fingerprint()
    session.config.stash[FINGERPRINT] = fingerprint
    session.config.stash[SELECTION] = selection(session.config)
    benchmark_session = getattr(session.config, "_benchmarksession", None)
    if benchmark_session is not None:  # pytest-benchmark's own id ignores GPU, dtype and the model
        partial = session.config.stash[SELECTION]["partial"]
        use_series_storage(benchmark_session, series_folder(fingerprint), partial)
        if session.config.stash.get(COMPARE, None):  # now the series' own earlier runs
            session.config.option.benchmark_compare = session.config.stash[COMPARE]
            benchmark_session.compare = session.config.stash[COMPARE]
            benchmark_session.handle_loading()


def pytest_report_header(config: pytest.Config) -> list[str]:
    spec = config.stash.get(RUN_SPEC, None)
    return [] if spec is None else spec.header()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=f"needs CUDA: torch {torch.__version__} sees no GPU on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the benchmark workers' server while pytest sets up (it imports torch: seconds); not
    for --collect-only, which times nothing (scripts/gpu_check.sh --cpu collects most stages)."""
    if session.config.option.collectonly:
        return
    if any("sampled" in getattr(item, "fixturenames", ()) for item in session.items):
        from fixtures.sampling import start_worker_server

        start_worker_server(session.config)


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Add the stack that decides a timing; pytest-benchmark's own id ignores GPU and torch."""
    from bench.harness.fingerprint import fingerprint_id

    fingerprint = config.stash[FINGERPRINT]
    machine_info["longformer_bench"] = fingerprint
    machine_info["fingerprint"] = fingerprint_id(fingerprint)


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    """Say in the saved run what was selected: a partial run is never a full one's baseline."""
    from bench.base.history import SELECTION_KEY

    output_json[SELECTION_KEY] = config.stash[SELECTION]


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's table
def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """The figures the run was for (throughput, MFU, memory, speedups, convergence) and, when this
    run was saved beside earlier ones, compare's verdict per benchmark."""
    from bench.verdicts.summary import Measured, summary_lines, verdict_lines
    from fixtures.ab import AB_POOL

    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled or not session.benchmarks or AB_POOL in config.stash:
        return  # `python -m bench ab` prints its own table
    measured = [
        Measured(b.name, b.group, b.stats.median if b.stats else None, b.extra_info)
        for b in session.benchmarks
    ]
    lines = summary_lines(measured)
    saved = getattr(session.storage, "saved", None)
    if saved is not None:
        lines += ["", *verdict_lines(session.storage.path, saved)]
    if lines:
        terminalreporter.section("longformer-bench: the figures behind the times")
        for text in lines:
            terminalreporter.write_line(text)
