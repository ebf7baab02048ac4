"""Code-block extractor: throughput on a 1 MB answer, and the hostile lines that used to backtrack.

    uv run python benchmarks/bench_codeblocks.py [--markdown] [--reference]

Times `extract_files` on answers of 0.25, 0.5 and 1 MB (ordinary blocks, and hostile single lines: a run of
`#` before a fence, a near-miss file name, a fence of backticks with trailing spaces), reports MB/s and the
ratio of 1 MB to 0.25 MB time (linear: about 4), then the 26- and 40-`#` lines of issue 13. Exits 1 when a
bound is broken: under 0.5 MB/s on any 1 MB answer (a real answer is under 0.1 MB), a 1 MB/0.25 MB ratio
above 8 (where 1 MB takes over 50 ms; below that the ratio is noise), or a `#` line over 10 ms.
`--reference` also times the old regex extractor (tests/codeblocks_reference.py) on 14 to 22 `#`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crew.answers.codeblocks import extract_files  # noqa: E402

MB = 1_000_000
FENCED = "```python\nX = 1\n```\n"


def _ordinary(size: int) -> str:
    block = ("Here is the module.\n\n**calc.py**\n```python\n# file: calc.py\n"
             + "def add(a, b):\n    return a + b\n" * 20 + "```\n\n```markdown README.md\n# Calc\n```python\n"
             + "from calc import add\n```\n```\n")
    return (block * (size // len(block) + 1))[:size]


ANSWERS: dict[str, Callable[[int], str]] = {
    "ordinary blocks": _ordinary,
    "one line of # before a fence": lambda n: "#" * n + "x\n" + FENCED,
    "a.a.a… before a fence": lambda n: "a." * (n // 2) + "\n" + FENCED,
    "```` + spaces + x": lambda n: "`" * (n // 2) + " " * (n // 2) + "x\n",
    "info string of a.a.a…": lambda n: "```python " + "a." * (n // 2) + "\nX = 1\n```\n",
    "<!-- + spaces first line": lambda n: "```md\n<!-- " + "a.py" + " " * n + "x\n```\n",
    "many short # lines": lambda n: ("###### x\n" + FENCED) * (n // (9 + len(FENCED))),
}


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--reference", action="store_true", help="also time the old regex extractor on 14-22 `#`")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    rows, broken = [], []
    for label, make in ANSWERS.items():
        t = {}
        for size in (MB // 4, MB):
            answer = make(size)
            t[size] = best_of(lambda a=answer: extract_files(a), args.repeats)
        mbps, ratio = 1 / t[MB], t[MB] / t[MB // 4]
        rows.append([label, f"{t[MB // 4] * 1e3:.1f}", f"{t[MB] * 1e3:.1f}", f"{mbps:.1f}", f"{ratio:.1f}"])
        if mbps < 0.5 or (ratio > 8 and t[MB] > 0.05):  # below 50 ms the ratio is timer and cache noise
            broken.append(f"{label}: {mbps:.1f} MB/s, ratio {ratio:.1f}")
    for n in (26, 40, 10_000):
        answer = "#" * n + "x\n" + FENCED
        took = best_of(lambda a=answer: extract_files(a), args.repeats)
        rows.append([f"{n} # then a fence (issue 13)", "", f"{took * 1e3:.3f}", "", ""])
        if took > 0.010:
            broken.append(f"{n} #: {took * 1e3:.1f} ms")
    head = ["answer", "0.25 MB (ms)", "1 MB (ms)", "MB/s", "1 MB / 0.25 MB"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if args.markdown:
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
        for r in [head, *rows]:
            print("  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)))
    print(f"(best of {args.repeats}; load average {load:.2f} on {os.cpu_count()} CPUs)")
    if args.reference:
        from tests.codeblocks_reference import extract_code_files as old

        for n in (14, 16, 18, 20, 22):
            took = best_of(lambda a="#" * n + "x\n" + FENCED: old(a), 1)
            print(f"old regex extractor, {n} #: {took * 1e3:.0f} ms")
    for b in broken:
        print(f"BOUND BROKEN: {b}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
