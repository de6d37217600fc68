"""Pictures of saved runs (matplotlib, headless), written atomically."""

from __future__ import annotations

import os
from pathlib import Path


def save_accuracy_curve(
    path: Path, train_seconds: list[float], accuracy: list[float], target: float | None, title: str
) -> bool:
    """Eval accuracy against training time, with the target as a dashed line.

    Returns False, drawing nothing, where matplotlib is not installed (a bare GPU runner).
    """
    try:
        import matplotlib
    except ImportError:
        return False

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(train_seconds, accuracy, marker="o", markersize=3)
    if target is not None:
        ax.axhline(target, linestyle="--", color="grey", label=f"target {target}")
        ax.legend(loc="lower right")
    ax.set(xlabel="training time (s)", ylabel="eval MLM accuracy", title=title, ylim=(0, 1))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
        return True
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
