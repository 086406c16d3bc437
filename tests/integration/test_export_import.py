"""XEP-0227 export and import (parleyctl export / import, issue 11; docs/export_import.md).

A server on SQLite with two users holding a roster, a vCard, private XML, a blocklist and
offline messages is exported; a second server, on PostgreSQL, imports the file, and the
users log in there with their old passwords and find everything. Then: an account that
exists is skipped (or replaced with --replace); files in the shapes Prosody's and
ejabberd's exporters write (plain password, SCRAM-SHA-1 credentials, the namespace of
XEP-0227 before 1.1, XInclude'd host and user files) import; a malformed file names its
line and imports nothing; an account a module refuses is not half-imported. The message
archive (mod_mam) goes along as <archive xmlns='urn:xmpp:pie:0#mam'/> with its original
timestamps, also from a file written from XEP-0313's examples. An account larger than one
control request or answer (limits.max_account_part_bytes, 16 KiB here) moves in pieces:
its export streamed with a bounded backlog, its import in several requests, a refused
part removing what the earlier ones stored.
Two servers for the module."""

import base64
import hashlib
import hmac
import re
import socket
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD
from parley_harness import ParleyServer, required_binary
from rawxmpp import RawClient, q

PIE = "urn:xmpp:pie:0"
SCRAM = "urn:xmpp:pie:0#scram"
ROSTER = "jabber:iq:roster"
VCARD = "vcard-temp"
PRIVATE = "jabber:iq:private"
EXODUS = "exodus:prefs"
BLOCKING = "urn:xmpp:blocking"
DELAY = "urn:xmpp:delay"
CLIENT = "jabber:client"
PIE_MAM = "urn:xmpp:pie:0#mam"
MAM = "urn:xmpp:mam:2"
FORWARD = "urn:xmpp:forward:0"

# The archive kept forever: the fixtures' entries from 1469 and 2010 are not expired.
MODULES = {"mod_disco": {}, "mod_ping": {}, "mod_roster": {"max_pending_requests": 3}, "mod_presence": {},
           "mod_vcard": {},
           "mod_private": {}, "mod_offline": {}, "mod_blocking": {}, "mod_mam": {"archive_expires_after": "never"}}


# One request of an import, and the export bytes buffered for parleyctl: the smallest
# allowed, so that an account of a few hundred archived messages needs many.
PART_BYTES = 16384
RSM = "http://jabber.org/protocol/rsm"


def make_server(base_dir, name, storage=None):
    server = ParleyServer(base_dir, required_binary("PARLEYD"), required_binary("PARLEYCTL"), name=name,
                          modules=dict(MODULES), storage=storage, limits={"max_account_part_bytes": PART_BYTES})
    return server


