"""mod_adhoc: XEP-0050 ad-hoc commands and XEP-0133 service administration
against a running parleyd. An admin (config `admins:`) runs every command from
slixmpp (xep_0050, xep_0133, xep_0004) and the effect is checked with raw
clients; a user who is not an admin is refused with forbidden; the XEP-0050
errors (bad-action, bad-sessionid, session-expired, malformed-action,
bad-payload, item-not-found) and a multi-stage run with prev/next/cancel.
One server for the module; the shutdown test last with its own."""

import itertools
import re
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest
from slixmpp.exceptions import IqError

from conftest import PASSWORD
from parley_harness import ParleyServer, required_binary
from rawxmpp import RawClient, StreamErrorReceived, q, sasl_failure_condition, stanza_error_condition, xml_escape
from slix_driver import SlixRunner

CMD = "http://jabber.org/protocol/commands"
ADMIN = "http://jabber.org/protocol/admin"
DATA = "jabber:x:data"
INFO = "http://jabber.org/protocol/disco#info"
ITEMS = "http://jabber.org/protocol/disco#items"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

MODULES = {"mod_disco": {}, "mod_ping": {}, "mod_adhoc": {}}
USERS = ("admin", "alice", "bob", "carol")
XEP0133 = ("add-user", "delete-user", "end-user-session", "change-user-password", "get-registered-users-num",
           "get-online-users-num", "get-active-users-num", "get-online-users-list", "get-online-users",
           "get-active-users", "announce", "set-motd", "edit-motd", "delete-motd", "shutdown",
           "disable-user", "reenable-user", "get-user-roster", "get-user-lastlogin", "user-stats",
           "get-disabled-users-num", "get-idle-users-num", "get-registered-users-list", "get-disabled-users-list",
           "get-idle-users", "set-welcome", "delete-welcome")


def node(name):
    return name if ":" in name else f"{ADMIN}#{name}"


def make_server(base_dir):
    server = ParleyServer(base_dir, required_binary("PARLEYD"), required_binary("PARLEYCTL"),
                          modules=dict(MODULES))
    server.config["admins"] = ["admin@localhost"]
    for user in USERS:
        server.register(user, PASSWORD)
    return server.start()


@pytest.fixture(scope="module")
def adhoc_server(tmp_path_factory):
    server = make_server(tmp_path_factory.mktemp("adhoc"))
    yield server
    code, killed = server.stop()
    assert not killed and code == 0, f"parleyd exited with {code}"
    assert not server.sanitizer_reports()


# One server for the module: each login gets a resource of its own, so that a
# previous test's session of the same full JID, still leaving, never meets
# the new one (its exit or unavailable presence reaching the new session).
_resources = (f"r{n}" for n in itertools.count(1))


def logged_in_clients(port):
    """make(user, ...) -> a RawClient logged in on `port`; yields it, then aborts every one made."""
    clients = []

    def make(user, resource=None, presence=True, password=PASSWORD):
        resource = resource or next(_resources)
        c = RawClient(port)
        c.login(user, password, resource=resource, presence=presence)
        clients.append(c)
        return c
    yield make
    for c in clients:
        c.abort()


@pytest.fixture
def raw(adhoc_server):
    yield from logged_in_clients(adhoc_server.c2s_port)


@pytest.fixture
def slix():
    runner = SlixRunner()
    yield runner
    runner.close()


def slix_client(slix, server, user):
    c = slix.client(f"{user}@localhost/slix", PASSWORD)
    c.xmpp.register_plugin("xep_0004")
    c.xmpp.register_plugin("xep_0050")
    c.xmpp.register_plugin("xep_0133")
    assert slix.run(c.connect(server.c2s_port)) is True
    return c


