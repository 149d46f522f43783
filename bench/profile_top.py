"""The top lines of a profile written by bench/timed_run.py (`bench/footprint.py --profile FILE`): the functions
with the most time of their own, and the most time on the stack, with waits apart (cProfile counts a thread
blocked in Event.wait or select as time in that call)."""

from __future__ import annotations

import argparse
import pstats

WAITS = ("acquire", "wait", "select", "poll", "sleep", "join", "recv_into", "readinto", "getaddrinfo")


def name(func: tuple[str, int, str]) -> str:
    file, line, function = func
    return function if file == "~" else f"{file.split('/templog/')[-1].split('site-packages/')[-1]}:{line}({function})"


def is_wait(func: tuple[str, int, str]) -> bool:
    return any(w in func[2] for w in WAITS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    stats = pstats.Stats(args.profile).stats  # func -> (primitive calls, calls, own s, cumulative s, callers)
    busy = sum(own for func, (_, _, own, _, _) in stats.items() if not is_wait(func))
    print(f"{busy:.2f} s of CPU-side time (waits left out)")
    print("own %   calls      function")
    ranked = sorted((f for f in stats if not is_wait(f)), key=lambda f: -stats[f][2])
    for func in ranked[:args.top]:
        print(f"{stats[func][2] / busy * 100:5.1f}  {stats[func][1]:>9,}  {name(func)}")


if __name__ == "__main__":
    main()