def stop(server):
    code, killed = server.stop()
    assert not killed and code == 0, f"parleyd exited with {code}"
    assert not server.sanitizer_reports()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A SQLite server: alice (roster, vCard, private XML, blocklist) and bob (a vCard and
    two offline messages from alice), exported to a file."""
    server = make_server(tmp_path_factory.mktemp("source"), "source")
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    server.start()
    alice = RawClient(server.c2s_port)
    alice.login("alice", PASSWORD, resource="r")
    try:
        assert alice.iq("set", f"<query xmlns='{ROSTER}'><item jid='bob@localhost' name='Bob'>"
                               "<group>Friends</group></item></query>").get("type") == "result"
        assert alice.iq("set", f"<vCard xmlns='{VCARD}'><FN>Alice Liddell</FN></vCard>").get("type") == "result"
        assert alice.iq("set", f"<query xmlns='{PRIVATE}'><exodus xmlns='{EXODUS}'>"
                               "<defaultnick>Al</defaultnick></exodus></query>").get("type") == "result"
        assert alice.iq("set", f"<block xmlns='{BLOCKING}'><item jid='spam@example.org'/></block>"
                        ).get("type") == "result"
        # bob has no session: mod_offline keeps them (immediate durability: alice's
        # stream waits for the commit, so the sync's answer comes after both are stored).
        alice.message("bob@localhost", "first while you were away")
        alice.message("bob@localhost", "second <&> one")
        alice.sync()
    finally:
        alice.abort()
    bob = RawClient(server.c2s_port)
    bob.login("bob", PASSWORD, resource="r")  # no presence: the messages stay stored
    try:
        assert bob.iq("set", f"<vCard xmlns='{VCARD}'><FN>Bob</FN></vCard>").get("type") == "result"
    finally:
        bob.abort()
    export = server.dir / "export.xml"
    result = server.ctl("export", str(export))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "exported 2 accounts" in result.stdout
    yield server, export
    stop(server)


@pytest.fixture(scope="module")
def target(tmp_path_factory, postgres):
    """An empty server on PostgreSQL, the other backend."""
    storage = {"type": "postgresql", "url": postgres.create_database(), "max_connections": 4}
    server = make_server(tmp_path_factory.mktemp("target"), "target", storage=storage)
    server.start()
    yield server
    stop(server)


def users_of(root):
    return {u.get("name"): u for u in root.iter(q(PIE, "user"))}


def login(server, user, password=PASSWORD, mechanism="PLAIN", presence=False):
    c = RawClient(server.c2s_port)
    c.login(user, password, resource="imported", mechanism=mechanism, presence=presence)
    return c


def roster_items(client):
    reply = client.iq("get", f"<query xmlns='{ROSTER}'/>")
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    return reply.find(q(ROSTER, "query")).findall(q(ROSTER, "item"))


def vcard_fn(client):
    reply = client.iq("get", f"<vCard xmlns='{VCARD}'/>")
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    return reply.find(q(VCARD, "vCard")).findtext(q(VCARD, "FN"))


def mam_query(client, fields=""):
    """The archive as (stamp, from, to, body) of each result, oldest first."""
    stanza_id = client.new_id()
    client.send(f"<iq type='set' id='{stanza_id}'><query xmlns='{MAM}' queryid='x'>{fields}</query></iq>")
    results = []
    while True:
        e = client.next_element()
        if e.tag == q(CLIENT, "iq") and e.get("id") == stanza_id:
            assert e.get("type") == "result", ET.tostring(e, "unicode")
            return results
        result = e.find(q(MAM, "result")) if e.tag == q(CLIENT, "message") else None
        if result is not None:
            client.last_mam_id = result.get("id")
            fwd = result.find(q(FORWARD, "forwarded"))
            m = fwd.find(q(CLIENT, "message"))
            results.append((fwd.find(q(DELAY, "delay")).get("stamp"), m.get("from"), m.get("to"),
                            m.findtext(q(CLIENT, "body"))))


def archive_of(user_el):
    """(stamp, from, to, body) of each <result/> of a <user/>'s archive, in order."""
    out = []
    for result in user_el.find(q(PIE_MAM, "archive")).findall(q(MAM, "result")):
        assert result.get("id")
        fwd = result.find(q(FORWARD, "forwarded"))
        m = fwd.find(q(CLIENT, "message"))
        out.append((fwd.find(q(DELAY, "delay")).get("stamp"), m.get("from"), m.get("to"), m.findtext(q(CLIENT, "body"))))
    return out


def test_export_is_xep0227_with_every_modules_data(source):
    _, export = source
    root = ET.parse(export).getroot()
    assert root.tag == q(PIE, "server-data")
    (host,) = root.findall(q(PIE, "host"))
    assert host.get("jid") == "localhost"
    users = users_of(root)
    assert set(users) == {"alice", "bob"}
    alice, bob = users["alice"], users["bob"]
    # The credentials as SCRAM records (XEP-0227 1.1), never the password.
    assert alice.get("password") is None
    mechs = {c.get("mechanism"): c for c in alice.findall(q(SCRAM, "scram-credentials"))}
    assert set(mechs) == {"SCRAM-SHA-1", "SCRAM-SHA-256"}
    assert len(base64.b64decode(mechs["SCRAM-SHA-256"].findtext(q(SCRAM, "stored-key")))) == 32
    assert int(mechs["SCRAM-SHA-1"].findtext(q(SCRAM, "iter-count"))) >= 4096
    (item,) = alice.find(q(ROSTER, "query")).findall(q(ROSTER, "item"))
    assert (item.get("jid"), item.get("name"), item.findtext(q(ROSTER, "group"))) == ("bob@localhost", "Bob", "Friends")
    assert alice.find(q(VCARD, "vCard")).findtext(q(VCARD, "FN")) == "Alice Liddell"
    assert [i.get("jid") for i in alice.find(q(BLOCKING, "blocklist"))] == ["spam@example.org"]
    exodus = alice.find(q(PRIVATE, "query")).find(q(EXODUS, "exodus"))
    assert exodus.findtext(q(EXODUS, "defaultnick")) == "Al"
    messages = bob.find(q(PIE, "offline-messages")).findall(q(CLIENT, "message"))
    assert [m.findtext(q(CLIENT, "body")) for m in messages] == ["first while you were away", "second <&> one"]
    assert all(m.find(q(DELAY, "delay")) is not None for m in messages)
    assert bob.find(q(VCARD, "vCard")).findtext(q(VCARD, "FN")) == "Bob"
    # The archive (mod_mam): alice's two messages in both archives, with their stamps.
    bodies = ["first while you were away", "second <&> one"]
    for user in (alice, bob):
        entries = archive_of(user)
        assert [e[3] for e in entries] == bodies
        assert all(e[0].endswith("Z") and e[2] == "bob@localhost" for e in entries)
    assert all(e[1].startswith("alice@localhost/") for e in archive_of(bob))


