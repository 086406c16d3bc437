#!/usr/bin/python3
"""Idle memory per XMPP-over-BOSH session (XEP-0206, issue 13), indicative only.

Starts parleyd (the build's, through the integration harness) with an http
listener, logs in N BOSH sessions (PLAIN over http, allowed on this bench
listener; restart, bound, initial presence), leaves each with one request
held on its own HTTP connection (an idle BOSH client's steady state), and
reports (RSS after - RSS before) / N: the session, its stream and its held
HTTP connection together. One process holds every client socket. Usage:
  PARLEYD=build/core/parleyd PARLEYCTL=build/tools/parleyctl/parleyctl \\
  /usr/bin/python3 bench/bosh_idle_memory.py [N]
"""

import base64
import http.client
import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from parley_harness import ParleyServer, free_port  # noqa: E402

PASSWORD = "bench-pass"
NS = "http://jabber.org/protocol/httpbind"


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def settle(pid):
    time.sleep(2)
    return rss_kib(pid)


class Session:
    def __init__(self, port):
        self.port = port
        self.rid = 1000
        self.sid = None
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, attrs, payload=""):
        self.rid += 1
        sid = f" sid='{self.sid}'" if self.sid else ""
        body = f"<body xmlns='{NS}' xmlns:xmpp='urn:xmpp:xbosh' rid='{self.rid}'{sid} {attrs}"
        body += f">{payload}</body>" if payload else "/>"
        self.conn.request("POST", "/http-bind", body=body.encode())
        return self.conn

    def exchange(self, attrs="", payload="", want=None):
        text = self.post(attrs, payload).getresponse().read().decode()
        while want and want not in text:  # what it waits for comes with a later answer
            text = self.post("").getresponse().read().decode()
        return text

    def login(self, user, resource):
        text = self.exchange("to='localhost' wait='60' hold='1' ver='1.11' xmpp:version='1.0'", want="mechanism")
        self.sid = re.search(r"sid='([^']+)'", text).group(1)
        token = base64.b64encode(f"\0{user}\0{PASSWORD}".encode()).decode()
        self.exchange(payload=f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>",
                      want="success")
        self.exchange("xmpp:restart='true' to='localhost'", want="bind")
        self.exchange(payload=f"<iq type='set' id='b' xmlns='jabber:client'><bind "
                              f"xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>",
                      want="<jid>")
        self.post("", "<presence xmlns='jabber:client'/>")  # held from now on: the idle state


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n * 2 + 256)), hard))
    with tempfile.TemporaryDirectory() as tmp:
        http_port = free_port()
        server = ParleyServer(tmp, os.environ["PARLEYD"], os.environ["PARLEYCTL"], starttls_required=False,
                              limits={"max_sessions_per_user": 100000, "max_connections_per_ip": 100000,
                                      "http_max_connections_per_ip": 100000, "bosh_max_sessions_per_ip": 0,
                                      "max_auth_failures_per_ip": 0, "bosh_max_wait": 60, "bosh_inactivity": 600,
                                      "http_max_requests_per_connection": 1000},
                              extra_listeners=[{"port": http_port, "ip": "127.0.0.1", "module": "http",
                                                "allow_plain_without_tls": True}],
                              modules={"mod_disco": {}, "mod_ping": {}}, loglevel="warn")
        server.start()
        try:
            server.register("u", PASSWORD)
            warm = Session(http_port)
            warm.login("u", "warm")
            before = settle(server.proc.pid)
            sessions = []
            for i in range(n):
                s = Session(http_port)
                s.login("u", f"r{i}")
                sessions.append(s)
            after = settle(server.proc.pid)
            print(f"bosh: N={n} RSS {before} -> {after} KiB: {(after - before) / n:.2f} KiB per idle session "
                  "(with its held HTTP connection)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
