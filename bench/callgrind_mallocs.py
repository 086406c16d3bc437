#!/usr/bin/env python3
"""Where one chat message's heap allocations come from: the difference between
two callgrind outputs of bench/callgrind_chat.sh (the LONG run minus the SHORT
run, divided by the messages between them) of the calls to malloc, calloc,
realloc and operator new, attributed to the first caller that is not an
allocation wrapper (operator new, std::string's and std::vector's growth
functions, std::make_shared's control block, ...; a wrapper's calls are shared
among its callers in proportion to how often each called it).

  bench/callgrind_mallocs.py SHORT/callgrind.out LONG/callgrind.out MESSAGES [TOP]

Prints the allocations per message and the TOP call sites."""
import collections, re, sys

ALLOC = ('malloc', 'calloc', 'realloc')
# Functions that only pass an allocation through: their callers are the site.
WRAPPER = re.compile(r'^(operator new|std::__cxx11::basic_string<.*>::(_M_create|_M_mutate|_M_construct|_M_replace|_M_append'
                     r'|reserve|_M_assign|basic_string|append|assign|push_back|operator=|operator\+=)'
                     r'|std::vector<.*>::(_M_realloc_insert|_M_realloc_append|reserve|_M_default_append|vector|operator=|push_back'
                     r'|emplace_back|_M_range_initialize|_M_allocate_and_copy)'
                     r'|std::__new_allocator|std::allocator|std::__shared_count|std::_Sp_counted|std::__allocate_shared'
                     r'|std::make_shared|std::shared_ptr<.*>::shared_ptr|std::__shared_ptr<.*>::__shared_ptr'
                     r'|std::_Function_base|std::function<.*>::function|std::unique_ptr<.*> std::make_unique'
                     r'|std::_Hashtable<.*>::_M_allocate|std::__detail::_Hashtable_alloc|std::__cxx11::basic_string<.*> std::operator\+'
                     r'|CRYPTO_malloc|CRYPTO_zalloc|CRYPTO_realloc|CRYPTO_clear_realloc)')
NAME = re.compile(r'^(c?fn)=\((\d+)\)(?: (.*))?$')
OBJ = re.compile(r'^(c?ob)=\((\d+)\)(?: (.*))?$')


def is_wrapper(name):
    return bool(WRAPPER.match(name.removeprefix('void ')))


def edges(path):
    """(caller, callee) -> calls, with names decompressed."""
    names, objs, out = {}, {}, collections.Counter()
    fn = cfn = None
    ob = cob = ''
    with open(path, errors='replace') as f:
        for line in f:
            m = OBJ.match(line.rstrip('\n'))
            if m:
                kind, ident, name = m.groups()
                if name:
                    objs[ident] = name.rsplit('/', 1)[-1]
                if kind == 'ob':
                    ob = cob = objs.get(ident, ident)
                else:
                    cob = objs.get(ident, ident)
                continue
            m = NAME.match(line.rstrip('\n'))
            if m:
                kind, ident, name = m.groups()
                if name:
                    # An unnamed function (a stripped library's) is named by its object.
                    names[ident] = name if not name.startswith('0x') else f'{name} [{cob if kind == "cfn" else ob}]'
                if kind == 'fn':
                    fn = names.get(ident, ident)
                    cob = ob
                else:
                    cfn = names.get(ident, ident)
                continue
            if line.startswith('calls='):
                out[(fn, cfn)] += int(line[6:].split()[0])
    return out


def attribute(e):
    """site -> allocation calls."""
    callers = collections.defaultdict(collections.Counter)  # callee -> caller -> calls
    for (a, b), n in e.items():
        callers[b][a] += n
    sites = collections.Counter()

    def walk(fn, weight, depth):
        who = callers.get(fn)
        total = sum(who.values()) if who else 0
        if not total or depth > 12:
            sites[fn] += weight
            return
        for caller, n in who.items():
            share = weight * n / total
            if is_wrapper(caller) and caller != fn:
                walk(caller, share, depth + 1)
            else:
                sites[caller] += share

    for a in ALLOC:
        for caller, n in callers.get(a, {}).items():
            if is_wrapper(caller):
                walk(caller, n, 0)
            else:
                sites[caller] += n
    return sites


def main():
    short, long_, messages = sys.argv[1], sys.argv[2], int(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 30
    a, b = attribute(edges(short)), attribute(edges(long_))
    diff = {k: (b.get(k, 0) - a.get(k, 0)) / messages for k in set(a) | set(b)}
    print(f'allocations per message (malloc, calloc, realloc): {sum(diff.values()):.2f}')
    print('\n| call site | per message |\n|---|---:|')
    for fn, v in sorted(diff.items(), key=lambda kv: -kv[1])[:top]:
        if abs(v) >= 0.05:
            print(f'| `{fn[:110]}` | {v:.2f} |')


if __name__ == '__main__':
    main()
