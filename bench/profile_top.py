"""The top lines of a profile written by bench/timed_run.py (`bench/footprint.py --profile FILE`): the functions
with the most CPU time of their own, and how many calls."""

from __future__ import annotations

import argparse
import pstats

def name(func: tuple[str, int, str]) -> str:
    file, line, function = func
    return function if file == "~" else f"{file.split('/templog/')[-1].split('site-packages/')[-1]}:{line}({function})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    stats = pstats.Stats(args.profile).stats  # func -> (primitive calls, calls, own s, cumulative s, callers)
    busy = sum(own for _, _, own, _, _ in stats.values())
    print(f"{busy:.2f} CPU s in all threads, under the profiler")
    print("own %   calls      function")
    ranked = sorted(stats, key=lambda f: -stats[f][2])
    for func in ranked[:args.top]:
        print(f"{stats[func][2] / busy * 100:5.1f}  {stats[func][1]:>9,}  {name(func)}")


if __name__ == "__main__":
    main()
