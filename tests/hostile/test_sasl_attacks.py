"""SASL garbage and replay (RFC 6120 6.4.5 and 6.5, RFC 4616 PLAIN, RFC 5802
SCRAM), each on a fresh STARTTLS connection of mallory's, while the witness
pair keeps talking. Every case must end in the <failure/> condition named
(RFC 6120 6.5.x), and a stream that fails max_auth_failures times is closed
with <policy-violation/> (6.4.5).
"""

import base64
import ssl
import time

from conftest import PASSWORD
from hostile import assert_stream_error_and_close, blast
from rawxmpp import NS_SASL, StreamErrorReceived, q, sasl_failure_condition

B64 = lambda raw: base64.b64encode(raw if isinstance(raw, bytes) else raw.encode()).decode()  # noqa: E731


def auth(mechanism, payload):
    mech = f" mechanism='{mechanism}'" if mechanism is not None else ""
    return f"<auth xmlns='{NS_SASL}'{mech}>{payload}</auth>"


def response(payload):
    return f"<response xmlns='{NS_SASL}'>{payload}</response>"


# (name, elements sent after STARTTLS, expected <failure/> condition(s))
FIRST_MESSAGE_CASES = [
    # not base64 at all, or badly padded (incorrect-encoding)
    ("plain-bad-base64", [auth("PLAIN", "!!!not*base64!!!")], "incorrect-encoding"),
    ("plain-bad-padding", [auth("PLAIN", "A===")], "incorrect-encoding"),
    ("scram-bad-base64", [auth("SCRAM-SHA-1", "bi,,====")], "incorrect-encoding"),
    # mechanisms not offered (invalid-mechanism)
    ("unknown-mechanism", [auth("X-EVIL", B64("x"))], "invalid-mechanism"),
    ("digest-md5", [auth("DIGEST-MD5", "")], "invalid-mechanism"),
    ("anonymous", [auth("ANONYMOUS", B64("x"))], "invalid-mechanism"),
    ("external", [auth("EXTERNAL", "=")], "invalid-mechanism"),
    ("lowercase-plain", [auth("plain", B64("\0mallory\0" + PASSWORD))], "invalid-mechanism"),
    ("no-mechanism-attribute", [auth(None, B64("\0mallory\0" + PASSWORD))], "invalid-mechanism"),
    ("empty-mechanism", [auth("", B64("\0mallory\0" + PASSWORD))], "invalid-mechanism"),
    # PLAIN that breaks RFC 4616's syntax (malformed-request)
    ("plain-no-nul", [auth("PLAIN", B64("mallory" + PASSWORD))], "malformed-request"),
    ("plain-one-nul", [auth("PLAIN", B64("mallory\0" + PASSWORD))], "malformed-request"),
    ("plain-empty-password", [auth("PLAIN", B64("\0mallory\0"))], "malformed-request"),
    ("plain-empty-user", [auth("PLAIN", B64("\0\0" + PASSWORD))], "malformed-request"),
    # someone else's identity as authzid (invalid-authzid)
    ("plain-authzid-of-alice", [auth("PLAIN", B64("alice@localhost\0mallory\0" + PASSWORD))],
     "invalid-authzid"),
    ("plain-authzid-garbage", [auth("PLAIN", B64("@@@\0mallory\0" + PASSWORD))], "invalid-authzid"),
    # SCRAM client-first-message syntax (RFC 5802 7) -> malformed-request
    ("scram-no-commas", [auth("SCRAM-SHA-1", B64("hello"))], "malformed-request"),
    ("scram-bad-gs2-flag", [auth("SCRAM-SHA-1", B64("x,,n=mallory,r=abcdef"))], "malformed-request"),
    ("scram-missing-user", [auth("SCRAM-SHA-1", B64("n,,r=abcdef"))], "malformed-request"),
    ("scram-missing-nonce", [auth("SCRAM-SHA-1", B64("n,,n=mallory"))], "malformed-request"),
    ("scram-empty-user", [auth("SCRAM-SHA-1", B64("n,,n=,r=abcdef"))], "malformed-request"),
    ("scram-bad-escape", [auth("SCRAM-SHA-1", B64("n,,n=mal=zzory,r=abcdef"))], "malformed-request"),
    ("scram-mandatory-extension", [auth("SCRAM-SHA-1", B64("n,,m=ext,n=mallory,r=abcdef"))],
     "malformed-request"),
    ("scram-nonprintable-nonce", [auth("SCRAM-SHA-1", B64("n,,n=mallory,r=ab\x7fcd"))],
     "malformed-request"),
    ("scram-nul-inside", [auth("SCRAM-SHA-1", B64("n,,n=mal\0lory,r=abcdef"))], "malformed-request"),
    ("scram-binding-with-non-plus", [auth("SCRAM-SHA-1", B64("p=tls-unique,,n=mallory,r=abcdef"))],
     "malformed-request"),
    ("scram-plus-without-binding", [auth("SCRAM-SHA-1-PLUS", B64("n,,n=mallory,r=abcdef"))],
     "malformed-request"),
    ("scram-plus-unknown-binding", [auth("SCRAM-SHA-1-PLUS", B64("p=tls-bogus,,n=mallory,r=abc"))],
     ("not-authorized", "malformed-request")),
    # on TLS 1.3 -PLUS is not offered (the listener's tls13_channel_binding is off)
    ("scram-plus-not-offered-on-tls13", [auth("SCRAM-SHA-256-PLUS", B64("p=tls-server-end-point,,n=mallory,r=abc"))],
     "invalid-mechanism"),
    # the client says it could bind but thinks we cannot: a downgrade (RFC 5802 6)
    ("scram-downgrade-y-flag", [auth("SCRAM-SHA-1", B64("y,,n=mallory,r=abcdef"))], "not-authorized"),
    # too long (bounded by the SCRAM parser well below max_stanza_bytes)
    ("scram-100k-username", [auth("SCRAM-SHA-1", B64("n,,n=" + "u" * 100_000 + ",r=abcdef"))],
     "malformed-request"),
    ("scram-100k-nonce", [auth("SCRAM-SHA-1", B64("n,,n=mallory,r=" + "r" * 100_000))],
     "malformed-request"),
    ("plain-100k-password", [auth("PLAIN", B64("\0mallory\0" + "p" * 100_000))],
     ("not-authorized", "malformed-request")),
    ("plain-100k-user", [auth("PLAIN", B64("\0" + "u" * 100_000 + "\0" + PASSWORD))],
     ("not-authorized", "malformed-request")),
    # out of order
    ("response-without-auth", [response(B64("c=biws,r=abc,p=AAAA"))], "malformed-request"),
]


