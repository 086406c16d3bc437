"""A raw XEP-0114 component (jabber:component:accept) over RawClient, for the
component tests (tests/integration/test_component.py, tests/hostile)."""

import hashlib
import socket
from unittest import mock

import rawxmpp
from rawxmpp import NS_STREAM, RawClient, q

NS_COMPONENT = "jabber:component:accept"
HANDSHAKE = q(NS_COMPONENT, "handshake")


def handshake_digest(stream_id, secret):
    return hashlib.sha1((stream_id + secret).encode()).hexdigest()


class RawComponent(RawClient):
    """RawClient speaking the component protocol. `rcvbuf` shrinks the
    socket's receive buffer before it connects (a component that stops
    reading then fills the server's side sooner)."""

    def __init__(self, port, domain, rcvbuf=None, **kwargs):
        if rcvbuf is None:
            super().__init__(port, domain=domain, **kwargs)
            return
        real = socket.create_connection

        def small_buffer_connection(address, timeout=None, source_address=None):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        with mock.patch.object(rawxmpp.socket, "create_connection", small_buffer_connection):
            super().__init__(port, domain=domain, **kwargs)
        assert socket.create_connection is real

    def open_component_stream(self, to=None, ns=NS_COMPONENT):
        """Sends the component's stream header (XEP-0114 has no version) and
        returns the server's header attributes."""
        self._reset_parser()
        to = self.domain if to is None else to
        self.send(f"<stream:stream xmlns='{ns}' xmlns:stream='{NS_STREAM}' to='{to}'>")
        return self.read_header()

    def handshake(self, secret):
        """Opens the stream and authenticates; returns the server's reply element."""
        header = self.open_component_stream()
        self.send(f"<handshake>{handshake_digest(header['id'], secret)}</handshake>")
        return self.next_element()

    def connect_as(self, secret):
        reply = self.handshake(secret)
        assert reply.tag == HANDSHAKE and not (reply.text or "").strip(), reply
        return self

    def cq(self, name):
        return q(NS_COMPONENT, name)

    def ping_server(self, server_domain="localhost", timeout=None):
        """A round trip through the server: an iq ping from the component to
        the server, answered; returns what arrived before the answer."""
        stanza_id = self.new_id()
        self.send(f"<iq type='get' id='{stanza_id}' from='{self.domain}' to='{server_domain}'>"
                  f"<ping xmlns='urn:xmpp:ping'/></iq>")
        return self.expect_nothing_until(
            lambda e: e.tag == self.cq("iq") and e.get("id") == stanza_id, timeout)


def error_condition(stanza):
    """(type, condition) of a stanza's <error/> in the component namespace
    (rawxmpp's stanza_error_condition reads jabber:client ones)."""
    error = stanza.find(q(NS_COMPONENT, "error"))
    if error is None:
        return None, None
    for child in error:
        if child.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}") and not child.tag.endswith("}text"):
            return error.get("type"), child.tag.split("}", 1)[1]
    return error.get("type"), None
