"""Summarize a py-spy raw profile (``python -m benchmarks.run --profile``) per thread.

``python -m benchmarks.profile benchmarks/results/full/runs/ec2-ours/profile.txt [--top 25]``

Prints, for each thread, the share of samples in which each function is on the stack (inclusive) and
at the top of the stack (self), with file names but without line numbers.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def _frame(text: str) -> str:
    return _LINE.sub(")", text.strip())


def load(path: Path) -> dict[str, Counter[tuple[str, ...]]]:
    threads: dict[str, Counter[tuple[str, ...]]] = defaultdict(Counter)
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        parts = stack.split(";")
        thread = parts[0]
        if ":" in thread:  # "thread (0x..): name" -> name
            thread = thread.split(":", 1)[1].strip() or thread
        threads[thread][tuple(_frame(p) for p in parts[1:])] += int(count)
    return threads


def summarize(path: Path, top: int, match: str | None = None) -> str:
    out = []
    for thread, stacks in sorted(load(path).items(), key=lambda kv: -sum(kv[1].values())):
        total = sum(stacks.values())
        inclusive: Counter[str] = Counter()
        own: Counter[str] = Counter()
        for frames, count in stacks.items():
            if match and not any(match in f for f in frames):
                continue
            for frame in set(frames):
                inclusive[frame] += count
            if frames:
                own[frames[-1]] += count
        out.append(f"== {thread}: {total} samples")
        out.append("  inclusive:")
        for frame, count in inclusive.most_common(top):
            out.append(f"    {100 * count / total:5.1f}%  {frame}")
        out.append("  self:")
        for frame, count in own.most_common(top):
            out.append(f"    {100 * count / total:5.1f}%  {frame}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default=None, help="only stacks containing this text")
    args = parser.parse_args(argv)
    print(summarize(args.profile, args.top, args.match))
    return 0


if __name__ == "__main__":
    sys.exit(main())