def test_import_into_the_other_backend_keeps_passwords_and_data(source, target):
    _, export = source
    result = target.ctl("import", str(export))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 imported, 0 skipped, 0 failed" in result.stdout
    assert "imported alice@localhost: 2 SCRAM records" in result.stdout

    alice = login(target, "alice")  # PLAIN: checked against the imported SCRAM-SHA-256 record
    try:
        (item,) = roster_items(alice)
        assert (item.get("jid"), item.get("name"), item.get("subscription")) == ("bob@localhost", "Bob", "none")
        assert [g.text for g in item.findall(q(ROSTER, "group"))] == ["Friends"]
        assert vcard_fn(alice) == "Alice Liddell"
        reply = alice.iq("get", f"<query xmlns='{PRIVATE}'><exodus xmlns='{EXODUS}'/></query>")
        assert reply.find(q(PRIVATE, "query")).find(q(EXODUS, "exodus")).findtext(q(EXODUS, "defaultnick")) == "Al"
        reply = alice.iq("get", f"<blocklist xmlns='{BLOCKING}'/>")
        assert [i.get("jid") for i in reply.find(q(BLOCKING, "blocklist"))] == ["spam@example.org"]
        # The archive on PostgreSQL, under the timestamps it had on SQLite.
        exported = archive_of(users_of(ET.parse(export).getroot())["alice"])
        assert mam_query(alice) == exported
        assert mam_query(alice, "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
                                f"<value>{MAM}</value></field><field var='with'><value>bob@localhost</value>"
                                "</field></x>") == exported
    finally:
        alice.abort()
    bob = login(target, "bob", mechanism="SCRAM-SHA-1")
    try:
        bob.send("<presence/>")
        first = bob.expect_message("first while you were away")
        assert first.find(q(DELAY, "delay")) is not None
        bob.expect_message("second <&> one")
        assert vcard_fn(bob) == "Bob"
    finally:
        bob.abort()


def test_an_existing_account_is_skipped_or_replaced(source, target):
    _, export = source
    if "alice" not in accounts(target):  # the import test ran first, or not
        target.register("alice", PASSWORD)
    result = target.ctl("import", str(export))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped alice@localhost: the account exists" in result.stdout
    result = target.ctl("import", "--replace", str(export))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 imported, 0 skipped, 0 failed" in result.stdout
    alice = login(target, "alice")
    try:
        # Replaced, not added to: one roster item, as in the file.
        assert len(roster_items(alice)) == 1
    finally:
        alice.abort()


def scram_sha1(password, salt, iterations):
    salted = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha1).digest()
    return hashlib.sha1(client_key).digest(), server_key


def prosody_user(name, password):
    """A <user/> as Prosody's mod_storage_xep0227 writes one: SCRAM-SHA-1 credentials only."""
    salt = b"prosody-salt-123"
    stored, server = scram_sha1(password, salt, 4096)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return (f"<user name='{name}'>"
            f"<scram-credentials xmlns='{SCRAM}' mechanism='SCRAM-SHA-1'><iter-count>4096</iter-count>"
            f"<salt>{b64(salt)}</salt><server-key>{b64(server)}</server-key><stored-key>{b64(stored)}</stored-key>"
            "</scram-credentials>"
            f"<query xmlns='{ROSTER}'><item jid='juliet@localhost' name='Juliet' subscription='both'>"
            "<group>Capulets</group></item></query>"
            "</user>")


