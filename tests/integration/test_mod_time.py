"""mod_time (XEP-0202 Entity Time) against a running parleyd: the server's
<tzo/> and <utc/> (XEP-0082, UTC with Z), its disco feature, the errors of a
set and of a malformed get, the local offset on request, a user's time asked
of the user's client, and slixmpp's xep_0202 plugin."""

import datetime as dt
import re
import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD
from rawxmpp import q, stanza_error_condition

NS = "urn:xmpp:time"
DISCO = "http://jabber.org/protocol/disco#info"
TIME = f"<time xmlns='{NS}'/>"
# XEP-0082 dateTime in UTC: CCYY-MM-DDThh:mm:ss[.sss]Z.
UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
TZD = re.compile(r"^[+-]\d\d:\d\d$")


def start(server_factory, raw_factory, user="alice", **options):
    server = server_factory(modules={"mod_disco": {}, "mod_ping": {}, "mod_time": options})
    server.register(user, PASSWORD)
    client = raw_factory(server.c2s_port)
    client.login(user, PASSWORD, resource="t")
    return server, client


def time_of(reply):
    """(tzo, utc) of a result, checking that the payload holds exactly those two."""
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    payload = reply.find(q(NS, "time"))
    assert payload is not None, ET.tostring(reply, "unicode")
    assert [child.tag for child in payload] == [q(NS, "tzo"), q(NS, "utc")], ET.tostring(reply, "unicode")
    return payload.find(q(NS, "tzo")).text, payload.find(q(NS, "utc")).text


def parse_utc(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_server_answers_its_utc_time_and_offset(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory)
    before = dt.datetime.now(dt.timezone.utc)
    reply = c.iq("get", TIME, to=server.domain)
    after = dt.datetime.now(dt.timezone.utc)
    assert reply.get("from") == server.domain and reply.get("to") == c.jid
    tzo, utc = time_of(reply)
    assert TZD.match(tzo) and tzo == "+00:00"  # the zone is not told by default (XEP-0202 section 6)
    assert UTC.match(utc), utc
    # The server's clock is this machine's: the answer lies between the two readings.
    assert before - dt.timedelta(seconds=1) <= parse_utc(utc) <= after + dt.timedelta(seconds=1), (before, utc, after)


def test_utc_moves_on(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory)
    _, first = time_of(c.iq("get", TIME, to=server.domain))
    deadline = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30)
    while True:
        _, second = time_of(c.iq("get", TIME, to=server.domain))
        if parse_utc(second) > parse_utc(first) or dt.datetime.now(dt.timezone.utc) > deadline:
            break
    assert parse_utc(second) > parse_utc(first)


@pytest.mark.parametrize("tz, expected", [("IST-5:30", "+05:30"), ("EST+5", "-05:00"), ("UTC0", "+00:00")])
def test_local_offset_on_request(server_factory, raw_factory, monkeypatch, tz, expected):
    # POSIX TZ strings (no zone database needed): "IST-5:30" is 5:30 east of UTC.
    monkeypatch.setenv("TZ", tz)
    server, c = start(server_factory, raw_factory, local_offset=True)
    tzo, utc = time_of(c.iq("get", TIME, to=server.domain))
    assert tzo == expected
    assert UTC.match(utc), utc  # <utc/> stays in UTC whatever the zone


def test_the_zone_is_not_told_unless_asked(server_factory, raw_factory, monkeypatch):
    monkeypatch.setenv("TZ", "IST-5:30")
    server, c = start(server_factory, raw_factory, local_offset=False)
    assert time_of(c.iq("get", TIME, to=server.domain))[0] == "+00:00"


def test_declares_its_disco_feature(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory)
    info = c.iq("get", f"<query xmlns='{DISCO}'/>", to=server.domain)
    assert NS in {f.get("var") for f in info.iter(q(DISCO, "feature"))}


def test_set_is_not_allowed(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory)
    reply = c.iq("set", f"<time xmlns='{NS}'><tzo>+01:00</tzo><utc>2006-12-19T17:58:35Z</utc></time>",
                 to=server.domain)
    assert reply.get("type") == "error"
    assert stanza_error_condition(reply) == ("cancel", "not-allowed")


def test_a_get_with_children_is_a_bad_request(server_factory, raw_factory):
    # <tzo/> and <utc/> are defined for results (section 2); a request carries none.
    server, c = start(server_factory, raw_factory)
    reply = c.iq("get", f"<time xmlns='{NS}'><utc>2006-12-19T17:58:35Z</utc></time>", to=server.domain)
    assert stanza_error_condition(reply) == ("modify", "bad-request")
    reply = c.iq("get", f"<time xmlns='{NS}'><x xmlns='urn:example'/></time>", to=server.domain)
    assert stanza_error_condition(reply) == ("modify", "bad-request")
    # Whitespace is not a child: a pretty-printed request is answered.
    time_of(c.iq("get", f"<time xmlns='{NS}'>\n  </time>", to=server.domain))


