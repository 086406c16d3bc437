"""Stanza routing and stanza errors over a raw socket (RFC 6120 sections 8
and 10, RFC 6121 section 8)."""

import ssl
import types
import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD
from rawxmpp import NS_CLIENT, NS_DISCO_INFO, NS_PING, q, stanza_error_condition, tls_client_context

MESSAGE = q(NS_CLIENT, "message")
IQ = q(NS_CLIENT, "iq")
PRESENCE = q(NS_CLIENT, "presence")


def body_of(stanza):
    b = stanza.find(q(NS_CLIENT, "body"))
    return None if b is None else b.text


def assert_error_reply(reply, stanza_id, condition, error_type=None):
    assert reply.get("type") == "error", ET.tostring(reply, "unicode")
    assert reply.get("id") == stanza_id
    got_type, got_condition = stanza_error_condition(reply)
    assert got_condition == condition, ET.tostring(reply, "unicode")
    if error_type:
        assert got_type == error_type, ET.tostring(reply, "unicode")


def test_message_to_full_jid(server, raw_login):
    alice = raw_login("alice", "a", presence=True)
    bob = raw_login("bob", "b", presence=True)
    stanza_id = alice.message(bob.jid, "hello <bob> & co")
    got = bob.expect_message("hello <bob> & co")
    assert got.get("from") == alice.jid
    assert got.get("to") == bob.jid
    assert got.get("id") == stanza_id
    assert got.get("type") == "chat"


def test_spoofed_from_is_rewritten(server, raw_login):
    alice = raw_login("alice", "a", presence=True)
    bob = raw_login("bob", "b", presence=True)
    alice.message(bob.jid, "who am i", extra_attrs=" from='carol@localhost/forged'")
    got = bob.expect_message("who am i")
    assert got.get("from") == alice.jid, "the server routed a forged 'from'"


def test_message_order_is_preserved(server, raw_login):
    alice = raw_login("alice", "a", presence=True)
    bob = raw_login("bob", "b", presence=True)
    for i in range(200):
        alice.message(bob.jid, f"n{i}")
    for i in range(200):
        got = bob.expect(MESSAGE)
        assert body_of(got) == f"n{i}", "messages between two sessions were reordered"


def test_message_to_nonexistent_user(server, raw_login):
    alice = raw_login("alice", "a", presence=True)
    stanza_id = alice.message(f"nobody@{server.domain}", "anyone?")
    reply = alice.expect(MESSAGE, match=lambda e: e.get("id") == stanza_id)
    assert_error_reply(reply, stanza_id, "service-unavailable", "cancel")
    assert reply.get("from") == f"nobody@{server.domain}"


def test_iq_to_nonexistent_user(server, raw_login):
    alice = raw_login("alice", "a")
    reply = alice.iq("get", "<query xmlns='jabber:iq:version'/>", to=f"nobody@{server.domain}")
    assert reply.get("type") == "error"
    assert stanza_error_condition(reply)[1] == "service-unavailable"


@pytest.mark.parametrize("to", ["server", "own-bare-jid", "no-to"])
def test_iq_unknown_namespace(server, raw_login, to):
    alice = raw_login("alice", "a")
    target = {"server": server.domain, "own-bare-jid": f"alice@{server.domain}",
              "no-to": None}[to]
    reply = alice.iq("get", "<query xmlns='urn:example:parley:unknown'/>", to=target)
    assert reply.get("type") == "error", ET.tostring(reply, "unicode")
    assert stanza_error_condition(reply)[1] == "service-unavailable"
    assert reply.get("to") in (None, alice.jid)


@pytest.mark.parametrize("children", ["", "<ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/>"])
def test_iq_without_exactly_one_child_is_bad_request(server, raw_login, children):
    alice = raw_login("alice", "a")
    reply = alice.iq("get", children, to=server.domain)
    assert reply.get("type") == "error", ET.tostring(reply, "unicode")
    assert stanza_error_condition(reply)[1] == "bad-request"


