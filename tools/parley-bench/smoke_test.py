#!/usr/bin/python3
"""Smoke test of parley-bench for CI: no timing is asserted, only correctness.

Starts parleyd on free loopback ports with a temporary config, registers 20
accounts with parleyctl, runs `parley-bench connect` (20 sessions) and
`parley-bench chat` (10 pairs, 1,000 messages), and checks that every login
succeeded and no message was lost. parleyd is stopped by its own PID.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"parleyd exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"parleyd did not listen on {port} within {timeout} s")


def run_bench(bench, args, port, pid):
    cmd = [bench, "--port", str(port), "--threads", "2", "--server-pid", str(pid),
           "--no-progress", "--label", "parley"] + args
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise AssertionError(f"no JSON line from parley-bench (exit {proc.returncode})")
    return proc.returncode, json.loads(lines[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--parleyd", required=True)
    ap.add_argument("--parleyctl", required=True)
    opts = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="parley-bench-smoke-") as tmp:
        tmp = Path(tmp)
        c2s, tls = free_port(), free_port()
        config = tmp / "parley.yml"
        config.write_text(f"""loglevel: warn
hosts:
  - localhost
workers: 2
data_dir: {tmp}/data
certfiles: []
listen:
  - port: {c2s}
    ip: 127.0.0.1
    module: c2s
    starttls_required: true
  - port: {tls}
    ip: 127.0.0.1
    module: c2s
    tls: true
storage:
  type: sqlite
  path: {tmp}/data/parley.db
control_socket: {tmp}/data/parley.sock
limits:
  max_connections_per_ip: 10000
modules: {{}}
""")
        for i in range(20):
            subprocess.run([opts.parleyctl, "--config", str(config), "register", f"bench{i}", "localhost",
                            "benchpass"], check=True, capture_output=True, timeout=60)

        log = open(tmp / "parleyd.log", "w")
        server = subprocess.Popen([opts.parleyd, "--config", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                  cwd=tmp)
        ok = False
        try:
            wait_for_port(c2s, server)
            rc, report = run_bench(opts.bench, ["connect", "--sessions", "20", "--hold", "0.5"], c2s, server.pid)
            assert report["logins_ok"] == 20, report
            assert report["logins_failed"] == 0, report
            assert report["dropped"] == 0, report
            assert rc == 0, f"connect exited with {rc}"

            rc, report = run_bench(opts.bench, ["--tls", "direct", "--mechanism", "SCRAM-SHA-1", "connect",
                                                "--sessions", "4", "--hold", "0"], tls, server.pid)
            assert report["logins_ok"] == 4 and rc == 0, report

            rc, report = run_bench(opts.bench, ["chat", "--pairs", "10", "--messages", "1000", "--window", "5"],
                                   c2s, server.pid)
            assert report["logins_ok"] == 20, report
            assert report["messages_delivered"] == 1000, report
            assert report["messages_lost"] == 0, report
            assert rc == 0, f"chat exited with {rc}"
            ok = True
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
            if not ok or server.returncode not in (0, -signal.SIGTERM):
                print("--- parleyd.log ---")
                print((tmp / "parleyd.log").read_text()[-20000:])
        if server.returncode not in (0, -signal.SIGTERM):
            raise AssertionError(f"parleyd exited with {server.returncode}")
    print("parley-bench smoke test: ok")


if __name__ == "__main__":
    main()
