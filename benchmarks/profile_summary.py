"""Summarise a py-spy raw (collapsed-stack) profile: self and inclusive time per function.

Usage: python benchmarks/profile_summary.py PROFILE.txt [--top N] [--under FUNC]
"""

from __future__ import annotations

import argparse
import collections
import re


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("profile")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--under", default="VillageModel.step", help="only stacks through a frame whose function name ends so")
    args = ap.parse_args()
    incl: collections.Counter[str] = collections.Counter()
    selft: collections.Counter[str] = collections.Counter()
    total = 0
    for line in open(args.profile, encoding="utf-8"):
        stack, _, count = line.rstrip().rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        if args.under and not any(f.split(" (")[0].endswith(args.under) for f in frames):
            continue
        total += n
        # inclusive time per function (file, no line); self time per source line
        funcs = [re.sub(r":\d+\)$", ")", f) for f in frames]
        for f in dict.fromkeys(funcs):
            incl[f] += n
        selft[frames[-1]] += n
    print(f"samples under {args.under!r}: {total}")
    print("inclusive:")
    for f, n in incl.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {f}")
    print("self (leaf lines):")
    for f, n in selft.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {f}")


if __name__ == "__main__":
    main()
