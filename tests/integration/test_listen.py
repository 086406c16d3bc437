"""Listeners: a port is served by one parleyd, never shared with another process.

Every worker loop binds its listening socket with SO_REUSEPORT, which lets any
process of the same user bind the same port too: the kernel then spreads the
port's connections over both processes. A second server started on a port in
use must fail to start instead (a CI run lost a client that way: the test
harness had given one port to two test processes, and the connection went to
the other server)."""

import socket

import pytest

from conftest import PASSWORD


def test_a_port_another_server_listens_on_is_refused_at_start(server_factory, raw_factory):
    first = server_factory(name="first")
    second = server_factory(name="second", start=False)
    second.config["listen"][0]["port"] = first.c2s_port
    second.expected_exit = 1  # parleyd's exit status for "cannot start"
    with pytest.raises(RuntimeError):
        second.start(timeout=15)
    assert f"cannot listen on 127.0.0.1:{first.c2s_port}: Address already in use" in second.log()
    # Nothing of the second one is left listening: the first one serves its
    # port alone (a login on it succeeds, a round trip after it).
    assert not second.alive()
    first.register("alice", PASSWORD)
    for _ in range(4):
        client = raw_factory(first.c2s_port)
        client.login("alice", PASSWORD)
        client.sync()
        client.close()


def test_a_port_held_by_any_socket_with_so_reuseport_is_refused(server_factory):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        server = server_factory(start=False)
        server.config["listen"][0]["port"] = port
        server.expected_exit = 1
        with pytest.raises(RuntimeError):
            server.start(timeout=15)
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in server.log()