def test_a_presence_of_an_unknown_type_is_bad_request_and_not_delivered(server, raw_login):
    """RFC 6121 §4.7.1: a presence's type, if any, MUST be one of those it
    lists: another gets bad-request (RFC 6120 §8.3.3.1), and the addressee
    nothing. (A message of an unknown type is a normal one: RFC 6121 §5.2.2,
    test_message_to_offline_resource_is_answered_unless_chat.)"""
    alice = raw_login("alice", "a")
    bob = raw_login("bob", "b", presence=True)
    alice.send(f"<presence type='bogus' id='t1' to='{bob.jid}'/>")
    reply = alice.expect(PRESENCE, match=lambda e: e.get("id") == "t1")
    assert reply.get("type") == "error", ET.tostring(reply, "unicode")
    assert stanza_error_condition(reply)[:2] == ("modify", "bad-request")
    # A directed presence of a listed type still reaches bob.
    alice.send(f"<presence type='unavailable' id='t2' to='{bob.jid}'/>")
    got = bob.nothing_before_marker(alice)
    assert [e.get("id") for e in got if e.tag == PRESENCE] == ["t2"], [ET.tostring(e) for e in got]


def test_iq_result_with_unknown_id_is_ignored(server, raw_login):
    alice = raw_login("alice", "a")
    alice.send(f"<iq type='result' id='never-asked' to='{server.domain}'/>")
    alice.send(f"<iq type='error' id='never-asked-2' to='{server.domain}'/>")
    assert alice.nothing_before_sync() == [], "the server answered a result/error"
    assert alice.iq("get", f"<ping xmlns='{NS_PING}'/>", to=server.domain).get("type") == "result"


def test_ping_and_disco_info_on_the_server(server, raw_login):
    alice = raw_login("alice", "a")
    pong = alice.iq("get", f"<ping xmlns='{NS_PING}'/>", to=server.domain)
    assert pong.get("type") == "result"
    assert pong.get("from") == server.domain
    info = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=server.domain)
    assert info.get("type") == "result", ET.tostring(info, "unicode")
    query = info.find(q(NS_DISCO_INFO, "query"))
    identities = [(i.get("category"), i.get("type"))
                  for i in query.findall(q(NS_DISCO_INFO, "identity"))]
    features = [f.get("var") for f in query.findall(q(NS_DISCO_INFO, "feature"))]
    assert ("server", "im") in identities
    assert NS_DISCO_INFO in features
    assert NS_PING in features


def test_iq_between_users(server, raw_login):
    alice = raw_login("alice", "a", presence=True)
    bob = raw_login("bob", "b", presence=True)
    alice.send(f"<iq type='get' id='q1' to='{bob.jid}'><query xmlns='jabber:iq:version'/></iq>")
    request = bob.expect(IQ, match=lambda e: e.get("id") == "q1")
    assert request.get("from") == alice.jid
    bob.send(f"<iq type='result' id='q1' to='{alice.jid}'><query xmlns='jabber:iq:version'>"
             "<name>raw</name></query></iq>")
    reply = alice.expect(IQ, match=lambda e: e.get("id") == "q1")
    assert reply.get("type") == "result"
    assert reply.get("from") == bob.jid


def test_iq_to_offline_resource(server, raw_login):
    alice = raw_login("alice", "a")
    raw_login("bob", "b", presence=True)
    reply = alice.iq("get", "<query xmlns='jabber:iq:version'/>",
                     to=f"bob@{server.domain}/not-connected")
    assert reply.get("type") == "error"
    assert stanza_error_condition(reply)[1] == "service-unavailable"


def test_message_to_offline_resource_goes_to_bare_jid(server, raw_login):
    # RFC 6121 8.5.3.2.1: a chat message for a resource that is not online is
    # handled as if it had been sent to the bare JID.
    alice = raw_login("alice", "a", presence=True)
    bob = raw_login("bob", "b", presence=True)
    alice.message(f"bob@{server.domain}/gone", "redirected")
    got = bob.expect_message("redirected")
    assert got.get("from") == alice.jid


# -- RFC 6121 8.5.3.2.1: a message for a resource that is not online --------------

def received_until_round_trip(client):
    """What `client` receives from now until a ping's answer proves the server
    processed everything it sent before (the answer itself left out)."""
    start = len(client.received)
    pong = client.iq("get", f"<ping xmlns='{NS_PING}'/>", to=client.domain)
    return [e for e in client.received[start:] if e is not pong]


def assert_nothing_before_marker(sender, recipient):
    """`recipient` got nothing from `sender` before a marker that `sender`
    sends now along the same path (so anything routed before it came first)."""
    start = len(recipient.received)
    sender.message(recipient.jid, "marker")
    recipient.expect_message("marker")
    stray = [ET.tostring(e, "unicode") for e in recipient.received[start:]
             if e.tag == MESSAGE and body_of(e) != "marker"]
    assert stray == [], f"{recipient.jid} got a message meant for another resource"


