"""mod_register (XEP-0077 In-Band Registration) against a running parleyd:
registration before authentication (raw client and slixmpp's xep_0077), every
error case of sections 3.1-3.3, the per-address rate limit, password change and
account removal by a logged-in user."""

import ssl
import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD
from rawxmpp import NS_CLIENT, NS_SASL, q, stanza_error_condition
from slix_driver import SlixRunner

NS = "jabber:iq:register"
NS_FEATURE = "http://jabber.org/features/iq-register"
NS_DATA = "jabber:x:data"
DISCO = "http://jabber.org/protocol/disco#info"


def start_server(server_factory, **options):
    modules = {"mod_disco": {}, "mod_ping": {}, "mod_register": options}
    return server_factory(modules=modules)


def open_server(server_factory, **options):
    """Registration allowed, no rate limit unless asked for."""
    options.setdefault("allow_registration", True)
    options.setdefault("registration_timeout", 0)
    return start_server(server_factory, **options)


def preauth(server, raw_factory):
    """A stream after STARTTLS, before SASL; returns (client, features)."""
    c = raw_factory(server.c2s_port)
    features = c.start()
    assert c.mechanisms(features) == [], "mechanisms offered before STARTTLS"
    features = c.starttls()
    return c, features


def register(client, username=None, password=None, extra=""):
    fields = ""
    if username is not None:
        fields += f"<username>{username}</username>"
    if password is not None:
        fields += f"<password>{password}</password>"
    return client.iq("set", f"<query xmlns='{NS}'>{fields}{extra}</query>")


def error_of(reply):
    """(type, condition, legacy code) of an error reply."""
    assert reply.get("type") == "error", ET.tostring(reply, "unicode")
    etype, condition = stanza_error_condition(reply)
    return etype, condition, reply.find(q(NS_CLIENT, "error")).get("code")


def can_login(server, raw_factory, user, password):
    c = raw_factory(server.c2s_port)
    c.start()
    c.starttls()
    outcome = c.auth_plain(user, password)
    ok = outcome.tag == q(NS_SASL, "success")
    c.abort()
    return ok


def login(server, raw_factory, user, password=PASSWORD, resource="r"):
    c = raw_factory(server.c2s_port)
    c.login(user, password, resource=resource)
    return c


# -- before authentication ------------------------------------------------------------

def test_feature_is_advertised_next_to_the_mechanisms(server_factory, raw_factory):
    server = open_server(server_factory)
    c = raw_factory(server.c2s_port)
    before_tls = c.start()
    # Registration, like authentication, waits for the required STARTTLS.
    assert before_tls.find(q(NS_FEATURE, "register")) is None
    features = c.starttls()
    assert features.find(q(NS_FEATURE, "register")) is not None
    assert c.mechanisms(features)


def test_get_returns_the_fields_and_a_form(server_factory, raw_factory):
    server = open_server(server_factory)
    c, _ = preauth(server, raw_factory)
    reply = c.iq("get", f"<query xmlns='{NS}'/>", to=server.domain)
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    assert reply.get("to") is None
    query = reply.find(q(NS, "query"))
    assert query.find(q(NS, "registered")) is None
    assert (query.find(q(NS, "instructions")).text or "").strip()
    assert query.find(q(NS, "username")) is not None
    assert query.find(q(NS, "password")) is not None
    form = query.find(q(NS_DATA, "x"))
    assert form is not None and form.get("type") == "form"
    fields = {f.get("var"): f for f in form.findall(q(NS_DATA, "field"))}
    assert fields["FORM_TYPE"].get("type") == "hidden"
    assert fields["FORM_TYPE"].find(q(NS_DATA, "value")).text == NS
    assert fields["username"].find(q(NS_DATA, "required")) is not None
    assert fields["password"].get("type") == "text-private"


def test_register_then_log_in_with_the_new_account(server_factory, raw_factory):
    server = open_server(server_factory)
    c, _ = preauth(server, raw_factory)
    reply = register(c, "bill", "Calliope")  # XEP-0077 example 4, without <email/>
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    assert len(list(reply)) == 0
    # On the same stream (section 3.1.1: register, then authenticate) ...
    assert c.auth_plain("bill", "Calliope").tag == q(NS_SASL, "success")
    c.abort()
    # ... and on a new one.
    bill = login(server, raw_factory, "bill", "Calliope")
    assert bill.jid.startswith(f"bill@{server.domain}/")
    assert not can_login(server, raw_factory, "bill", "wrong")


