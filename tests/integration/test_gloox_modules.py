"""The server modules driven by gloox's own protocol classes (not raw XML):
VCardManager (XEP-0054 mod_vcard), PrivateXML (XEP-0049 mod_private),
LastActivity (XEP-0012 mod_last), Registration (XEP-0077 mod_register) and an
iq carrying gloox's SoftwareVersion extension (XEP-0092 mod_version).

The exact XML and every error case are in test_mod_*.py (raw client); these
tests show that a real client library's requests and parsers agree with the
server. The command language is in gloox/main.cpp's usage()."""

import time
import xml.etree.ElementTree as ET

from conftest import PASSWORD
from gloox_driver import EXIT_AUTH, EXIT_LOST, EXIT_OK, EXIT_REGISTRATION
from rawxmpp import q


def gloox_login_exit(gloox_factory, server, user, password, resource="check"):
    """Exit code of a gloox client that logs in and quits at once (0 or EXIT_AUTH)."""
    client = gloox_factory(server, user, resource, password=password, commands=["quit"])
    return client.wait_exit()


def online(gloox_factory, server, user, resource="gloox", *args, **kwargs):
    client = gloox_factory(server, user, resource, *args, **kwargs)
    client.connected()
    return client


# -- XEP-0054 vcard-temp: gloox::VCardManager ---------------------------------------

VCARD_MODULES = {"mod_disco": {}, "mod_ping": {}, "mod_vcard": {}}


def test_vcard_store_own_and_fetch_it_back(server_factory, gloox_factory, raw_factory):
    server = server_factory(modules=dict(VCARD_MODULES))
    server.register("alice", PASSWORD)
    alice = online(gloox_factory, server, "alice")
    # Nothing stored yet: an empty vCard, which gloox parses into an empty VCard.
    alice.cmd("vcard-get")
    got = alice.wait_for("VCARD-GET", jid="self")
    assert (got["result"], got["nick"], got["name"]) == ("ok", "-", ""), got
    alice.cmd("vcard-set stpeter Peter Saint-Andre")
    assert alice.wait_for("VCARD-SET")["result"] == "ok"
    alice.cmd("vcard-get")
    got = alice.wait_for("VCARD-GET", jid="self")
    assert (got["result"], got["nick"], got["name"]) == ("ok", "stpeter", "Peter Saint-Andre"), got
    # At the own bare JID too.
    alice.cmd(f"vcard-get alice@{server.domain}")
    got = alice.wait_for("VCARD-GET", jid=f"alice@{server.domain}")
    assert (got["result"], got["nick"]) == ("ok", "stpeter"), got
    assert alice.quit() == EXIT_OK
    # What gloox stored is a vcard-temp element with FN and NICKNAME.
    raw = raw_factory(server.c2s_port)
    raw.login("alice", PASSWORD, resource="raw")
    reply = raw.iq("get", "<vCard xmlns='vcard-temp'/>")
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    card = reply.find(q("vcard-temp", "vCard"))
    assert card.find(q("vcard-temp", "FN")).text == "Peter Saint-Andre"
    assert card.find(q("vcard-temp", "NICKNAME")).text == "stpeter"


def test_vcard_fetch_another_users(server_factory, gloox_factory):
    server = server_factory(modules=dict(VCARD_MODULES))
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    bob = online(gloox_factory, server, "bob")
    # alice has none yet (XEP-0054 3.3), and nobody is no account at all.
    bob.cmd(f"vcard-get alice@{server.domain}")
    got = bob.wait_for("VCARD-GET", jid=f"alice@{server.domain}")
    assert got["result"] == "error:service-unavailable", got
    bob.cmd(f"vcard-get nobody@{server.domain}")
    got = bob.wait_for("VCARD-GET", jid=f"nobody@{server.domain}")
    assert got["result"] == "error:service-unavailable", got

    alice = online(gloox_factory, server, "alice")
    alice.cmd("vcard-set al Alice Liddell")
    assert alice.wait_for("VCARD-SET")["result"] == "ok"
    bob.cmd(f"vcard-get alice@{server.domain}")
    got = bob.wait_for("VCARD-GET", jid=f"alice@{server.domain}")
    # The server answers for alice, from her bare JID.
    assert got["from"] == f"alice@{server.domain}"
    assert (got["result"], got["nick"], got["name"]) == ("ok", "al", "Alice Liddell"), got
    # Storing replaces the whole vCard: no NICKNAME now.
    alice.cmd("vcard-set - Alice P. Liddell")
    assert alice.wait_for("VCARD-SET")["result"] == "ok"
    bob.cmd(f"vcard-get alice@{server.domain}")
    got = bob.wait_for("VCARD-GET", jid=f"alice@{server.domain}")
    assert (got["nick"], got["name"]) == ("-", "Alice P. Liddell"), got
    assert alice.quit() == EXIT_OK and bob.quit() == EXIT_OK


