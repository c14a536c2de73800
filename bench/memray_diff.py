"""What grew between two daemon runs under memray (``bench/soak.py --memray``): a short run A
and a longer run B of the same soak. For the memory live at each run's high-water mark and
at its end, by kind (Python's object arenas, Python objects over 512 bytes, SQLite, TLS
contexts, other C code) and by the daemon's own calls that allocated it, B minus A, largest
first. Memory that grows with the length of a run stands at the top; memory that only
depends on what was loaded does not.

    python bench/memray_diff.py RUN_A/daemon.memray RUN_B/daemon.memray [--rows 15]

memray: ``pip install -e '.[profile]'``.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

Frame = tuple[str, str, int]


def kind(frames: Sequence[Frame]) -> str:
    """The kind of memory an allocation is, from its stack (innermost first)."""
    top = next((f[0] for f in frames if f[0] != "<unknown>"), "?")
    if top == "_PyObject_ArenaMmap":
        return "Python object arenas"
    if top.startswith("_PyObject_Malloc") or top.startswith("PyMem"):
        return "Python objects over 512 bytes"
    if any(f[1].endswith("ssl.py") for f in frames):
        return "TLS contexts"
    if any("sqlite" in f[1] or f[0] == "do_execute" for f in frames):
        return "SQLite (under a statement)"
    return "other C code"


def ours(frames: Sequence[Frame], depth: int = 4) -> str:
    """The daemon's own innermost calls on the stack, or the kind where there are none."""
    own = [f"{f[0]}@{f[1].split('/src/')[-1]}:{f[2]}" for f in frames if "bulletin/" in f[1]]
    return " <- ".join(own[:depth]) if own else f"({kind(frames)}, no call of ours)"


def tally(records: Iterable[Any]) -> tuple[dict[str, int], dict[str, int]]:
    """Bytes by kind and by our calls."""
    by_kind: dict[str, int] = defaultdict(int)
    by_call: dict[str, int] = defaultdict(int)
    for record in records:
        try:
            frames = record.hybrid_stack_trace(max_stacks=80)
        except NotImplementedError:
            frames = record.stack_trace(max_stacks=80)
        by_kind[kind(frames)] += record.size
        by_call[ours(frames)] += record.size
    return by_kind, by_call


def report(title: str, a: dict[str, int], b: dict[str, int], rows: int) -> None:
    print(f"{title}: A {sum(a.values()) / 1e6:.1f} MB, B {sum(b.values()) / 1e6:.1f} MB")
    for key in sorted(set(a) | set(b), key=lambda k: a.get(k, 0) - b.get(k, 0))[:rows]:
        grew = (b.get(key, 0) - a.get(key, 0)) / 1e6
        was, now = a.get(key, 0) / 1e6, b.get(key, 0) / 1e6
        print(f"  {grew:+7.2f} MB  (A {was:6.2f}, B {now:6.2f})  {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()
    from memray import FileReader

    readers = [FileReader(args.a), FileReader(args.b)]
    for what in ("high-water mark", "end"):
        tallies = [
            tally(
                r.get_high_watermark_allocation_records(merge_threads=True)
                if what == "high-water mark"
                else r.get_leaked_allocation_records(merge_threads=True)
            )
            for r in readers
        ]
        report(f"live at the {what}, by kind", tallies[0][0], tallies[1][0], args.rows)
        report(f"live at the {what}, by our calls", tallies[0][1], tallies[1][1], args.rows)


if __name__ == "__main__":
    main()
