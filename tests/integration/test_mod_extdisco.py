"""mod_extdisco (XEP-0215 External Service Discovery, urn:xmpp:extdisco:2)
against a running parleyd: the STUN/TURN services of the options with TURN
REST credentials (coturn's use-auth-secret) or static ones, the type filter,
restricted services and <credentials/> requests (section 3.3), who may ask,
the errors, the disco feature, and the options refused at start with a reason.
slixmpp has no XEP-0215 plugin: the raw client checks the exact XML."""

import base64
import datetime as dt
import hashlib
import hmac
import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD
from rawxmpp import q, stanza_error_condition

NS = "urn:xmpp:extdisco:2"
DISCO = "http://jabber.org/protocol/disco#info"
SECRET = "a shared secret of coturn's"
SERVICES = [
    "stun:stun.example.org",
    "turn:turn.example.org?transport=udp",
    "turn:turn.example.org?transport=tcp",
    "turns:turn.example.org",
]


def start(server_factory, raw_factory, hosts=("localhost",), **options):
    server = server_factory(hosts=hosts, modules={"mod_disco": {}, "mod_ping": {}, "mod_extdisco": options})
    server.register("alice", PASSWORD)
    client = raw_factory(server.c2s_port)
    client.login("alice", PASSWORD, resource="x")
    return server, client


def services(client, to, type_=None):
    attr = f" type='{type_}'" if type_ else ""
    reply = client.iq("get", f"<services xmlns='{NS}'{attr}/>", to=to)
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    payload = reply.find(q(NS, "services"))
    assert payload is not None, ET.tostring(reply, "unicode")
    return payload


def credentials(client, to, *wanted):
    body = "".join(f"<service {' '.join(f'{k}={v!r}' for k, v in w.items())}/>" for w in wanted)
    return client.iq("get", f"<credentials xmlns='{NS}'>{body}</credentials>", to=to)


