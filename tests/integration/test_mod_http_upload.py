"""mod_http_upload: XEP-0363 HTTP File Upload through the HTTP listener's
module routes. slixmpp's xep_0363 plugin uploads and a plain HTTP client
downloads the same bytes; raw clients check the slot, PUT 201, GET, Range,
HEAD, ETag, the headers that keep a file from running as a page, CORS, the
size and signature checks, the quota, expiry, account removal and that no
path leads out of the store."""

import asyncio
import hashlib
import http.client
import os
import re
import socket
import time
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import PASSWORD
from parley_harness import ParleyServer, free_port
from rawxmpp import NS_CLIENT, q
from slix_driver import SlixRunner

NS_UPLOAD = "urn:xmpp:http:upload:0"
NS_INFO = "http://jabber.org/protocol/disco#info"
NS_ITEMS = "http://jabber.org/protocol/disco#items"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_DATA = "jabber:x:data"
MAX = 2 * 1024 * 1024
QUOTA = 3 * 1024 * 1024
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace")
OTHER = "example.test"


def start_server(tmp_path_factory, binaries, name, options, hosts=("localhost",)):
    http_port = free_port()
    opts = {"external_url": f"http://127.0.0.1:{http_port}"}
    opts.update(options)
    server = ParleyServer(tmp_path_factory.mktemp(name), binaries["parleyd"], binaries["parleyctl"], name=name,
                          hosts=hosts,
                          extra_listeners=[{"port": http_port, "ip": "127.0.0.1", "module": "http"}],
                          # The listener's own body limit is small: the upload route declares its own.
                          limits={"http_max_body_bytes": 1024},
                          modules={"mod_disco": {}, "mod_ping": {}, "mod_http_upload": opts})
    server.http_port = http_port
    server.start()
    return server


def stop_server(server):
    code, killed = server.stop()
    assert not killed and code == 0, f"parleyd exited with {code} (killed: {killed})"
    assert not server.sanitizer_reports()


@pytest.fixture(scope="module")
def up(tmp_path_factory, binaries):
    """One server for the module: max_file_size 2 MiB, quota 3 MiB a day; a
    second host, whose users are another domain's for upload.localhost."""
    server = start_server(tmp_path_factory, binaries, "upload",
                          {"max_file_size": MAX, "quota_bytes": QUOTA}, hosts=("localhost", OTHER))
    for user in USERS:
        server.register(user, PASSWORD)
    server.register("mallory", PASSWORD, host=OTHER)
    yield server
    stop_server(server)


@pytest.fixture
def client(up, raw_factory):
    def make(user):
        c = raw_factory(up.c2s_port)
        c.login(user, PASSWORD, resource="up")
        return c
    return make


def request_slot(c, name, size, content_type=None, to="upload.localhost"):
    ct = f" content-type='{content_type}'" if content_type else ""
    return c.iq("get", f"<request xmlns='{NS_UPLOAD}' filename='{name}' size='{size}'{ct}/>", to=to)


def slot_urls(reply):
    assert reply.get("type") == "result", ET.tostring(reply)
    slot = reply.find(q(NS_UPLOAD, "slot"))
    return slot.find(q(NS_UPLOAD, "put")).get("url"), slot.find(q(NS_UPLOAD, "get")).get("url")