def test_register_with_the_data_form(server_factory, raw_factory):
    server = open_server(server_factory)
    c, _ = preauth(server, raw_factory)
    form = (f"<x xmlns='{NS_DATA}' type='submit'>"
            f"<field type='hidden' var='FORM_TYPE'><value>{NS}</value></field>"
            "<field var='username'><value>juliet</value></field>"
            "<field var='password'><value>R0m30</value></field></x>")
    reply = c.iq("set", f"<query xmlns='{NS}'>{form}</query>")
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    assert can_login(server, raw_factory, "juliet", "R0m30")


def test_existing_username_is_a_conflict(server_factory, raw_factory):
    server = open_server(server_factory)
    server.register("bill", PASSWORD)  # through parleyctl: the same accounts
    c, _ = preauth(server, raw_factory)
    reply = register(c, "bill", "m1cro$oft")
    assert error_of(reply) == ("cancel", "conflict", "409")
    # No echo of the password in the error.
    assert "m1cro$oft" not in ET.tostring(reply, "unicode")
    assert can_login(server, raw_factory, "bill", PASSWORD)
    assert not can_login(server, raw_factory, "bill", "m1cro$oft")
    # Case folding (nodeprep) makes BILL the same account.
    assert error_of(register(c, "BILL", "x"))[1] == "conflict"


def test_missing_information_is_not_acceptable(server_factory, raw_factory):
    server = open_server(server_factory)
    c, _ = preauth(server, raw_factory)
    cases = [
        (None, "pw"),          # no <username/>
        ("bill", None),        # no <password/>
        ("bill", ""),          # <password></password>
        ("", "pw"),            # empty <username/>
        (None, None),
    ]
    for username, password in cases:
        assert error_of(register(c, username, password)) == ("modify", "not-acceptable", "406"), \
            (username, password)
    reply = c.iq("set", f"<query xmlns='{NS}'><username>bill</username><password/></query>")
    assert error_of(reply)[1] == "not-acceptable"
    assert not can_login(server, raw_factory, "bill", "pw")


def test_invalid_username_is_jid_malformed(server_factory, raw_factory):
    server = open_server(server_factory)
    c, _ = preauth(server, raw_factory)
    for bad in ("bill@shakespeare.lit", "a b", "x" * 1100):
        assert error_of(register(c, bad, "pw"))[1] == "jid-malformed", bad


def test_minimum_password_length(server_factory, raw_factory):
    server = open_server(server_factory, min_password_length=8)
    c, _ = preauth(server, raw_factory)
    assert error_of(register(c, "bill", "short"))[1] == "not-acceptable"
    assert register(c, "bill", "long enough").get("type") == "result"


def test_remove_before_authentication_is_unexpected(server_factory, raw_factory):
    server = open_server(server_factory)
    c, _ = preauth(server, raw_factory)
    assert error_of(c.iq("set", f"<query xmlns='{NS}'><remove/></query>"))[1] == "unexpected-request"


def test_registration_disabled(server_factory, raw_factory):
    server = start_server(server_factory)  # allow_registration defaults to false
    c, _ = preauth(server, raw_factory)
    # Section 3.1: "If the host does not support In-Band Registration, it MUST
    # return a <service-unavailable/> error."
    assert error_of(c.iq("get", f"<query xmlns='{NS}'/>")) == ("cancel", "service-unavailable", "503")
    assert error_of(register(c, "bill", "pw"))[1] == "service-unavailable"
    assert not can_login(server, raw_factory, "bill", "pw")


def test_feature_is_not_advertised_when_registration_is_disabled(server_factory, raw_factory):
    server = start_server(server_factory)
    _, features = preauth(server, raw_factory)
    assert features.find(q(NS_FEATURE, "register")) is None


def rate_refusal(reply):
    """The refusal past the per-address rate: policy-violation, type wait, and
    a text a client can show that says when to try again."""
    etype, condition, _ = error_of(reply)
    text = reply.find(f"{q(NS_CLIENT, 'error')}/{{urn:ietf:params:xml:ns:xmpp-stanzas}}text")
    assert (etype, condition) == ("wait", "policy-violation"), (etype, condition)
    assert text is not None and "try again in" in text.text, ET.tostring(reply, "unicode")
    return text.text


