"""A synthetic commit range for `python -m bench bisect`: a small git repository made of this
checkout's tracked files, whose commit SLOW makes the training step FRACTION slower.

    python scripts/bisect_range.py DEST --commits 8 --slow 5 --fraction 0.05

DEST gets a root commit (tag `good`): this checkout's tracked files as they are in the working tree
(`git ls-files`, the embedded model included, about 4 MB), then COMMITS commits (the last tagged
`bad`). Commit SLOW appends to bench/harness/train.py a wrapper of `train_step` that does FRACTION
of the step's own time more work of the same kind, small matrix products on the step's device (as
the detector's injected slowdown, bench/measure/worker.py's ExtraWork: a busy loop would slow the
torch work after it by more than it lasts); it is a change of the measured code, found where a real
culprit would be, and it slows every benchmark that trains (the training step, the epochs), not the
calibration. It leaves its extra work out of the worker's counted round (a dispatch mode watches
there; that round is never timed): work as long as a round took would be counted differently in
every process, and exact counts must agree. It is a regression of time alone. Every other commit
adds a line to a note (docs/synthetic-range.md). Authors and dates are fixed, so the same checkout
gives the same commit hashes. Run `python -m bench bisect` inside DEST with this checkout's
interpreter: DEST's own copy of the suite then drives it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTE = "docs/synthetic-range.md"
STEP_MODULE = "bench/harness/train.py"
IDENTITY = {
    "GIT_AUTHOR_NAME": "bisect range",
    "GIT_AUTHOR_EMAIL": "range@lfbench.invalid",
    "GIT_COMMITTER_NAME": "bisect range",
    "GIT_COMMITTER_EMAIL": "range@lfbench.invalid",
}
SLOWDOWN = '''

# --- the synthetic range's culprit (scripts/bisect_range.py): FRACTION more work every step ---
SLOWDOWN_FRACTION = {fraction!r}
_unslowed_train_step = train_step


def _counted() -> bool:
    """Whether a dispatch mode watches (the worker's counted round, never timed): the extra work,
    as long as the step took, is left out there, so that every process counts the same round."""
    from torch.utils import _python_dispatch

    return _python_dispatch._get_current_dispatch_mode() is not None


def train_step(*args, **kwargs):  # noqa: F811 - the culprit wraps the step on purpose
    """The step, then SLOWDOWN_FRACTION of its own time more small matrix products on its device."""
    device = args[4] if len(args) > 4 else kwargs["device"]
    synchronize(device)
    start = time.perf_counter()
    loss = _unslowed_train_step(*args, **kwargs)
    synchronize(device)
    if _counted():
        return loss
    end = time.perf_counter() + SLOWDOWN_FRACTION * (time.perf_counter() - start)
    x = torch.ones(64, 64, device=device)
    while time.perf_counter() < end:
        torch.mm(x, x)
        synchronize(device)
    return loss
'''


def git(dest: Path, *args: str, when: int = 0) -> str:
    """git in DEST as the range's fixed author, at a fixed date (`when` seconds after the first)."""
    date = f"{1_700_000_000 + 60 * when} +0000"
    env = {**os.environ, **IDENTITY, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    done = subprocess.run(["git", *args], cwd=dest, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bisect_range: git {' '.join(args)} in {dest}: {done.stderr.strip()}")
    return done.stdout.strip()


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [name for name in listed.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


def build(dest: Path, commits: int, slow: int, fraction: float) -> list[str]:
    """The range in DEST (which must not exist); its commits, oldest first, the root included."""
    dest.mkdir(parents=True)
    for name in tracked_files():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    git(dest, "init", "--quiet", "--initial-branch=main")
    note = dest / NOTE
    note.write_text("# A synthetic commit range (scripts/bisect_range.py)\n")
    git(dest, "add", "--all")
    git(dest, "commit", "--quiet", "-m", "the suite as it was copied (good)")
    git(dest, "tag", "good")
    for number in range(1, commits + 1):
        if number == slow:
            with open(dest / STEP_MODULE, "a") as module:
                module.write(SLOWDOWN.format(fraction=fraction))
            subject = f"commit {number}: train_step does {fraction:.0%} more work (the culprit)"
        else:
            with open(note, "a") as text:
                text.write(f"commit {number}: a line of notes, nothing measured\n")
            subject = f"commit {number}: a note"
        git(dest, "commit", "--quiet", "--all", "-m", subject, when=number)
    git(dest, "tag", "bad")
    return git(dest, "rev-list", "--reverse", "HEAD").split()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, help="the repository to make (must not exist)")
    parser.add_argument("--commits", type=int, default=8, help="commits after the root (default 8)")
    parser.add_argument("--slow", type=int, default=5, help="the commit that slows the step (default 5)")
    parser.add_argument("--fraction", type=float, default=0.05, help="how much slower (default 0.05)")
    args = parser.parse_args(argv)
    if not 1 <= args.slow <= args.commits:
        parser.error(f"--slow {args.slow}: must be a commit of the range, 1 to --commits {args.commits}")
    if args.fraction <= 0:
        parser.error(f"--fraction {args.fraction}: must be above 0")
    if args.dest.exists():
        parser.error(f"{args.dest}: exists already")
    hashes = build(args.dest, args.commits, args.slow, args.fraction)
    print(
        f"{args.dest}: {args.commits} commits after `good`, commit {args.slow} ({hashes[args.slow][:7]}) slow"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
