"""The HTTP side of conf/parley.yml as shipped (issue 13: "enables it out of
the box, as ejabberd's default config does"): HTTP on 127.0.0.1:5280 and
HTTPS on 127.0.0.1:5443 (made free ports here, nothing else changed),
serving WebSocket, BOSH, host-meta and the upload route, and /metrics only
to 127.0.0.1. One server start."""

import http.client
import os
import re
import ssl
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from parley_harness import ParleyServer, free_port
from rawxmpp import q
from wsxmpp import WsClient

NS_XRD = "http://docs.oasis-open.org/ns/xri/xrd-1.0"


class DefaultConfigServer(ParleyServer):
    """parleyd with conf/parley.yml, its listeners' ports replaced by free
    ones; run from a directory of its own (its paths are relative)."""

    def __init__(self, base_dir, parleyd, parleyctl, text):
        super().__init__(base_dir, parleyd, parleyctl, name="default")
        self.text = re.sub(r"(?m)^(\s*-\s*port:\s*)\d+", lambda m: m.group(1) + str(free_port()), text)
        self.config = yaml.safe_load(self.text)

    def write_config(self):
        self.config_path.write_text(self.text)


def https(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)


def get(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r, data


def test_the_shipped_configuration_serves_http_and_https_out_of_the_box(tmp_path, binaries):
    text = (Path(os.environ["PARLEY_SOURCE_DIR"]) / "conf" / "parley.yml").read_text()
    shipped = yaml.safe_load(text)
    listeners = {(entry["ip"], entry["port"], bool(entry.get("tls")))
                 for entry in shipped["listen"] if entry.get("module") == "http"}
    assert listeners == {("127.0.0.1", 5280, False), ("127.0.0.1", 5443, True)}
    assert shipped["metrics_allow"] == ["127.0.0.1", "::1"]
    assert "mod_http_upload" in shipped["modules"]

    server = DefaultConfigServer(tmp_path, binaries["parleyd"], binaries["parleyctl"], text)
    server.start()
    try:
        ports = {bool(e.get("tls")): e["port"] for e in server.config["listen"] if e.get("module") == "http"}
        plain, tls = ports[False], ports[True]
        # host-meta on both, naming the WebSocket and BOSH endpoints of each.
        for conn, port, ws, bosh in ((http.client.HTTPConnection("127.0.0.1", plain, timeout=10), plain, "ws", "http"),
                                     (https(tls), tls, "wss", "https")):
            r, data = get(conn, "GET", "/.well-known/host-meta", headers={"Host": f"localhost:{port}"})
            assert r.status == 200, data
            links = [(link.get("rel"), link.get("href")) for link in ET.fromstring(data).iter(q(NS_XRD, "Link"))]
            assert links == [("urn:xmpp:alt-connections:websocket", f"{ws}://localhost:{port}/xmpp-websocket"),
                             ("urn:xmpp:alt-connections:xbosh", f"{bosh}://localhost:{port}/http-bind")]
        # XMPP over WebSocket on both (the stream features: SASL is offered).
        for port, secure in ((plain, False), (tls, True)):
            ws = WsClient(port, tls=secure)
            features = ws.open()
            assert features.find("{urn:ietf:params:xml:ns:xmpp-sasl}mechanisms") is not None
            ws.close()
        # BOSH on both: a session is created.
        for conn in (http.client.HTTPConnection("127.0.0.1", plain, timeout=10), https(tls)):
            r, data = get(conn, "POST", "/http-bind", body=(
                "<body xmlns='http://jabber.org/protocol/httpbind' rid='1000' to='localhost' wait='5' hold='1' "
                "ver='1.6' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>").encode())
            root = ET.fromstring(data)
            assert r.status == 200 and root.get("sid"), data
        # mod_http_upload's route (its CORS preflight) on both.
        for conn in (http.client.HTTPConnection("127.0.0.1", plain, timeout=10), https(tls)):
            r, _ = get(conn, "OPTIONS", "/upload/localhost/x", headers={"Origin": "http://example.com"})
            assert r.status == 204 and r.getheader("Access-Control-Allow-Origin") == "*"
        # /metrics to 127.0.0.1 only.
        r, data = get(http.client.HTTPConnection("127.0.0.1", plain, timeout=10), "GET", "/metrics")
        assert r.status == 200 and b"parley_sessions" in data
        r, _ = get(http.client.HTTPConnection("127.0.0.1", plain, timeout=10, source_address=("127.0.0.2", 0)),
                   "GET", "/metrics")
        assert r.status == 403
    finally:
        code, killed = server.stop()
    assert not killed and code == 0, f"parleyd exited with {code} (killed: {killed})"
    assert not server.sanitizer_reports()
