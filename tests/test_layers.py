"""The import contracts of pyproject.toml (`make lint` runs them): kept by the code as it is, and
broken, by name, by a deliberate upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "bench", tmp_path / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_contracts_hold(copy):
    result = lint_imports(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("verdicts/stats", "import torch", "bench.verdicts.stats -> torch"),
        ("power/ab", "import bench.benchmarks.test_train_step", "bench.power.ab -> bench.benchmarks"),
        ("harness/model", "import bench.measure.sampling", "bench.harness.model -> bench.measure.sampling"),
        ("base/history", "import bench.cli", "bench.base.history -> bench.cli"),
        ("verdicts/stats", "import bench.verdicts.compare", "No cycles are allowed in bench.verdicts"),
    ],
)
def test_an_upward_import_breaks_its_contract(copy, module, line, broken):
    path = copy / "bench" / f"{module}.py"
    path.write_text(path.read_text() + f"\n\ndef _upward() -> None:\n    {line}\n")
    result = lint_imports(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert broken in result.stdout, result.stdout  # an upward import is a circle between packages too
