"""Repeated failed authentication from one address (password guessing spread
over many connections, which max_auth_failures per stream does not stop).

limits.max_auth_failures_per_ip failures within limits.auth_failure_window
seconds from one IP: further SASL attempts from that IP are answered with
<failure><temporary-auth-failure/></failure> (RFC 6120 6.5), whatever the
credentials, until the window has passed. Other addresses, and sessions that
are already authenticated, are not affected.
"""

import base64
import time

from conftest import PASSWORD
from hostile import raw_from
from rawxmpp import NS_SASL, StreamClosed, StreamErrorReceived, q, sasl_failure_condition

MAX_FAILURES = 3
# Past half of MAX_FAILURES each further failure also pauses reading on that
# stream (1 s, 2 s, ... up to 5 s: the lead's tarpit); the window must be
# longer than the attack takes, and is waited out at the end.
WINDOW = 6  # seconds


def attempt(ip, port, user, password, mechanism="PLAIN"):
    """One fresh connection from `ip`, one SASL attempt; the failure
    condition, or 'success'."""
    c = raw_from(ip, port)
    try:
        c.start()
        c.starttls()
        if mechanism == "PLAIN":
            outcome = c.auth_plain(user, password)
        else:
            outcome = c.auth_scram(user, password, mechanism)
        if outcome.tag == q(NS_SASL, "success"):
            return "success"
        return sasl_failure_condition(outcome)
    except StreamErrorReceived as e:
        return f"stream-error:{e.condition}"
    except StreamClosed:
        return "closed"
    finally:
        c.abort()


def test_failures_per_ip_lock_that_ip_out_for_the_window(hostile_server, witness):
    server = hostile_server(limits={"max_auth_failures": 3,
                                    "max_auth_failures_per_ip": MAX_FAILURES,
                                    "auth_failure_window": WINDOW})
    w = witness(server)  # logged in from 127.0.0.1 before the attack
    port = server.c2s_port
    attacker = "127.0.0.2"

    # Guessing alice's password, one guess per connection.
    started = time.monotonic()
    guesses = [attempt(attacker, port, "alice", f"guess-{i}") for i in range(MAX_FAILURES)]
    last_failure = time.monotonic()
    assert guesses == ["not-authorized"] * MAX_FAILURES, guesses

    # Locked out: even the right password, and any mechanism.
    locked = [attempt(attacker, port, "alice", PASSWORD),
              attempt(attacker, port, "mallory", PASSWORD, "SCRAM-SHA-1"),
              attempt(attacker, port, "mallory", PASSWORD, "SCRAM-SHA-256")]
    assert time.monotonic() - started < WINDOW - 1, "too slow to test the window"
    assert locked == ["temporary-auth-failure"] * 3, locked

    # Other addresses are not affected, nor the witness's sessions.
    assert attempt("127.0.0.3", port, "mallory", PASSWORD) == "success"
    assert attempt("127.0.0.1", port, "eve", PASSWORD, "SCRAM-SHA-1") == "success"
    w.flowing()

    # The refused attempts did not extend the lock: once the window has passed
    # since the last real failure, the address may log in again.
    time.sleep(max(0.0, last_failure + WINDOW + 0.5 - time.monotonic()))
    assert attempt(attacker, port, "alice", PASSWORD) == "success"
    w.verify()


def test_failures_on_one_stream_count_towards_the_ip(hostile_server):
    # Failures within one stream (below max_auth_failures) count too; the
    # next attempt on that same stream is refused as well.
    server = hostile_server(limits={"max_auth_failures": 10,
                                    "max_auth_failures_per_ip": MAX_FAILURES,
                                    "auth_failure_window": WINDOW})
    c = raw_from("127.0.0.5", server.c2s_port)
    try:
        c.start()
        c.starttls()
        started = time.monotonic()
        outcomes = [sasl_failure_condition(c.auth_plain("alice", f"guess-{i}"))
                    for i in range(MAX_FAILURES)]
        assert outcomes == ["not-authorized"] * MAX_FAILURES, outcomes
        outcome = c.auth_plain("alice", PASSWORD)
        assert time.monotonic() - started < WINDOW, "too slow to test the window"
        assert outcome.tag == q(NS_SASL, "failure"), "the right password got in during the lock"
        assert sasl_failure_condition(outcome) == "temporary-auth-failure"
    finally:
        c.abort()
    assert attempt("127.0.0.5", server.c2s_port, "alice", PASSWORD) == "temporary-auth-failure"
    assert attempt("127.0.0.6", server.c2s_port, "alice", PASSWORD) == "success"


def probe(ip, port, finish):
    """A SCRAM exchange for a name that may not exist, stopped after the
    server-first-message (which is all an account prober needs): `finish` is
    'abort' (<abort/>) or 'leave' (the connection is closed). Returns what the
    server answered to the <auth/>: 'challenge' or a failure condition."""
    c = raw_from(ip, port)
    try:
        c.start()
        c.starttls()
        c.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256'>"
               f"{base64.b64encode(b'n,,n=maybe-someone,r=probenonce').decode()}</auth>")
        first = c.next_element()
        if first.tag != q(NS_SASL, "challenge"):
            return sasl_failure_condition(first)
        if finish == "abort":
            c.send(f"<abort xmlns='{NS_SASL}'/>")
            assert sasl_failure_condition(c.next_element()) == "aborted"
            c.close()
        else:
            c.send("</stream:stream>")  # in the middle of the exchange
            assert c.wait_eof(5)
        return "challenge"
    finally:
        c.abort()


def test_aborted_and_unfinished_exchanges_count_towards_the_ip(hostile_server):
    # Probing salts (account enumeration) by giving up every exchange after
    # the server-first-message used to be free: neither counted as a failure.
    server = hostile_server(limits={"max_auth_failures": 10,
                                    "max_auth_failures_per_ip": MAX_FAILURES,
                                    "auth_failure_window": 60})
    port = server.c2s_port
    assert [probe("127.0.0.7", port, "abort") for _ in range(MAX_FAILURES)] == ["challenge"] * MAX_FAILURES
    assert probe("127.0.0.7", port, "abort") == "temporary-auth-failure"
    assert attempt("127.0.0.7", port, "alice", PASSWORD) == "temporary-auth-failure"

    assert [probe("127.0.0.8", port, "leave") for _ in range(MAX_FAILURES)] == ["challenge"] * MAX_FAILURES
    assert probe("127.0.0.8", port, "leave") == "temporary-auth-failure"
    # Another address is not concerned.
    assert attempt("127.0.0.9", port, "alice", PASSWORD) == "success"
