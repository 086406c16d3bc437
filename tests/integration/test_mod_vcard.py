"""mod_vcard (XEP-0054 vcard-temp) against a running parleyd: the XEP's own
examples, every error case, and persistence across a restart."""

import xml.etree.ElementTree as ET

from conftest import PASSWORD
from rawxmpp import q, stanza_error_condition

NS = "vcard-temp"
DISCO = "http://jabber.org/protocol/disco#info"

# XEP-0054 example 4 (shortened a little): the vCard stpeter stores.
PETER = (f"<vCard xmlns='{NS}'>"
         "<FN>Peter Saint-Andre</FN>"
         "<N><FAMILY>Saint-Andre</FAMILY><GIVEN>Peter</GIVEN><MIDDLE/></N>"
         "<NICKNAME>stpeter</NICKNAME>"
         "<ORG><ORGNAME>XMPP Standards Foundation</ORGNAME><ORGUNIT/></ORG>"
         "<TEL><WORK/><VOICE/><NUMBER>303-308-3282</NUMBER></TEL>"
         "<EMAIL><INTERNET/><PREF/><USERID>stpeter@jabber.org</USERID></EMAIL>"
         "<DESC>Check out my blog &amp; more at https://stpeter.im/</DESC>"
         "</vCard>")


def start_server(server_factory, raw_factory, users=("alice", "bob"), **options):
    server = server_factory(modules={"mod_disco": {}, "mod_ping": {}, "mod_vcard": options})
    clients = {}
    for user in users:
        server.register(user, PASSWORD)
    for user in users:
        clients[user] = raw_factory(server.c2s_port)
        clients[user].login(user, PASSWORD, resource="r")
    return server, clients


def vcard(reply):
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    card = reply.find(q(NS, "vCard"))
    assert card is not None, ET.tostring(reply, "unicode")
    return card


def text(card, path):
    node = card.find("/".join(q(NS, p) for p in path.split("/")))
    return None if node is None else (node.text or "")


def login(server, raw_factory, user):
    c = raw_factory(server.c2s_port)
    c.login(user, PASSWORD, resource="again")
    return c


def test_own_vcard_is_empty_until_set(server_factory, raw_factory):
    server, cs = start_server(server_factory, raw_factory, users=("alice",))
    c = cs["alice"]
    card = vcard(c.iq("get", f"<vCard xmlns='{NS}'/>"))  # no 'to': one's own (XEP-0054 3.1)
    assert len(card) == 0 and not (card.text or "").strip()
    card = vcard(c.iq("get", f"<vCard xmlns='{NS}'/>", to=f"alice@{server.domain}"))
    assert len(card) == 0


def test_round_trip_and_others_may_read(server_factory, raw_factory):
    server, cs = start_server(server_factory, raw_factory)
    alice, bob = cs["alice"], cs["bob"]
    result = alice.iq("set", PETER)  # XEP-0054 3.2: a set with no 'to'
    assert result.get("type") == "result", ET.tostring(result, "unicode")
    assert len(list(result)) == 0

    card = vcard(alice.iq("get", f"<vCard xmlns='{NS}'/>"))
    assert text(card, "FN") == "Peter Saint-Andre"
    assert text(card, "N/GIVEN") == "Peter"
    assert text(card, "N/MIDDLE") == ""
    assert text(card, "TEL/NUMBER") == "303-308-3282"
    assert card.find(f"{q(NS, 'TEL')}/{q(NS, 'WORK')}") is not None
    assert text(card, "DESC") == "Check out my blog & more at https://stpeter.im/"

    # XEP-0054 3.3: anybody may view it, at the owner's bare JID; the answer
    # comes from that bare JID, not from the owner's client.
    reply = bob.iq("get", f"<vCard xmlns='{NS}'/>", to=f"alice@{server.domain}")
    assert reply.get("from") == f"alice@{server.domain}"
    assert reply.get("to") == bob.jid
    assert text(vcard(reply), "NICKNAME") == "stpeter"
    # Answered on bob's loop; a forwarded iq would have left it before bob's marker.
    assert alice.nothing_before_marker(bob) == [], "the server must answer for the user, not forward the iq"


def test_set_to_own_bare_jid_replaces_the_whole_vcard(server_factory, raw_factory):
    server, cs = start_server(server_factory, raw_factory, users=("alice",))
    alice = cs["alice"]
    assert alice.iq("set", PETER).get("type") == "result"
    new = f"<vCard xmlns='{NS}'><NICKNAME>al</NICKNAME></vCard>"
    assert alice.iq("set", new, to=f"alice@{server.domain}").get("type") == "result"
    card = vcard(alice.iq("get", f"<vCard xmlns='{NS}'/>"))
    assert text(card, "NICKNAME") == "al"
    assert text(card, "FN") is None  # no partial updates (XEP-0054 3.2)