def test_one_registration_per_address_per_window(server_factory, raw_factory):
    # registration_burst: 1 is ejabberd's registration_timeout.
    server = start_server(server_factory, allow_registration=True, registration_timeout=600,
                          registration_burst=1)
    c, _ = preauth(server, raw_factory)
    # A failed attempt does not count.
    server.register("taken", PASSWORD)
    assert error_of(register(c, "taken", "pw"))[1] == "conflict"
    assert register(c, "first", "pw1").get("type") == "result"
    # The second one from the same address, on this stream or another, waits.
    assert "10 minutes" in rate_refusal(register(c, "second", "pw2"))
    other, _ = preauth(server, raw_factory)
    rate_refusal(register(other, "third", "pw3"))
    assert can_login(server, raw_factory, "first", "pw1")
    assert not can_login(server, raw_factory, "second", "pw2")


def test_default_rate_is_a_burst_of_three_then_a_limit(server_factory, raw_factory):
    # The default used to be one registration per address per 600 s: a second
    # account from one address failed with resource-constraint.
    server = start_server(server_factory, allow_registration=True)
    c, _ = preauth(server, raw_factory)
    for name in ("first", "second", "third"):
        assert register(c, name, "pw-" + name).get("type") == "result", name
    rate_refusal(register(c, "fourth", "pw-fourth"))
    for name in ("first", "second", "third"):
        assert can_login(server, raw_factory, name, "pw-" + name)
    assert not can_login(server, raw_factory, "fourth", "pw-fourth")


def test_rate_limit_survives_a_reload(server_factory, raw_factory):
    server = start_server(server_factory, allow_registration=True, registration_timeout=600,
                          registration_burst=1)
    c, _ = preauth(server, raw_factory)
    assert register(c, "first", "pw1").get("type") == "result"
    reloaded = server.ctl("module", "reload", "mod_register")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    c, _ = preauth(server, raw_factory)
    rate_refusal(register(c, "second", "pw2"))


def test_one_address_is_limited_as_one_across_loops(server_factory, raw_factory):
    # An address's registrations are counted on the one loop that owns it
    # (no lock): streams on both loops (workers: 2, by the odds of 8
    # connections), all sending at once, get exactly the burst between them.
    server = start_server(server_factory, allow_registration=True, registration_timeout=600,
                          registration_burst=3)
    clients = [preauth(server, raw_factory)[0] for _ in range(8)]
    for i, c in enumerate(clients):
        c.send(f"<iq type='set' id='reg{i}'><query xmlns='{NS}'><username>u{i}</username>"
               f"<password>pw{i}</password></query></iq>")
    replies = [c.expect(q(NS_CLIENT, "iq"), match=lambda e, i=i: e.get("id") == f"reg{i}", timeout=20)
               for i, c in enumerate(clients)]
    ok = [r for r in replies if r.get("type") == "result"]
    assert len(ok) == 3, [ET.tostring(r, "unicode") for r in replies]
    for r in replies:
        if r.get("type") != "result":
            rate_refusal(r)


def test_username_whose_preparation_is_not_stable_is_jid_malformed(server_factory, raw_factory):
    # U+1100 U+0301 U+1161 U+0323 prepares to U+AC00 U+0301 U+0323, and that to
    # U+AC00 U+0323 U+0301 (libidn, PR-29): the account used to be created under
    # the first form while a login prepares the name twice, so nobody could log in.
    server = open_server(server_factory)
    c, _ = preauth(server, raw_factory)
    name = "x\u1100\u0301\u1161\u0323"
    assert error_of(register(c, name, "pw-unstable"))[1] == "jid-malformed"
    # And such a password is not acceptable (PLAIN and SCRAM would disagree on it).
    assert error_of(register(c, "stable", "pw\u1100\u0301\u1161\u0323"))[1] == "not-acceptable"


# -- registration needs encryption, as PLAIN does --------------------------------------

def optional_tls_server(server_factory, allow_plain_without_tls=None):
    """A server whose extra listener (returned port) has STARTTLS optional."""
    from parley_harness import free_port
    port = free_port()
    listener = {"port": port, "ip": "127.0.0.1", "module": "c2s", "starttls_required": False}
    if allow_plain_without_tls is not None:
        listener["allow_plain_without_tls"] = allow_plain_without_tls
    modules = {"mod_disco": {}, "mod_ping": {},
               "mod_register": {"allow_registration": True, "registration_timeout": 0}}
    return server_factory(modules=modules, extra_listeners=[listener]), port


