"""mod_last (XEP-0012 Last Activity) against a running parleyd: server uptime,
a user's last logout with its status text, who may ask (the user, a contact
with a 'from' or 'both' subscription; nobody else), an available user's '0'."""

import time
import xml.etree.ElementTree as ET

from conftest import PASSWORD, logged_in as login, server_with_users
from rawxmpp import q, stanza_error_condition, xml_escape

NS = "jabber:iq:last"
DISCO = "http://jabber.org/protocol/disco#info"
LAST = f"<query xmlns='{NS}'/>"

MODULES = {"mod_disco": {}, "mod_ping": {}, "mod_roster": {}, "mod_presence": {}, "mod_last": {}}


def start_server(server_factory, users=("alice", "bob")):
    return server_with_users(server_factory, users, modules=dict(MODULES))


def last_of(reply):
    """(seconds, text) of a result."""
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    query = reply.find(q(NS, "query"))
    assert query is not None, ET.tostring(reply, "unicode")
    return int(query.get("seconds")), (query.text or "")


def log_out(server, raw_factory, user, status=None):
    """An available session that leaves with <presence type='unavailable'/>."""
    c = login(server, raw_factory, user, resource="leaving", presence=True)
    body = f"<status>{xml_escape(status)}</status>" if status is not None else ""
    c.send(f"<presence type='unavailable'>{body}</presence>")
    c.sync()
    c.close()


def ask_until(client, to, done, timeout=10):
    """The storage writes are asynchronous: ask until `done(reply)`."""
    deadline = time.monotonic() + timeout
    while True:
        reply = client.iq("get", LAST, to=to)
        if done(reply) or time.monotonic() > deadline:
            return reply
        time.sleep(0.1)


def is_result(reply):
    return reply.get("type") == "result"


def test_server_uptime_grows(server_factory, raw_factory):
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    first, text = last_of(alice.iq("get", LAST, to=server.domain))  # XEP-0012 example 6
    assert first >= 0 and text == ""
    time.sleep(2.1)
    second, _ = last_of(alice.iq("get", LAST, to=server.domain))
    assert second >= first + 2


def test_uptime_survives_a_reload(server_factory, raw_factory):
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    time.sleep(2.1)
    before, _ = last_of(alice.iq("get", LAST, to=server.domain))
    assert before >= 2
    reloaded = server.ctl("module", "reload", "mod_last")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    after, _ = last_of(alice.iq("get", LAST, to=server.domain))
    assert after >= before


def test_set_is_not_allowed(server_factory, raw_factory):
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    assert stanza_error_condition(alice.iq("set", LAST, to=server.domain))[1] == "not-allowed"
    assert stanza_error_condition(alice.iq("set", LAST))[1] == "not-allowed"


def test_own_last_activity_after_a_logout_with_status(server_factory, raw_factory):
    server = start_server(server_factory)
    log_out(server, raw_factory, "alice", status="Heading Home")
    alice = login(server, raw_factory, "alice")  # bound, not available
    reply = ask_until(alice, None, is_result)
    seconds, text = last_of(reply)
    assert text == "Heading Home"
    assert 0 <= seconds < 30
    time.sleep(1.1)
    later, _ = last_of(alice.iq("get", LAST, to=f"alice@{server.domain}"))
    assert later >= seconds + 1


def test_an_abrupt_end_has_no_status(server_factory, raw_factory):
    server = start_server(server_factory)
    log_out(server, raw_factory, "alice", status="first")
    gone = login(server, raw_factory, "alice", resource="gone", presence=True)
    gone.abort()  # no unavailable presence: RFC 6121 4.5.4 makes one up, without status
    alice = login(server, raw_factory, "alice")
    reply = ask_until(alice, None, lambda r: is_result(r) and last_of(r)[1] == "")
    assert last_of(reply)[1] == ""


def test_never_logged_out(server_factory, raw_factory):
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    assert stanza_error_condition(alice.iq("get", LAST))[1] == "service-unavailable"


def test_available_user_answers_zero(server_factory, raw_factory):
    server = start_server(server_factory)
    log_out(server, raw_factory, "alice", status="earlier")
    login(server, raw_factory, "alice", resource="here", presence=True)
    other = login(server, raw_factory, "alice", resource="asking")
    seconds, text = last_of(other.iq("get", LAST))
    assert (seconds, text) == (0, "")


def test_stranger_is_forbidden(server_factory, raw_factory):
    server = start_server(server_factory)
    log_out(server, raw_factory, "alice", status="secret")
    bob = login(server, raw_factory, "bob")
    reply = bob.iq("get", LAST, to=f"alice@{server.domain}")
    assert stanza_error_condition(reply) == ("auth", "forbidden")
    assert "secret" not in ET.tostring(reply, "unicode")
    # An account that does not exist: RFC 6121 §8.5.1, before any module sees it.
    assert stanza_error_condition(bob.iq("get", LAST, to=f"nobody@{server.domain}"))[1] == "service-unavailable"


