"""Module ABI 1.2 against a running parleyd, through the test module
mod_test_service (tests/modules/): a module service on a subdomain
(register_route) listed in the host's disco#items, stanzas to it and to JIDs at
it, send_iq with its answer, error and timeout, posts across the two worker
loops with per-loop state, and a module built against the 1.1 header."""

from conftest import PASSWORD
from rawxmpp import q, stanza_error_condition
from test_modules import module_dir

NS_INFO = "http://jabber.org/protocol/disco#info"
NS_ITEMS = "http://jabber.org/protocol/disco#items"
NS_VERSION = "jabber:iq:version"
IQ = q("jabber:client", "iq")


def service_server(server_factory, tmp_path, **options):
    folder = module_dir(tmp_path, "mod_test_service")
    server = server_factory(module_paths=[folder],
                            modules={"mod_disco": {}, "mod_ping": {}, "mod_test_service": options})
    server.register("alice", PASSWORD)
    server.register("bob", PASSWORD)
    return server


def body_of(message):
    body = message.find(q("jabber:client", "body"))
    return body.text if body is not None else None


def expect_reply(client, sender):
    return client.expect(q("jabber:client", "message"), match=lambda e: e.get("from") == sender)


def test_the_service_is_listed_and_answers_disco(server_factory, tmp_path, raw_factory):
    server = service_server(server_factory, tmp_path)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="a")
    items = alice.iq("get", f"<query xmlns='{NS_ITEMS}'/>", to=server.domain)
    assert items.get("type") == "result"
    listed = [(i.get("jid"), i.get("name")) for i in items.find(q(NS_ITEMS, "query"))]
    assert listed == [("service.localhost", "Test service")]
    info = alice.iq("get", f"<query xmlns='{NS_INFO}'/>", to="service.localhost")
    assert info.get("type") == "result" and info.get("from") == "service.localhost"
    identity = info.find(q(NS_INFO, "query")).find(q(NS_INFO, "identity"))
    assert (identity.get("category"), identity.get("type")) == ("component", "generic")
    # What the module passes on gets the core's answer.
    other = alice.iq("get", "<query xmlns='urn:example:nothing'/>", to="service.localhost")
    assert stanza_error_condition(other)[1] == "service-unavailable"
    # A subdomain nobody serves is still unknown.
    unknown = alice.iq("get", f"<query xmlns='{NS_INFO}'/>", to="nobody.localhost")
    assert stanza_error_condition(unknown)[1] == "remote-server-not-found"


def test_messages_to_the_domain_and_to_jids_at_it_reach_the_module(server_factory, tmp_path, raw_factory):
    server = service_server(server_factory, tmp_path)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="a")
    alice.message("service.localhost", "echo one")
    reply = expect_reply(alice, "service.localhost")
    assert body_of(reply) == "echo: one" and reply.get("to") == "alice@localhost/a"
    alice.message("room@service.localhost/nick", "echo two")
    assert body_of(expect_reply(alice, "room@service.localhost/nick")) == "echo: two"
    # The module's typed metrics, summed over the loops by parleyctl status.
    status = server.ctl("status").stdout
    assert "mod_test_service.localhost.messages: 2\n" in status
    assert "mod_test_service.localhost.open_asks: 0\n" in status
    assert "mod_test_service.localhost.body_bytes: count=2 sum=16 p50<=10 p99<=10\n" in status


