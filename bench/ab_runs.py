#!/usr/bin/env python3
"""The per-run lines and the medians of the interleaved A/B scripts (chat_ab.sh, login_ab.sh).

  ab_runs.py line RESULT_JSON BUILD RUN KEY...   one line: "BUILD run RUN: KEY VALUE ..." from the
                                                 last JSON line parley-bench wrote
  ab_runs.py medians RUNS_FILE                   per build, the median of each key over its lines"""
import collections
import json
import statistics
import sys


def line(result, build, run, keys):
    r = json.loads(open(result).read().splitlines()[-1])
    print(f"{build} run {run}: " + " ".join(f"{k} {r.get(k)}" for k in keys), flush=True)


def medians(runs_file):
    rows = collections.defaultdict(lambda: collections.defaultdict(list))
    for text in open(runs_file):
        build, rest = text.split(" run ", 1)
        fields = rest.split(":", 1)[1].split()
        for key, value in zip(fields[0::2], fields[1::2]):
            try:
                rows[build][key].append(float(value))
            except ValueError:
                pass  # a run without the figure (None): left out
    for build, keys in rows.items():
        print(f"median {build}: " + " ".join(f"{k} {statistics.median(v):,.3f}" for k, v in keys.items()))


if __name__ == "__main__":
    if sys.argv[1] == "line":
        line(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    else:
        medians(sys.argv[2])
