"""go-sendxmpp (Debian's package, a Go client built on go-xmpp) against parleyd:
STARTTLS and direct TLS, sending and listening."""

import fcntl
import os
import shutil
import subprocess
import time

import pytest

from conftest import PASSWORD

GO_SENDXMPP = shutil.which("go-sendxmpp")


def sendxmpp(server, user, port, *args, stdin=None, timeout=30):
    return subprocess.run(
        [GO_SENDXMPP, "-u", f"{user}@{server.domain}", "-p", PASSWORD, "-j", f"127.0.0.1:{port}", "-n", *args],
        input=stdin, capture_output=True, text=True, timeout=timeout)


def test_go_sendxmpp_is_installed():
    # tools/install-deps.sh installs it; a missing client must fail, not skip.
    assert GO_SENDXMPP, "go-sendxmpp not found (apt-get install go-sendxmpp)"


@pytest.mark.parametrize("direct_tls", [False, True])
def test_go_sendxmpp_message_reaches_a_listening_go_sendxmpp(server, accounts, direct_tls):
    assert GO_SENDXMPP
    port = server.tls_port if direct_tls else server.c2s_port
    tls = ["-t"] if direct_tls else []
    listener = subprocess.Popen(
        [GO_SENDXMPP, "-u", f"bob@{server.domain}", "-p", PASSWORD, "-j", f"127.0.0.1:{port}", "-n", *tls, "-l"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while "bob@" + server.domain not in server.ctl("connected-users").stdout:
            assert time.monotonic() < deadline, "the listening go-sendxmpp never bound"
            time.sleep(0.1)
        sent = sendxmpp(server, "alice", port, *tls, f"bob@{server.domain}", stdin="hello from go\n")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        fd = listener.stdout.fileno()
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        deadline = time.monotonic() + 15
        out = ""
        while "hello from go" not in out:
            assert time.monotonic() < deadline, f"not received; listener said: {out!r}"
            time.sleep(0.2)
            try:
                out += listener.stdout.read() or ""
            except (BlockingIOError, TypeError):
                pass
        assert f"alice@{server.domain}" in out
    finally:
        listener.kill()
        listener.wait(timeout=5)
