#!/usr/bin/env python3
"""Where one chat message's instructions go: the difference between two
callgrind outputs of bench/callgrind_chat.sh (the LONG run minus the SHORT
run, divided by the messages between them), per library and per function.

  bench/callgrind_diff.py SHORT/callgrind.out LONG/callgrind.out MESSAGES [TOP [LIBRARY]]

Runs callgrind_annotate (exclusive counts) on both; prints instructions per
message per shared object, then the TOP functions."""
import collections, re, subprocess, sys

LINE = re.compile(r'^\s*([\d,]+)\s+\([^)]*\)\s+(.*?)(?:\s+\[(.*)\])?\s*$')
# A loaded module's copy is named NAME.PID.N.so (hot reload): the same library in both runs.
MODULE = re.compile(r'\.\d+\.\d+\.so$')


def library(obj, function):
    """The shared object; callgrind_annotate leaves it out on some lines: then
    guessed from the function (glibc's sources are ./*, a module's symbols
    name it, anything else of ours is parleyd)."""
    if obj:
        return MODULE.sub('.so', obj.rsplit('/', 1)[-1])
    if function.startswith('./'):
        return 'libc.so.6'
    m = re.search(r'\b(mod_[a-z_]+)::', function)
    return f'{m.group(1)}.so' if m else 'parleyd'


def profile(path):
    out = subprocess.run(['callgrind_annotate', '--threshold=100', '--auto=no', path], capture_output=True, text=True,
                         check=True).stdout
    funcs = collections.Counter()
    for line in out.splitlines():
        m = None if 'PROGRAM TOTALS' in line else LINE.match(line)
        if m:
            funcs[(library(m.group(3), m.group(2)), m.group(2))] += int(m.group(1).replace(',', ''))
    return funcs


def main():
    short, long_, messages = sys.argv[1], sys.argv[2], int(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    a, b = profile(short), profile(long_)
    diff = {k: (b.get(k, 0) - a.get(k, 0)) / messages for k in set(a) | set(b)}
    total = sum(diff.values())
    libs = collections.Counter()
    for (lib, _), v in diff.items():
        libs[lib] += v
    print(f'instructions per message (functions listed by callgrind_annotate): {total:,.0f}')
    print('\n| library | per message | share |\n|---|---:|---:|')
    for lib, v in libs.most_common():
        if abs(v) >= total * 0.002:
            print(f'| {lib} | {v:,.0f} | {100 * v / total:.1f}% |')
    print('\n| function | library | per message |\n|---|---|---:|')
    only = sys.argv[5] if len(sys.argv) > 5 else None
    for (lib, fn), v in sorted(diff.items(), key=lambda kv: -kv[1])[:top] if not only else \
            sorted(((k, v) for k, v in diff.items() if only in k[0]), key=lambda kv: -kv[1])[:top]:
        print(f'| `{fn[:90]}` | {lib} | {v:,.0f} |')


if __name__ == '__main__':
    main()
