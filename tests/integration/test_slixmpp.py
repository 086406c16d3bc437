"""A second real client library against parleyd: slixmpp 1.8 (Python, OpenSSL).

See slix_driver.py for what slixmpp 1.8 can and cannot do with channel binding.
"""

import ssl

import pytest

from conftest import PASSWORD
from slix_driver import SlixRunner

TLS12 = ssl.TLSVersion.TLSv1_2


@pytest.fixture
def slix():
    runner = SlixRunner()
    yield runner
    runner.close()


def test_scram_sha256_and_exchange_with_gloox(server, accounts, slix, gloox_factory):
    alice = slix.client(f"alice@{server.domain}/slix", PASSWORD, mech="SCRAM-SHA-256",
                        channel_binding=False)
    assert slix.run(alice.connect(server.c2s_port)) is True
    assert alice.mechanism == "SCRAM-SHA-256"
    assert alice.tls_version() in ("TLSv1.2", "TLSv1.3")

    bob = gloox_factory(server, "bob", "gloox")
    bob.connected()
    alice.xmpp.send_message(mto=f"bob@{server.domain}/gloox", mbody="from slixmpp", mtype="chat")
    slix.run(alice.sync())
    bob.cmd("expect-msg from slixmpp 10")
    bob.wait_for("OK expect-msg")
    assert [m for m in bob.messages() if m["body"] == "from slixmpp"][0]["from"] == alice.jid

    bob.cmd(f"send {alice.jid} from gloox")
    msg = slix.run(alice.expect_body("from gloox"))
    assert str(msg["from"]) == f"bob@{server.domain}/gloox"
    assert msg["type"] == "chat"


@pytest.mark.parametrize("port", ["c2s_port", "tls_port"])
def test_default_settings_log_in_over_tls13(server, accounts, slix, port):
    # slixmpp as a user runs it: no mechanism chosen, channel binding on, TLS
    # 1.3. It binds every -PLUS with tls-unique, which TLS 1.3 does not define:
    # -PLUS offered there (with tls-exporter) made it fail not-authorized, then
    # its non-PLUS fallback ('y') was a refused downgrade.
    alice = slix.client(f"alice@{server.domain}/default", PASSWORD)
    assert slix.run(alice.connect(getattr(server, port), direct_tls=(port == "tls_port"))) is True
    assert alice.tls_version() == "TLSv1.3"
    assert alice.mechanism == "SCRAM-SHA-256"
    assert alice.auth_failures == []


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"])
def test_scram_plus_tls_unique(server, accounts, slix, mech):
    alice = slix.client(f"alice@{server.domain}/plus", PASSWORD, mech=mech,
                        tls_max_version=TLS12)
    assert slix.run(alice.connect(server.c2s_port)) is True
    assert alice.mechanism == mech
    assert alice.tls_version() == "TLSv1.2"


def test_downgrade_flag_is_refused(server, accounts, slix):
    # Non-PLUS SCRAM over TLS 1.2 with channel binding available: slixmpp says
    # 'y'; the server offers -PLUS, so it must refuse (RFC 5802 section 6).
    alice = slix.client(f"alice@{server.domain}/y", PASSWORD, mech="SCRAM-SHA-256",
                        tls_max_version=TLS12)
    outcome = slix.run(alice.connect(server.c2s_port))
    assert outcome is not True
    assert alice.auth_failures, f"no SASL failure: {outcome}"


def test_direct_tls_ping_and_disco(server, accounts, slix):
    alice = slix.client(f"alice@{server.domain}/direct", PASSWORD, mech="SCRAM-SHA-256",
                        channel_binding=False)
    assert slix.run(alice.connect(server.tls_port, direct_tls=True)) is True
    assert alice.tls_version() in ("TLSv1.2", "TLSv1.3")
    rtt = slix.run(alice.xmpp["xep_0199"].ping(jid=server.domain, timeout=10))
    assert rtt is not None and rtt >= 0
    info = slix.run(alice.xmpp["xep_0030"].get_info(jid=server.domain, timeout=10))
    features = info["disco_info"]["features"]
    assert "urn:xmpp:ping" in features
    assert "http://jabber.org/protocol/disco#info" in features
    assert ("server", "im") in [(i[0], i[1]) for i in info["disco_info"]["identities"]]


def test_wrong_password(server, accounts, slix):
    alice = slix.client(f"alice@{server.domain}/bad", "not-the-password",
                        mech="SCRAM-SHA-256", channel_binding=False)
    outcome = slix.run(alice.connect(server.c2s_port))
    assert outcome is not True
    assert alice.auth_failures == ["not-authorized"]


def test_bare_jid_between_slixmpp_clients(server, accounts, slix):
    alice = slix.client(f"alice@{server.domain}/a", PASSWORD, mech="SCRAM-SHA-256",
                        channel_binding=False)
    bob = slix.client(f"bob@{server.domain}/b", PASSWORD, mech="SCRAM-SHA-256",
                      channel_binding=False)
    assert slix.run(alice.connect(server.c2s_port)) is True
    assert slix.run(bob.connect(server.tls_port, direct_tls=True)) is True
    # session_start sent presence; a round trip makes sure it was processed.
    slix.run(bob.sync())
    alice.xmpp.send_message(mto=f"bob@{server.domain}", mbody="bare hello", mtype="chat")
    msg = slix.run(bob.expect_body("bare hello"))
    assert str(msg["from"]) == alice.jid
    assert str(msg["to"]) in (bob.jid, f"bob@{server.domain}")