def test_setting_someone_elses_vcard_is_forbidden(server_factory, raw_factory):
    server, cs = start_server(server_factory, raw_factory)
    alice, bob = cs["alice"], cs["bob"]
    reply = bob.iq("set", f"<vCard xmlns='{NS}'><FN>Mallory</FN></vCard>", to=f"alice@{server.domain}")
    assert stanza_error_condition(reply) == ("auth", "forbidden")
    # Nothing changed for alice.
    card = vcard(alice.iq("get", f"<vCard xmlns='{NS}'/>"))
    assert text(card, "FN") is None


def test_another_users_missing_vcard_is_service_unavailable(server_factory, raw_factory):
    # XEP-0054 3.3: no vCard (or no such user) -> an error; service-unavailable
    # is the one RFC 6121 8.5.1 gives for an account that does not exist too.
    server, cs = start_server(server_factory, raw_factory)
    reply = cs["bob"].iq("get", f"<vCard xmlns='{NS}'/>", to=f"alice@{server.domain}")
    assert stanza_error_condition(reply)[1] == "service-unavailable"
    reply = cs["bob"].iq("get", f"<vCard xmlns='{NS}'/>", to=f"nobody@{server.domain}")
    assert stanza_error_condition(reply)[1] == "service-unavailable"


def test_max_bytes(server_factory, raw_factory):
    server, cs = start_server(server_factory, raw_factory, users=("alice",), max_bytes=200)
    alice = cs["alice"]
    big = f"<vCard xmlns='{NS}'><DESC>{'x' * 300}</DESC></vCard>"
    reply = alice.iq("set", big)
    assert stanza_error_condition(reply) == ("modify", "not-acceptable")
    small = f"<vCard xmlns='{NS}'><DESC>{'x' * 50}</DESC></vCard>"
    assert alice.iq("set", small).get("type") == "result"
    assert text(vcard(alice.iq("get", f"<vCard xmlns='{NS}'/>")), "DESC") == "x" * 50


def test_default_max_bytes_is_64k(server_factory, raw_factory):
    server, cs = start_server(server_factory, raw_factory, users=("alice",))
    alice = cs["alice"]
    ok = f"<vCard xmlns='{NS}'><PHOTO><BINVAL>{'A' * 60000}</BINVAL></PHOTO></vCard>"
    assert alice.iq("set", ok).get("type") == "result"
    too_big = f"<vCard xmlns='{NS}'><PHOTO><BINVAL>{'A' * 70000}</BINVAL></PHOTO></vCard>"
    assert stanza_error_condition(alice.iq("set", too_big))[1] == "not-acceptable"
    assert len(text(vcard(alice.iq("get", f"<vCard xmlns='{NS}'/>")), "PHOTO/BINVAL")) == 60000


def test_wrong_element_is_a_bad_request(server_factory, raw_factory):
    server, cs = start_server(server_factory, raw_factory, users=("alice",))
    reply = cs["alice"].iq("set", f"<vcard xmlns='{NS}'><FN>x</FN></vcard>")
    assert stanza_error_condition(reply)[1] == "bad-request"


def test_declares_its_disco_feature(server_factory, raw_factory):
    server, cs = start_server(server_factory, raw_factory, users=("alice",))
    info = cs["alice"].iq("get", f"<query xmlns='{DISCO}'/>", to=server.domain)
    assert NS in {f.get("var") for f in info.iter(q(DISCO, "feature"))}


def test_vcards_survive_a_restart(server_factory, raw_factory):
    server, cs = start_server(server_factory, raw_factory)
    assert cs["alice"].iq("set", PETER).get("type") == "result"
    bob_card = f"<vCard xmlns='{NS}'><FN>Bob</FN><NICKNAME>b&lt;o&gt;b</NICKNAME></vCard>"
    assert cs["bob"].iq("set", bob_card).get("type") == "result"
    server.restart()
    alice = login(server, raw_factory, "alice")
    card = vcard(alice.iq("get", f"<vCard xmlns='{NS}'/>"))
    assert text(card, "FN") == "Peter Saint-Andre"
    assert text(card, "ORG/ORGNAME") == "XMPP Standards Foundation"
    card = vcard(alice.iq("get", f"<vCard xmlns='{NS}'/>", to=f"bob@{server.domain}"))
    assert text(card, "NICKNAME") == "b<o>b"


def test_a_removed_account_loses_its_vcard(server_factory, raw_factory):
    server, cs = start_server(server_factory, raw_factory, users=("alice",))
    assert cs["alice"].iq("set", PETER).get("type") == "result"
    assert server.ctl("unregister", "alice", server.domain).returncode == 0
    server.register("alice", PASSWORD)
    alice = login(server, raw_factory, "alice")
    import time
    deadline = time.monotonic() + 10
    while True:  # the removal hook's delete is asynchronous
        card = vcard(alice.iq("get", f"<vCard xmlns='{NS}'/>"))
        if len(card) == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(card) == 0