# -- XEP-0049 jabber:iq:private: gloox::PrivateXML -----------------------------------

PRIVATE_MODULES = {"mod_disco": {}, "mod_ping": {}, "mod_private": {}}


def test_private_store_and_retrieve(server_factory, gloox_factory):
    server = server_factory(modules=dict(PRIVATE_MODULES))
    server.register("alice", PASSWORD)
    alice = online(gloox_factory, server, "alice")
    # Nothing stored: the empty element comes back (XEP-0049 example 3).
    alice.cmd("private-get exodus exodus:prefs")
    got = alice.wait_for("PRIVATE-GET")
    assert (got["result"], got["element"], got["xmlns"], got["children"]) == \
        ("ok", "exodus", "exodus:prefs", "0"), got
    # XEP-0049 example 1, then example 2.
    alice.cmd("private-set exodus exodus:prefs defaultnick Hamlet")
    assert alice.wait_for("PRIVATE-SET")["result"] == "ok"
    alice.cmd("private-get exodus exodus:prefs")
    got = alice.wait_for("PRIVATE-GET")
    assert (got["result"], got["element"], got["xmlns"], got["children"]) == \
        ("ok", "exodus", "exodus:prefs", "1"), got
    assert "<defaultnick>Hamlet</defaultnick>" in got["text"], got
    assert alice.wait_for("PRIVATE-CHILD", element="defaultnick")["text"] == "Hamlet"
    # Another namespace is stored apart.
    alice.cmd("private-set storage storage:bookmarks")
    assert alice.wait_for("PRIVATE-SET")["result"] == "ok"
    assert alice.quit() == EXIT_OK
    # A new session of the same user reads it back.
    again = gloox_factory(server, "alice", "again", commands=["private-get exodus exodus:prefs", "quit"])
    got = again.wait_for("PRIVATE-GET")
    assert (got["result"], got["children"]) == ("ok", "1"), got
    assert again.wait_for("PRIVATE-CHILD", element="defaultnick")["text"] == "Hamlet"
    assert again.wait_exit() == EXIT_OK


def test_private_reserved_namespace_is_refused(server_factory, gloox_factory):
    server = server_factory(modules=dict(PRIVATE_MODULES))
    server.register("alice", PASSWORD)
    alice = online(gloox_factory, server, "alice")
    for ns in ("jabber:client", "jabber:iq:private"):
        alice.cmd(f"private-set prefs {ns}")
        assert alice.wait_for("PRIVATE-SET")["result"] == "error:not-acceptable"
        alice.cmd(f"private-get prefs {ns}")
        assert alice.wait_for("PRIVATE-GET")["result"] == "error:not-acceptable"
    assert alice.quit() == EXIT_OK


# -- XEP-0012 jabber:iq:last: gloox::LastActivity ------------------------------------

LAST_MODULES = {"mod_disco": {}, "mod_ping": {}, "mod_roster": {}, "mod_presence": {}, "mod_last": {}}


