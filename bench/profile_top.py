"""The top lines of a profile written by bench/timed_run.py (`bench/footprint.py --profile FILE`): the functions
with the most CPU time of their own, and how many calls."""

from __future__ import annotations

import argparse
import pstats


def name(func: tuple[str, int, str]) -> str:
    file, line, function = func
    if file == "~":
        return function
    for marker in ("/collector/", "/bench/", "site-packages/", "/lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1] if marker != "/collector/" else "collector/" + file.split(marker, 1)[1]
            break
    return f"{file}:{line}({function})"


def is_hand_off(func: tuple[str, int, str]) -> bool:
    """Threads waking and waiting for each other: threading.py, and the locks under its Events and Conditions."""
    return func[0].endswith("/threading.py") or "_thread.lock" in func[2] or "_thread.RLock" in func[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    # func -> (primitive calls, calls, own s, cumulative s, callers); typeshed's pstats.Stats lacks this dict that
    # it fills (cpython Lib/pstats.py Stats.init)
    stats = pstats.Stats(args.profile).stats  # type: ignore[attr-defined]
    busy = sum(own for _, _, own, _, _ in stats.values())
    hand_offs = sum(stats[f][2] for f in stats if is_hand_off(f))
    print(f"{busy:.2f} CPU s in all threads, under the profiler; thread hand-offs (threading.py and its locks) "
          f"{hand_offs / busy * 100:.1f} %")
    print("own %   calls      function")
    ranked = sorted(stats, key=lambda f: -stats[f][2])
    for func in ranked[:args.top]:
        print(f"{stats[func][2] / busy * 100:5.1f}  {stats[func][1]:>9,}  {name(func)}")


if __name__ == "__main__":
    main()