def test_no_registration_on_an_unencrypted_stream(server_factory, raw_factory):
    # It used to offer and accept registration (a cleartext password) where
    # PLAIN is refused.
    server, port = optional_tls_server(server_factory)
    c = raw_factory(port)
    features = c.start()
    assert "PLAIN" not in c.mechanisms(features)
    assert features.find(q(NS_FEATURE, "register")) is None, "registration offered without TLS"
    reply = register(c, "cleartext", "pw-cleartext")
    etype, condition, _ = error_of(reply)
    assert (etype, condition) == ("modify", "policy-violation")
    assert error_of(c.iq("get", f"<query xmlns='{NS}'/>"))[1] == "policy-violation"
    # After STARTTLS on the same listener it works.
    features = c.starttls()
    assert features.find(q(NS_FEATURE, "register")) is not None
    assert register(c, "encrypted", "pw-encrypted").get("type") == "result"
    assert not can_login(server, raw_factory, "cleartext", "pw-cleartext")


def test_allow_plain_without_tls_allows_plain_and_registration(server_factory, raw_factory):
    server, port = optional_tls_server(server_factory, allow_plain_without_tls=True)
    c = raw_factory(port)
    features = c.start()
    assert "PLAIN" in c.mechanisms(features)
    assert features.find(q(NS_FEATURE, "register")) is not None
    assert register(c, "loadtool", "pw-loadtool").get("type") == "result"
    c.abort()
    c = raw_factory(port)
    c.start()
    assert c.auth_plain("loadtool", "pw-loadtool").tag == q(NS_SASL, "success")


def test_slixmpp_registers_then_logs_in(server_factory, raw_factory):
    server = open_server(server_factory)
    runner = SlixRunner()
    try:
        # slixmpp 1.8 binds SCRAM-*-PLUS with tls-unique only, which is
        # defined below TLS 1.3 only (RFC 9266): TLS 1.2, as in test_slixmpp.py.
        client = runner.client(f"romeo@{server.domain}/slix", "Juliet4ever",
                               tls_max_version=ssl.TLSVersion.TLSv1_2)
        client.xmpp.register_plugin("xep_0004")
        client.xmpp.register_plugin("xep_0066")
        client.xmpp.register_plugin("xep_0077")
        client.xmpp["xep_0077"].force_registration = True
        # slixmpp 1.8 queues every iq but bind and session until the session
        # starts (XMLStream.send), its own registration iqs included, and so
        # waits forever for the registration form: let them through.
        client.xmpp._always_send_everything = True
        forms = []

        async def on_register(form):
            forms.append(form)
            resp = client.xmpp.Iq()
            resp["type"] = "set"
            resp["register"]["username"] = client.xmpp.boundjid.user
            resp["register"]["password"] = client.xmpp.password
            await resp.send(timeout=10)

        client.xmpp.add_event_handler("register", on_register)
        assert runner.run(client.connect(server.c2s_port)) is True
        assert forms and "username" in forms[0]["register"]["fields"]
        runner.run(client.sync())
    finally:
        runner.close()
    assert can_login(server, raw_factory, "romeo", "Juliet4ever")


# -- a logged-in user -----------------------------------------------------------------

def test_get_says_registered(server_factory, raw_factory):
    server = start_server(server_factory)
    server.register("alice", PASSWORD)
    alice = login(server, raw_factory, "alice")
    for to in (None, server.domain, f"alice@{server.domain}"):
        reply = alice.iq("get", f"<query xmlns='{NS}'/>", to=to)
        assert reply.get("type") == "result", ET.tostring(reply, "unicode")
        query = reply.find(q(NS, "query"))
        assert query.find(q(NS, "registered")) is not None
        assert query.find(q(NS, "username")).text == "alice"


def test_change_password(server_factory, raw_factory):
    server = start_server(server_factory)  # password changes do not need allow_registration
    server.register("bill", PASSWORD)
    bill = login(server, raw_factory, "bill")
    # XEP-0077 example 18 (to the server) ...
    reply = bill.iq("set", f"<query xmlns='{NS}'><username>bill</username><password>newpass</password></query>",
                    to=server.domain)
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    assert not can_login(server, raw_factory, "bill", PASSWORD)
    assert can_login(server, raw_factory, "bill", "newpass")
    # ... and without 'to', with the bare JID as the username.
    reply = bill.iq("set", f"<query xmlns='{NS}'><username>bill@{server.domain}</username>"
                           "<password>newer</password></query>")
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    assert can_login(server, raw_factory, "bill", "newer")
    # parleyctl sees the same account.
    assert server.ctl("passwd", "bill", server.domain, PASSWORD).returncode == 0
    assert can_login(server, raw_factory, "bill", PASSWORD)


