"""mod_vcard (XEP-0054 vcard-temp) against a running parleyd: the XEP's own
examples, every error case, and persistence across a restart, on both storage backends; the
move of the vCards, private XML and last activity a server kept in the
modules' own tables before the keyval store."""

import re
import sqlite3
import time
import xml.etree.ElementTree as ET

from conftest import PASSWORD
from rawxmpp import q, stanza_error_condition
from old_schemas import recreate_old_tables

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


def start_server(server_factory, raw_factory, users=("alice", "bob"), storage=None, **options):
    server = server_factory(modules={"mod_disco": {}, "mod_ping": {}, "mod_vcard": options}, storage=storage)
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


def test_vcards_survive_a_restart(server_factory, raw_factory, storage_backend):
    server, cs = start_server(server_factory, raw_factory, storage=storage_backend)
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


def test_a_removed_account_loses_its_vcard(server_factory, raw_factory, storage_backend):
    server, cs = start_server(server_factory, raw_factory, users=("alice",), storage=storage_backend)
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


def test_rows_of_the_old_tables_are_moved_into_the_keyval_store(server_factory, raw_factory):
    """A server whose mod_vcard, mod_private and mod_last kept their data in their own
    SQLite tables (the schema before the keyval store, which the modules still declare)
    serves it after the upgrade: moved into the keyval store at the first start, the old
    rows deleted; a value written since is never overwritten by an old row."""
    modules = {"mod_disco": {}, "mod_ping": {}, "mod_roster": {}, "mod_presence": {}, "mod_vcard": {},
               "mod_private": {}, "mod_last": {}}
    server = server_factory(modules=modules)
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    bob = login(server, raw_factory, "bob")
    # Written through the keyval store before the old rows appear: it must win.
    assert bob.iq("set", f"<vCard xmlns='{NS}'><FN>Bob now</FN></vCard>").get("type") == "result"
    bob.close()
    server.stop()
    db = sqlite3.connect(server.data_dir / "parley.db")
    recreate_old_tables(db, "mod_vcard_cards", "mod_private_items", "mod_last_activity")
    with db:
        db.executemany("INSERT INTO mod_vcard_cards (host, user, xml) VALUES (?, ?, ?)",
                       [(server.domain, "alice", PETER),
                        (server.domain, "bob", f"<vCard xmlns='{NS}'><FN>Bob then</FN></vCard>")])
        db.execute("INSERT INTO mod_private_items (host, user, ns, xml) VALUES (?, ?, ?, ?)",
                   (server.domain, "alice", "exodus:prefs",
                    "<query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'>"
                    "<defaultnick>Hamlet</defaultnick></exodus></query>"))
        db.execute("INSERT INTO mod_last_activity (host, user, seconds, status) VALUES (?, ?, ?, ?)",
                   (server.domain, "alice", int(time.time()) - 3600, "Gone: fishing"))
        # Another host's rows are not this instance's: left alone.
        db.execute("INSERT INTO mod_vcard_cards (host, user, xml) VALUES (?, ?, ?)",
                   ("elsewhere.example", "alice", "<vCard xmlns='vcard-temp'/>"))
    db.close()
    server.start()
    alice = login(server, raw_factory, "alice")  # bound, not available: mod_last reads the store
    card = vcard(alice.iq("get", f"<vCard xmlns='{NS}'/>"))
    assert text(card, "FN") == "Peter Saint-Andre"
    card = vcard(alice.iq("get", f"<vCard xmlns='{NS}'/>", to=f"bob@{server.domain}"))
    assert text(card, "FN") == "Bob now"
    reply = alice.iq("get", "<query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'/></query>")
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    assert reply.find(".//{exodus:prefs}defaultnick").text == "Hamlet"
    reply = alice.iq("get", "<query xmlns='jabber:iq:last'/>")
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    last = reply.find("{jabber:iq:last}query")
    assert last.text == "Gone: fishing" and 3590 <= int(last.get("seconds")) < 3700
    # The rows moved are deleted once in the store (after the answers above, which waited
    # for the move; the delete is on the main writer: poll, each look a fresh read), and
    # a table with no row left is dropped; one still holding another host's rows stays.
    deadline = time.monotonic() + 10
    while True:
        db = sqlite3.connect(server.data_dir / "parley.db")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        left = {table: db.execute(f"SELECT host, COUNT(*) FROM {table} GROUP BY host").fetchall()
                for table in ("mod_vcard_cards", "mod_private_items", "mod_last_activity") if table in tables}
        db.close()
        if left == {"mod_vcard_cards": [("elsewhere.example", 1)]} or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert left == {"mod_vcard_cards": [("elsewhere.example", 1)]}
    # A restart moves nothing again (the rows are gone) and keeps what was moved.
    server.restart()
    alice = login(server, raw_factory, "alice")
    assert text(vcard(alice.iq("get", f"<vCard xmlns='{NS}'/>")), "FN") == "Peter Saint-Andre"
    # One part per run: each stop logs an `event=stop` line (docs/operations.md), the two
    # stops so far make three parts (the move ran in the second, none in the third).
    runs = re.split(r"^.* event=stop$", server.log(), flags=re.M)
    assert len(runs) == 3, f"expected two stops in the log:\n{server.log()}"
    assert "mod_vcard: moving 2 rows into the keyval store" in runs[1]
    assert "mod_private: moving 1 rows into the keyval store" in runs[1]
    assert "mod_last: moving 1 rows into the keyval store" in runs[1]
    assert "into the keyval store" not in runs[-1]