def fetch(method, url, body=None, headers=None, port=None):
    """One request on a fresh connection: (status, headers dict lower-cased, body)."""
    u = urllib.parse.urlsplit(url) if url.startswith("http") else None
    target = (u.path + ("?" + u.query if u.query else "")) if u else url
    conn = http.client.HTTPConnection("127.0.0.1", u.port if u else port, timeout=10)
    conn.request(method, target, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def raw_http(port, request):
    """Raw bytes in, everything until the server closes (or 2 s of quiet) out."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(request)
    sock.settimeout(2)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    sock.close()
    return data


def upload(c, name, data, content_type=None):
    put, get = slot_urls(request_slot(c, name, len(data), content_type))
    headers = {"Content-Type": content_type} if content_type else {}
    status, _, _ = fetch("PUT", put, data, headers)
    assert status == 201
    return put, get


def error_of(reply):
    assert reply.get("type") == "error", ET.tostring(reply)
    return reply.find(q(NS_CLIENT, "error"))


# -- discovery -------------------------------------------------------------------

def test_the_service_is_listed_and_announces_its_limit(client):
    c = client("alice")
    items = c.iq("get", f"<query xmlns='{NS_ITEMS}'/>", to="localhost")
    jids = [i.get("jid") for i in items.iter(q(NS_ITEMS, "item"))]
    assert "upload.localhost" in jids
    info = c.iq("get", f"<query xmlns='{NS_INFO}'/>", to="upload.localhost")
    query = info.find(q(NS_INFO, "query"))
    ident = query.find(q(NS_INFO, "identity"))
    assert (ident.get("category"), ident.get("type")) == ("store", "file")
    assert NS_UPLOAD in [f.get("var") for f in query.iter(q(NS_INFO, "feature"))]
    fields = {f.get("var"): f.findtext(q(NS_DATA, "value")) for f in query.iter(q(NS_DATA, "field"))}
    assert fields["FORM_TYPE"] == NS_UPLOAD and fields["max-file-size"] == str(MAX)


# -- slixmpp uploads, a plain HTTP client downloads -------------------------------

def test_slixmpp_uploads_and_a_plain_client_downloads_the_same_bytes(up, tmp_path):
    data = os.urandom(300 * 1024)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    runner = SlixRunner()
    try:
        bob = runner.client("bob@localhost/slix", PASSWORD)
        bob.xmpp.register_plugin("xep_0363")
        assert runner.run(bob.connect(up.c2s_port)) is True
        plugin = bob.xmpp["xep_0363"]

        async def discover():
            # slixmpp 1.8's find_upload_service hands coroutines to asyncio.wait,
            # which Python 3.11 refuses: the same discovery, done here (items of
            # the host, then the info of the one with the feature and the form).
            items = await bob.xmpp["xep_0030"].get_items(jid="localhost", timeout=10)
            for jid, _, _ in items["disco_items"]["items"]:
                info = await bob.xmpp["xep_0030"].get_info(jid=jid, timeout=10)
                if NS_UPLOAD in info["disco_info"]["features"]:
                    plugin.upload_service = info["from"]
                    for form in info["disco_info"].iterables:
                        if form["values"].get("FORM_TYPE") == [NS_UPLOAD]:
                            plugin.max_file_size = int(form["values"]["max-file-size"])
            return plugin.upload_service

        assert str(runner.run(discover())) == "upload.localhost"
        assert plugin.max_file_size == MAX
        url = runner.run(plugin.upload_file(path, timeout=20))
    finally:
        runner.close()
    assert url.startswith(f"http://127.0.0.1:{up.http_port}/upload/localhost/") and url.endswith("/photo.jpg")
    status, headers, body = fetch("GET", url)
    assert status == 200 and body == data
    assert headers["content-type"] == "image/jpeg"
    assert headers["content-disposition"].startswith("inline")


# -- the raw exchange -------------------------------------------------------------

def test_slot_put_201_then_get_head_range_etag_and_safe_headers(client, up):
    c = client("carol")
    data = os.urandom(700 * 1024 + 13)  # several blocks of the store's reads
    put, get = slot_urls(request_slot(c, "a b.bin", len(data)))
    assert put.startswith(get + "?") and get.endswith("/a%20b.bin")
    # Nothing is served before the PUT.
    assert fetch("GET", get)[0] == 404
    status, headers, _ = fetch("PUT", put, data)
    assert status == 201 and headers["access-control-allow-origin"] == "*"
    status, headers, body = fetch("GET", get)
    assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    assert headers["content-length"] == str(len(data))
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"].startswith("attachment")
    assert headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["accept-ranges"] == "bytes"
    assert headers["access-control-allow-origin"] == "*"  # web clients fetch from their own origin
    etag = headers["etag"]
    # HEAD: the same headers, no body.
    status, headers, body = fetch("HEAD", get)
    assert status == 200 and body == b"" and headers["content-length"] == str(len(data)) and headers["etag"] == etag
    # Range: 206 with Content-Range; a suffix; past the end 416.
    status, headers, body = fetch("GET", get, headers={"Range": "bytes=100-199"})
    assert status == 206 and body == data[100:200]
    assert headers["content-range"] == f"bytes 100-199/{len(data)}"
    status, _, body = fetch("GET", get, headers={"Range": "bytes=-10"})
    assert status == 206 and body == data[-10:]
    status, headers, _ = fetch("GET", get, headers={"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["content-range"] == f"bytes */{len(data)}"
    # A cached copy is still good.
    assert fetch("GET", get, headers={"If-None-Match": etag})[0] == 304
    # A slot is used once.
    assert fetch("PUT", put, data)[0] == 409
    # The right token with another name is not the file.
    assert fetch("GET", get.rsplit("/", 1)[0] + "/other.bin")[0] == 404


def test_html_goes_as_a_download_never_inline(client):
    c = client("carol")
    page = b"<html><script>alert(1)</script></html>"
    _, get = upload(c, "x.html", page, "text/html")
    status, headers, body = fetch("GET", get)
    assert status == 200 and body == page
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"].startswith("attachment")


def test_size_checks_file_too_large_and_content_length_mismatch(client, up):
    c = client("dave")
    err = error_of(request_slot(c, "big.bin", MAX + 1))
    assert err.get("type") == "modify" and err.find(q(NS_STANZAS, "not-acceptable")) is not None
    assert err.find(f"{q(NS_UPLOAD, 'file-too-large')}/{q(NS_UPLOAD, 'max-file-size')}").text == str(MAX)
    assert error_of(request_slot(c, "zero.bin", 0)).find(q(NS_STANZAS, "not-acceptable")) is not None
    put, get = slot_urls(request_slot(c, "ten.bin", 10))
    assert fetch("PUT", put, b"x" * 11)[0] == 400
    assert fetch("PUT", put, b"x" * 9)[0] == 400
    # A Content-Type other than the slot's.
    put2, _ = slot_urls(request_slot(c, "t.png", 3, "image/png"))
    assert fetch("PUT", put2, b"abc", {"Content-Type": "text/html"})[0] == 415
    # The route's body limit: past max_file_size by Content-Length, 413 before any byte.
    resp = raw_http(up.http_port, put.replace(f"http://127.0.0.1:{up.http_port}", "PUT ", 1).encode()
                    + f" HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX + 1}\r\n\r\n".encode())
    assert resp.startswith(b"HTTP/1.1 413 ")
    # A browser's script may read it (another origin: the web client's).
    assert b"\r\naccess-control-allow-origin: *\r\n" in resp.split(b"\r\n\r\n", 1)[0].lower() + b"\r\n", resp
    # Nothing was stored by the refused PUTs: the slot still takes its file.
    assert fetch("PUT", put, b"y" * 10)[0] == 201
    assert fetch("GET", get)[2] == b"y" * 10


def test_bad_and_tampered_signatures_are_refused(client):
    c = client("dave")
    put, get = slot_urls(request_slot(c, "s.bin", 4))
    base, query = put.split("?", 1)
    token = base.split("/")[-2]
    forged = base.replace(token, ("A" if token[0] != "A" else "B") + token[1:]) + "?" + query
    assert fetch("PUT", forged, b"abcd")[0] == 403
    bigger = base + "?" + re.sub(r"s=\d+", "s=5", query)
    assert fetch("PUT", bigger, b"abcde")[0] == 403
    other_owner = base + "?" + re.sub(r"o=[^&]*", "o=erin%40localhost", query)
    assert fetch("PUT", other_owner, b"abcd")[0] == 403
    assert fetch("PUT", base, b"abcd")[0] == 403  # no query at all
    assert fetch("PUT", put, b"abcd")[0] == 201


def test_quota_answers_resource_constraint_with_a_retry_time(client):
    c = client("erin")
    half = os.urandom(QUOTA // 2)
    upload(c, "one.bin", half)
    upload(c, "two.bin", half)
    err = error_of(request_slot(c, "three.bin", 1))
    assert err.get("type") == "wait" and err.find(q(NS_STANZAS, "resource-constraint")) is not None
    stamp = err.find(q(NS_UPLOAD, "retry")).get("stamp")
    retry = time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert time.time() + 86400 - 120 < retry <= time.time() + 86400 + 5
    # Another user's quota is their own.
    other = client("frank")
    slot_urls(request_slot(other, "mine.bin", 1))


def test_a_request_without_a_filename_is_a_bad_request(client, up):
    c = client("alice")
    # A request relayed with another sender is impossible from a client; a
    # bad request (no filename) is answered as such.
    err = error_of(c.iq("get", f"<request xmlns='{NS_UPLOAD}' size='3'/>", to="upload.localhost"))
    assert err.find(q(NS_STANZAS, "bad-request")) is not None


def condition_of(reply):
    """(error type, condition) of an error reply, checking that it echoes the request (XEP-0363 section 4)."""
    assert reply.get("from") == "upload.localhost", ET.tostring(reply)
    assert reply.find(q(NS_UPLOAD, "request")) is not None, ET.tostring(reply)
    err = error_of(reply)
    conditions = [e.tag.split("}")[1] for e in err if e.tag.startswith("{" + NS_STANZAS) and not e.tag.endswith("}text")]
    return err.get("type"), conditions[0]


def test_malformed_requests_are_bad_requests_and_an_empty_file_not_acceptable(client):
    c = client("grace")

    def ask(attrs):
        return condition_of(c.iq("get", f"<request xmlns='{NS_UPLOAD}' {attrs}/>", to="upload.localhost"))

    # The element's syntax: both attributes, the size a number of bytes.
    assert ask("size='3'") == ("modify", "bad-request")
    assert ask("filename='a.txt'") == ("modify", "bad-request")
    assert ask("filename='a.txt' size=''") == ("modify", "bad-request")
    assert ask("filename='a.txt' size='-1'") == ("modify", "bad-request")
    assert ask("filename='a.txt' size='1e3'") == ("modify", "bad-request")
    assert ask("filename='a.txt' size='3' content-type='not a type'") == ("modify", "bad-request")
    # Well-formed but refused: an empty file, as a file too large is.
    assert ask("filename='a.txt' size='0'") == ("modify", "not-acceptable")
    # The slot itself comes from the service, with no header but XEP-0363's
    # Authorization, Cookie and Expires (section 4: the only ones allowed).
    reply = request_slot(c, "ok.txt", 3, "text/plain")
    assert reply.get("from") == "upload.localhost"
    put = reply.find(f"{q(NS_UPLOAD, 'slot')}/{q(NS_UPLOAD, 'put')}")
    assert {h.get("name") for h in put.iter(q(NS_UPLOAD, "header"))} <= {"Authorization", "Cookie", "Expires"}


def test_another_domains_user_is_forbidden(up, raw_factory):
    # mallory@example.test is a user of this server, not of upload.localhost's host.
    mallory = raw_factory(up.c2s_port, domain=OTHER)
    mallory.login("mallory", PASSWORD, resource="up")
    reply = request_slot(mallory, "x.bin", 3)
    assert condition_of(reply) == ("auth", "forbidden")
    assert "Only accounts of localhost" in error_of(reply).findtext(q(NS_STANZAS, "text"))
    # Her own host's service gives her a slot.
    slot_urls(request_slot(mallory, "x.bin", 3, to=f"upload.{OTHER}"))


def test_no_path_leads_out_of_the_store(client, up):
    c = client("alice")
    _, get = upload(c, "in.txt", b"inside", "text/plain")
    token = get.split("/")[-2]
    secret = (up.data_dir / "upload" / "localhost.key")
    assert secret.exists()
    p = up.http_port
    for target in ["/upload/localhost/../localhost.key",
                   "/upload/localhost/%2e%2e/localhost.key",
                   "/upload/localhost/..%2flocalhost.key",
                   f"/upload/localhost/{token}/../../localhost.key",
                   f"/upload/localhost/{token}/..%2F..%2Flocalhost.key",
                   f"/upload/localhost/{token}/%2e%2e%2f%2e%2e%2flocalhost.key",
                   f"/upload/localhost/{token}/meta",
                   f"/upload/localhost/{token}/data",
                   "/upload/localhost/../../../../../../etc/passwd",
                   "/upload/localhost//etc/passwd",
                   "/upload/localhost/" + "." * 32 + "/data"]:
        resp = raw_http(p, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert resp.startswith(b"HTTP/1.1 404 "), (target, resp[:200])
        assert b"inside" not in resp and b"root:" not in resp
    assert fetch("GET", get)[2] == b"inside"


def test_cors_preflight_and_unknown_methods_and_paths(up):
    status, headers, _ = fetch("OPTIONS", "/upload/localhost/x/y", port=up.http_port,
                              headers={"Origin": "https://web.example", "Access-Control-Request-Method": "PUT"})
    assert status == 204
    assert headers["access-control-allow-origin"] == "*"
    assert "PUT" in headers["access-control-allow-methods"]
    assert "Content-Type" in headers["access-control-allow-headers"]
    status, headers, _ = fetch("DELETE", "/upload/localhost/x/y", port=up.http_port)
    assert status == 405 and "PUT" in headers["allow"]
    assert headers["access-control-allow-origin"] == "*"
    assert fetch("GET", "/uploadx", port=up.http_port)[0] == 404
    assert fetch("GET", "/upload/otherhost/x", port=up.http_port)[0] == 404


def test_files_go_with_their_owners_account(client, up):
    c = client("bob")
    _, get = upload(c, "mine.txt", b"bob's", "text/plain")
    assert fetch("GET", get)[0] == 200
    c.close()
    assert up.ctl("unregister", "bob", "localhost").returncode == 0
    deadline = time.time() + 10
    while fetch("GET", get)[0] != 404:
        assert time.time() < deadline, "the file outlived its owner's account"
        time.sleep(0.05)
    up.register("bob", PASSWORD)


def backdate(server, filename, seconds):
    """Makes the stored file `filename` `seconds` older: its meta's creation
    time (the store's fifth line, upload_store.cpp) moved back, written whole
    then renamed over the old one so the sweep never reads half of it. The
    test decides when a file expires instead of racing a 1 s expiry (a slot
    request on a loaded CI machine came after the file it should have been
    refused for had expired)."""
    metas = [m for m in (server.data_dir / "upload").glob("*/*/meta")
             if m.read_text().split("\n")[1] == filename]
    assert len(metas) == 1, metas
    lines = metas[0].read_text().split("\n")
    lines[4] = str(int(lines[4]) - seconds)
    tmp = metas[0].with_name("meta.backdate")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, metas[0])


def test_files_expire_and_put_urls_expire_and_the_global_quota_frees_with_them(tmp_path_factory, binaries,
                                                                               raw_factory):
    # Files are kept an hour: none expires on its own while the test runs;
    # backdate() makes one expire.
    server = start_server(tmp_path_factory, binaries, "expiry",
                          {"expire_after": 3600, "expiry_sweep_interval": 1, "put_timeout": 1,
                           "global_quota_bytes": 16})
    try:
        for user in ("alice", "bob"):
            server.register(user, PASSWORD)
        c = raw_factory(server.c2s_port)
        c.login("alice", PASSWORD, resource="x")
        bob = raw_factory(server.c2s_port)
        bob.login("bob", PASSWORD, resource="x")
        _, get = upload(c, "short.txt", b"short-lived", "text/plain")
        assert fetch("GET", get)[2] == b"short-lived"
        # The service's whole store holds at most 16 bytes: 11 are taken, by
        # alice; bob's 8 do not fit (no retry time: it depends on expiry).
        err = error_of(request_slot(bob, "eight.bin", 8))
        assert err.get("type") == "wait" and err.find(q(NS_STANZAS, "resource-constraint")) is not None
        assert err.find(q(NS_UPLOAD, "retry")) is None
        slot_urls(request_slot(bob, "five.bin", 5))  # 11 + 5 fit
        backdate(server, "short.txt", 3600)
        deadline = time.time() + 30  # a safety net: the next sweep, within a second, removes it
        while fetch("GET", get)[0] != 404:
            assert time.time() < deadline, "the file did not expire"
            time.sleep(0.1)
        # Expired, its bytes are free again.
        slot_urls(request_slot(bob, "eight.bin", 8))
        bob.close()
        put, _ = slot_urls(request_slot(c, "late.txt", 4))
        expires = int(re.search(r"e=(\d+)", put).group(1))
        # The URL's own expiry, read from it: refused once the server's clock
        # reads a later second. That clock is time(2), the kernel's coarse
        # clock, up to a tick behind Python's time.time(): a PUT sent right
        # at the second's turn could still find it valid (1 run in ~25).
        while time.time() <= expires + 1.1:
            time.sleep(0.1)
        status, _, body = fetch("PUT", put, b"late")
        assert status == 403 and b"expired" in body
        c.close()
    finally:
        stop_server(server)


def test_a_put_with_expect_100_continue_is_told_to_go_on(client, up):
    # curl waits (a second) for 100 Continue before sending a large body.
    c = client("frank")
    data = os.urandom(4096)
    put, get = slot_urls(request_slot(c, "expect.bin", len(data)))
    target = put.split(str(up.http_port), 1)[1]
    with socket.create_connection(("127.0.0.1", up.http_port), timeout=5) as s:
        s.sendall(f"PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
                  "Expect: 100-continue\r\n\r\n".encode())
        assert s.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(data)
        assert s.recv(4096).startswith(b"HTTP/1.1 201 ")
    assert fetch("GET", get)[2] == data