def test_password_change_errors(server_factory, raw_factory):
    server = start_server(server_factory, min_password_length=4)
    server.register("bill", PASSWORD)
    server.register("ted", PASSWORD)
    bill = login(server, raw_factory, "bill")

    def change(body):
        return bill.iq("set", f"<query xmlns='{NS}'>{body}</query>")

    # Somebody else's password: forbidden, not section 3.3's not-authorized
    # (which says the channel is not safe enough).
    reply = change("<username>ted</username><password>stolen1</password>")
    assert error_of(reply) == ("auth", "forbidden", "403")
    assert "stolen1" not in ET.tostring(reply, "unicode")  # section 3.3: no echo
    # A second account from a logged-in stream is no password change either.
    assert error_of(change("<username>newname</username><password>pw12345</password>"))[1] == "forbidden"
    assert not can_login(server, raw_factory, "newname", "pw12345")
    # Incomplete: no username.
    assert error_of(change("<password>newpass</password>")) == ("modify", "bad-request", "400")
    # An empty password never replaces the existing one.
    assert error_of(change("<username>bill</username><password/>"))[1] == "bad-request"
    assert error_of(change("<username>bill</username>"))[1] == "bad-request"
    assert error_of(change("<username>bill</username><password>abc</password>"))[1] == "not-acceptable"
    assert error_of(change(""))[1] == "bad-request"
    assert can_login(server, raw_factory, "bill", PASSWORD)
    assert can_login(server, raw_factory, "ted", PASSWORD)
    # Another user's bare JID as the addressee.
    reply = bill.iq("set", f"<query xmlns='{NS}'><username>ted</username><password>x1234</password></query>",
                    to=f"ted@{server.domain}")
    assert error_of(reply)[1] == "forbidden"


def test_password_change_can_be_disabled(server_factory, raw_factory):
    server = start_server(server_factory, allow_password_change=False)
    server.register("bill", PASSWORD)
    bill = login(server, raw_factory, "bill")
    reply = bill.iq("set", f"<query xmlns='{NS}'><username>bill</username><password>newpass</password></query>")
    assert error_of(reply) == ("cancel", "not-allowed", "405")
    assert can_login(server, raw_factory, "bill", PASSWORD)


def test_remove_account(server_factory, raw_factory):
    server = start_server(server_factory)
    server.register("bill", PASSWORD)
    bill = login(server, raw_factory, "bill", resource="globe")
    other = login(server, raw_factory, "bill", resource="other")
    reply = bill.iq("set", f"<query xmlns='{NS}'><remove/></query>")  # XEP-0077 example 12
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    # Section 3.2: the result first, then a <not-authorized/> stream error
    # ends every session of the account.
    assert bill.expect_stream_error() == "not-authorized"
    tags = [e.tag for e in bill.received]
    assert tags.index(q(NS_CLIENT, "iq")) < tags.index("{http://etherx.jabber.org/streams}error")
    assert other.expect_stream_error() == "not-authorized"
    assert not can_login(server, raw_factory, "bill", PASSWORD)
    # The name is free again.
    assert server.ctl("register", "bill", server.domain, "again").returncode == 0
    assert can_login(server, raw_factory, "bill", "again")


def test_remove_errors(server_factory, raw_factory):
    server = start_server(server_factory)
    server.register("bill", PASSWORD)
    server.register("ted", PASSWORD)
    bill = login(server, raw_factory, "bill")
    # <remove/> must be alone.
    reply = bill.iq("set", f"<query xmlns='{NS}'><remove/><username>bill</username></query>")
    assert error_of(reply) == ("modify", "bad-request", "400")
    # Somebody else's account.
    reply = bill.iq("set", f"<query xmlns='{NS}'><remove/></query>", to=f"ted@{server.domain}")
    assert error_of(reply) == ("auth", "forbidden", "403")
    assert can_login(server, raw_factory, "ted", PASSWORD)
    assert can_login(server, raw_factory, "bill", PASSWORD)


def test_remove_can_be_disabled(server_factory, raw_factory):
    server = start_server(server_factory, allow_remove=False)
    server.register("bill", PASSWORD)
    bill = login(server, raw_factory, "bill")
    assert error_of(bill.iq("set", f"<query xmlns='{NS}'><remove/></query>"))[1] == "not-allowed"
    assert can_login(server, raw_factory, "bill", PASSWORD)


def test_declares_its_disco_feature(server_factory, raw_factory):
    server = start_server(server_factory)
    server.register("alice", PASSWORD)
    alice = login(server, raw_factory, "alice")
    info = alice.iq("get", f"<query xmlns='{DISCO}'/>", to=server.domain)
    assert NS in {f.get("var") for f in info.iter(q(DISCO, "feature"))}