def send_typed(client, to, type_, body):
    stanza_id = client.new_id()
    type_attr = "" if type_ is None else f" type='{type_}'"
    client.send(f"<message to='{to}' id='{stanza_id}'{type_attr}><body>{body}</body></message>")
    return stanza_id


@pytest.mark.parametrize("type_", ["normal", None, "x-unknown", "groupchat"])
def test_message_to_offline_resource_is_answered_unless_chat(server, raw_login, type_):
    # RFC 6121 8.5.3.2.1: for normal (a missing or unknown type is normal,
    # 5.2.2) and groupchat, silence or service-unavailable; Parley answers, and
    # does not hand the message to the account's other resources.
    alice = raw_login("alice", "a", presence=True)
    bob = raw_login("bob", "b", presence=True)
    gone = f"bob@{server.domain}/gone"
    stanza_id = send_typed(alice, gone, type_, "for the gone resource only")
    reply = alice.expect(MESSAGE, match=lambda e: e.get("id") == stanza_id)
    assert_error_reply(reply, stanza_id, "service-unavailable", "cancel")
    assert reply.get("from") == gone
    assert_nothing_before_marker(alice, bob)


def test_headline_to_offline_resource_is_dropped(server, raw_login):
    # RFC 6121 8.5.3.2.1: a headline is transient: silently ignored.
    alice = raw_login("alice", "a", presence=True)
    bob = raw_login("bob", "b", presence=True)
    alice.message(f"bob@{server.domain}/gone", "old news", type_="headline")
    got = received_until_round_trip(alice)
    assert [e for e in got if e.tag == MESSAGE] == [], "a headline to a gone resource was answered"
    assert_nothing_before_marker(alice, bob)


def test_error_message_to_offline_resource_is_dropped(server, raw_login):
    # RFC 6121 8.5.3.2.1: an error is silently ignored (never answered).
    alice = raw_login("alice", "a", presence=True)
    bob = raw_login("bob", "b", presence=True)
    alice.send(f"<message to='bob@{server.domain}/gone' type='error' id='e1'>"
               "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
               "</error></message>")
    got = received_until_round_trip(alice)
    assert [e for e in got if e.tag == MESSAGE] == [], "an error message was answered"
    assert_nothing_before_marker(alice, bob)


def send_presence(client, priority):
    client.send(f"<presence><priority>{priority}</priority></presence>")


def test_bare_jid_goes_to_highest_priority(server, raw_login):
    alice = raw_login("alice", "a", presence=True)
    high = raw_login("bob", "high")
    low = raw_login("bob", "low")
    negative = raw_login("bob", "negative")
    for client, priority in ((high, 5), (low, 1), (negative, -1)):
        send_presence(client, priority)
        client.sync()
    alice.message(f"bob@{server.domain}", "to the most available")
    got = high.expect_message("to the most available")
    assert got.get("from") == alice.jid
    # The resources were chosen at once on alice's loop: her marker follows.
    for other in (low, negative):
        stray = [e for e in other.nothing_before_marker(alice) if e.tag == MESSAGE]
        assert stray == [], f"{other.jid} got a message for the bare JID"


def test_bare_jid_ties_go_to_all_top_resources(server, raw_login):
    alice = raw_login("alice", "a", presence=True)
    one = raw_login("bob", "one")
    two = raw_login("bob", "two")
    for client in (one, two):
        send_presence(client, 3)
        client.sync()
    alice.message(f"bob@{server.domain}", "to both")
    one.expect_message("to both")
    two.expect_message("to both")


def test_bare_jid_skips_resources_without_presence(server, raw_login):
    alice = raw_login("alice", "a", presence=True)
    available = raw_login("bob", "available", presence=True)
    silent = raw_login("bob", "silent")  # bound, never sent presence
    alice.message(f"bob@{server.domain}", "only available")
    available.expect_message("only available")
    assert [e for e in silent.nothing_before_marker(alice) if e.tag == MESSAGE] == []


def test_directed_presence(server, raw_login):
    alice = raw_login("alice", "a", presence=True)
    bob = raw_login("bob", "b", presence=True)
    alice.send(f"<presence to='{bob.jid}'><status>hi bob</status></presence>")
    got = bob.expect(PRESENCE, match=lambda e: e.get("from") == alice.jid)
    assert got.findtext(q(NS_CLIENT, "status")) == "hi bob"