class Sasl:
    """STARTTLS streams for SASL cases, each from its own 127.0.1.x address:
    the failures are what is under test here, and the per-address limit
    (limits.max_auth_failures_per_ip, tarpit past half of it, then
    temporary-auth-failure) must not decide the outcome of the next case.
    test_auth_lockout.py tests that limit."""

    def __init__(self, server, raw_from_factory):
        self.server = server
        self.raw_from_factory = raw_from_factory
        self.count = 0

    def tls_stream(self, **kwargs):
        self.count += 1
        ip = f"127.0.{1 + self.count // 250}.{1 + self.count % 250}"
        c = self.raw_from_factory(ip, self.server.c2s_port, **kwargs)
        c.start()
        c.starttls()
        return c


def run_cases(cases, attempt):
    failures = []
    for case in cases:
        try:
            attempt(case)
        except Exception as e:  # noqa: BLE001 - reported with the case's name
            failures.append(f"{case[0]}: {type(e).__name__}: {e}")
    assert not failures, "\n".join(failures)


def test_sasl_garbage(hostile_server, raw_from_factory, witness):
    server = hostile_server(limits={"max_auth_failures": 3})
    w = witness(server)
    sasl = Sasl(server, raw_from_factory)

    def attempt(case):
        name, elements, expected = case
        accepted = expected if isinstance(expected, tuple) else (expected,)
        # The cases about channel binding need -PLUS offered: TLS 1.2.
        tls12 = name.startswith(("scram-plus-w", "scram-plus-u", "scram-downgrade", "scram-binding"))
        c = sasl.tls_stream(**({"tls_max_version": ssl.TLSVersion.TLSv1_2} if tls12 else {}))
        for element in elements:
            c.send(element)
        outcome = c.expect(q(NS_SASL, "failure"))
        condition = sasl_failure_condition(outcome)
        assert condition in accepted, f"<failure><{condition}/></failure>, expected {accepted}"
        # Not authenticated: the stream is still in negotiation, and a correct
        # login on it works (one or two failures are below max_auth_failures).
        assert c.auth_plain("mallory", PASSWORD).tag == q(NS_SASL, "success"), \
            "a correct login after the failure did not succeed"
        c.close()

    run_cases(FIRST_MESSAGE_CASES, attempt)
    w.flowing()
    w.verify()


