"""Login latency (the SASL exchange only) with PostgreSQL up (the credentials read from
the database) and stopped (answered by the credential cache, docs/storage.md): what a
cache-first policy could save per login. Usage, from the source tree:

    PARLEYD=BUILD/core/parleyd PARLEYCTL=BUILD/tools/parleyctl/parleyctl PARLEY_BUILD_DIR=BUILD \
        /usr/bin/python3 bench/login_latency_pg.py tests/integration SCRATCH_DIR
"""
import os, statistics, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
from parley_harness import ParleyServer, PostgresServer, required_binary
from rawxmpp import RawClient, q, NS_SASL

pg = PostgresServer()
pg.start()
base = tempfile.mkdtemp(prefix="login-latency-", dir=os.path.abspath(sys.argv[2]))
server = ParleyServer(base, required_binary("PARLEYD"), required_binary("PARLEYCTL"), modules={"mod_ping": {}},
                      storage={"type": "postgresql", "url": pg.create_database(), "max_connections": 4})

def one(mech):
    c = RawClient(server.c2s_port); c.start(); c.starttls()
    t = time.perf_counter()
    out = c.auth_plain("alice", "pw") if mech == "PLAIN" else c.auth_scram("alice", "pw", mech)
    dt = time.perf_counter() - t
    assert out.tag == q(NS_SASL, "success"), out
    c.close()
    return dt * 1000

try:
    server.start()
    server.register("alice", "pw")
    one("PLAIN")
    for state in ("up", "stopped"):
        if state == "stopped":
            pg.stop(); one("PLAIN")  # the first after the loss reconnects once
        for mech in ("PLAIN", "SCRAM-SHA-256"):
            ms = [one(mech) for _ in range(40)]
            print(f"postgresql {state:7} {mech:14} median {statistics.median(ms):6.2f} ms  (40 logins, SASL exchange only)")
finally:
    server.stop()
    pg.destroy()
