"""Login with many offline local contacts: from the initial presence to the last of the
probe answers (RFC 6121 4.3.1: an unavailable from each contact's bare JID, with its
last unavailable presence and a delay), i.e. the reads of the stored last presences.
The roster and the last presences are written into the modules' old tables before the
first start (mod_roster and mod_presence move them into their stores), so one script
measures a build that reads them with SQL and one that reads the keyval store. Usage,
from the source tree:

    PARLEYD=BUILD/core/parleyd PARLEYCTL=BUILD/tools/parleyctl/parleyctl PARLEY_BUILD_DIR=BUILD \
        /usr/bin/python3 bench/presence_login_probes.py tests/integration SCRATCH_DIR [N] [postgresql]

PARLEY_BENCH_MODULE_DIR=DIR loads the modules from DIR first (module_paths): a copy of an
older build's parleyd and modules measured next to the current build (interleaved runs).
"""
import os, sqlite3, statistics, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
from parley_harness import ParleyServer, PostgresServer, required_binary
from rawxmpp import RawClient, NS_CLIENT, q
from old_schemas import recreate_old_tables

N = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
PG = len(sys.argv) > 4 and sys.argv[4] == "postgresql"
PRESENCE = q(NS_CLIENT, "presence")
pg = None
storage = {}
if PG:
    pg = PostgresServer()
    pg.start()
    storage = {"type": "postgresql", "url": pg.create_database(), "max_connections": 4}
base = tempfile.mkdtemp(prefix="presence-probes-", dir=os.path.abspath(sys.argv[2]))
server = ParleyServer(base, required_binary("PARLEYD"), required_binary("PARLEYCTL"),
                      modules={"mod_ping": {}, "mod_roster": {}, "mod_presence": {}}, storage=storage,
                      module_paths=[os.environ["PARLEY_BENCH_MODULE_DIR"]] if os.environ.get("PARLEY_BENCH_MODULE_DIR")
                      else None)


def login_once():
    c = RawClient(server.c2s_port)
    c.login("alice", "pw", resource="bench")
    t = time.perf_counter()
    c.send("<presence/>")
    got = 0
    while got < N:
        e = c.expect(PRESENCE, timeout=60, match=lambda e: e.get("type") == "unavailable")
        got += e.find(q("urn:xmpp:delay", "delay")) is not None
    dt = time.perf_counter() - t
    c.close()
    return dt * 1000


try:
    server.start()
    server.register("alice", "pw")
    server.stop()
    db = sqlite3.connect(str(server.data_dir / "parley.db"))
    recreate_old_tables(db, "mod_roster_items")  # dropped, empty, by the first start
    with db:
        db.execute("CREATE TABLE IF NOT EXISTS mod_presence_last (jid TEXT PRIMARY KEY, xml TEXT NOT NULL, "
                   "stamp TEXT NOT NULL)")
        for i in range(N):
            jid = f"c{i:05d}@{server.domain}"
            db.execute("INSERT INTO mod_roster_items (host, user, contact, subscription) VALUES (?, 'alice', ?, 'to')",
                       (server.domain, jid))
            db.execute("INSERT INTO mod_presence_last (jid, xml, stamp) VALUES (?, ?, '2020-01-02T03:04:05Z')",
                       (jid, f"<presence xmlns='jabber:client' type='unavailable'><status>away {i}</status></presence>"))
    db.close()
    server.start()
    login_once()  # warm-up (and the moves done)
    ms = [login_once() for _ in range(7)]
    print(f"{'postgresql' if PG else 'sqlite'} N={N}: initial presence to the last probe answer: median "
          f"{statistics.median(ms):.1f} ms (7 logins: {', '.join(f'{m:.0f}' for m in ms)})")
finally:
    server.stop()
    if pg:
        pg.destroy()
