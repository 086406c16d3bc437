#!/usr/bin/env python3
"""Chat throughput and server CPU per message with mod_mam off and on, on SQLite and on
PostgreSQL (issue 11: "archiving must not halve message throughput"). Runs are
interleaved (every variant once, then again, RUNS times): on a shared machine only an
interleaved comparison says anything. Each run: a fresh parleyd on bench/parley.yml
(workers: 2, STARTTLS; plus `mod_mam: {}` for "mam on", plus `backend: postgresql` for
"pg"), PAIRS pairs at WINDOW, MESSAGES messages; one line per run, then the medians.

PostgreSQL: one throw-away cluster for the whole bench (initdb/postgres as an
unprivileged user when run as root, as tests/integration's harness does), on 127.0.0.1,
with its defaults (fsync on, synchronous_commit on: a deployment's durability; --pg-fsync
off for the test harness's setting), a fresh database per run. Its CPU (the postmaster and
every backend, from /proc) is measured over the chat run and reported per 100k messages
beside parleyd's, since it runs on the same cores. The SQLite archive's thread's own CPU
(the thread named parley-archive, over the chat run, logins included) is reported too.

    /usr/bin/python3 bench/chat_mam.py BUILD_DIR [--runs 3] [--pairs 100] [--window 10]
        [--messages 100000] [--variants sqlite-off,sqlite-on,pg-off,pg-on] [--pg-fsync on|off]

BUILD_DIR holds core/parleyd, tools/parleyctl/parleyctl, tools/parley-bench/parley-bench
and the modules (a Release build)."""
import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from parley_harness import PG_BIN, PG_SUPERUSER, _chown_tree, _pg_run_as, free_port, psql  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid, children=False):
    """utime + stime (+ the reaped children's) of pid, in seconds; 0 if gone."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    t = int(f[11]) + int(f[12])
    if children:
        t += int(f[13]) + int(f[14])
    return t / TICKS


def thread_cpu(pid, name, system_only=False):
    """utime + stime (or stime only) of pid's threads called `name` (comm), in seconds."""
    total = 0.0
    for t in Path(f"/proc/{pid}/task").glob("*"):
        try:
            if (t / "comm").read_text().strip() != name:
                continue
            f = (t / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += ((0 if system_only else int(f[11])) + int(f[12])) / TICKS
    return total


def thread_written(pid, name):
    """Bytes pid's threads called `name` wrote through write(2)/pwrite(2) (/proc's wchar): the
    SQLite archive's WAL frames, for its thread."""
    total = 0
    for t in Path(f"/proc/{pid}/task").glob("*"):
        try:
            if (t / "comm").read_text().strip() != name:
                continue
            total += int(next(l for l in (t / "io").read_text().splitlines() if l.startswith("wchar:")).split()[1])
        except (OSError, StopIteration):
            continue
    return total


def machine_idle():
    """(idle, total) jiffies of all cores since boot (/proc/stat's cpu line; iowait counts as idle)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return f[3] + f[4], sum(f[:8])


def pg_cpu(postmaster):
    """The cluster's CPU so far: the postmaster (with its reaped backends) and its live children."""
    total = proc_cpu(postmaster, children=True)
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            f = (p / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(f[1]) == postmaster:
            total += (int(f[11]) + int(f[12])) / TICKS
    return total


def _ppid(p):
    try:
        return int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


class Postgres:
    def __init__(self, base, fsync, extra=()):
        self.user = _pg_run_as()
        self.dir = Path(tempfile.mkdtemp(prefix="pg-", dir=base))
        self.data = self.dir / "data"
        self.port = free_port()
        _chown_tree(self.dir, self.user)
        r = subprocess.run([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", PG_SUPERUSER,
                            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                           user=self.user, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{r.stdout}{r.stderr}")
        log = open(self.dir / "postgres.log", "ab", buffering=0)
        self.proc = subprocess.Popen(
            [str(PG_BIN / "postgres"), "-D", str(self.data), "-k", str(self.dir), "-c", "listen_addresses=127.0.0.1",
             "-p", str(self.port), "-c", f"fsync={fsync}", "-c", "max_connections=50"]
            + [x for o in extra for x in ("-c", o)],
            user=self.user, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(600):
            if subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1",
                               "-U", PG_SUPERUSER, "-d", "postgres"], stdin=subprocess.DEVNULL).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("postgres did not start")

    def url(self, db="postgres"):
        return f"postgresql://{PG_SUPERUSER}@127.0.0.1:{self.port}/{db}?sslmode=disable&gssencmode=disable"

    def create(self, name):
        psql(self.url(), f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def config(template, build, d, port, plain, cert, backend, pg_url, mam, limits=()):
    text = template.replace("@DIR@", str(d)).replace("@PORT@", str(port)).replace("@PLAIN_PORT@", str(plain))
    for item in limits:  # --limit NAME=VALUE: under limits:, after the template's own
        name, value = item.split("=", 1)
        text = text.replace("limits:\n", f"limits:\n  {name}: {value}\n", 1)
    text = text.replace("@WORKERS@", "2").replace("@CERT_AND_KEY@", str(cert))
    if backend == "pg":
        text = text.replace("  type: sqlite\n", f'  backend: postgresql\n  url: "{pg_url}"\n  max_connections: 4\n')
        assert "backend: postgresql" in text
    if mam:
        text += "  mod_mam: {}\n"
    # This build's modules, not the ones of the tree it was built in (a saved "before" build).
    text += f"module_paths:\n  - {build / 'modules'}\n"
    return text


def wait_port(port, proc, log):
    import socket
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"parleyd exited: {log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("parleyd did not listen")


def main():
    # A TERM (or ^C) still stops the PostgreSQL and parleyd of this run (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser()
    ap.add_argument("builds", nargs="+", metavar="BUILD_DIR", help="one or more builds, run in turn (A/B)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--variants", default="sqlite-off,sqlite-on,pg-off,pg-on")
    ap.add_argument("--pg-fsync", default="on", choices=["on", "off"])
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--pg-setting", action="append", default=[], help="NAME=VALUE for postgres -c (repeatable)")
    ap.add_argument("--perf-args", default="-F 1999", help="perf record's options (e.g. '-F 499 --call-graph dwarf')")
    ap.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                    help="a limits: entry for parleyd (repeatable), e.g. archive_pace_queue=16384")
    ap.add_argument("--perf", action="store_true",
                    help="perf record parleyd (and PostgreSQL's processes) during each chat run: RUN_DIR/perf*.data")
    a = ap.parse_args()
    builds = [Path(b).resolve() for b in a.builds]
    variants = a.variants.split(",")
    base = Path(tempfile.mkdtemp(prefix="parley-chat-mam."))
    os.chmod(base, 0o711)  # PostgreSQL's user reaches its directory inside
    cert = base / "both.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", base / "key.pem", "-out",
                    base / "cert.pem", "-days", "7", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    cert.write_bytes((base / "cert.pem").read_bytes() + (base / "key.pem").read_bytes())
    template = (REPO / "bench/parley.yml").read_text()
    pg = Postgres(base, a.pg_fsync, a.pg_setting) if any(v.startswith("pg") for v in variants) else None
    # Builds named alike (two trees' `build`) are told apart by their parent's name too.
    unique = len({b.name for b in builds}) == len(builds)
    label = (lambda b, v: v) if len(builds) == 1 else (
        lambda b, v: f"{b.name if unique else b.parent.name + '/' + b.name}/{v}")
    results = {label(b, v): [] for v in variants for b in builds}
    try:
        for run in range(1, a.runs + 1):
            for v, build in ((v, b) for v in variants for b in builds):
                bench = build / "tools/parley-bench/parley-bench"
                backend, mam = v.split("-")
                d = base / f"{v}-{run}-{builds.index(build)}"
                (d / "data").mkdir(parents=True)
                pg_url = pg.create(f"b_{backend}_{mam}_{run}_{builds.index(build)}") if backend == "pg" else ""
                port, plain = free_port(), free_port()
                conf = d / "parley.yml"
                conf.write_text(config(template, build, d, port, plain, cert, backend, pg_url, mam == "on", a.limit))
                subprocess.run([bench, "register", "--users", str(a.pairs * 2), "--parleyctl",
                                build / "tools/parleyctl/parleyctl", "--parley-config", conf, "--jobs", "2"],
                               check=True, capture_output=True)
                log = d / "server.log"
                server = subprocess.Popen([build / "core/parleyd", "--config", conf], stdout=open(log, "wb"),
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                try:
                    wait_port(port, server, log)
                    pg0 = pg_cpu(pg.proc.pid) if backend == "pg" else 0.0
                    arch0 = thread_cpu(server.pid, "parley-archive")
                    arch_sys0 = thread_cpu(server.pid, "parley-archive", system_only=True)
                    ckpt0 = thread_cpu(server.pid, "parley-ckpt")
                    wrote0 = thread_written(server.pid, "parley-archive")
                    loops0 = thread_cpu(server.pid, "parleyd")
                    perf = []
                    if a.perf:
                        pids = {"parleyd": [server.pid]}
                        if backend == "pg":
                            pids["pg"] = [pg.proc.pid] + [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                                                          and _ppid(p) == pg.proc.pid]
                        for name, ps in pids.items():
                            perf.append(subprocess.Popen(["perf", "record", "-q", *a.perf_args.split(), "-o",
                                                          d / f"perf-{name}.data", "-p", ",".join(map(str, ps))],
                                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                        time.sleep(0.5)
                    idle0 = machine_idle()
                    t0 = time.monotonic()
                    subprocess.run([bench, "--port", str(port), "--tls", "starttls", "--no-progress", "--scram-cache",
                                    base / "scram", "--server-pid", str(server.pid), "--json", d / "result.json",
                                    "chat", "--pairs", str(a.pairs), "--window", str(a.window), "--messages",
                                    str(a.messages)], stdout=open(d / "bench.log", "wb"), stderr=subprocess.STDOUT)
                    wall = time.monotonic() - t0
                    idle1 = machine_idle()
                    for p in perf:
                        p.send_signal(signal.SIGINT)
                        p.wait()
                    pg_s = pg_cpu(pg.proc.pid) - pg0 if backend == "pg" else 0.0
                    # The SQLite archive's thread (named by builds since session 12; 0 before).
                    arch_s = thread_cpu(server.pid, "parley-archive") - arch0
                    arch_sys = thread_cpu(server.pid, "parley-archive", system_only=True) - arch_sys0
                    # The SQLite archive's checkpoints (a thread of their own since session 16), and
                    # the threads named parleyd: the loops (and the main thread).
                    ckpt_s = thread_cpu(server.pid, "parley-ckpt") - ckpt0
                    loops_s = thread_cpu(server.pid, "parleyd") - loops0
                    wrote = thread_written(server.pid, "parley-archive") - wrote0
                finally:
                    server.send_signal(signal.SIGTERM)
                    server.wait(timeout=120)
                commits = None
                if backend == "pg":
                    # Transactions of the whole run (logins included): how well the appends were batched.
                    time.sleep(0.5)  # the backends' statistics reach the shared ones as they exit
                    commits = int(psql(pg_url, "SELECT xact_commit FROM pg_stat_database "
                                               "WHERE datname = current_database()").strip())
                # What was archived (mam on): every message twice, the sender's archive and the
                # recipient's. Session 16 found runs that had refused a third of the appends
                # past the archive's queue bound, and so looked cheaper than archiving is.
                archived = None
                if mam == "on":
                    try:
                        if backend == "pg":
                            archived = int(psql(pg_url, "SELECT count(*) FROM archive").strip())
                        else:
                            import sqlite3
                            with sqlite3.connect(d / "data" / "parley-archive.db") as db:
                                archived = db.execute("SELECT count(*) FROM archive").fetchone()[0]
                    except Exception as e:  # noqa: BLE001 - a figure to report, not a failure
                        print(f"archived entries not counted: {e}", file=sys.stderr)
                r = json.loads((d / "result.json").read_text().splitlines()[-1])
                row = {"variant": label(build, v), "run": run, "msgs_per_s": r.get("msgs_per_s"),
                       "server_cpu_s_per_100k": r.get("server_cpu_s_per_100k"),
                       "pg_cpu_s_per_100k": round(pg_s * 100000 / a.messages, 3),
                       "archive_thread_cpu_s_per_100k": round(arch_s * 100000 / a.messages, 3),
                       "archive_thread_sys_s_per_100k": round(arch_sys * 100000 / a.messages, 3),
                       "ckpt_thread_cpu_s_per_100k": round(ckpt_s * 100000 / a.messages, 3),
                       "loops_cpu_s_per_100k": round(loops_s * 100000 / a.messages, 3),
                       "archive_thread_bytes_written_per_message": round(wrote / a.messages), "wall_s": round(wall, 1),
                       "machine_idle_share": round((idle1[0] - idle0[0]) / max(1, idle1[1] - idle0[1]), 3),
                       "messages_lost": r.get("messages_lost"), "pg_commits": commits,
                       "archived_share": None if archived is None else round(archived / (2 * a.messages), 4)}
                results[label(build, v)].append(row)
                print(json.dumps(row), flush=True)
    finally:
        if pg:
            pg.stop()
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(f"medians of {a.runs} ({a.pairs} pairs, window {a.window}, {a.messages} messages, PostgreSQL fsync "
          f"{a.pg_fsync}):")
    for v, rows in results.items():
        med = lambda k: statistics.median(float(x[k]) for x in rows)
        print(f"  {v:22} msgs_per_s {med('msgs_per_s'):8,.0f}  parleyd_cpu_s_per_100k "
              f"{med('server_cpu_s_per_100k'):6.2f}  pg_cpu_s_per_100k {med('pg_cpu_s_per_100k'):6.2f}  "
              f"archive_thread_cpu_s_per_100k {med('archive_thread_cpu_s_per_100k'):5.2f}  "
              f"loops {med('loops_cpu_s_per_100k'):5.2f}  ckpt {med('ckpt_thread_cpu_s_per_100k'):5.2f}  "
              f"archive written/msg {med('archive_thread_bytes_written_per_message'):6.0f} B  "
              f"idle {med('machine_idle_share'):.0%}  "
              f"lost {sum(int(x['messages_lost'] or 0) for x in rows)}"
              + (f"  archived {min(x['archived_share'] for x in rows):.3f} (least)"
                 if all(x['archived_share'] is not None for x in rows) else ""))


if __name__ == "__main__":
    main()
