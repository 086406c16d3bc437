"""/metrics on the HTTP listener (Prometheus text format, parsed by
python3-prometheus-client's parser): the core's figures (sessions,
connections by transport, stanzas, TLS, auth failures), every loop's queues
with their 1/10/100 s decayed averages, the global queues, the modules'
typed metrics; answered only to metrics_allow. And `parleyctl top`."""

import http.client
import socket
import ssl

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import PASSWORD
from parley_harness import free_port
from test_modules import module_dir
from wsxmpp import WsClient

WINDOWS = {"1s", "10s", "100s"}


@pytest.fixture
def srv(server_factory, tmp_path):
    http_port = free_port()
    folder = module_dir(tmp_path, "mod_test_service")
    # An external component's route (not connected): its queue is one of the gauges.
    server = server_factory(module_paths=[folder],
                            extra_listeners=[{"port": http_port, "ip": "127.0.0.1", "module": "http"},
                                             {"port": free_port(), "ip": "127.0.0.1", "module": "component",
                                              "hosts": {"gw.localhost": {"password": "secret"}}}],
                            modules={"mod_disco": {}, "mod_ping": {}, "mod_test_service": {}})
    server.http_port = http_port
    server.register("alice", PASSWORD)
    return server


def get_metrics(port, source="127.0.0.1"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    body = r.read().decode()
    conn.close()
    return r.status, r.getheader("Content-Type"), body


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fams, name, **labels):
    for s in fams[name].samples:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            if s.name in (name, name + "_total"):
                return s.value
    raise AssertionError(f"no sample {name} {labels}")


def test_metrics_parse_and_carry_the_figures(srv, raw_factory):
    alice = raw_factory(srv.c2s_port)
    alice.login("alice", PASSWORD, resource="m")
    alice.message("service.localhost", "echo hello")
    alice.expect_message("echo: hello")
    # A failed login, a TLS handshake, a failed TLS handshake, a WebSocket.
    bad = raw_factory(srv.c2s_port)
    bad.start()
    bad.starttls()
    assert bad.auth_plain("alice", "wrong").tag.endswith("failure")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=5) as s:
        s.sendall(b"this is not TLS\r\n\r\n")
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
    ws = WsClient(srv.http_port)
    ws.open()
    # A BOSH session: counted as one, not as a TCP connection.
    bosh = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=10)
    bosh.request("POST", "/http-bind", body=(
        "<body xmlns='http://jabber.org/protocol/httpbind' rid='1000' to='localhost' wait='5' hold='1' "
        "ver='1.6' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>").encode())
    created = bosh.getresponse()
    assert created.status == 200 and b"sid=" in created.read()
    bosh.close()
    alice.sync()

    status, ctype, text = get_metrics(srv.http_port)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    fams = families(text)
    assert value(fams, "parley_sessions") >= 1
    assert value(fams, "parley_connections", transport="tcp") >= 2
    assert value(fams, "parley_connections", transport="websocket") == 1
    assert value(fams, "parley_connections", transport="bosh") == 1
    assert value(fams, "parley_connections", transport="http") >= 1  # this request's
    assert value(fams, "parley_stanzas_in") >= 1
    assert value(fams, "parley_stanzas_out") >= 1
    assert value(fams, "parley_tls_handshakes") >= 1
    assert value(fams, "parley_tls_failures") >= 1
    assert value(fams, "parley_auth_failures") >= 1
    assert fams["parley_stanzas_in"].type == "counter"
    # Every loop's queues, now and decayed over 1, 10 and 100 s.
    for name in ("parley_loop_inbox", "parley_route_queue", "parley_write_backlog_bytes"):
        assert {s.labels["loop"] for s in fams[name].samples} == {"0", "1"}
        avg = fams[name + "_avg"]
        assert avg.type == "gauge"
        assert {(s.labels["loop"], s.labels["window"]) for s in avg.samples} == \
            {(loop, w) for loop in ("0", "1") for w in WINDOWS}
    for name in ("parley_storage_read_queue", "parley_storage_write_queue", "parley_archive_queue",
                 "parley_keyval_queue", "parley_account_queue"):
        assert len(fams[name].samples) == 1
        assert {s.labels["window"] for s in fams[name + "_avg"].samples} == WINDOWS
    # Each external component's route queue, with its averages.
    assert value(fams, "parley_component_queue", component="gw.localhost") == 0
    assert {(s.labels["component"], s.labels["window"]) for s in fams["parley_component_queue_avg"].samples} == \
        {("gw.localhost", w) for w in WINDOWS}
    # The module's typed metrics: a counter, a gauge, a histogram.
    assert value(fams, "parley_mod_test_service_messages", host="localhost") == 1
    assert fams["parley_mod_test_service_open_asks"].type == "gauge"
    hist = fams["parley_mod_test_service_body_bytes"]
    assert hist.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in hist.samples if s.name.endswith("_bucket")}
    assert buckets["5"] == 0 and buckets["10"] == 1 and buckets["+Inf"] == 1
    assert [s.value for s in hist.samples if s.name.endswith("_sum")] == [10]
    ws.close()


def test_metrics_only_to_allowed_addresses(srv):
    status, _, body = get_metrics(srv.http_port, source="127.0.0.2")
    assert status == 403 and "metrics_allow" in body
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=10)
    conn.request("POST", "/metrics", body=b"")
    assert conn.getresponse().status == 405
    conn.close()


def test_parleyctl_top_once_and_repeated(srv):
    r = srv.ctl("top", "--once")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "sessions" in out and "COUNTER" in out and "AVG 100s" in out
    for line in ("loop0 inbox", "loop1 inbox", "loop0 route in", "storage write", "archive", "keyval", "accounts",
                 "component_gw.localhost", "bosh 0"):
        assert line in out, line
    assert "mod_test_service.localhost.messages" in out
    assert "\033[" not in out  # --once never clears the terminal
    r = srv.ctl("top", "-n", "2", "-d", "0.2")
    assert r.returncode == 0 and r.stdout.count("COUNTER") == 2
    assert srv.ctl("top", "-n", "0").returncode == 2
