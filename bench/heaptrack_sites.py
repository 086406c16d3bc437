#!/usr/bin/python3
"""The live heap of bench/heaptrack_idle.sh's run, per session, in the rows of BENCHMARKS.md's idle table.

    bench/heaptrack_sites.py OUTDIR/stacks.txt N [--detail]

stacks.txt is `heaptrack_print -F ... --flamegraph-cost-type leaked`: one line per call stack (root first,
frames separated by ';') and its bytes still allocated when parleyd was killed. Each stack goes to the
first row whose marker one of its frames contains (the order below matters: the module slots are made
from inside a module's hook, a module's allocations from inside the core's hook runner). Bytes requested;
glibc adds 8-16 per chunk. --detail lists the innermost module or core frame of each row's biggest stacks.
"""
import collections
import re
import sys

ROWS = [
    ("start-up (no session's: divided by N all the same)", ("Server::start", "_dl_init", "ModuleManager::start_instances",
                                                             "WorkerLoop::WorkerLoop", "main (")),
    ("OpenSSL: SSL_new (the SSL struct, its locks, stacks, BIO)", ("SSL_new", "attach_bio")),
    ("OpenSSL: the record layer's cipher contexts", ("EVP_CipherInit_ex",)),
    ("OpenSSL: the SSL_SESSION", ("SSL_SESSION_new",)),
    ("OpenSSL: the key shares", ("EVP_PKEY_generate", "EVP_PKEY_new")),
    ("OpenSSL: the handshake transcript hash", ("EVP_MD_CTX_copy_ex",)),
    ("OpenSSL: other allocations of the handshake that stay", ("tls::Stream", "CRYPTO_", "OPENSSL_")),
    ("core: the session's module slots", ("set_module_data",)),
    ("core: C2sStream with its Connection, and Session", ("Listener::on_connection",)),
    ("core: the session table's entry", ("SessionTable::",)),
    ("cache: SCRAM credentials (max_cached_credentials)", ("CredentialCache",)),
    ("cache: the per-loop JID cache", ("jid_cache",)),
    ("cache: known accounts", ("KnownAccounts",)),
    ("cache: SQLite page caches", ("sqlite3",)),
]
# A module's namespace (mod_presence::), or its class where the module keeps it in an anonymous
# namespace ((anonymous namespace)::ModStreamMgmt::).
MODULE = re.compile(r"\b(mod_[a-z_]+)::|\b(Mod[A-Z][A-Za-z]+)::")


def class_to_module(name):  # ModStreamMgmt -> mod_stream_mgmt
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


CORE_PARSER = ("StreamParser", "C2sStream")


def classify(frames):
    # Start-up, OpenSSL, the slots and the caches first (a module's hook may fill a cache); then the
    # innermost module frame; then the rest of the core.
    for name, markers in ROWS[:8] + ROWS[10:]:
        if any(m in f for f in frames for m in markers):
            return name
    for f in reversed(frames):
        m = MODULE.search(f)
        if m:
            return f"module {m.group(1) or class_to_module(m.group(2))}"
    for name, markers in ROWS[8:10]:
        if any(m in f for f in frames for m in markers):
            return name
    if any(m in f for f in frames for m in CORE_PARSER):
        return "core: the stream and its parser's primer"
    return "other"


def innermost_ours(frames):
    for f in reversed(frames):
        if "parley::" in f or MODULE.search(f):
            return f[:120]
    return frames[-1][:120] if frames else "?"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, n = sys.argv[1], int(sys.argv[2])
    detail = "--detail" in sys.argv[3:]
    rows = collections.Counter()
    sites = collections.defaultdict(collections.Counter)
    for line in open(path, encoding="utf-8", errors="replace"):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        try:
            count = int(count)
        except ValueError:
            continue
        if count <= 0:
            continue
        frames = [f for f in stack.split(";") if f]
        row = classify(frames)
        rows[row] += count
        sites[row][innermost_ours(frames)] += count
    total = sum(rows.values())
    start = rows.get(ROWS[0][0], 0)
    print(f"| where (N = {n:,}) | bytes per session |")
    print("|---|---:|")
    for row, count in sorted(rows.items(), key=lambda kv: -kv[1]):
        print(f"| {row} | {count / n:,.0f} |")
        if detail:
            for site, c in sites[row].most_common(6):
                if c / n >= 8:
                    print(f"|   {site} | {c / n:,.0f} |")
    print(f"| **total live heap, start-up left out** | **{(total - start) / n:,.0f}** |")


if __name__ == "__main__":
    main()
