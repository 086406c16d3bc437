"""Archive queries on a large archive: the answer's latency and parleyd's CPU per query,
SQLite and PostgreSQL, for one or more builds. Each build gets a fresh server whose
account `alice` holds ENTRIES archived messages, one every 3 seconds up to now (imported
with their stamps, XEP-0227: 100,000 span 3.5 days, inside mod_mam's default retention of
a week, which the server keeps), one in a thousand from carol@localhost/phone, the rest
with bob. The shapes, QUERIES times each, a page of 10:
  start  the entries after the time of the entry 20 from the end (a client catching up
         since a time, as Gajim and Dino ask);
  with   the first entries with carol@localhost/phone (a full JID, a sparse contact);
  last   the last page of the whole archive (<before/>: what a new client asks first);
  page   the page after the entry in the middle of the archive (forward paging, <after/>);
  after  the page after the entry 50 from the end (a client catching up after the last id
         it saw, with RSM's <after/>).
Usage, from the source tree:

    /usr/bin/python3 bench/mam_start_query.py SCRATCH_DIR BUILD_DIR [BUILD_DIR ...] \\
        [--entries 100000] [--queries 50] [--backends sqlite,pg]
"""
import argparse, datetime, os, statistics, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from parley_harness import ParleyServer, PostgresServer  # noqa: E402
from rawxmpp import RawClient, q  # noqa: E402

PIE = "urn:xmpp:pie:0"
PIE_MAM = "urn:xmpp:pie:0#mam"
MAM = "urn:xmpp:mam:2"
FORWARD = "urn:xmpp:forward:0"
DELAY = "urn:xmpp:delay"
CLIENT = "jabber:client"
TICKS = os.sysconf("SC_CLK_TCK")
STEP_S = 3
BEGIN = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)


def stamp(i):
    return (BEGIN - datetime.timedelta(seconds=STEP_S * (ENTRIES[0] - i))).strftime("%Y-%m-%dT%H:%M:%SZ")


ENTRIES = [100000]  # set by main(): stamp() counts back from the last entry


def pie_file(path, entries):
    with open(path, "w") as f:
        f.write(f"<?xml version='1.0'?>\n<server-data xmlns='{PIE}'><host jid='localhost'>"
                f"<user name='alice' password='pw'><archive xmlns='{PIE_MAM}'>\n")
        for i in range(entries):
            frm, to = ("alice@localhost/desk", "bob@localhost") if i % 2 else ("bob@localhost/pad", "alice@localhost")
            if i % 1000 == 500:
                frm, to = "carol@localhost/phone", "alice@localhost"
            f.write(f"<result xmlns='{MAM}' id='x{i}'><forwarded xmlns='{FORWARD}'><delay xmlns='{DELAY}' "
                    f"stamp='{stamp(i)}'/><message xmlns='{CLIENT}' from='{frm}' to='{to}' type='chat'>"
                    f"<body>message {i} of the bench archive</body></message></forwarded></result>\n")
        f.write("</archive></user></host></server-data>\n")


def cpu(pid):
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICKS


def run(build, backend, pg, scratch, pie, entries, queries):
    os.environ["PARLEY_BUILD_DIR"] = str(build)
    storage = None
    if backend == "pg":
        storage = {"type": "postgresql", "url": pg.create_database(), "max_connections": 4}
    base = tempfile.mkdtemp(prefix=f"mam-start-{backend}-", dir=scratch)
    server = ParleyServer(base, str(build / "core" / "parleyd"), str(build / "tools" / "parleyctl" / "parleyctl"),
                          modules={"mod_mam": {}}, storage=storage,
                          module_paths=[str(build / "modules")])
    try:
        server.start()
        imported = server.ctl("import", str(pie))
        assert imported.returncode == 0, imported.stdout + imported.stderr
        c = RawClient(server.c2s_port)
        c.login("alice", "pw", resource="bench")
        since = stamp(entries - 20)
        shapes = {"start": f"<field var='start'><value>{since}</value></field>",
                  "with": "<field var='with'><value>carol@localhost/phone</value></field>",
                  "last": "", "page": "", "after": ""}
        pid = server.proc.pid
        out = {}
        for shape, field in shapes.items():
            form = (f"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{MAM}"
                    f"</value></field>{field}</x><set xmlns='http://jabber.org/protocol/rsm'><max>10</max>"
                    f"{'<before/>' if shape == 'last' else ''}</set>")
            if shape in ("page", "after"):  # the id of the entry there, from a page that ends with it
                at = entries // 2 if shape == "page" else entries - 50
                mid = c.iq("set", f"<query xmlns='{MAM}' queryid='mid'><x xmlns='jabber:x:data' type='submit'>"
                                  f"<field var='FORM_TYPE' type='hidden'><value>{MAM}</value></field>"
                                  f"<field var='end'><value>{stamp(at)}</value></field></x>"
                                  "<set xmlns='http://jabber.org/protocol/rsm'><max>1</max><before/></set></query>")
                after = mid.find(f"{{{MAM}}}fin/{{http://jabber.org/protocol/rsm}}set/"
                                 "{http://jabber.org/protocol/rsm}last").text
                form = form.replace("<max>10</max>", f"<max>10</max><after>{after}</after>")
            times = []
            before = cpu(pid)
            for n in range(queries):
                t = time.perf_counter()
                reply = c.iq("set", f"<query xmlns='{MAM}' queryid='{shape}{n}'>{form}</query>")
                times.append((time.perf_counter() - t) * 1000)
                assert reply.get("type") == "result", reply
                if shape != "last":  # more than a page in the set (the last page is complete)
                    assert reply.find(q(MAM, "fin")).get("complete") is None
            out[shape] = (statistics.median(times), (cpu(pid) - before) * 1000 / queries)
        c.abort()
        return out
    finally:
        server.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scratch")
    ap.add_argument("builds", nargs="+")
    ap.add_argument("--entries", type=int, default=100000)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--backends", default="sqlite,pg")
    a = ap.parse_args()
    ENTRIES[0] = a.entries
    scratch = os.path.abspath(a.scratch)
    pie = Path(scratch) / f"archive-{a.entries}.xml"
    pie_file(pie, a.entries)
    backends = a.backends.split(",")
    pg = None
    if "pg" in backends:
        pg = PostgresServer()
        pg.start()
    try:
        for backend in backends:
            for build in a.builds:
                for shape, (ms, cpu_ms) in run(Path(build).resolve(), backend, pg, scratch, pie, a.entries,
                                               a.queries).items():
                    print(f"{backend:6} {shape:5} {build:28} entries {a.entries:7}  median {ms:8.2f} ms per query  "
                          f"parleyd CPU {cpu_ms:8.2f} ms per query ({a.queries} queries)", flush=True)
    finally:
        if pg:
            pg.destroy()


if __name__ == "__main__":
    main()