def scram_first(c, user="mallory", mechanism="SCRAM-SHA-1", nonce="hostilenonce0123456789"):
    first_bare = f"n={user},r={nonce}"
    c.send(auth(mechanism, B64("n,," + first_bare)))
    challenge = c.expect(q(NS_SASL, "challenge"))
    server_first = base64.b64decode(challenge.text or "").decode()
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    return fields["r"]


BAD_FINALS = [
    # (name, client-final-message made from the combined nonce, expected condition)
    ("not-base64", lambda r: "@@@@", "incorrect-encoding"),
    ("wrong-nonce", lambda r: B64(f"c=biws,r={r}x,p=" + B64(b"\0" * 20)), "not-authorized"),
    ("foreign-binding", lambda r: B64(f"c={B64('p=tls-unique,,')},r={r},p=" + B64(b"\0" * 20)),
     "not-authorized"),
    ("no-proof", lambda r: B64(f"c=biws,r={r}"), "malformed-request"),
    ("short-proof", lambda r: B64(f"c=biws,r={r},p=" + B64(b"\1" * 5)), "malformed-request"),
    ("wrong-proof", lambda r: B64(f"c=biws,r={r},p=" + B64(b"\1" * 20)), "not-authorized"),
    ("proof-not-base64", lambda r: B64(f"c=biws,r={r},p=!!!!"), "incorrect-encoding"),
    ("100k-final", lambda r: B64(f"c=biws,r={r}," + "x=" + "y" * 100_000 + ",p=AAAA"),
     "malformed-request"),
]


def test_bad_scram_client_final(hostile_server, raw_from_factory, witness):
    server = hostile_server()
    w = witness(server)
    sasl = Sasl(server, raw_from_factory)

    def attempt(case):
        name, final, expected = case
        c = sasl.tls_stream()
        nonce = scram_first(c)
        c.send(response(final(nonce)))
        outcome = c.expect(q(NS_SASL, "failure"))
        condition = sasl_failure_condition(outcome)
        assert condition == expected, f"<failure><{condition}/></failure>, expected <{expected}/>"
        c.close()

    run_cases(BAD_FINALS, attempt)
    w.verify()


def test_too_many_failures_close_the_stream(hostile_server, raw_from_factory, witness):
    # RFC 6120 6.4.5: a configurable number of retries (max_auth_failures),
    # then the stream is closed with <policy-violation/>.
    server = hostile_server(limits={"max_auth_failures": 3})
    w = witness(server)
    c = Sasl(server, raw_from_factory).tls_stream()
    garbage = [auth("PLAIN", "!!!"), auth("SCRAM-SHA-1", B64("hello")),
               auth("PLAIN", B64("\0mallory\0wrong-password"))]
    conditions = []
    try:
        for element in garbage:
            c.send(element)
            conditions.append(sasl_failure_condition(c.expect(q(NS_SASL, "failure"))))
    except StreamErrorReceived as e:
        conditions.append(f"stream:{e.condition}")
    assert conditions[:2] == ["incorrect-encoding", "malformed-request"], conditions
    assert_stream_error_and_close(c, "policy-violation")
    w.verify()