def test_contact_with_a_subscription_may_ask(server_factory, raw_factory):
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice", presence=True)
    bob = login(server, raw_factory, "bob", presence=True)
    # bob subscribes to alice's presence, alice approves: in alice's roster bob
    # has subscription 'from' (RFC 6121 3.1).
    bob.send(f"<presence type='subscribe' to='alice@{server.domain}'/>")
    alice.expect(q("jabber:client", "presence"), match=lambda e: e.get("type") == "subscribe")
    alice.send(f"<presence type='subscribed' to='bob@{server.domain}'/>")
    bob.expect(q("jabber:client", "presence"), match=lambda e: e.get("type") == "subscribed")
    alice.send("<presence type='unavailable'><status>Heading Home</status></presence>")
    alice.sync()
    alice.close()
    reply = ask_until(bob, f"alice@{server.domain}", is_result)
    seconds, text = last_of(reply)
    assert text == "Heading Home" and seconds >= 0
    # The other way round, alice has no subscription to bob's presence.
    alice = login(server, raw_factory, "alice")
    assert stanza_error_condition(alice.iq("get", LAST, to=f"bob@{server.domain}"))[1] == "forbidden"


def test_a_full_jid_answers_only_those_allowed_to_see_presence(server_factory, raw_factory):
    """XEP-0012 section 8: a request to user@host/resource from an entity without a
    'from' or 'both' subscription gets service-unavailable whether the resource is
    there or not (what a missing resource answers), and never reaches the client; a
    subscribed contact's reaches the client, which answers it (section 4)."""
    server = start_server(server_factory, users=("alice", "bob", "carol"))
    alice = login(server, raw_factory, "alice", resource="phone", presence=True)
    carol = login(server, raw_factory, "carol", presence=True)
    present, absent = f"alice@{server.domain}/phone", f"alice@{server.domain}/gone"
    assert stanza_error_condition(carol.iq("get", LAST, to=present)) == ("cancel", "service-unavailable")
    assert stanza_error_condition(carol.iq("get", LAST, to=absent)) == ("cancel", "service-unavailable")
    assert [e for e in alice.nothing_before_sync() if e.tag == q("jabber:client", "iq")] == []
    bob = login(server, raw_factory, "bob", presence=True)
    bob.send(f"<presence type='subscribe' to='alice@{server.domain}'/>")
    alice.expect(q("jabber:client", "presence"), match=lambda e: e.get("type") == "subscribe")
    alice.send(f"<presence type='subscribed' to='bob@{server.domain}'/>")
    bob.expect(q("jabber:client", "presence"), match=lambda e: e.get("type") == "subscribed")
    sid = bob.new_id()
    bob.send(f"<iq type='get' id='{sid}' to='{present}'>{LAST}</iq>")
    asked = alice.expect(q("jabber:client", "iq"), match=lambda e: e.get("id") == sid)
    assert asked.get("from") == bob.jid
    alice.send(f"<iq type='result' id='{sid}' to='{bob.jid}'><query xmlns='{NS}' seconds='42'/></iq>")
    assert last_of(bob.expect(q("jabber:client", "iq"), match=lambda e: e.get("id") == sid)) == (42, "")
    assert stanza_error_condition(bob.iq("get", LAST, to=absent)) == ("cancel", "service-unavailable")
    # The account's own other resource asks without a subscription.
    own = login(server, raw_factory, "alice", resource="laptop")
    sid = own.new_id()
    own.send(f"<iq type='get' id='{sid}' to='{present}'>{LAST}</iq>")
    assert alice.expect(q("jabber:client", "iq"), match=lambda e: e.get("id") == sid).get("from") == own.jid


def test_removed_account_loses_its_last_activity(server_factory, raw_factory):
    server = start_server(server_factory)
    log_out(server, raw_factory, "alice", status="bye")
    alice = login(server, raw_factory, "alice")
    ask_until(alice, None, is_result)
    assert server.ctl("unregister", "alice", server.domain).returncode == 0
    server.register("alice", PASSWORD)
    alice = login(server, raw_factory, "alice")
    reply = ask_until(alice, None, lambda r: not is_result(r))
    assert stanza_error_condition(reply)[1] == "service-unavailable"


def test_declares_its_disco_feature(server_factory, raw_factory):
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    info = alice.iq("get", f"<query xmlns='{DISCO}'/>", to=server.domain)
    assert NS in {f.get("var") for f in info.iter(q(DISCO, "feature"))}