def ask_last_until(client, jid, done, timeout=10):
    """mod_last writes asynchronously: ask until `done(fields)`."""
    deadline = time.monotonic() + timeout
    while True:
        client.cmd(f"last {jid}")
        got = client.wait_for("LAST", jid=jid)
        if done(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_last_server_uptime(server_factory, gloox_factory):
    server = server_factory(modules=dict(LAST_MODULES))
    server.register("alice", PASSWORD)
    alice = online(gloox_factory, server, "alice")
    alice.cmd("last")  # XEP-0012 example 6: to the server, its uptime
    first = alice.wait_for("LAST", jid=server.domain)
    assert first["result"] == "ok" and int(first["seconds"]) >= 0 and first["status"] == "", first
    time.sleep(2.1)
    alice.cmd(f"last {server.domain}")
    second = alice.wait_for("LAST", jid=server.domain)
    assert int(second["seconds"]) >= int(first["seconds"]) + 2, (first, second)
    assert alice.quit() == EXIT_OK


def test_last_activity_of_a_contact(server_factory, gloox_factory):
    server = server_factory(modules=dict(LAST_MODULES))
    for user in ("alice", "bob", "carol"):
        server.register(user, PASSWORD)
    bob_jid = f"bob@{server.domain}"
    # alice subscribes to bob's presence with gloox's RosterManager and bob
    # approves: in bob's roster alice has 'from', so she may ask (XEP-0012 4).
    bob = online(gloox_factory, server, "bob", "phone", "--roster", "--sub-mode", "accept")
    alice = online(gloox_factory, server, "alice", "laptop", "--roster")
    alice.wait_for("ROSTER-END", count="0")
    alice.cmd(f"subscribe {bob_jid}")
    bob.wait_for("ROSTER-PUSH", jid=f"alice@{server.domain}", subscription="from")
    alice.wait_for("ROSTER-PUSH", jid=bob_jid, subscription="to")
    # bob is available: his last activity is 0 seconds (XEP-0012 4).
    got = ask_last_until(alice, bob_jid, lambda g: g["result"] == "ok")
    assert (got["result"], got["seconds"]) == ("ok", "0"), got
    # bob leaves with a status.
    bob.cmd("unavailable Heading Home")
    bob.cmd("ping")  # answered once the server has processed the unavailable
    assert bob.quit() == EXIT_OK
    got = ask_last_until(alice, bob_jid, lambda g: g.get("status") == "Heading Home")
    assert got["result"] == "ok" and got["status"] == "Heading Home", got
    assert 0 <= int(got["seconds"]) < 30, got
    # carol has no subscription to bob's presence.
    carol = online(gloox_factory, server, "carol")
    carol.cmd(f"last {bob_jid}")
    assert carol.wait_for("LAST", jid=bob_jid)["result"] == "error:forbidden"
    assert alice.quit() == EXIT_OK and carol.quit() == EXIT_OK


# -- XEP-0077 jabber:iq:register: gloox::Registration --------------------------------

def register_server(server_factory, **options):
    options.setdefault("registration_timeout", 0)
    return server_factory(modules={"mod_disco": {}, "mod_ping": {}, "mod_register": options})


def test_register_in_band_then_log_in(server_factory, gloox_factory):
    server = register_server(server_factory, allow_registration=True)
    reg = gloox_factory(server, "bill", "gloox", "--register", password="Calliope")
    # Before registering, gloox secured the stream (registration waits for STARTTLS).
    stream = reg.wait_for("REGISTER-STREAM", domain=server.domain)
    assert stream["tls"].startswith("TLS"), stream
    form = reg.wait_for("REGISTER-FORM")
    assert form["type"] == "form" and {"username", "password"} <= set(form["vars"].split(",")), form
    fields = reg.wait_for("REGISTER-FIELDS")
    assert {"username", "password"} <= set(fields["fields"].split(",")), fields
    assert fields["text"].strip(), "instructions expected"
    reg.wait_for("REGISTERED", jid=f"bill@{server.domain}")
    assert reg.wait_exit() == EXIT_OK
    # The new account logs in with gloox; a wrong password does not.
    bill = gloox_factory(server, "bill", "desk", password="Calliope")
    assert bill.connected()["jid"] == f"bill@{server.domain}/desk"
    assert bill.quit() == EXIT_OK
    assert gloox_login_exit(gloox_factory, server, "bill", "wrong") == EXIT_AUTH


def test_register_existing_username_is_a_conflict(server_factory, gloox_factory):
    server = register_server(server_factory, allow_registration=True)
    server.register("alice", PASSWORD)
    reg = gloox_factory(server, "alice", "gloox", "--register", password="other-pass")
    got = reg.wait_for("REGISTER-ERROR")
    assert (got["step"], got["condition"], got["gloox"]) == ("create", "conflict", "conflict"), got
    assert reg.wait_exit() == EXIT_REGISTRATION
    # alice's password did not change.
    assert gloox_login_exit(gloox_factory, server, "alice", PASSWORD) == EXIT_OK
    assert gloox_login_exit(gloox_factory, server, "alice", "other-pass") == EXIT_AUTH


def test_register_refused_when_registration_is_off(server_factory, gloox_factory):
    server = register_server(server_factory)  # allow_registration defaults to false
    reg = gloox_factory(server, "bill", "gloox", "--register", password="Calliope")
    # XEP-0077 3.1: service-unavailable; gloox itself only calls it "unknown".
    got = reg.wait_for("REGISTER-ERROR")
    assert (got["step"], got["condition"]) == ("fields", "service-unavailable"), got
    assert reg.wait_exit() == EXIT_REGISTRATION
    assert not any(l.startswith("REGISTERED") for l in reg.lines)
    assert gloox_login_exit(gloox_factory, server, "bill", "Calliope") == EXIT_AUTH


def test_change_password(server_factory, gloox_factory):
    server = register_server(server_factory)  # password changes need no allow_registration
    server.register("bill", PASSWORD)
    bill = online(gloox_factory, server, "bill")
    bill.cmd("passwd newpass")  # XEP-0077 3.3 through Registration::changePassword
    assert bill.wait_for("PASSWD")["result"] == "ok"
    assert bill.quit() == EXIT_OK
    assert gloox_login_exit(gloox_factory, server, "bill", PASSWORD) == EXIT_AUTH
    assert gloox_login_exit(gloox_factory, server, "bill", "newpass") == EXIT_OK


def test_password_change_refused_when_disabled(server_factory, gloox_factory):
    server = register_server(server_factory, allow_password_change=False)
    server.register("bill", PASSWORD)
    bill = online(gloox_factory, server, "bill")
    bill.cmd("passwd newpass")
    got = bill.wait_for("PASSWD")
    # XEP-0077 3.3 not-allowed, which gloox knows as RegistrationNotAllowed.
    assert (got["result"], got["gloox"]) == ("error:not-allowed", "not-allowed"), got
    assert bill.quit() == EXIT_OK
    assert gloox_login_exit(gloox_factory, server, "bill", PASSWORD) == EXIT_OK


def test_remove_account(server_factory, gloox_factory):
    server = register_server(server_factory)
    server.register("bill", PASSWORD)
    bill = online(gloox_factory, server, "bill")
    bill.cmd("unregister")  # XEP-0077 3.2 through Registration::removeAccount
    assert bill.wait_for("UNREGISTER")["result"] == "ok"
    # The server may close the stream after the result (XEP-0077 3.2).
    assert bill.quit() in (EXIT_OK, EXIT_LOST)
    assert gloox_login_exit(gloox_factory, server, "bill", PASSWORD) == EXIT_AUTH


# -- XEP-0092 jabber:iq:version: gloox::SoftwareVersion ------------------------------

def test_version_of_the_server(server_factory, gloox_factory):
    server = server_factory(modules={"mod_disco": {}, "mod_ping": {}, "mod_version": {}})
    server.register("alice", PASSWORD)
    alice = online(gloox_factory, server, "alice")
    alice.cmd("version")
    got = alice.wait_for("SOFTWARE-VERSION", jid=server.domain)
    assert (got["result"], got["name"], got["version"], got["has-os"]) == \
        ("ok", "Parley", "1.0.0", "false"), got
    assert alice.quit() == EXIT_OK


def test_version_with_os(server_factory, gloox_factory):
    server = server_factory(modules={"mod_disco": {}, "mod_ping": {},
                                     "mod_version": {"version": "2024.1-test", "show_os": True}})
    server.register("alice", PASSWORD)
    alice = online(gloox_factory, server, "alice")
    alice.cmd(f"version {server.domain}")
    got = alice.wait_for("SOFTWARE-VERSION", jid=server.domain)
    assert (got["result"], got["version"], got["has-os"]) == ("ok", "2024.1-test", "true"), got
    assert "Linux" in alice.wait_for("SOFTWARE-OS", jid=server.domain)["text"]
    assert alice.quit() == EXIT_OK


def test_version_of_another_gloox_client(server_factory, gloox_factory):
    # To a full JID the server only routes; bob's gloox answers through its Disco.
    server = server_factory(modules={"mod_disco": {}, "mod_ping": {}, "mod_version": {}})
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    bob = online(gloox_factory, server, "bob", "phone", commands=["set-version BobClient 0.1"])
    bob.wait_for("OK set-version")
    alice = online(gloox_factory, server, "alice")
    bob_full = f"bob@{server.domain}/phone"
    alice.cmd(f"version {bob_full}")
    got = alice.wait_for("SOFTWARE-VERSION", jid=bob_full)
    assert (got["result"], got["name"], got["version"]) == ("ok", "BobClient", "0.1"), got
    assert alice.quit() == EXIT_OK
    bob.kill()


def test_version_without_the_module(server_factory, gloox_factory):
    server = server_factory(modules={"mod_ping": {}})
    server.register("alice", PASSWORD)
    alice = online(gloox_factory, server, "alice")
    alice.cmd("version")
    assert alice.wait_for("SOFTWARE-VERSION", jid=server.domain)["result"] == "error:service-unavailable"
    assert alice.quit() == EXIT_OK
