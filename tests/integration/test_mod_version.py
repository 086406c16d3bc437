"""mod_version (XEP-0092 Software Version) against a running parleyd."""

import xml.etree.ElementTree as ET

from conftest import PASSWORD
from rawxmpp import q, stanza_error_condition

NS = "jabber:iq:version"
DISCO = "http://jabber.org/protocol/disco#info"


def version_of(client, to):
    reply = client.iq("get", f"<query xmlns='{NS}'/>", to=to)
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    query = reply.find(q(NS, "query"))
    assert query is not None, ET.tostring(reply, "unicode")
    return {child.tag.split("}", 1)[1]: child.text for child in query}


def start(server_factory, raw_factory, **options):
    server = server_factory(modules={"mod_disco": {}, "mod_ping": {}, "mod_version": options})
    server.register("alice", PASSWORD)
    client = raw_factory(server.c2s_port)
    client.login("alice", PASSWORD, resource="a")
    return server, client


def test_default_answer_has_name_and_version_but_no_os(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory)
    answer = version_of(c, server.domain)
    assert answer["name"] == "Parley"
    assert answer["version"] == "1.0.0"  # the module's version
    assert "os" not in answer  # privacy by default


def test_reply_addresses(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory)
    reply = c.iq("get", f"<query xmlns='{NS}'/>", to=server.domain)
    assert reply.get("from") == server.domain
    assert reply.get("to") == c.jid


def test_configured_version_and_os(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory, version="2024.1-test", show_os=True)
    answer = version_of(c, server.domain)
    assert answer == {"name": "Parley", "version": "2024.1-test", "os": answer["os"]}
    assert answer["os"] and "Linux" in answer["os"]


def test_show_os_false_hides_it(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory, show_os=False)
    assert "os" not in version_of(c, server.domain)


def test_declares_its_disco_feature(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory)
    info = c.iq("get", f"<query xmlns='{DISCO}'/>", to=server.domain)
    assert NS in {f.get("var") for f in info.iter(q(DISCO, "feature"))}


def test_set_is_not_allowed(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory)
    reply = c.iq("set", f"<query xmlns='{NS}'><name>x</name></query>", to=server.domain)
    assert stanza_error_condition(reply)[1] == "not-allowed"


def test_wrong_payload_element_is_a_bad_request(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory)
    reply = c.iq("get", f"<version xmlns='{NS}'/>", to=server.domain)
    assert stanza_error_condition(reply)[1] == "bad-request"


def test_a_users_version_is_asked_of_the_users_client(server_factory, raw_factory):
    # To a full JID the server only routes: the client answers (here, bob's raw
    # client sees the request and answers it himself).
    server, alice = start(server_factory, raw_factory)
    server.register("bob", PASSWORD)
    bob = raw_factory(server.c2s_port)
    bob.login("bob", PASSWORD, resource="b", presence=True)
    alice.send(f"<iq type='get' id='v1' to='{bob.jid}'><query xmlns='{NS}'/></iq>")
    request = bob.expect(q("jabber:client", "iq"), match=lambda e: e.get("id") == "v1")
    assert request.get("type") == "get" and request.get("from") == alice.jid
    bob.send(f"<iq type='result' id='v1' to='{alice.jid}'><query xmlns='{NS}'>"
             "<name>BobClient</name><version>0.1</version></query></iq>")
    reply = alice.expect(q("jabber:client", "iq"), match=lambda e: e.get("id") == "v1")
    assert reply.find(f"{q(NS, 'query')}/{q(NS, 'name')}").text == "BobClient"


def test_without_the_module_the_server_does_not_answer(server_factory, raw_factory):
    server = server_factory(modules={"mod_ping": {}})
    server.register("alice", PASSWORD)
    c = raw_factory(server.c2s_port)
    c.login("alice", PASSWORD)
    reply = c.iq("get", f"<query xmlns='{NS}'/>", to=server.domain)
    assert stanza_error_condition(reply)[1] == "service-unavailable"


def test_a_wrongly_typed_option_refuses_start(server_factory):
    import pytest
    server = server_factory(start=False, modules={"mod_version": {"show_os": "perhaps"}})
    server.expected_exit = 1
    with pytest.raises(RuntimeError):
        server.start(timeout=15)
    assert "mod_version" in server.log() and "show_os" in server.log()