def test_sasl_element_larger_than_max_stanza_bytes(hostile_server, raw_from_factory, witness):
    server = hostile_server(limits={"max_stanza_bytes": 65536})
    w = witness(server)
    c = Sasl(server, raw_from_factory).tls_stream()
    blast(c, (f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>" + "QUFB" * 1_000_000).encode())
    assert_stream_error_and_close(c, "policy-violation")
    w.verify()


def test_abort_and_unknown_sasl_element(hostile_server, raw_from_factory):
    server = hostile_server()
    c = Sasl(server, raw_from_factory).tls_stream()
    scram_first(c)
    c.send(f"<abort xmlns='{NS_SASL}'/>")
    assert sasl_failure_condition(c.expect(q(NS_SASL, "failure"))) == "aborted"
    c.send(f"<evil xmlns='{NS_SASL}'/>")
    assert_stream_error_and_close(c, "unsupported-stanza-type")


# -- replay --------------------------------------------------------------------------------

class Recorder:
    """Wraps a RawClient's send to keep every SASL element it writes."""

    def __init__(self, client):
        self.sent = []
        real = client.send

        def send(data):
            text = data.decode() if isinstance(data, bytes) else data
            if NS_SASL in text:
                self.sent.append(text)
            return real(data)
        client.send = send


REPLAY_MECHANISMS = [("SCRAM-SHA-1",), ("SCRAM-SHA-256",), ("SCRAM-SHA-1-PLUS",)]


def test_replayed_scram_exchange_is_not_authorized(hostile_server, raw_from_factory, witness):
    # Mallory captured eve's whole successful SCRAM exchange (she could read
    # it, say, on a compromised TLS terminator). Replaying it on a new
    # connection must fail: the server nonce is new every time, so the old
    # proof does not match (RFC 5802 9), and -PLUS binds to the old TLS
    # session as well.
    server = hostile_server()
    w = witness(server)
    sasl = Sasl(server, raw_from_factory)

    def attempt(case):
        mechanism = case[0]
        tls12 = {"tls_max_version": ssl.TLSVersion.TLSv1_2} if mechanism.endswith("-PLUS") else {}
        eve = sasl.tls_stream(**tls12)
        recorder = Recorder(eve)
        assert eve.auth_scram("eve", PASSWORD, mechanism).tag == q(NS_SASL, "success")
        captured_auth, captured_final = recorder.sent
        assert "<response" in captured_final
        eve.abort()

        # 1. the same client-first (same client nonce), then the captured final
        replay = sasl.tls_stream(**tls12)
        replay.send(captured_auth)
        replay.expect(q(NS_SASL, "challenge"))
        replay.send(captured_final)
        condition = sasl_failure_condition(replay.expect(q(NS_SASL, "failure")))
        assert condition == "not-authorized", f"replayed exchange: <{condition}/>"
        # 2. the captured final alone, as if the exchange were already under way
        alone = sasl.tls_stream(**tls12)
        alone.send(captured_final)
        condition = sasl_failure_condition(alone.expect(q(NS_SASL, "failure")))
        assert condition in ("malformed-request", "not-authorized"), f"final alone: <{condition}/>"
        # 3. and both, pipelined before any challenge could be read
        piped = sasl.tls_stream(**tls12)
        piped.send(captured_auth + captured_final)
        condition = sasl_failure_condition(piped.expect(q(NS_SASL, "failure")))
        assert condition == "not-authorized", f"pipelined replay: <{condition}/>"

    run_cases(REPLAY_MECHANISMS, attempt)
    w.verify()


def test_starttls_command_injection(hostile_server, raw_factory, witness):
    # CVE-2011-0411 style: plaintext pipelined after <starttls/> in the same
    # write must be thrown away, never read as if it came inside TLS.
    server = hostile_server()
    w = witness(server)
    c = raw_factory(server.c2s_port)
    c.start()
    injected = auth("PLAIN", B64("\0mallory\0" + PASSWORD))
    c.send(f"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>{injected}")
    c.expect(q("urn:ietf:params:xml:ns:xmpp-tls", "proceed"))
    c._wrap_tls()
    features = c.start()
    assert c.mechanisms(features), "no SASL offered after STARTTLS: the injected <auth/> was used"
    assert features.find(q("urn:ietf:params:xml:ns:xmpp-bind", "bind")) is None
    # A round trip before authenticating: an unknown mechanism is refused
    # (not counted as a failed attempt); nothing may come before that.
    c.send(f"<auth xmlns='{NS_SASL}' mechanism='X-PARLEY-MARKER'/>")
    before = c.expect_nothing_until(
        lambda e: e.tag == q(NS_SASL, "failure") and sasl_failure_condition(e) == "invalid-mechanism")
    assert before == [], "the server answered the injected plaintext"
    assert c.auth_plain("mallory", PASSWORD).tag == q(NS_SASL, "success")
    w.verify()


# -- pipelining (RFC 6120 6.4: nothing after <auth/> before its outcome) ------------

PING = "<iq type='get' id='piped1'><ping xmlns='urn:xmpp:ping'/></iq>"
ABORT = f"<abort xmlns='{NS_SASL}'/>"
PLAIN_OK = auth("PLAIN", B64("\0mallory\0" + PASSWORD))
PLAIN_BAD = auth("PLAIN", B64("\0mallory\0wrong-password"))


def assert_success_then_stream_error(c):
    """<success/> first (the outcome of the <auth/>), then, since only a new
    stream header may follow <success/>, our new stream and a stream error:
    what was pipelined after the <auth/> is read as the start of the new
    stream, whose root must be <stream:stream> (RFC 6120 §4.9.3.10), and is
    never taken as authenticated."""
    first = c.next_element()
    assert first.tag == q(NS_SASL, "success"), f"first answer: {first.tag}"
    c.read_header(timeout=5)
    assert c.expect_stream_error(timeout=5) == "invalid-namespace"
    assert c.wait_closed(5)


def test_pipelined_abort_after_auth_is_applied_after_its_outcome(hostile_server, raw_from_factory):
    # It used to answer <failure><aborted/></failure> and then <success/>.
    server = hostile_server()
    sasl = Sasl(server, raw_from_factory)
    c = sasl.tls_stream()
    c.send(PLAIN_OK + ABORT)
    assert_success_then_stream_error(c)
    # A failed <auth/>: its failure, then the <abort/> answered on its own.
    c = sasl.tls_stream()
    c.send(PLAIN_BAD + ABORT)
    assert sasl_failure_condition(c.next_element()) == "not-authorized"
    assert sasl_failure_condition(c.next_element()) == "aborted"
    assert c.auth_plain("mallory", PASSWORD).tag == q(NS_SASL, "success")


def test_pipelined_stanza_after_auth_never_counts_as_authenticated(hostile_server, raw_from_factory):
    # It used to close the stream for the stanza and then authenticate it anyway.
    server = hostile_server()
    sasl = Sasl(server, raw_from_factory)
    c = sasl.tls_stream()
    c.send(PLAIN_OK + PING)
    assert_success_then_stream_error(c)
    assert not any(e.tag == q("jabber:client", "iq") for e in c.received), "the pipelined iq was answered"
    c = sasl.tls_stream()
    c.send(PLAIN_BAD + PING)
    assert sasl_failure_condition(c.next_element()) == "not-authorized"
    assert c.expect_stream_error() == "not-authorized"  # an iq before authentication (RFC 6120 4.9.3.17)


def test_two_pipelined_auths(hostile_server, raw_from_factory):
    # It used to answer the first and leave the restarted stream unanswered
    # until auth_timeout (the second exchange kept the input suspended).
    server = hostile_server(limits={"auth_timeout": 30})
    sasl = Sasl(server, raw_from_factory)
    c = sasl.tls_stream()
    c.send(PLAIN_OK + PLAIN_OK)
    assert_success_then_stream_error(c)
    # After a failure the second <auth/> is an exchange of its own.
    c = sasl.tls_stream()
    c.send(PLAIN_BAD + PLAIN_OK)
    assert sasl_failure_condition(c.next_element()) == "not-authorized"
    assert c.next_element().tag == q(NS_SASL, "success")
    features = c.start()
    assert features.find(q("urn:ietf:params:xml:ns:xmpp-bind", "bind")) is not None
    c.bind("piped")
    c.sync()


def test_stream_header_pipelined_after_plain_auth_starts_the_new_stream(hostile_server, raw_from_factory):
    # <auth/>, the restart header and a bind in one write (no XML declaration):
    # the header used to be parsed as part of the old stream and thrown away
    # with it at <success/>, and the client waited for features until
    # auth_timeout.
    server = hostile_server(limits={"auth_timeout": 30})
    c = Sasl(server, raw_from_factory).tls_stream()
    header = (f"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
              f"to='{server.domain}' version='1.0'>")
    bind = ("<iq type='set' id='pipedbind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            "<resource>piped</resource></bind></iq>")
    started = time.monotonic()
    c.send(PLAIN_OK + header + bind)
    assert c.next_element().tag == q(NS_SASL, "success")
    c.read_header(timeout=10)
    features = c.next_element(timeout=10)
    assert features.find(q("urn:ietf:params:xml:ns:xmpp-bind", "bind")) is not None
    reply = c.next_element(timeout=10)
    assert reply.get("id") == "pipedbind" and reply.get("type") == "result", reply.attrib
    assert time.monotonic() - started < 10
    c.sync()
    # Whitespace after the <auth/> (go-sendxmpp sends a newline) belongs to the
    # old stream: the new one may still start with an XML declaration.
    c = Sasl(server, raw_from_factory).tls_stream()
    c.send(PLAIN_OK + "\n ")
    assert c.next_element().tag == q(NS_SASL, "success")
    features = c.start()  # <?xml version='1.0'?><stream:stream ...>
    assert features.find(q("urn:ietf:params:xml:ns:xmpp-bind", "bind")) is not None


def test_pipelined_abort_after_scram_first_follows_the_challenge(hostile_server, raw_from_factory):
    server = hostile_server()
    c = Sasl(server, raw_from_factory).tls_stream()
    c.send(auth("SCRAM-SHA-256", B64("n,,n=mallory,r=pipelinednonce")) + ABORT)
    assert c.next_element().tag == q(NS_SASL, "challenge")
    assert sasl_failure_condition(c.next_element()) == "aborted"
    assert c.auth_plain("mallory", PASSWORD).tag == q(NS_SASL, "success")


# -- account enumeration -----------------------------------------------------------

def server_first(c, user, mechanism):
    """The server-first-message's fields (r, s, i) for `user`; the exchange is
    left there."""
    c.send(auth(mechanism, B64(f"n,,n={user},r=enumerationnonce")))
    challenge = c.expect(q(NS_SASL, "challenge"))
    fields = dict(item.split("=", 1) for item in base64.b64decode(challenge.text).decode().split(","))
    return {"salt": base64.b64decode(fields["s"]), "iterations": int(fields["i"])}


def test_missing_accounts_look_like_real_ones(hostile_server, raw_from_factory):
    server = hostile_server()
    sasl = Sasl(server, raw_from_factory)

    def ask(user, mechanism):
        c = sasl.tls_stream()
        try:
            return server_first(c, user, mechanism)
        finally:
            c.abort()

    mechanisms = ("SCRAM-SHA-1", "SCRAM-SHA-256")
    real = {m: ask("alice", m) for m in mechanisms}
    ghost = {m: ask("nobody-here", m) for m in mechanisms}
    # A real account has a salt per mechanism: so does a missing one (they were equal).
    assert real["SCRAM-SHA-1"]["salt"] != real["SCRAM-SHA-256"]["salt"]
    assert ghost["SCRAM-SHA-1"]["salt"] != ghost["SCRAM-SHA-256"]["salt"]
    for m in mechanisms:
        assert len(ghost[m]["salt"]) == len(real[m]["salt"]), m
        assert ghost[m]["iterations"] == real[m]["iterations"], m
        assert ask("nobody-here", m) == ghost[m], f"{m}: the dummy salt changed between two asks"
        assert ask("someone-else", m)["salt"] != ghost[m]["salt"], m

    # The secret behind the dummy salts is kept: a restart does not change them.
    server.restart()
    sasl = Sasl(server, raw_from_factory)
    for m in mechanisms:
        assert ask("nobody-here", m) == ghost[m], f"{m}: the dummy salt changed across a restart"
        assert ask("alice", m) == real[m]