def test_another_element_of_the_namespace_is_a_bad_request(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory)
    reply = c.iq("get", f"<utc xmlns='{NS}'/>", to=server.domain)
    assert stanza_error_condition(reply) == ("modify", "bad-request")


def test_a_users_time_is_asked_of_the_users_client(server_factory, raw_factory):
    # To a full JID the server only routes: bob's client answers with its own time.
    server, alice = start(server_factory, raw_factory)
    server.register("bob", PASSWORD)
    bob = raw_factory(server.c2s_port)
    bob.login("bob", PASSWORD, resource="b", presence=True)
    alice.send(f"<iq type='get' id='t1' to='{bob.jid}'>{TIME}</iq>")
    request = bob.expect(q("jabber:client", "iq"), match=lambda e: e.get("id") == "t1")
    assert request.get("type") == "get" and request.get("from") == alice.jid
    bob.send(f"<iq type='result' id='t1' to='{alice.jid}'><time xmlns='{NS}'>"
             "<tzo>-06:00</tzo><utc>2006-12-19T17:58:35Z</utc></time></iq>")
    reply = alice.expect(q("jabber:client", "iq"), match=lambda e: e.get("id") == "t1")
    assert reply.get("from") == bob.jid
    assert time_of(reply) == ("-06:00", "2006-12-19T17:58:35Z")


def test_a_users_bare_jid_is_not_answered_with_the_servers_time(server_factory, raw_factory):
    # An iq to a bare JID is the server's to answer for the account (RFC 6120
    # section 10.5.3.1); the server's clock is not the user's: no answer of mod_time's.
    server, alice = start(server_factory, raw_factory)
    server.register("bob", PASSWORD)
    reply = alice.iq("get", TIME, to=f"bob@{server.domain}")
    assert stanza_error_condition(reply)[1] == "service-unavailable"


def test_without_the_module_the_server_does_not_answer(server_factory, raw_factory):
    server = server_factory(modules={"mod_disco": {}, "mod_ping": {}})
    server.register("alice", PASSWORD)
    c = raw_factory(server.c2s_port)
    c.login("alice", PASSWORD)
    assert stanza_error_condition(c.iq("get", TIME, to=server.domain))[1] == "service-unavailable"
    info = c.iq("get", f"<query xmlns='{DISCO}'/>", to=server.domain)
    assert NS not in {f.get("var") for f in info.iter(q(DISCO, "feature"))}


def test_answers_after_a_reload(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory, local_offset=True)
    reloaded = server.ctl("module", "reload", "mod_time")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    tzo, utc = time_of(c.iq("get", TIME, to=server.domain))
    assert TZD.match(tzo) and UTC.match(utc)


def test_a_wrongly_typed_option_refuses_start(server_factory):
    server = server_factory(start=False, modules={"mod_time": {"local_offset": "perhaps"}})
    server.expected_exit = 1
    with pytest.raises(RuntimeError):
        server.start(timeout=15)
    assert "mod_time" in server.log() and "local_offset" in server.log()


# -- slixmpp ---------------------------------------------------------------------------

@pytest.fixture
def slix():
    from slix_driver import SlixRunner
    runner = SlixRunner()
    yield runner
    runner.close()


def test_slixmpp_xep_0202_asks_the_servers_time(server_factory, slix):
    server = server_factory(modules={"mod_disco": {}, "mod_ping": {}, "mod_time": {}})
    server.register("alice", PASSWORD)
    c = slix.client(f"alice@{server.domain}/slix", PASSWORD, mech="SCRAM-SHA-256", channel_binding=False)
    c.xmpp.register_plugin("xep_0202")
    assert slix.run(c.connect(server.c2s_port)) is True
    iq = slix.run(c.xmpp["xep_0202"].get_entity_time(server.domain))
    assert iq["type"] == "result" and str(iq["from"]) == server.domain
    # slixmpp 1.8's EntityTime accessors cannot read a conformant answer (its
    # get_utc appends a second 'Z', its get_tzo parses a time without a date):
    # read the payload slixmpp received.
    payload = iq["entity_time"].xml
    assert payload.find(q(NS, "tzo")).text == "+00:00"
    utc = payload.find(q(NS, "utc")).text
    assert UTC.match(utc), utc
    assert abs(parse_utc(utc) - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