def turn_password(secret, username):
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def parse_stamp(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_rest_credentials(service, user, lifetime, before, after, secret=SECRET):
    """The TURN REST credentials of `service`, made between `before` and
    `after` (Unix seconds) for `user` ("" if left out) with `lifetime`."""
    username = service.get("username")
    expiry, _, who = username.partition(":")
    assert who == user, username
    assert before + lifetime <= int(expiry) <= after + lifetime, (before, username, after)
    assert service.get("password") == turn_password(secret, username)
    assert parse_stamp(service.get("expires")) == dt.datetime.fromtimestamp(int(expiry), dt.timezone.utc)
    assert service.get("expires").endswith("Z")
    assert service.get("restricted") == "true"


def now():
    return int(dt.datetime.now(dt.timezone.utc).timestamp())


def test_every_service_with_turn_rest_credentials(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory, services=SERVICES, secret=SECRET)
    before = now()
    reply = services(c, server.domain)
    after = now()
    assert reply.get("type") is None
    listed = list(reply)
    assert [s.tag for s in listed] == [q(NS, "service")] * 4
    stun, turn_udp, turn_tcp, turns = listed
    # STUN needs no credentials: exactly the four attributes.
    assert stun.attrib == {"type": "stun", "host": "stun.example.org", "port": "3478", "transport": "udp"}
    expected = (("turn", "3478", "udp"), ("turn", "3478", "tcp"), ("turns", "5349", "tcp"))
    for s, (type_, port, transport) in zip((turn_udp, turn_tcp, turns), expected):
        assert (s.get("type"), s.get("host"), s.get("port"), s.get("transport")) == \
            (type_, "turn.example.org", port, transport)
        assert set(s.attrib) == {"type", "host", "port", "transport", "restricted", "username", "password", "expires"}
        check_rest_credentials(s, f"alice@{server.domain}", 86400, before, after)


def test_the_reply_addresses(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory, services=SERVICES)
    reply = c.iq("get", f"<services xmlns='{NS}'/>", to=server.domain)
    assert reply.get("from") == server.domain and reply.get("to") == c.jid


def test_services_of_one_type(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory, services=SERVICES, secret=SECRET)
    turn = services(c, server.domain, "turn")
    assert turn.get("type") == "turn"  # echoed, as in section 3.2's example
    assert [(s.get("type"), s.get("transport")) for s in turn] == [("turn", "udp"), ("turn", "tcp")]
    stun = services(c, server.domain, "stun")
    assert [s.get("host") for s in stun] == ["stun.example.org"]
    assert list(services(c, server.domain, "ftp")) == []


def test_static_credentials_and_a_name(server_factory, raw_factory):
    uri = "turn:[2001:db8::1]:3479?transport=tcp&username=calls&password=p%26ss&name=The%20relay"
    server, c = start(server_factory, raw_factory, services=[uri], secret=SECRET)
    (s,) = list(services(c, server.domain))
    # Static credentials win over the secret, and do not expire.
    assert s.attrib == {"type": "turn", "host": "2001:db8::1", "port": "3479", "transport": "tcp",
                        "name": "The relay", "restricted": "true", "username": "calls", "password": "p&ss"}


def test_lifetime_and_a_username_without_the_jid(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory, services=["turn:turn.example.org"], secret=SECRET,
                      credential_lifetime=600, username_with_jid=False)
    before = now()
    (s,) = list(services(c, server.domain))
    check_rest_credentials(s, "", 600, before, now())


def test_without_a_secret_turn_is_listed_without_credentials(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory, services=["turn:turn.example.org"])
    (s,) = list(services(c, server.domain))
    assert s.attrib == {"type": "turn", "host": "turn.example.org", "port": "3478", "transport": "udp"}
    assert "without credentials" in server.log()


def test_a_restricted_service_gives_its_credentials_on_request(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory, secret=SECRET,
                      services=["stun:turn.example.org", "turn:turn.example.org?restricted=true"])
    stun, turn = list(services(c, server.domain))
    assert turn.attrib == {"type": "turn", "host": "turn.example.org", "port": "3478", "transport": "udp",
                           "restricted": "true"}
    before = now()
    reply = credentials(c, server.domain, {"type": "turn", "host": "turn.example.org"})
    after = now()
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    (s,) = list(reply.find(q(NS, "credentials")))
    assert (s.get("type"), s.get("host"), s.get("port")) == ("turn", "turn.example.org", "3478")
    check_rest_credentials(s, f"alice@{server.domain}", 86400, before, after)


def test_credentials_by_host_any_case_and_by_port(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory, secret=SECRET,
                      services=["turn:turn.example.org:3478", "turn:turn.example.org:3479",
                                "turn:other.example.org", "turns:turn.example.org"])
    both = credentials(c, server.domain, {"type": "turn", "host": "TURN.Example.ORG"})
    ports = [s.get("port") for s in both.find(q(NS, "credentials"))]
    assert ports == ["3478", "3479"]  # section 3.3: every match, several ports of one host
    one = credentials(c, server.domain, {"type": "turn", "host": "turn.example.org", "port": "3479"})
    assert [s.get("port") for s in one.find(q(NS, "credentials"))] == ["3479"]
    # Two services asked at once.
    two = credentials(c, server.domain, {"type": "turn", "host": "other.example.org"},
                      {"type": "turns", "host": "turn.example.org"})
    assert [(s.get("type"), s.get("host")) for s in two.find(q(NS, "credentials"))] == \
        [("turn", "other.example.org"), ("turns", "turn.example.org")]


def test_credentials_errors(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory, secret=SECRET,
                      services=["stun:stun.example.org", "turn:turn.example.org"])
    d = server.domain
    # Nothing by that name, or nothing with credentials (STUN): item-not-found (section 3.3).
    assert stanza_error_condition(credentials(c, d, {"type": "turn", "host": "elsewhere.example"})) == \
        ("cancel", "item-not-found")
    assert stanza_error_condition(credentials(c, d, {"type": "turn", "host": "turn.example.org", "port": "9"})) == \
        ("cancel", "item-not-found")
    assert stanza_error_condition(credentials(c, d, {"type": "stun", "host": "stun.example.org"})) == \
        ("cancel", "item-not-found")
    # The <service/> MUST include 'host' and 'type'.
    assert stanza_error_condition(credentials(c, d, {"type": "turn"})) == ("modify", "bad-request")
    assert stanza_error_condition(credentials(c, d, {"host": "turn.example.org"})) == ("modify", "bad-request")
    assert stanza_error_condition(credentials(c, d)) == ("modify", "bad-request")
    assert stanza_error_condition(credentials(c, d, {"type": "turn", "host": "turn.example.org", "port": "x"})) == \
        ("modify", "bad-request")


def test_set_and_other_elements(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory, services=SERVICES, secret=SECRET)
    reply = c.iq("set", f"<services xmlns='{NS}'><service action='add' type='turn' host='evil.example'/></services>",
                 to=server.domain)
    assert stanza_error_condition(reply) == ("cancel", "not-allowed")
    reply = c.iq("get", f"<service xmlns='{NS}' type='turn' host='turn.example.org'/>", to=server.domain)
    assert stanza_error_condition(reply) == ("modify", "bad-request")
    # The set changed nothing.
    assert "evil.example" not in ET.tostring(services(c, server.domain), "unicode")


def test_only_this_hosts_users(server_factory, raw_factory):
    # Another served domain's user (a stranger to this host's TURN secret): forbidden
    # (section 2), and that domain's own instance answers its users.
    server, alice = start(server_factory, raw_factory, hosts=("localhost", "example.test"),
                          services=["turn:turn.example.org"], secret=SECRET)
    server.register("carol", PASSWORD, host="example.test")
    carol = raw_factory(server.c2s_port, domain="example.test")
    carol.login("carol", PASSWORD, resource="c")
    for request in (f"<services xmlns='{NS}'/>",
                    f"<credentials xmlns='{NS}'><service type='turn' host='turn.example.org'/></credentials>"):
        reply = carol.iq("get", request, to="localhost")
        assert stanza_error_condition(reply) == ("auth", "forbidden"), ET.tostring(reply, "unicode")
        # The error may carry the request back (RFC 6120 section 8.3.1), never credentials.
        assert all(e.get("password") is None for e in reply.iter()), ET.tostring(reply, "unicode")
    before = now()
    (s,) = list(services(carol, "example.test"))
    check_rest_credentials(s, "carol@example.test", 86400, before, now())
    (s,) = list(services(alice, "localhost"))
    assert s.get("username").endswith(":alice@localhost")


def test_declares_its_disco_feature(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory, services=SERVICES)
    info = c.iq("get", f"<query xmlns='{DISCO}'/>", to=server.domain)
    assert NS in {f.get("var") for f in info.iter(q(DISCO, "feature"))}


def test_starts_without_services_and_lists_none(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory)
    assert list(services(c, server.domain)) == []
    assert "no services configured" in server.log()


def test_answers_after_a_reload(server_factory, raw_factory):
    server, c = start(server_factory, raw_factory, services=SERVICES, secret=SECRET)
    reloaded = server.ctl("module", "reload", "mod_extdisco")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    assert len(list(services(c, server.domain))) == 4


@pytest.mark.parametrize("options, reason", [
    ({"services": ["stun:stun.example.org", "ftp:files.example.org"]},
     "services[1] 'ftp:files.example.org': unknown type 'ftp'"),
    ({"services": ["turn:turn.example.org?transport=sctp"]}, "transport must be udp or tcp"),
    ({"services": ["turn:turn.example.org:99999"]}, "the port must be 1-65535"),
    ({"services": ["turn:turn.example.org?username=bob"]}, "username and password go together"),
    ({"services": ["stun:stun.example.org?restricted=true"]}, "restricted=true needs credentials"),
    ({"secret": ""}, "secret must not be empty"),
    ({"credential_lifetime": 0}, "credential_lifetime must be 60-2592000 seconds, not 0"),
    ({"services": "turn:turn.example.org"}, "option 'services'"),
])
def test_bad_options_refuse_start_with_a_reason(server_factory, options, reason):
    server = server_factory(start=False, modules={"mod_extdisco": options})
    server.expected_exit = 1
    with pytest.raises(RuntimeError):
        server.start(timeout=15)
    log = server.log()
    assert "mod_extdisco" in log and reason in log, log[-2000:]


def test_the_commented_example_of_the_shipped_configuration_works(server_factory, raw_factory):
    # conf/parley.yml ships mod_extdisco commented out; its example, uncommented, starts
    # and lists its four services with credentials (the example and the parser agree).
    import os
    from pathlib import Path
    import yaml
    lines = (Path(os.environ["PARLEY_SOURCE_DIR"]) / "conf" / "parley.yml").read_text().splitlines()
    start_at = next(i for i, line in enumerate(lines) if line.startswith("  # mod_extdisco:"))
    block = ["mod_extdisco:"]
    for line in lines[start_at + 1:]:
        if not line.startswith("  #   "):
            break
        block.append(line[4:])
    options = yaml.safe_load("\n".join(block))["mod_extdisco"]
    assert set(options) == {"services", "secret"}, options
    server, c = start(server_factory, raw_factory, **options)
    before = now()
    listed = list(services(c, server.domain))
    after = now()
    assert [s.get("type") for s in listed] == ["stun", "turn", "turn", "turns"]
    for s in listed[1:]:
        check_rest_credentials(s, f"alice@{server.domain}", 86400, before, after, secret=options["secret"])
