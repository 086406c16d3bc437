"""The certificate parleyd makes at its first start when none is configured,
and the harness's reuse of it (parley_harness.CertCache)."""

import socket
import ssl
import stat
import subprocess

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
    # An ECDSA P-256 key: its signature is what every full handshake costs.
    described = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(pem)],
                               capture_output=True, text=True, check=True).stdout
    assert "id-ecPublicKey" in described and "prime256v1" in described
    assert "ecdsa-with-SHA256" in described
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


def made_certificate(tmp_path, name, key_args):
    """A self-signed certificate for localhost made by openssl: (the PEM file
    of certificate and key, the certificate's DER)."""
    key, crt, pem = tmp_path / f"{name}.key", tmp_path / f"{name}.crt", tmp_path / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", *key_args, "-nodes", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-days", "2", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True)
    pem.write_text(crt.read_text() + key.read_text())
    return pem, ssl.PEM_cert_to_DER_cert(crt.read_text())


def served_certificate(server, tls12_ciphers=None):
    """The DER of the certificate a handshake on the direct-TLS port got;
    with `tls12_ciphers`, a TLS 1.2 client offering those suites only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls12_ciphers:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(tls12_ciphers)
    with socket.create_connection(("127.0.0.1", server.tls_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.getpeercert(binary_form=True)


def test_an_ecdsa_and_an_rsa_certificate_for_one_host_each_client_gets_one_it_takes(server_factory, tmp_path):
    rsa_pem, rsa_der = made_certificate(tmp_path, "rsa", ["-newkey", "rsa:2048"])
    ec_pem, ec_der = made_certificate(tmp_path, "ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
    server = server_factory(start=False)
    server.config["certfiles"] = [str(rsa_pem), str(ec_pem)]
    server.start()
    # A client that takes both (Python's ssl offers ECDSA first) gets the
    # cheaper signature; one that takes only RSA (or only ECDSA) gets that.
    assert served_certificate(server) == ec_der
    assert served_certificate(server, "ECDHE-RSA-AES128-GCM-SHA256") == rsa_der
    assert served_certificate(server, "ECDHE-ECDSA-AES128-GCM-SHA256") == ec_der
    # The order of the files does not matter.
    server.stop()
    server.config["certfiles"] = [str(ec_pem), str(rsa_pem)]
    server.start()
    assert served_certificate(server, "ECDHE-RSA-AES128-GCM-SHA256") == rsa_der
    assert served_certificate(server) == ec_der
