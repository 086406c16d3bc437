"""The certificate parleyd makes at its first start when none is configured,
and the harness's reuse of it (parley_harness.CertCache)."""

import socket
import ssl
import stat

from parley_harness import CERT_CACHE

GENERATING = "generating a self-signed certificate for"


def verified_handshake(server, pem, name):
    """A TLS handshake on the direct-TLS port that verifies the server's
    certificate against `pem` for `name` (a host name or an IP address)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(pem))
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    with socket.create_connection(("127.0.0.1", server.tls_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            return tls.version()


def test_first_start_makes_a_certificate_that_names_localhost_and_loopback(server_factory):
    server = server_factory(cached_cert=False)
    assert f"{GENERATING} localhost" in server.log()
    pem = server.cert_path("localhost")
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    text = pem.read_text()
    assert "BEGIN CERTIFICATE" in text and "BEGIN PRIVATE KEY" in text
    # A client that dials 127.0.0.1 and checks the address against the
    # certificate connects, as does one that checks the name.
    assert verified_handshake(server, pem, "127.0.0.1")
    assert verified_handshake(server, pem, "localhost")
    # The next start keeps the certificate it made.
    server.restart()
    assert server.log().count(GENERATING) == 1
    assert pem.read_text() == text


def test_later_starts_reuse_one_certificate(server_factory):
    first = server_factory()
    second = server_factory()
    assert GENERATING not in second.log(), "the cached certificate was not used"
    assert second.cert_path("localhost").read_bytes() == first.cert_path("localhost").read_bytes()
    assert stat.S_IMODE(second.cert_path("localhost").stat().st_mode) == 0o600
    assert (CERT_CACHE.dir / "localhost.pem").exists()
    assert verified_handshake(second, second.cert_path("localhost"), "127.0.0.1")


def test_each_host_s_certificate_is_chosen_by_sni_on_c2s_and_https(server_factory):
    # Two served hosts, each with the certificate parleyd makes for it; the
    # client's SNI picks which one a handshake gets, on the direct-TLS c2s port
    # and on an HTTPS listener alike (issue 13: "certificates from certfiles
    # picked by SNI"). A handshake that got the other host's certificate fails
    # its verification.
    from parley_harness import free_port
    https_port = free_port()
    server = server_factory(hosts=("localhost", "sni-b.test"),
                            extra_listeners=[{"port": https_port, "ip": "127.0.0.1", "module": "http", "tls": True}])
    for port in (server.tls_port, https_port):
        for host in ("localhost", "sni-b.test"):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(cafile=str(server.cert_path(host)))
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname=host) as tls:
                    assert tls.version()
        # And the other host's certificate does not verify this one's name.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=str(server.cert_path("localhost")))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            try:
                ctx.wrap_socket(raw, server_hostname="sni-b.test").close()
                raise AssertionError("sni-b.test's handshake verified against localhost's certificate")
            except ssl.SSLCertVerificationError:
                pass