def test_files_shaped_as_prosody_and_ejabberd_write_them_import(tmp_path, target):
    # ejabberd's export_piefxis with a directory: a main file, a host file and a user
    # file joined by XInclude (XEP-0227 section 4), a plain password, the XEP's examples.
    (tmp_path / "localhost").mkdir()
    (tmp_path / "main.xml").write_text(
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f"<server-data xmlns='{PIE}' xmlns:xi='http://www.w3.org/2001/XInclude'>\n"
        "  <xi:include href='localhost.xml'/>\n"
        "</server-data>\n")
    (tmp_path / "localhost.xml").write_text(
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f"<host xmlns='{PIE}' xmlns:xi='http://www.w3.org/2001/XInclude' jid='localhost'>\n"
        "  <xi:include href='localhost/juliet.xml'/>\n"
        "</host>\n")
    (tmp_path / "localhost" / "juliet.xml").write_text(
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f"<user xmlns='{PIE}' name='juliet' password='s3crEt'>\n"
        "  <query xmlns='jabber:iq:roster'>\n"
        "    <item jid='romeo@localhost' name='Romeo' subscription='both'><group>Friends</group></item>\n"
        "  </query>\n"
        "  <vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN></vCard>\n"
        "  <query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'><defaultnick>Jule</defaultnick></exodus>"
        "</query>\n"
        "  <offline-messages>\n"
        "    <message xmlns='jabber:client' from='romeo@montague.net/orchard' to='juliet@localhost/balcony'"
        " type='chat'>\n"
        "      <body>Neither, fair saint, if either thee dislike.</body>\n"
        "      <delay xmlns='urn:xmpp:delay' from='capulet.com' stamp='1469-07-21T00:32:29Z'>Offline Storage</delay>\n"
        "    </message>\n"
        "  </offline-messages>\n"
        # The archive as XEP-0227 1.1 has it: XEP-0313's <result/>s (its example 3's shape).
        "  <archive xmlns='urn:xmpp:pie:0#mam'>\n"
        "    <result xmlns='urn:xmpp:mam:2' id='28482-98726-73623'>\n"
        "      <forwarded xmlns='urn:xmpp:forward:0'>\n"
        "        <delay xmlns='urn:xmpp:delay' stamp='2010-07-10T23:08:25Z'/>\n"
        "        <message xmlns='jabber:client' from='romeo@localhost/orchard' to='juliet@localhost/balcony'"
        " type='chat'><body>Hail to thee</body></message>\n"
        "      </forwarded>\n"
        "    </result>\n"
        "    <result xmlns='urn:xmpp:mam:2' id='09af3-cc343-b409f'>\n"
        "      <forwarded xmlns='urn:xmpp:forward:0'>\n"
        "        <delay xmlns='urn:xmpp:delay' stamp='2010-07-10T23:09:32Z'/>\n"
        "        <message xmlns='jabber:client' from='juliet@localhost/balcony' to='romeo@localhost/orchard'"
        " type='chat'><body>And to thee</body></message>\n"
        "      </forwarded>\n"
        "    </result>\n"
        "    <result xmlns='urn:xmpp:mam:2' id='no-stamp'><forwarded xmlns='urn:xmpp:forward:0'>"
        "<message xmlns='jabber:client' from='romeo@localhost' to='juliet@localhost'><body>?</body></message>"
        "</forwarded></result>\n"
        "  </archive>\n"
        "</user>\n")
    result = target.ctl("import", str(tmp_path / "main.xml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "imported juliet@localhost: password, " in result.stdout
    assert "2 archived messages (1 skipped: no message or no valid stamp)" in result.stdout, result.stdout
    # Prosody's shape, in the namespace of XEP-0227 before 1.1 as older exporters wrote it.
    prosody = tmp_path / "prosody.xml"
    prosody.write_text("<?xml version='1.0' encoding='UTF-8'?>\n"
                       "<server-data xmlns='http://www.xmpp.org/extensions/xep-0227.html#ns'>"
                       f"<host jid='localhost'>{prosody_user('romeo', 'wherefore')}</host></server-data>\n")
    result = target.ctl("import", str(prosody))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "imported romeo@localhost: 1 SCRAM records, 1 roster item" in result.stdout

    juliet = login(target, "juliet", password="s3crEt")
    try:
        juliet.send("<presence/>")
        message = juliet.expect_message("Neither, fair saint, if either thee dislike.")
        assert message.find(q(DELAY, "delay")).get("stamp") == "1469-07-21T00:32:29Z"
        (item,) = roster_items(juliet)
        assert (item.get("jid"), item.get("subscription")) == ("romeo@localhost", "both")
        assert vcard_fn(juliet) == "Juliet Capulet"
        # The archive, under its original times; 'with' is the other party both ways.
        assert mam_query(juliet) == [
            ("2010-07-10T23:08:25.000Z", "romeo@localhost/orchard", "juliet@localhost/balcony", "Hail to thee"),
            ("2010-07-10T23:09:32.000Z", "juliet@localhost/balcony", "romeo@localhost/orchard", "And to thee")]
        assert len(mam_query(juliet, "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
                                     f"<value>{MAM}</value></field><field var='with'><value>romeo@localhost</value>"
                                     "</field><field var='end'><value>2010-07-10T23:09:00Z</value></field></x>")) == 1
    finally:
        juliet.abort()
    romeo = login(target, "romeo", password="wherefore", mechanism="SCRAM-SHA-1")
    try:
        (item,) = roster_items(romeo)
        assert (item.get("jid"), item.get("name")) == ("juliet@localhost", "Juliet")
    finally:
        romeo.abort()


def test_pending_subscription_requests_move_as_prosody_writes_them(tmp_path, target):
    # Prosody's mod_storage_xep0227 keeps a user's unanswered inbound subscription requests
    # as <presence type='subscribe'/> children of the <user/> (XEP-0227 has no place for
    # them). Imported, they reach the user at its initial presence (RFC 6121 3.1.3), as
    # they would have on the old server, and they are exported the same way.
    pending = tmp_path / "pending.xml"
    pending.write_text(
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f"<server-data xmlns='{PIE}'><host jid='localhost'><user name='portia' password='belmont'>"
        f"<query xmlns='{ROSTER}'><item jid='bassanio@localhost' subscription='none'/>"
        "<item jid='nerissa@localhost' subscription='from'/></query>"
        f"<presence xmlns='{CLIENT}' from='bassanio@localhost' to='portia@localhost' type='subscribe'>"
        "<status>It is I</status></presence>"
        # A full JID, not prepared: stored under the prepared bare JID.
        f"<presence xmlns='{CLIENT}' from='Morocco@LOCALHOST/tent' type='subscribe'/>"
        # Moot: nerissa has a subscription from portia already (never pending, 3.1.3).
        f"<presence xmlns='{CLIENT}' from='nerissa@localhost' type='subscribe'/>"
        # Not requests: another type, another namespace.
        f"<presence xmlns='{CLIENT}' from='arragon@localhost' type='subscribed'/>"
        "<presence xmlns='urn:example' from='jessica@localhost' type='subscribe'/>"
        "</user></host></server-data>\n")
    result = target.ctl("import", str(pending))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "imported portia@localhost: password, 2 roster items, 2 pending subscription requests" in result.stdout, \
        result.stdout
    portia = login(target, "portia", password="belmont")
    try:
        portia.send("<presence/>")
        requests = {}
        while len(requests) < 2:
            p = portia.expect(q(CLIENT, "presence"), match=lambda e: e.get("type") == "subscribe")
            requests[p.get("from")] = p
        assert set(requests) == {"bassanio@localhost", "morocco@localhost"}
        assert requests["bassanio@localhost"].findtext(q(CLIENT, "status")) == "It is I"
    finally:
        portia.abort()
    user = export_user(target, "portia", tmp_path / "portia.xml")
    exported = {(p.get("from"), p.get("to"), p.get("type"), p.findtext(q(CLIENT, "status")))
                for p in user.findall(q(CLIENT, "presence"))}
    assert exported == {("bassanio@localhost", "portia@localhost", "subscribe", "It is I"),
                        ("morocco@localhost", "portia@localhost", "subscribe", None)}


def test_pending_subscription_requests_beyond_the_limit_refuse_the_account(tmp_path, target):
    requests = "".join(f"<presence xmlns='{CLIENT}' from='suitor{i}@localhost' type='subscribe'/>" for i in range(4))
    f = tmp_path / "many.xml"
    f.write_text(f"<server-data xmlns='{PIE}'><host jid='localhost'><user name='nerissa' password='x'>"
                 f"{requests}</user></host></server-data>")
    result = target.ctl("import", str(f))
    assert result.returncode != 0
    assert "nerissa@localhost: mod_roster: the pending subscription requests exceed max_pending_requests (3)" \
        in result.stderr, result.stderr
    assert "nerissa" not in accounts(target)


def accounts(server):
    ok, body = server.control("list-users", "localhost")
    assert ok, body
    return set(body.split())


def test_a_malformed_file_names_its_line_and_imports_nothing(tmp_path, target):
    bad = tmp_path / "bad.xml"
    bad.write_text("<?xml version='1.0'?>\n"
                   f"<server-data xmlns='{PIE}'>\n"
                   "  <host jid='localhost'>\n"
                   "    <user name='early' password='pw1'/>\n"
                   "    <user name='broken' password='pw2'>\n"
                   "      <vCard xmlns='vcard-temp'><FN>x</vCard>\n"
                   "    </user>\n"
                   "  </host>\n"
                   "</server-data>\n")
    result = target.ctl("import", str(bad))
    assert result.returncode == 1
    assert "line 6" in result.stderr and "mismatched tag" in result.stderr, result.stderr
    assert not {"early", "broken"} & accounts(target)


def test_an_account_a_module_refuses_is_not_half_imported(tmp_path, target):
    # mod_vcard stores the vCard; mod_roster refuses the roster (an item's JID is not a
    # JID): the account goes again, with the vCard (USER_REMOVED); the next one imports.
    mixed = tmp_path / "mixed.xml"
    mixed.write_text(f"<server-data xmlns='{PIE}'><host jid='localhost'>"
                     "<user name='halfway' password='pw'>"
                     "<vCard xmlns='vcard-temp'><FN>Half</FN></vCard>"
                     "<query xmlns='jabber:iq:roster'><item jid='a@b@c' subscription='none'/></query>"
                     "</user>"
                     "<user name='fine' password='pw'><vCard xmlns='vcard-temp'><FN>Fine</FN></vCard></user>"
                     "</host></server-data>")
    result = target.ctl("import", str(mixed))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "halfway@localhost: mod_roster: roster item 'a@b@c'" in result.stderr, result.stderr
    assert "the account was not imported" in result.stderr
    assert "1 imported, 0 skipped, 1 failed" in result.stdout
    names = accounts(target)
    assert "fine" in names and "halfway" not in names
    # Created again by hand, the name has no vCard left from the failed import.
    target.register("halfway", PASSWORD)
    c = login(target, "halfway")
    try:
        reply = c.iq("get", f"<vCard xmlns='{VCARD}'/>")
        assert reply.find(q(VCARD, "vCard")).find(q(VCARD, "FN")) is None
    finally:
        c.abort()


def test_export_of_one_user_and_a_round_trip(source, tmp_path):
    server, _ = source
    one = tmp_path / "alice.xml"
    result = server.ctl("export", "--host", "localhost", "--user", "alice", str(one))
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(users_of(ET.parse(one).getroot())) == {"alice"}
    result = server.ctl("export", "--host", "localhost", "--user", "nobody", str(tmp_path / "x.xml"))
    assert result.returncode == 1 and "no account nobody@localhost" in result.stderr
    assert not (tmp_path / "x.xml").exists() and not (tmp_path / "x.xml.part").exists()


def test_what_the_other_backend_imported_exports_the_same(source, target, tmp_path):
    # PostgreSQL's side of the stores (keyval_list, map_get) and the roster read back: the
    # export of alice from the target matches the source's, credentials included.
    _, export = source
    if "alice" not in accounts(target):
        assert target.ctl("import", str(export)).returncode == 0
    again = tmp_path / "again.xml"
    result = target.ctl("export", "--host", "localhost", "--user", "alice", str(again))
    assert result.returncode == 0, result.stdout + result.stderr
    before = users_of(ET.parse(export).getroot())["alice"]
    after = users_of(ET.parse(again).getroot())["alice"]
    canon = lambda e: ET.canonicalize(ET.tostring(e, "unicode"), strip_text=True)  # noqa: E731
    for tag in (q(SCRAM, "scram-credentials"), q(ROSTER, "query"), q(VCARD, "vCard"), q(PRIVATE, "query"),
                q(BLOCKING, "blocklist")):
        assert [canon(e) for e in before.findall(tag)] == [canon(e) for e in after.findall(tag)], tag
    # The archive's entries come back the same (stamps, parties, bodies); the ids are the
    # new archive's.
    assert archive_of(after) == archive_of(before)


def big_user(name, entries, after=""):
    """A <user/> whose archive is larger than many requests: `entries` messages with
    their stamps, one a minute from 2021-03-04, then `after` (more children)."""
    results = []
    for i in range(entries):
        stamp = f"2021-03-04T{i // 60 % 24:02d}:{i % 60:02d}:07Z"
        frm, to = (f"{name}@localhost/desk", "erin@localhost") if i % 3 else ("erin@localhost/pad", f"{name}@localhost")
        body = f"message {i} &lt;&amp;&gt; " + "x" * (i % 97)
        results.append(f"<result xmlns='{MAM}' id='old-{i}'><forwarded xmlns='{FORWARD}'>"
                       f"<delay xmlns='{DELAY}' stamp='{stamp}'/><message xmlns='{CLIENT}' from='{frm}' to='{to}'"
                       f" type='chat'><body>{body}</body></message></forwarded></result>\n")
    return (f"<user name='{name}' password='big-pw'><vCard xmlns='{VCARD}'><FN>{name}</FN></vCard>"
            f"<archive xmlns='{PIE_MAM}'>\n{''.join(results)}</archive>{after}</user>")


def pie_file(path, *users):
    path.write_text(f"<?xml version='1.0'?>\n<server-data xmlns='{PIE}'><host jid='localhost'>"
                    + "".join(users) + "</host></server-data>\n")
    return path


def mam_all(client):
    """Every entry of the archive as mam_query gives them, a page (RSM) at a time."""
    out, after = [], ""
    while True:
        page = mam_query(client, f"<set xmlns='{RSM}'><max>100</max>{after}</set>")
        out += page
        if len(page) < 100:
            return out
        after = f"<after>{last_id(client)}</after>"


def last_id(client):
    return client.last_mam_id


def imported_line(stdout, user):
    (line,) = [l for l in stdout.splitlines() if l.startswith(f"imported {user}@")]
    return line


def export_user(server, user, path):
    """`parleyctl export` of one account of localhost to `path`: its <user/> element."""
    result = server.ctl("export", "--host", "localhost", "--user", user, str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    return users_of(ET.parse(path).getroot())[user]


def export_buffering(server, user):
    """What the server's log says of the export of `user`: (bytes sent, the most it buffered)."""
    (line,) = [l for l in server.log().splitlines() if "event=account_exported" in l and f"{user}@localhost" in l]
    return int(re.search(r"bytes=(\d+)", line).group(1)), int(re.search(r"peak_buffered=(\d+)", line).group(1)), line


def test_an_archive_larger_than_one_request_round_trips(source, target, tmp_path):
    # 600 archived messages (~200 KB): imported into SQLite in parts, exported in pieces
    # (no more than about one bound and one page of the archive buffered in the server),
    # imported into PostgreSQL in parts, every message with its stamp.
    server, _ = source
    entries = 600
    original = pie_file(tmp_path / "big.xml", big_user("carol", entries))
    assert original.stat().st_size > 10 * PART_BYTES
    result = server.ctl("import", str(original))
    assert result.returncode == 0, result.stdout + result.stderr
    line = imported_line(result.stdout, "carol")
    assert line.startswith("imported carol@localhost: password, ") and "vCard" in line, line
    requests = re.search(r"600 archived messages.* \(in (\d+) requests\)$", line)
    assert requests and int(requests.group(1)) >= 10, line

    export = tmp_path / "carol.xml"
    exported = export_user(server, "carol", export)
    entries_out = archive_of(exported)
    assert len(entries_out) == entries
    assert [e[0][:19] for e in entries_out] == [f"2021-03-04T{i // 60 % 24:02d}:{i % 60:02d}:07" for i in range(entries)]
    assert entries_out[5][3] == "message 5 <&> xxxxx"
    assert exported.find(q(VCARD, "vCard")).findtext(q(VCARD, "FN")) == "carol"
    # The server never held the account: what it buffered for parleyctl stayed under a
    # fraction of it (the bound, a page of the archive, a piece on its way).
    sent, peak, line = export_buffering(server, "carol")
    assert sent > 150000 and peak < sent // 2, line

    result = target.ctl("import", str(export))
    assert result.returncode == 0, result.stdout + result.stderr
    line = imported_line(result.stdout, "carol")
    assert line.startswith("imported carol@localhost: 2 SCRAM records, ") and "vCard" in line, line
    assert re.search(r"600 archived messages.* \(in \d+ requests\)$", line), line
    carol = login(target, "carol", password="big-pw")
    try:
        assert mam_all(carol) == entries_out
    finally:
        carol.abort()


def test_offline_messages_larger_than_one_request_round_trip(source, target, tmp_path):
    # 600 stored messages (~100 KB; mod_offline's default quota is 1,000): exported a
    # batch at a time as parleyctl reads, so the server never holds the whole queue's
    # export (until session 20 it added all of them at once), and imported whole.
    server, _ = source
    count = 600
    messages = "".join(
        f"<message xmlns='{CLIENT}' from='erin@localhost/pad' to='gwen@localhost' type='chat'>"
        f"<body>queued {i} &lt;&amp;&gt; {'y' * (i % 89)}</body>"
        f"<delay xmlns='{DELAY}' from='localhost' stamp='2022-05-06T{i // 60 % 24:02d}:{i % 60:02d}:11Z'/></message>\n"
        for i in range(count))
    original = pie_file(tmp_path / "queued.xml",
                        f"<user name='gwen' password='big-pw'><offline-messages>\n{messages}</offline-messages></user>")
    assert original.stat().st_size > 5 * PART_BYTES
    result = server.ctl("import", str(original))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{count} offline messages" in imported_line(result.stdout, "gwen")

    export = tmp_path / "gwen.xml"
    exported = export_user(server, "gwen", export)
    bodies = [m.findtext(q(CLIENT, "body")) for m in exported.find(q(PIE, "offline-messages"))]
    assert bodies == [f"queued {i} <&> {'y' * (i % 89)}" for i in range(count)]
    sent, peak, line = export_buffering(server, "gwen")
    assert sent > 5 * PART_BYTES and peak < sent // 2, line

    result = target.ctl("import", str(export))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{count} offline messages" in imported_line(result.stdout, "gwen")
    back = export_user(target, "gwen", tmp_path / "gwen-again.xml")
    assert [m.findtext(q(CLIENT, "body")) for m in back.find(q(PIE, "offline-messages"))] == bodies


def test_credentials_after_a_large_archive_are_imported(tmp_path, target):
    # XEP-0227 puts no order on a <user/>'s children: SCRAM credentials after more than
    # a request's worth of archive come in a later part, and are stored then (until
    # session 15 only the first part's were read: the account came without them).
    salt = b"late-salt-123456"
    stored, server_key = scram_sha1("late-pw", salt, 4096)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    creds = (f"<scram-credentials xmlns='{SCRAM}' mechanism='SCRAM-SHA-1'><iter-count>4096</iter-count>"
             f"<salt>{b64(salt)}</salt><server-key>{b64(server_key)}</server-key>"
             f"<stored-key>{b64(stored)}</stored-key></scram-credentials>")
    user = big_user("hazel", 300, after=creds).replace(" password='big-pw'", "", 1)
    late = pie_file(tmp_path / "late.xml", user)
    result = target.ctl("import", str(late))
    assert result.returncode == 0, result.stdout + result.stderr
    line = imported_line(result.stdout, "hazel")
    assert line.startswith("imported hazel@localhost: 1 SCRAM records, "), line
    assert re.search(r"300 archived messages.* \(in \d+ requests\)$", line), line
    hazel = login(target, "hazel", password="late-pw", mechanism="SCRAM-SHA-1")
    hazel.abort()
    # The same mechanism twice, once in each part: refused, and nothing is left.
    twice = pie_file(tmp_path / "twice.xml", big_user("iris", 300, after=creds).replace(" password='big-pw'>", ">" + creds, 1))
    result = target.ctl("import", str(twice))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "iris@localhost: two SCRAM-SHA-1 credentials" in result.stderr, result.stderr
    assert "iris" not in accounts(target)


def test_a_refused_part_of_a_large_account_leaves_nothing(tmp_path, target):
    # The roster after the archive comes in the last request; mod_roster refuses it: the
    # account goes again, with the archive the earlier requests stored; the next account
    # of the file imports.
    bad_roster = f"<query xmlns='{ROSTER}'><item jid='a@b@c' subscription='none'/></query>"
    mixed = pie_file(tmp_path / "refused.xml", big_user("frank", 300, after=bad_roster),
                     "<user name='grace' password='pw'/>")
    result = target.ctl("import", str(mixed))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "frank@localhost: mod_roster: roster item 'a@b@c'" in result.stderr, result.stderr
    assert "the account was not imported" in result.stderr
    assert "1 imported, 0 skipped, 1 failed" in result.stdout
    names = accounts(target)
    assert "grace" in names and "frank" not in names
    target.register("frank", PASSWORD)
    c = login(target, "frank")
    try:
        assert mam_all(c) == []
        assert vcard_fn(c) is None
    finally:
        c.abort()


def test_an_import_cut_off_before_its_last_part_leaves_nothing(target):
    # parleyctl gone after the first part (its connection closed, as a killed parleyctl's
    # is): the server removes the account with what that part stored.
    doc = (f"<server-data xmlns='{PIE}'><host jid='localhost'><user name='henry' password='pw'>"
           f"<vCard xmlns='{VCARD}'><FN>Henry</FN></vCard></user></host></server-data>")
    request = b"".join(b"%d:%s," % (len(a), a) for a in (x.encode() for x in ("import-user", doc, "--parts"))) + b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(target.config["control_socket"])
        s.sendall(request)
        answer = b""
        while answer.count(b"\n") < 2:
            chunk = s.recv(4096)
            assert chunk, answer
            answer += chunk
        assert answer == b"continue\npart 1 of henry@localhost imported\n", answer
        assert "henry" in accounts(target)
    deadline = time.monotonic() + 30  # a safety net: the removal follows the close at once
    while "henry" in accounts(target):
        assert time.monotonic() < deadline, "the account of a cut-off import is still there"
        time.sleep(0.02)
    target.register("henry", PASSWORD)
    c = login(target, "henry")
    try:
        assert vcard_fn(c) is None
    finally:
        c.abort()
