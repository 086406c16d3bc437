#!/usr/bin/python3
"""Idle memory per XMPP-over-WebSocket session (issue 13), indicative only.

Starts parleyd (the build's, through the integration harness) with an http
listener, logs in N WebSocket sessions (SCRAM-SHA-1, bound, initial
presence), lets them idle, and reports (RSS after - RSS before) / N, next to
the same for N plaintext TCP sessions on a c2s listener. One process holds
every client socket. Usage:
  PARLEYD=build/core/parleyd PARLEYCTL=build/tools/parleyctl/parleyctl \\
  /usr/bin/python3 bench/ws_idle_memory.py [N]
"""

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from parley_harness import ParleyServer, free_port  # noqa: E402
from rawxmpp import RawClient  # noqa: E402
from wsxmpp import WsClient  # noqa: E402

PASSWORD = "bench-pass"


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def settle(pid):
    time.sleep(2)
    return rss_kib(pid)


def measure(n, kind):
    with tempfile.TemporaryDirectory() as tmp:
        http_port = free_port()
        server = ParleyServer(tmp, os.environ["PARLEYD"], os.environ["PARLEYCTL"], starttls_required=False,
                              limits={"max_sessions_per_user": 100000, "max_connections_per_ip": 100000,
                                      "http_max_connections_per_ip": 0, "max_auth_failures_per_ip": 0},
                              extra_listeners=[{"port": http_port, "ip": "127.0.0.1", "module": "http"}],
                              modules={"mod_disco": {}, "mod_ping": {}}, loglevel="warn")
        server.start()
        try:
            server.register("u", PASSWORD)
            # One session of each kind first: the one-off costs (loops' buffers, code pages) are paid.
            warm = [WsClient(http_port) if kind == "ws" else RawClient(server.c2s_port)]
            before = settle(server.proc.pid)
            clients = []
            for i in range(n):
                if kind == "ws":
                    c = WsClient(http_port)
                    c.login("u", PASSWORD, resource=f"r{i}")
                    c.send("<presence xmlns='jabber:client'/>")
                else:
                    c = RawClient(server.c2s_port)
                    features = c.start()
                    assert c.auth_scram("u", PASSWORD).tag.endswith("success")
                    c.start()
                    c.bind(f"r{i}")
                    c.send("<presence/>")
                clients.append(c)
            clients[-1].sync()
            after = settle(server.proc.pid)
            for c in clients + warm:
                c.close() if kind == "ws" else c.abort()
            return before, after
        finally:
            server.stop()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for kind in ("tcp", "ws"):
        before, after = measure(n, kind)
        print(f"{kind}: N={n} RSS {before} -> {after} KiB: {(after - before) / n:.2f} KiB per idle session")


if __name__ == "__main__":
    main()