def submit_form(client, fields):
    form = client.xmpp["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value=ADMIN)
    for var, value in fields.items():
        form.add_field(var=var, value=value)
    return form


async def run_command(client, name, fields=None, action="complete"):
    """Executes `name`; if it shows a form, submits `fields` with `action`. The last answer."""
    adhoc = client.xmpp["xep_0050"]
    first = await adhoc.send_command("localhost", node(name), action="execute")
    command = first["command"]
    if command["status"] != "executing":
        return first
    assert command["form"]["type"] == "form"
    return await adhoc.send_command("localhost", node(name), action=action, sessionid=command["sessionid"],
                                    payload=submit_form(client, fields or {}))


def run(slix, client, name, fields=None):
    reply = slix.run(run_command(client, name, fields))
    assert reply["command"]["status"] == "completed", reply
    return reply


def form_values(reply, var):
    return reply["command"]["form"].get_fields()[var]["value"]


def can_log_in(server, user, password):
    c = RawClient(server.c2s_port)
    try:
        c.login(user, password)
        return True
    except AssertionError:
        return False
    finally:
        c.abort()


def command_iq(client, name, attrs="", body=""):
    return client.iq("set", f"<command xmlns='{CMD}' node='{node(name)}' {attrs}>{body}</command>", to="localhost")


def specific_condition(reply):
    error = reply.find(q("jabber:client", "error"))
    assert error is not None, ET.tostring(reply, "unicode")
    specific = [child.tag.split("}")[1] for child in error if child.tag.startswith("{" + CMD + "}")]
    return stanza_error_condition(reply)[1], (specific[0] if specific else None)


def raw_form(fields):
    out = f"<x xmlns='{DATA}' type='submit'><field var='FORM_TYPE'><value>{ADMIN}</value></field>"
    for var, values in fields.items():
        values = values if isinstance(values, list) else [values]
        out += f"<field var='{var}'>" + "".join(f"<value>{xml_escape(v)}</value>" for v in values) + "</field>"
    return out + "</x>"


# ---- discovery -----------------------------------------------------------------

def test_commands_are_listed_to_admins_only(adhoc_server, slix, raw):
    admin = slix_client(slix, adhoc_server, "admin")
    items = slix.run(admin.xmpp["xep_0133"].get_commands())
    nodes = {item[1] for item in items["disco_items"]["items"]}
    assert {node(n) for n in XEP0133} <= nodes
    assert all(item[0] == "localhost" for item in items["disco_items"]["items"])
    alice = raw("alice")
    reply = alice.iq("get", f"<query xmlns='{ITEMS}' node='{CMD}'/>", to="localhost")
    assert reply.get("type") == "result"
    assert reply.find(q(ITEMS, "query")).get("node") == CMD
    assert reply.find(q(ITEMS, "query")).findall(q(ITEMS, "item")) == []
    # The feature on the server's disco#info.
    info = alice.iq("get", f"<query xmlns='{INFO}'/>", to="localhost")
    assert CMD in {f.get("var") for f in info.find(q(INFO, "query")).findall(q(INFO, "feature"))}


def test_command_node_info(adhoc_server, raw):
    admin, alice = raw("admin"), raw("alice")
    reply = admin.iq("get", f"<query xmlns='{INFO}' node='{node('add-user')}'/>", to="localhost")
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    query = reply.find(q(INFO, "query"))
    assert query.get("node") == node("add-user")
    identity = query.find(q(INFO, "identity"))
    assert (identity.get("category"), identity.get("type")) == ("automation", "command-node")
    assert {f.get("var") for f in query.findall(q(INFO, "feature"))} == {CMD, DATA}
    # XEP-0050 2.2: a command the requester may not run is forbidden.
    refused = alice.iq("get", f"<query xmlns='{INFO}' node='{node('add-user')}'/>", to="localhost")
    assert stanza_error_condition(refused)[1] == "forbidden"
    # The command list node; a node nobody serves (mod_disco's answer).
    listing = alice.iq("get", f"<query xmlns='{INFO}' node='{CMD}'/>", to="localhost")
    identity = listing.find(q(INFO, "query")).find(q(INFO, "identity"))
    assert (identity.get("category"), identity.get("type")) == ("automation", "command-list")
    unknown = alice.iq("get", f"<query xmlns='{INFO}' node='urn:nobody'/>", to="localhost")
    assert stanza_error_condition(unknown)[1] == "item-not-found"
    unknown = alice.iq("get", f"<query xmlns='{ITEMS}' node='urn:nobody'/>", to="localhost")
    assert stanza_error_condition(unknown)[1] == "item-not-found"


# ---- XEP-0133 commands by an admin -----------------------------------------------

def test_add_user_change_password_delete_user(adhoc_server, slix):
    admin = slix_client(slix, adhoc_server, "admin")
    form = slix.run(admin.xmpp["xep_0050"].send_command("localhost", node("add-user")))
    fields = form["command"]["form"].get_fields()
    assert list(fields.keys()) == ["FORM_TYPE", "accountjid", "password", "password-verify", "email",
                                   "given_name", "surname"]
    assert fields["accountjid"]["required"] and fields["accountjid"]["type"] == "jid-single"
    run(slix, admin, "add-user", {"accountjid": "dave@localhost", "password": "first1",
                                  "password-verify": "first1"})
    assert can_log_in(adhoc_server, "dave", "first1")
    # A second time: conflict (XEP-0133 section 5).
    with pytest.raises(IqError) as error:
        slix.run(run_command(admin, "add-user", {"accountjid": "dave@localhost", "password": "x",
                                                  "password-verify": "x"}))
    assert error.value.condition == "conflict"
    run(slix, admin, "change-user-password", {"accountjid": "dave@localhost", "password": "second2"})
    assert not can_log_in(adhoc_server, "dave", "first1")
    assert can_log_in(adhoc_server, "dave", "second2")
    run(slix, admin, "delete-user", {"accountjids": ["dave@localhost"]})
    assert not can_log_in(adhoc_server, "dave", "second2")
    with pytest.raises(IqError) as error:
        slix.run(run_command(admin, "delete-user", {"accountjids": ["dave@localhost"]}))
    assert error.value.condition == "item-not-found"
    # Another domain's account is not this service's to create.
    with pytest.raises(IqError) as error:
        slix.run(run_command(admin, "add-user", {"accountjid": "eve@elsewhere.example", "password": "x",
                                                  "password-verify": "x"}))
    assert error.value.condition == "not-allowed"


def test_counts_and_online_list(adhoc_server, slix, raw):
    admin = slix_client(slix, adhoc_server, "admin")
    raw("alice")
    raw("bob", resource="one")
    raw("bob", resource="two")
    raw("carol", presence=False)  # online, not available: idle
    registered = run(slix, admin, "get-registered-users-num")
    assert form_values(registered, "registeredusersnum") == str(len(USERS))
    online = run(slix, admin, "get-online-users-num")
    assert form_values(online, "onlineusersnum") == "4"  # admin, alice, bob, carol
    active = run(slix, admin, "get-active-users-num")
    assert form_values(active, "activeusersnum") == "3"  # carol sent no presence
    listing = run(slix, admin, "get-online-users-list", {"max_items": "100"})
    assert sorted(form_values(listing, "onlineuserjids")) == [f"{u}@localhost" for u in sorted(USERS)]
    limited = run(slix, admin, "get-online-users", {"max_items": "25"})
    assert len(form_values(limited, "onlineuserjids")) == 4
    active_list = run(slix, admin, "get-active-users", {"max_items": "none"})
    assert "carol@localhost" not in form_values(active_list, "activeuserjids")


def test_end_user_session_cuts_the_session(adhoc_server, slix, raw):
    admin = slix_client(slix, adhoc_server, "admin")
    bob = raw("bob")
    run(slix, admin, "end-user-session", {"accountjids": ["bob@localhost"]})
    assert bob.expect_stream_error() == "policy-violation"
    assert bob.wait_closed()


def test_announce_reaches_online_users(adhoc_server, slix, raw):
    admin = slix_client(slix, adhoc_server, "admin")
    alice, bob = raw("alice"), raw("bob")
    run(slix, admin, "announce", {"announcement": ["Maintenance tonight", "at ten"]})
    for c in (alice, bob):
        message = c.expect_message("Maintenance tonight\nat ten")
        assert message.get("from") == "localhost"


def test_motd_at_next_login_and_not_twice(adhoc_server, slix, raw):
    admin = slix_client(slix, adhoc_server, "admin")
    run(slix, admin, "set-motd", {"motd": ["Welcome back", "-- the admins"]})
    # edit-motd shows the current text.
    shown = slix.run(admin.xmpp["xep_0050"].send_command("localhost", node("edit-motd")))
    assert shown["command"]["form"].get_fields()["motd"]["value"] == "Welcome back\n-- the admins"
    slix.run(admin.xmpp["xep_0050"].send_command("localhost", node("edit-motd"), action="cancel",
                                                 sessionid=shown["command"]["sessionid"]))
    # (The presence is sent here: login(presence=True) reads up to a ping's
    # answer and would drop a message that came first.)
    carol = raw("carol", resource="first", presence=False)
    carol.send("<presence/>")
    assert carol.expect_message("Welcome back\n-- the admins").get("from") == "localhost"
    carol.close()
    again = raw("carol", resource="second", presence=False)
    again.send("<presence/>")
    assert [e.tag for e in again.nothing_before_sync()] == [q("jabber:client", "presence")]  # its own, reflected
    # The marker: a new message of the day comes the same way (sent to those
    # online at once); the old one must not come before it.
    run(slix, admin, "set-motd", {"motd": ["Second"]})
    first = again.expect(q("jabber:client", "message"))
    assert first.findtext(q("jabber:client", "body")) == "Second"
    run(slix, admin, "delete-motd")
    later = raw("carol", resource="third", presence=False)
    later.send("<presence/>")
    assert [e.tag for e in later.nothing_before_sync()] == [q("jabber:client", "presence")]  # its own, reflected
    # Logins skip the storage read while no message is set; a new one is read
    # again at the next login of a user who was offline.
    run(slix, admin, "add-user", {"accountjid": "gina@localhost", "password": PASSWORD,
                                  "password-verify": PASSWORD})
    run(slix, admin, "set-motd", {"motd": ["Third"]})
    gina = raw("gina", presence=False)
    gina.send("<presence/>")
    assert gina.expect_message("Third").get("from") == "localhost"
    # XEP-0050 3.5: the language of the answers.
    reply = run(slix, admin, "delete-motd")
    assert reply["command"]["lang"] == "en"


# ---- refused to a user who is not an admin ---------------------------------------

def test_every_command_is_forbidden_to_a_user(adhoc_server, slix, raw):
    alice = slix_client(slix, adhoc_server, "alice")
    for name in XEP0133 + ("urn:parley:admin#end-sessions",):
        with pytest.raises(IqError) as error:
            slix.run(alice.xmpp["xep_0050"].send_command("localhost", node(name)))
        assert error.value.condition == "forbidden", name
    # Also with a sessionid of its own making: forbidden before anything else.
    bob = raw("bob")
    reply = command_iq(bob, "shutdown", "sessionid='shutdown:1-1'", raw_form({"delay": "30"}))
    assert stanza_error_condition(reply)[1] == "forbidden"
    assert bob.nothing_before_sync() == []  # and the server is still up


# ---- XEP-0050 sessions and errors ------------------------------------------------

def test_multi_stage_prev_next_cancel(adhoc_server, raw):
    admin = raw("admin")
    raw("bob", resource="phone")
    laptop = raw("bob", resource="laptop")
    name = "urn:parley:admin#end-sessions"
    first = command_iq(admin, name)
    command = first.find(q(CMD, "command"))
    assert command.get("status") == "executing"
    sessionid = command.get("sessionid")
    actions = command.find(q(CMD, "actions"))
    assert actions.get("execute") == "next" and [c.tag for c in actions] == [q(CMD, "next")]
    # prev on the first stage, complete before the last: bad-action.
    assert specific_condition(command_iq(admin, name, f"sessionid='{sessionid}' action='prev'")) == \
        ("bad-request", "bad-action")
    assert specific_condition(command_iq(admin, name, f"sessionid='{sessionid}' action='complete'",
                                         raw_form({"accountjid": "bob@localhost"}))) == ("bad-request", "bad-action")
    second = command_iq(admin, name, f"sessionid='{sessionid}' action='next'",
                        raw_form({"accountjid": "bob@localhost"}))
    command = second.find(q(CMD, "command"))
    actions = command.find(q(CMD, "actions"))
    assert actions.get("execute") == "complete"
    assert [c.tag for c in actions] == [q(CMD, "prev"), q(CMD, "complete")]
    options = {o.findtext(q(DATA, "value")) for o in command.iter(q(DATA, "option"))}
    # (bob's sessions of earlier tests may not have ended yet: at least these two)
    assert {"bob@localhost/phone", "bob@localhost/laptop"} <= options
    # Back to the first stage, which shows what was submitted.
    back = command_iq(admin, name, f"sessionid='{sessionid}' action='prev'").find(q(CMD, "command"))
    assert [v.text for v in back.iter(q(DATA, "value"))][-1] == "bob@localhost"
    command_iq(admin, name, f"sessionid='{sessionid}'", raw_form({"accountjid": "bob@localhost"}))  # execute = next
    # A choice that was not offered: bad-payload; then the laptop only.
    assert specific_condition(command_iq(admin, name, f"sessionid='{sessionid}' action='complete'",
                                         raw_form({"sessions": "bob@localhost/tablet"}))) == \
        ("bad-request", "bad-payload")
    done = command_iq(admin, name, f"sessionid='{sessionid}' action='complete'",
                      raw_form({"sessions": "bob@localhost/laptop"}))
    assert done.find(q(CMD, "command")).get("status") == "completed"
    assert laptop.expect_stream_error() == "policy-violation"
    # The session is over: its id again is session-expired.
    assert specific_condition(command_iq(admin, name, f"sessionid='{sessionid}' action='prev'")) == \
        ("not-allowed", "session-expired")
    # Cancel ends a session too.
    other = command_iq(admin, name).find(q(CMD, "command")).get("sessionid")
    canceled = command_iq(admin, name, f"sessionid='{other}' action='cancel'").find(q(CMD, "command"))
    assert (canceled.get("status"), canceled.get("sessionid")) == ("canceled", other)
    assert specific_condition(command_iq(admin, name, f"sessionid='{other}'",
                                         raw_form({"accountjid": "bob@localhost"}))) == \
        ("not-allowed", "session-expired")


def test_xep0050_errors(adhoc_server, raw):
    admin = raw("admin")
    assert specific_condition(command_iq(admin, "add-user", "sessionid='add-user:made-up'",
                                         raw_form({"accountjid": "x@localhost"}))) == ("bad-request", "bad-sessionid")
    assert specific_condition(command_iq(admin, "add-user", "action='jump'")) == ("bad-request", "malformed-action")
    assert specific_condition(command_iq(admin, "urn:nobody#nothing")) == ("item-not-found", None)
    started = command_iq(admin, "add-user").find(q(CMD, "command")).get("sessionid")
    # No form, a required field missing, passwords that differ: bad-payload.
    assert specific_condition(command_iq(admin, "add-user", f"sessionid='{started}'")) == \
        ("bad-request", "bad-payload")
    assert specific_condition(command_iq(admin, "add-user", f"sessionid='{started}'",
                                         raw_form({"password": "x"}))) == ("bad-request", "bad-payload")
    assert specific_condition(command_iq(admin, "add-user", f"sessionid='{started}'",
                                         raw_form({"accountjid": "frank@localhost", "password": "a",
                                                   "password-verify": "b"}))) == ("bad-request", "bad-payload")
    # Another resource of the same admin cannot use this session (per full JID).
    other = raw("admin", resource="other")
    assert specific_condition(command_iq(other, "add-user", f"sessionid='{started}'",
                                         raw_form({"accountjid": "frank@localhost"}))) == \
        ("bad-request", "bad-sessionid")
    # A session of another command's node.
    assert specific_condition(command_iq(admin, "set-motd", f"sessionid='{started}'",
                                         raw_form({"motd": "x"}))) == ("bad-request", "bad-sessionid")
    # The session is still usable after the errors.
    done = command_iq(admin, "add-user", f"sessionid='{started}'",
                      raw_form({"accountjid": "frank@localhost", "password": "pw", "password-verify": "pw"}))
    assert done.find(q(CMD, "command")).get("status") == "completed"
    assert can_log_in(adhoc_server, "frank", "pw")


def test_admins_config_is_checked(tmp_path):
    bad = tmp_path / "parley.yml"
    bad.write_text("hosts: [localhost]\nlisten:\n  - port: 5222\nadmins:\n  - admin@localhost\n  - not-a-jid\n")
    result = subprocess.run([required_binary("PARLEYD"), "--config", str(bad), "--check-config"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert f"{bad}:6" in result.stdout + result.stderr, result.stdout + result.stderr
    good = tmp_path / "good.yml"
    good.write_text("hosts: [localhost, example.org]\nlisten:\n  - port: 5222\nadmins: [Admin@LOCALHOST]\n"
                    "host_config:\n  example.org:\n    admins: [boss@example.org]\n")
    result = subprocess.run([required_binary("PARLEYD"), "--config", str(good), "--check-config"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- h-admin: accounts (disable, lists, roster, last login, stats, welcome) ---------
# A server of their own, with the modules whose data the commands show
# (mod_roster, mod_last) and mod_offline for the welcome message.

ACCOUNTS_MODULES = {"mod_disco": {}, "mod_ping": {}, "mod_adhoc": {}, "mod_roster": {}, "mod_last": {},
                    "mod_offline": {}}
ACCOUNT_USERS = ("admin", "dora", "ed", "fay")


@pytest.fixture(scope="module")
def accounts_server(tmp_path_factory):
    server = ParleyServer(tmp_path_factory.mktemp("adhoc-accounts"), required_binary("PARLEYD"),
                          required_binary("PARLEYCTL"), modules=dict(ACCOUNTS_MODULES))
    server.config["admins"] = ["admin@localhost"]
    for user in ACCOUNT_USERS:
        server.register(user, PASSWORD)
    server.start()
    yield server
    code, killed = server.stop()
    assert not killed and code == 0, f"parleyd exited with {code}"
    assert not server.sanitizer_reports()


@pytest.fixture
def araw(accounts_server):
    yield from logged_in_clients(accounts_server.c2s_port)


def sasl_outcome(server, user, password, mechanism):
    """'success' or the SASL failure's condition."""
    c = RawClient(server.c2s_port)
    try:
        c.start()
        c.starttls()
        outcome = c.auth_plain(user, password) if mechanism == "PLAIN" else c.auth_scram(user, password, mechanism)
        return "success" if outcome.tag.endswith("}success") else sasl_failure_condition(outcome)
    finally:
        c.abort()


def test_disable_and_reenable_user(accounts_server, slix, araw):
    admin = slix_client(slix, accounts_server, "admin")
    dora = araw("dora")
    run(slix, admin, "disable-user", {"accountjids": ["dora@localhost"]})
    # Its session ends; a login that proves the password is told why
    # (RFC 6120 6.5.1), with PLAIN and SCRAM; a wrong password learns nothing.
    assert dora.expect_stream_error() == "not-authorized"
    for mechanism in ("PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"):
        assert sasl_outcome(accounts_server, "dora", PASSWORD, mechanism) == "account-disabled", mechanism
    assert sasl_outcome(accounts_server, "dora", "wrong", "PLAIN") == "not-authorized"
    assert sasl_outcome(accounts_server, "dora", "wrong", "SCRAM-SHA-1") == "not-authorized"
    assert form_values(run(slix, admin, "get-disabled-users-num"), "disabledusersnum") == "1"
    assert form_values(run(slix, admin, "get-disabled-users-list", {"max_items": "none"}),
                       "disableduserjids") == ["dora@localhost"]
    # Still an account (its data kept): listed among the registered users.
    registered = form_values(run(slix, admin, "get-registered-users-list", {"max_items": "100"}),
                             "registereduserjids")
    assert "dora@localhost" in registered and "fay@localhost" in registered
    assert len(form_values(run(slix, admin, "get-registered-users-list", {"max_items": "25"}),
                           "registereduserjids")) == len(registered)
    # Errors of XEP-0133 section 5: no such account; another domain's.
    with pytest.raises(IqError) as error:
        slix.run(run_command(admin, "disable-user", {"accountjids": ["nobody@localhost"]}))
    assert error.value.condition == "item-not-found"
    with pytest.raises(IqError) as error:
        slix.run(run_command(admin, "disable-user", {"accountjids": ["dora@elsewhere.example"]}))
    assert error.value.condition == "not-allowed"
    run(slix, admin, "reenable-user", {"accountjids": ["dora@localhost"]})
    assert sasl_outcome(accounts_server, "dora", PASSWORD, "SCRAM-SHA-256") == "success"
    assert form_values(run(slix, admin, "get-disabled-users-num"), "disabledusersnum") == "0"
    assert "event=admin_disable_user by=admin@localhost/slix user=dora@localhost" in accounts_server.log()


def test_idle_users(accounts_server, slix, araw):
    admin = slix_client(slix, accounts_server, "admin")
    araw("ed", presence=False)  # bound, no available presence: idle
    araw("fay")
    idle = form_values(run(slix, admin, "get-idle-users", {"max_items": "none"}), "idleuserjids")
    assert "ed@localhost" in idle and "fay@localhost" not in idle and "admin@localhost" not in idle
    # (Sessions of earlier tests may still be ending: ed's is there at least.)
    assert int(form_values(run(slix, admin, "get-idle-users-num"), "idleusersnum")) >= 1


def test_user_roster_lastlogin_and_stats(accounts_server, slix, araw):
    admin = slix_client(slix, accounts_server, "admin")
    # An account of this test's own: no session of another test's may linger.
    run(slix, admin, "add-user", {"accountjid": "jon@localhost", "password": PASSWORD,
                                  "password-verify": PASSWORD})
    ed = araw("jon", resource="desk")
    reply = ed.iq("set", "<query xmlns='jabber:iq:roster'><item jid='dora@localhost' name='Dora'>"
                         "<group>Friends</group></item></query>")
    assert reply.get("type") == "result"
    roster = run(slix, admin, "get-user-roster", {"accountjids": ["jon@localhost"]})
    x = roster["command"]["form"].xml
    items = x.findall(f"{{jabber:iq:roster}}query/{{jabber:iq:roster}}item")
    assert [(i.get("jid"), i.get("name"), i.findtext("{jabber:iq:roster}group")) for i in items] == \
        [("dora@localhost", "Dora", "Friends")]
    stats = run(slix, admin, "user-stats", {"accountjid": "jon@localhost"})
    assert form_values(stats, "ipaddresses") == "127.0.0.1"
    assert form_values(stats, "rostersize") == "1"
    assert form_values(stats, "onlineresources") == "desk"
    # Online now: "Online" (as ejabberd answers); never logged in: "Never".
    assert form_values(run(slix, admin, "get-user-lastlogin", {"accountjids": ["jon@localhost"]}),
                       "lastlogin") == "Online"
    run(slix, admin, "add-user", {"accountjid": "newbie@localhost", "password": PASSWORD,
                                  "password-verify": PASSWORD})
    assert form_values(run(slix, admin, "get-user-lastlogin", {"accountjids": ["newbie@localhost"]}),
                       "lastlogin") == "Never"
    # After a logout: mod_last's record of it, as an XEP-0082 DateTime. (mod_last
    # writes it after the session ended: asked again until it is there.)
    ed.close()
    deadline = time.monotonic() + 20
    while True:
        value = form_values(run(slix, admin, "get-user-lastlogin", {"accountjids": ["jon@localhost"]}), "lastlogin")
        if value not in ("Online", "Never") or time.monotonic() > deadline:
            break
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value), value
    # Errors: no such account; one account at a time.
    with pytest.raises(IqError) as error:
        slix.run(run_command(admin, "get-user-roster", {"accountjids": ["nobody@localhost"]}))
    assert error.value.condition == "item-not-found"
    with pytest.raises(IqError) as error:
        slix.run(run_command(admin, "user-stats", {"accountjid": "nobody@localhost"}))
    assert error.value.condition == "item-not-found"
    with pytest.raises(IqError) as error:
        slix.run(run_command(admin, "get-user-roster", {"accountjids": ["jon@localhost", "dora@localhost"]}))
    assert error.value.condition == "bad-request"


def test_welcome_message_to_new_accounts(accounts_server, slix, araw):
    admin = slix_client(slix, accounts_server, "admin")
    run(slix, admin, "set-welcome", {"welcome": ["Welcome aboard", "-- the admins"]})
    run(slix, admin, "add-user", {"accountjid": "greta@localhost", "password": PASSWORD,
                                  "password-verify": PASSWORD})
    greta = araw("greta", presence=False)
    greta.send("<presence/>")  # the offline store gives it at the first available presence
    message = greta.expect_message("Welcome aboard\n-- the admins")
    assert message.get("from") == "localhost"
    # In-band or parleyctl registration gets it too.
    ok, body = accounts_server.control("register", "hans", "localhost", PASSWORD)
    assert ok, body
    hans = araw("hans", presence=False)
    hans.send("<presence/>")
    assert hans.expect_message("Welcome aboard\n-- the admins").get("from") == "localhost"
    run(slix, admin, "delete-welcome")
    run(slix, admin, "add-user", {"accountjid": "ida@localhost", "password": PASSWORD,
                                  "password-verify": PASSWORD})
    ida = araw("ida", presence=False)
    ida.send("<presence/>")
    assert q("jabber:client", "message") not in [e.tag for e in ida.nothing_before_sync()]


def test_commands_not_offered_and_bad_locale(accounts_server, araw):
    admin = araw("admin")
    # Not offered (docs/modules/mod_adhoc.md): restart, get-user-password (SCRAM
    # hashes only), edit-admin (the config's), blacklists.
    for name in ("restart", "get-user-password", "edit-admin", "edit-blacklist"):
        assert specific_condition(command_iq(admin, name)) == ("item-not-found", None), name
    # XEP-0050 4.6: a locale that is no language tag is bad-locale; any language
    # is accepted and answered in English, saying so.
    assert specific_condition(command_iq(admin, "get-idle-users-num", "xml:lang='en_US'")) == \
        ("bad-request", "bad-locale")
    done = command_iq(admin, "get-idle-users-num", "xml:lang='de'").find(q(CMD, "command"))
    assert (done.get("status"), done.get("{http://www.w3.org/XML/1998/namespace}lang")) == ("completed", "en")


# ---- last: shutdown, on a server of its own --------------------------------------

def test_shutdown_with_announcement(tmp_path, slix):
    server = make_server(tmp_path)
    try:
        alice = RawClient(server.c2s_port)
        alice.login("alice", PASSWORD, presence=True)
        admin = slix_client(slix, server, "admin")
        form = slix.run(admin.xmpp["xep_0050"].send_command("localhost", node("shutdown")))
        fields = form["command"]["form"].get_fields()
        assert fields["delay"]["type"] == "list-single" and fields["announcement"]["type"] == "text-multi"
        # A delay of one second (the form's options are suggestions: any seconds up to a day).
        reply = slix.run(admin.xmpp["xep_0050"].send_command(
            "localhost", node("shutdown"), action="complete", sessionid=form["command"]["sessionid"],
            payload=submit_form(admin, {"delay": "1", "announcement": ["Going down", "for an upgrade"]})))
        assert reply["command"]["status"] == "completed"
        # The announcement comes at once, the shutdown after the delay.
        assert alice.expect_message("Going down\nfor an upgrade").get("from") == "localhost"
        alice.sync()
        assert alice.expect_stream_error() == "system-shutdown"
        assert server.proc.wait(timeout=20) == 0
        assert "event=admin_shutdown by=admin@localhost/slix delay=1" in server.log()
    finally:
        code, killed = server.stop()
        assert not killed and code == 0
        assert not server.sanitizer_reports()