def test_presence_to_nonexistent_user_is_silently_dropped(server, raw_login):
    alice = raw_login("alice", "a", presence=True)
    alice.send(f"<presence to='nobody@{server.domain}/x'/>")
    assert [e for e in alice.nothing_before_sync() if e.tag == PRESENCE and e.get("type") == "error"] == []


def test_unknown_top_level_element(server, raw_login):
    alice = raw_login("alice", "a")
    alice.send("<not-a-stanza xmlns='jabber:client'/>")
    condition = alice.expect_stream_error()
    assert condition == "unsupported-stanza-type"
    assert alice.wait_closed()


# -- XEP-0030 and XEP-0199 at an account's bare JID ------------------------------

NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"


def disco_items(client, to, node=None):
    node_attr = "" if node is None else f" node='{node}'"
    return client.iq("get", f"<query xmlns='{NS_DISCO_ITEMS}'{node_attr}/>", to=to)


def items_of(reply):
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    query = reply.find(q(NS_DISCO_ITEMS, "query"))
    assert query is not None, ET.tostring(reply, "unicode")
    return sorted(item.get("jid") for item in query.findall(q(NS_DISCO_ITEMS, "item")))


@pytest.mark.parametrize("to", ["own-bare-jid", "no-to"])
def test_disco_items_of_own_account_lists_its_resources(server, raw_login, to):
    alice = raw_login("alice", "a", presence=True)
    other = raw_login("alice", "b")
    target = f"alice@{server.domain}" if to == "own-bare-jid" else None
    reply = disco_items(alice, target)
    assert items_of(reply) == sorted([alice.jid, other.jid])
    assert reply.get("from") in (None, f"alice@{server.domain}")


def test_disco_items_of_another_account_is_empty_and_like_a_missing_one(server, raw_login):
    # XEP-0030 section 7: an empty result set for an account that does not
    # exist, and for one whose only items (resources) the requester may not
    # see: the answers must not tell the two apart.
    alice = raw_login("alice", "a")
    raw_login("bob", "b", presence=True)
    online = disco_items(alice, f"bob@{server.domain}")
    offline = disco_items(alice, f"carol@{server.domain}")  # registered, no session
    missing = disco_items(alice, f"nobody@{server.domain}")
    for reply, who in ((online, "bob"), (offline, "carol"), (missing, "nobody")):
        assert items_of(reply) == [], ET.tostring(reply, "unicode")
        assert reply.get("from") == f"{who}@{server.domain}"
        assert list(reply.find(q(NS_DISCO_ITEMS, "query")).attrib) == []
    # With a node, the same for all three, the node mirrored.
    for who in ("bob", "carol", "nobody"):
        reply = disco_items(alice, f"{who}@{server.domain}", node="urn:example:node")
        assert items_of(reply) == []
        assert reply.find(q(NS_DISCO_ITEMS, "query")).get("node") == "urn:example:node"


def test_disco_items_of_own_account_with_unknown_node(server, raw_login):
    alice = raw_login("alice", "a")
    reply = disco_items(alice, f"alice@{server.domain}", node="urn:example:node")
    assert reply.get("type") == "error", ET.tostring(reply, "unicode")
    assert stanza_error_condition(reply)[1] == "item-not-found"


def test_disco_info_of_accounts(server, raw_login):
    # XEP-0030 3.1: the owner sees the account identity; anyone else gets
    # service-unavailable, as for an account that does not exist (section 7).
    alice = raw_login("alice", "a")
    raw_login("bob", "b", presence=True)
    own = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=f"alice@{server.domain}")
    assert own.get("type") == "result", ET.tostring(own, "unicode")
    query = own.find(q(NS_DISCO_INFO, "query"))
    identities = [(i.get("category"), i.get("type")) for i in query.findall(q(NS_DISCO_INFO, "identity"))]
    features = [f.get("var") for f in query.findall(q(NS_DISCO_INFO, "feature"))]
    assert identities == [("account", "registered")]
    assert NS_DISCO_ITEMS in features
    for who in ("bob", "carol", "nobody"):
        reply = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=f"{who}@{server.domain}")
        assert reply.get("type") == "error", ET.tostring(reply, "unicode")
        assert stanza_error_condition(reply)[1] == "service-unavailable"


