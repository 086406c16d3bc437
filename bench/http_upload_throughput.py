#!/usr/bin/python3
"""Upload and download throughput of one file through mod_http_upload
(XEP-0363) on a plain HTTP listener on 127.0.0.1 (issue 13), indicative only.

Starts parleyd (the build's, through the integration harness), asks a slot
over XMPP for each run, PUTs SIZE bytes (one request, Content-Length), GETs
them back and checks them; reports the median of RUNS of each, in MiB/s.
Usage:
  PARLEYD=build/core/parleyd PARLEYCTL=build/tools/parleyctl/parleyctl \\
  /usr/bin/python3 bench/http_upload_throughput.py [SIZE_MIB] [RUNS]
"""

import http.client
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from parley_harness import ParleyServer, free_port  # noqa: E402
from rawxmpp import RawClient, q  # noqa: E402

PASSWORD = "bench-pass"
NS_UPLOAD = "urn:xmpp:http:upload:0"


def timed(method, url, body=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    started = time.perf_counter()
    headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
    conn.request(method, u.path + ("?" + u.query if u.query else ""), body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    elapsed = time.perf_counter() - started
    conn.close()
    return r.status, data, elapsed


def main():
    size = int(float(sys.argv[1] if len(sys.argv) > 1 else 10) * 1024 * 1024)
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    payload = os.urandom(size)
    with tempfile.TemporaryDirectory() as tmp:
        http_port = free_port()
        server = ParleyServer(tmp, os.environ["PARLEYD"], os.environ["PARLEYCTL"], starttls_required=False,
                              extra_listeners=[{"port": http_port, "ip": "127.0.0.1", "module": "http"}],
                              modules={"mod_disco": {}, "mod_ping": {},
                                       "mod_http_upload": {"external_url": f"http://127.0.0.1:{http_port}",
                                                           "max_file_size": size * 2,
                                                           "quota_bytes": size * (runs + 2)}},
                              loglevel="warn")
        server.start()
        try:
            server.register("u", PASSWORD)
            c = RawClient(server.c2s_port)
            c.start()
            assert c.auth_scram("u", PASSWORD).tag.endswith("success")
            c.start()
            c.bind("bench")
            ups, downs = [], []
            for i in range(runs):
                reply = c.iq("get", f"<request xmlns='{NS_UPLOAD}' filename='f{i}.bin' size='{size}' "
                                    "content-type='application/octet-stream'/>", to="upload.localhost")
                slot = reply.find(q(NS_UPLOAD, "slot"))
                put = slot.find(q(NS_UPLOAD, "put")).get("url")
                get = slot.find(q(NS_UPLOAD, "get")).get("url")
                status, _, up = timed("PUT", put, payload)
                assert status == 201, status
                status, data, down = timed("GET", get)
                assert status == 200 and data == payload, status
                ups.append(size / up / 1048576)
                downs.append(size / down / 1048576)
            c.abort()
            mib = size / 1048576
            print(f"upload   {mib:g} MiB: median {statistics.median(ups):.1f} MiB/s over {runs} runs "
                  f"({', '.join(f'{v:.1f}' for v in ups)})")
            print(f"download {mib:g} MiB: median {statistics.median(downs):.1f} MiB/s over {runs} runs "
                  f"({', '.join(f'{v:.1f}' for v in downs)})")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