def test_send_iq_gets_the_answer_error_or_timeout(server_factory, tmp_path, raw_factory):
    server = service_server(server_factory, tmp_path, iq_timeout_ms=400)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="a")
    bob = raw_factory(server.c2s_port)
    bob.login("bob", PASSWORD, resource="b")

    # An answer, after a forged one from another user with the same id is ignored.
    alice.message("service.localhost", "ask")
    iq = alice.expect(IQ, match=lambda e: e.get("type") == "get")
    assert iq.get("from") == "service.localhost" and iq.find(q(NS_VERSION, "query")) is not None
    bob.send(f"<iq type='result' id='{iq.get('id')}' to='service.localhost'>"
             f"<query xmlns='{NS_VERSION}'><name>forged</name></query></iq>")
    bob.sync()
    alice.send(f"<iq type='result' id='{iq.get('id')}' to='service.localhost'>"
               f"<query xmlns='{NS_VERSION}'><name>raw</name></query></iq>")
    assert body_of(expect_reply(alice, "service.localhost")) == "version: raw"

    # An error answer.
    alice.message("service.localhost", "ask")
    iq = alice.expect(IQ, match=lambda e: e.get("type") == "get")
    alice.send(f"<iq type='error' id='{iq.get('id')}' to='service.localhost'>"
               "<error type='cancel'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
               "</error></iq>")
    assert body_of(expect_reply(alice, "service.localhost")) == "error: feature-not-implemented"

    # No answer: the module hears of the timeout; a late answer goes nowhere.
    alice.message("service.localhost", "ask")
    iq = alice.expect(IQ, match=lambda e: e.get("type") == "get")
    assert body_of(expect_reply(alice, "service.localhost")) == "timeout"
    alice.send(f"<iq type='result' id='{iq.get('id')}' to='service.localhost'/>")
    alice.message("service.localhost", "echo after")
    assert body_of(expect_reply(alice, "service.localhost")) == "echo: after"


def test_send_iq_that_the_router_cannot_deliver_gets_its_error(server_factory, tmp_path, raw_factory):
    server = service_server(server_factory, tmp_path)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="a")
    # RFC 6121 8.5.1: an iq to an account that does not exist.
    alice.message("service.localhost", "ask-to nobody@localhost")
    assert body_of(expect_reply(alice, "service.localhost")) == "error: service-unavailable"
    # No route to the domain (no s2s).
    alice.message("service.localhost", "ask-to someone@elsewhere.example")
    assert body_of(expect_reply(alice, "service.localhost")) == "error: remote-server-not-found"
    # A full JID that is not online (RFC 6121 8.5.3.2.1 for an iq).
    alice.message("service.localhost", "ask-to bob@localhost/gone")
    assert body_of(expect_reply(alice, "service.localhost")) == "error: service-unavailable"


def test_posts_cross_loops_and_come_back(server_factory, tmp_path, raw_factory):
    server = service_server(server_factory, tmp_path)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="a")
    alice.message("service.localhost", "hop")
    text = body_of(expect_reply(alice, "service.localhost"))
    first, second, third = text.removeprefix("hopped: ").split("->")
    assert first == third and first != second and {first, second} == {"0", "1"}


def test_unload_waits_for_a_pending_iq_and_removes_the_route(server_factory, tmp_path, raw_factory):
    server = service_server(server_factory, tmp_path, iq_timeout_ms=60000)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="a")
    alice.message("service.localhost", "ask")
    iq = alice.expect(IQ, match=lambda e: e.get("type") == "get")
    refused = server.ctl("module", "unload", "mod_test_service")
    assert refused.returncode != 0 and "in flight" in (refused.stdout + refused.stderr)
    alice.send(f"<iq type='result' id='{iq.get('id')}' to='service.localhost'>"
               f"<query xmlns='{NS_VERSION}'><name>raw</name></query></iq>")
    assert body_of(expect_reply(alice, "service.localhost")) == "version: raw"
    unloaded = server.ctl("module", "unload", "mod_test_service")
    assert unloaded.returncode == 0, unloaded.stdout + unloaded.stderr
    gone = alice.iq("get", f"<query xmlns='{NS_INFO}'/>", to="service.localhost")
    assert stanza_error_condition(gone)[1] == "remote-server-not-found"
    items = alice.iq("get", f"<query xmlns='{NS_ITEMS}'/>", to=server.domain)
    assert list(items.find(q(NS_ITEMS, "query"))) == []


def test_a_module_built_against_abi_1_1_loads_and_works(server_factory, tmp_path, raw_factory):
    folder = module_dir(tmp_path, "mod_test_abi_1_1")
    server = server_factory(module_paths=[folder], modules={"mod_test_abi_1_1": {}})
    server.register("alice", PASSWORD)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="a")
    reply = alice.iq("get", "<abi11 xmlns='urn:parley:test:abi11'/>", to=server.domain)
    payload = reply.find(q("urn:parley:test:abi11", "abi11"))
    assert payload is not None and payload.get("minor") == "1" and payload.text == "127.0.0.1"
