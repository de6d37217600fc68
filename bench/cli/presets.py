"""`python -m bench presets`: FlagPerf's published cases and the commands that run them."""

from __future__ import annotations

import argparse

from bench.harness.presets import PRESETS

NAME = "presets"
SUMMARY = "FlagPerf's cases and their commands"
EXAMPLES = ("python -m bench presets",)


def setup(parser: argparse.ArgumentParser) -> None:
    """No arguments."""


def run(_: argparse.Namespace) -> int:

    for preset in PRESETS.values():
        published = ", ".join(f"{k} {v}" for k, v in preset.published.items() if v is not None) or "none"
        print(f"{preset.name}: global batch {preset.global_batch}; A100 fp32 published: {published}")
        print(f"  {preset.command()}")
    return 0
