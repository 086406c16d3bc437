#!/usr/bin/env python3
"""CPU per archive append on SQLite for the archive's schemas, without a server (session 12,
BENCHMARKS.md "the SQLite archive's append"): 200 owners in pairs, each message appended to
the sender's and the recipient's archive, in batches of BATCH appends per transaction (WAL,
synchronous=NORMAL, as the store runs it). Python's own cost (~3 us per append) is in every
figure alike. Three seeds per configuration; prints the median.

    python3 bench/archive_append_micro.py MESSAGES KIND:BATCH[:PAGE_SIZE[:WAL_AUTOCHECKPOINT]] ...

KIND: old (schema step 1: text keys), int (step 2: integer owner and JID ids), int1 (tried:
WITHOUT ROWID clustered on (owner_id, id), one index), intnw (tried: no with index)."""
import os, random, sqlite3, sys, time, tempfile, shutil

N_OWNERS = 200
SCOPE = "mod_mam/localhost"
PAYLOAD = ("<message xmlns='jabber:client' from='u%d@localhost/bench' to='u%d@localhost' type='chat' id='m%d'>"
           "<body>%s</body></message>")


def schema(db, kind, page_size, ckpt):
    db.execute(f"PRAGMA page_size={page_size}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    if ckpt:
        db.execute(f"PRAGMA wal_autocheckpoint={ckpt}")
    if kind == "old":
        db.executescript(
            "CREATE TABLE archive (id INTEGER PRIMARY KEY, scope TEXT NOT NULL, owner TEXT NOT NULL, ts INTEGER NOT NULL, "
            "with_bare TEXT NOT NULL, with_full TEXT NOT NULL, payload BLOB NOT NULL);"
            "CREATE INDEX archive_by_owner ON archive (scope, owner, id);"
            "CREATE INDEX archive_by_with ON archive (scope, owner, with_bare, id);")
    elif kind == "int":
        db.executescript(
            "CREATE TABLE archive (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL, ts INTEGER NOT NULL, "
            "with_id INTEGER NOT NULL, with_full TEXT NOT NULL, payload BLOB NOT NULL);"
            "CREATE INDEX archive_by_owner ON archive (owner_id, id);"
            "CREATE INDEX archive_by_with ON archive (owner_id, with_id, id);")
    elif kind == "int1":  # one index: (owner_id, with_id, id) only... plus owner index via table? no: owner-only
        db.executescript(
            "CREATE TABLE archive (owner_id INTEGER NOT NULL, id INTEGER NOT NULL, ts INTEGER NOT NULL, "
            "with_id INTEGER NOT NULL, with_full TEXT NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (owner_id, id)) WITHOUT ROWID;"
            "CREATE INDEX archive_by_with ON archive (owner_id, with_id, id);")
    elif kind == "intnw":  # rowid table, owner index only (with by filter)
        db.executescript(
            "CREATE TABLE archive (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL, ts INTEGER NOT NULL, "
            "with_id INTEGER NOT NULL, with_full TEXT NOT NULL, payload BLOB NOT NULL);"
            "CREATE INDEX archive_by_owner ON archive (owner_id, id);")


def run(kind, batch, n_msgs, page_size=4096, ckpt=None, seed=1, body=40, prefill=0):
    d = tempfile.mkdtemp(prefix="archive-micro.")
    try:
        db = sqlite3.connect(os.path.join(d, "a.db"), isolation_level=None)
        schema(db, kind, page_size, ckpt)
        rnd = random.Random(seed)
        if kind == "old":
            sql = "INSERT INTO archive (scope, owner, id, ts, with_bare, with_full, payload) VALUES (?,?,?,?,?,?,?)"
        else:
            sql = "INSERT INTO archive (owner_id, id, ts, with_id, with_full, payload) VALUES (?,?,?,?,?,?)"
        rows = []
        nid = 1
        for m in range(n_msgs + prefill):
            s = rnd.randrange(N_OWNERS)
            r = s ^ 1
            p = (PAYLOAD % (s, r, m, "x" * body)).encode()
            for owner, other in ((s, r), (r, s)):
                ob, wb = f"u{owner}@localhost", f"u{other}@localhost"
                if kind == "old":
                    rows.append((SCOPE, ob, nid, nid, wb, wb + "/bench", p))
                else:
                    rows.append((owner + 1, nid, nid, other + 1, wb + "/bench", p))
                nid += 1
        pre = rows[:2 * prefill]
        rows = rows[2 * prefill:]
        for i in range(0, len(pre), 1000):
            db.execute("BEGIN IMMEDIATE")
            db.executemany(sql, pre[i:i + 1000])
            db.execute("COMMIT")
        t0 = time.process_time()
        w0 = time.monotonic()
        for i in range(0, len(rows), batch):
            db.execute("BEGIN IMMEDIATE")
            db.executemany(sql, rows[i:i + batch])
            db.execute("COMMIT")
        cpu = time.process_time() - t0
        wall = time.monotonic() - w0
        size = os.path.getsize(os.path.join(d, "a.db"))
        db.close()
        return cpu / len(rows) * 1e6, wall / len(rows) * 1e6, size
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
    configs = [a.split(":") for a in sys.argv[2:]]
    for c in configs:
        kind, batch = c[0], int(c[1])
        ps = int(c[2]) if len(c) > 2 else 4096
        ck = int(c[3]) if len(c) > 3 and c[3] else None
        res = [run(kind, batch, n, ps, ck, seed=s) for s in (1, 2, 3)]
        cpus = sorted(r[0] for r in res)
        print(f"{kind:6} batch {batch:4} page {ps:5} ckpt {ck}: cpu us/append {cpus[1]:.2f} (min {cpus[0]:.2f}) "
              f"wall {sorted(r[1] for r in res)[1]:.2f} size {res[0][2] / 1e6:.1f} MB", flush=True)