@pytest.mark.parametrize("to", ["own-bare-jid", "no-to"])
def test_ping_to_own_account_is_answered_by_the_server(server, raw_login, to):
    # XEP-0199 / RFC 6120 10.3.3: the server answers for the account.
    alice = raw_login("alice", "a")
    target = f"alice@{server.domain}" if to == "own-bare-jid" else None
    pong = alice.iq("get", f"<ping xmlns='{NS_PING}'/>", to=target)
    assert pong.get("type") == "result", ET.tostring(pong, "unicode")
    assert pong.get("from") in (None, f"alice@{server.domain}")
    assert list(pong) == []


def test_ping_to_another_account_is_like_one_to_a_missing_account(server, raw_login):
    # Answering for another account would tell anyone which accounts exist:
    # service-unavailable, the answer for a missing account (RFC 6121 8.5.1).
    alice = raw_login("alice", "a")
    raw_login("bob", "b", presence=True)
    for who in ("bob", "carol", "nobody"):
        reply = alice.iq("get", f"<ping xmlns='{NS_PING}'/>", to=f"{who}@{server.domain}")
        assert reply.get("type") == "error", ET.tostring(reply, "unicode")
        assert stanza_error_condition(reply)[1] == "service-unavailable"


def test_ping_to_a_full_jid_reaches_the_client(server, raw_login):
    # XEP-0199 client-to-client: delivered, answered by the client.
    alice = raw_login("alice", "a")
    bob = raw_login("bob", "b")
    alice.send(f"<iq type='get' id='c2c' to='{bob.jid}'><ping xmlns='{NS_PING}'/></iq>")
    request = bob.expect(IQ, match=lambda e: e.get("id") == "c2c")
    assert request.get("from") == alice.jid
    bob.send(f"<iq type='result' id='c2c' to='{alice.jid}'/>")
    assert alice.expect(IQ, match=lambda e: e.get("id") == "c2c").get("type") == "result"


class _RecordCountingTls:
    """A TLS client socket over memory BIOs that counts the TLS records the
    server sends (each record header, whatever its content): RawClient's
    transport, for a test of how the server writes."""

    def __init__(self, sock, ctx, hostname):
        self.raw = sock
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._tls = ctx.wrap_bio(self._in, self._out, server_hostname=hostname)
        self.records = 0
        self._header = b""
        self._skip = 0
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if not self._pump():
                    raise ConnectionResetError("EOF in the TLS handshake")
        self._flush()

    def _flush(self):
        data = self._out.read()
        if data:
            self.raw.sendall(data)

    def _count(self, data):
        while data:
            if self._skip:
                n = min(self._skip, len(data))
                self._skip -= n
                data = data[n:]
                continue
            take = 5 - len(self._header)
            self._header += data[:take]
            data = data[take:]
            if len(self._header) == 5:
                self.records += 1
                self._skip = int.from_bytes(self._header[3:5], "big")
                self._header = b""

    def _pump(self):
        data = self.raw.recv(65536)
        if not data:
            self._in.write_eof()
            return False
        self._count(data)
        self._in.write(data)
        return True

    def recv(self, n):
        while True:
            try:
                return self._tls.read(n)
            except ssl.SSLWantReadError:
                self._flush()
                if not self._pump():
                    return b""
            except ssl.SSLZeroReturnError:
                return b""

    def sendall(self, data):
        self._tls.write(data)
        self._flush()

    def settimeout(self, timeout):
        self.raw.settimeout(timeout)

    def close(self):
        self.raw.close()


def test_a_burst_to_one_session_leaves_in_one_tls_record(server_factory, raw_factory):
    # issue 18, write coalescing: the stanzas a loop turn writes to one
    # connection leave as one TLS record (one SSL_write, one write(2)), not
    # one per stanza. One worker loop: the ten arrive in one read and are
    # routed in the same turn.
    server = server_factory(workers=1)
    server.register("alice", PASSWORD)
    server.register("bob", PASSWORD)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="a")
    bob = raw_factory(server.c2s_port)

    def wrap(client):
        client.sock = _RecordCountingTls(client.sock, tls_client_context(), client.domain)
        client.tls = True
    bob._wrap_tls = types.MethodType(wrap, bob)
    bob.login("bob", PASSWORD, resource="b")
    before = bob.sock.records
    alice.send("".join(f"<message to='{bob.jid}' type='chat' id='burst{i}'><body>burst {i}</body></message>"
                       for i in range(10)))
    for i in range(10):
        assert body_of(bob.expect_message(f"burst {i}")) == f"burst {i}"
    # One record (two if the ten were split across two reads); was ten.
    assert bob.sock.records - before <= 2, bob.sock.records - before
