"""XMPP over WebSocket (RFC 7395) for protocol tests: a small client on
Debian's python3-websocket (websocket-client). Each message is parsed as a
document of its own, as the RFC says it is.

Its SASL and stanza helpers are RawClient's (rawxmpp.py), which need only
send() and next_element() of their client.
"""

import ssl
import time
import xml.etree.ElementTree as ET

import websocket

from rawxmpp import (NS_BIND, NS_CLIENT, NS_PING, NS_SASL, NS_STREAM, RawClient, StreamErrorReceived, q,
                     stream_error_condition)

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
OPEN = q(NS_FRAMING, "open")
CLOSE = q(NS_FRAMING, "close")


class WsClosed(Exception):
    pass


class WsClient:
    def __init__(self, port, domain="localhost", tls=False, subprotocols=("xmpp",), timeout=10.0,
                 path="/xmpp-websocket"):
        self.domain = domain
        self.timeout = timeout
        self.tls = tls
        scheme = "wss" if tls else "ws"
        sslopt = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False} if tls else None
        self.ws = websocket.create_connection(f"{scheme}://127.0.0.1:{port}{path}", timeout=timeout,
                                              subprotocols=list(subprotocols) if subprotocols else None,
                                              sslopt=sslopt)
        self.received = []   # every message parsed, in order
        self.closed_by_peer = False  # a <close/> came
        self.jid = None
        self._ids = 0
        self._queue = []

    # -- transport -----------------------------------------------------------

    def send(self, text):
        self.ws.send(text)

    def recv_frame(self, timeout=None):
        """(opcode, data) of the next frame, control frames included."""
        self.ws.settimeout(timeout or self.timeout)
        opcode, frame = self.ws.recv_data_frame(True)
        return opcode, frame.data

    def next_element(self, timeout=None):
        if self._queue:
            return self._queue.pop(0)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from the server")
            opcode, data = self.recv_frame(left)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise WsClosed(data)
            if opcode != websocket.ABNF.OPCODE_TEXT:
                continue
            elem = ET.fromstring(data.decode("utf-8"))  # one document per message (RFC 7395 §3.3.3)
            self.received.append(elem)
            if elem.tag == CLOSE:
                self.closed_by_peer = True
            return elem

    def expect(self, tag, timeout=None, match=None):
        skipped = []
        try:
            while True:
                elem = self.next_element(timeout)
                if elem.tag == tag and (match is None or match(elem)):
                    return elem
                if elem.tag == q(NS_STREAM, "error"):
                    raise StreamErrorReceived(stream_error_condition(elem), elem)
                skipped.append(elem)
        finally:
            self._queue[:0] = skipped

    def expect_stream_error(self, timeout=None):
        """The condition of the stream error that must come next, then <close/>."""
        elem = self.next_element(timeout)
        assert elem.tag == q(NS_STREAM, "error"), ET.tostring(elem, "unicode")
        condition = stream_error_condition(elem)
        after = self.next_element(timeout)
        assert after.tag == CLOSE, ET.tostring(after, "unicode")
        return condition

    def wait_ws_close(self, timeout=None):
        """Reads until the server's close frame (or the end of the socket); returns the close code or None."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            try:
                opcode, data = self.recv_frame(max(0.1, deadline - time.monotonic()))
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                return None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            if opcode == websocket.ABNF.OPCODE_TEXT:
                elem = ET.fromstring(data.decode("utf-8"))
                self.received.append(elem)
        raise TimeoutError("the server did not close the WebSocket")

    # -- stream --------------------------------------------------------------

    def open(self, to=None):
        """<open/>, then the server's <open/> and features."""
        self.send(f"<open xmlns='{NS_FRAMING}' to='{to or self.domain}' version='1.0'/>")
        header = self.next_element()
        assert header.tag == OPEN, ET.tostring(header, "unicode")
        self.header = header
        return self.expect(q(NS_STREAM, "features"))

    _sasl_outcome = RawClient._sasl_outcome
    auth_scram = RawClient.auth_scram
    mechanisms = staticmethod(RawClient.mechanisms)

    def auth_plain(self, user, password):
        import base64
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>")
        return self._sasl_outcome()

    def new_id(self):
        self._ids += 1
        return f"ws{self._ids}"

    def iq(self, type_, child="", to=None, timeout=None):
        stanza_id = self.new_id()
        to_attr = f" to='{to}'" if to else ""
        self.send(f"<iq xmlns='jabber:client' type='{type_}' id='{stanza_id}'{to_attr}>{child}</iq>")
        return self.expect(q(NS_CLIENT, "iq"), timeout, match=lambda e: e.get("id") == stanza_id)

    def login(self, user, password, mechanism="SCRAM-SHA-1", resource=None):
        features = self.open()
        mechs = self.mechanisms(features)
        assert mechanism in mechs, f"{mechanism} not in {mechs}"
        outcome = self.auth_plain(user, password) if mechanism == "PLAIN" else self.auth_scram(user, password, mechanism)
        assert outcome.tag == q(NS_SASL, "success"), ET.tostring(outcome, "unicode")
        features = self.open()
        assert features.find(q(NS_BIND, "bind")) is not None
        child = (f"<bind xmlns='{NS_BIND}'><resource>{resource}</resource></bind>" if resource
                 else f"<bind xmlns='{NS_BIND}'/>")
        result = self.iq("set", child)
        assert result.get("type") == "result", ET.tostring(result, "unicode")
        self.jid = result.find(f"{q(NS_BIND, 'bind')}/{q(NS_BIND, 'jid')}").text
        return self.jid

    def sync(self):
        reply = self.iq("get", f"<ping xmlns='{NS_PING}'/>", to=self.domain)
        assert reply.get("type") in ("result", "error")

    def message(self, to, body):
        self.send(f"<message xmlns='jabber:client' to='{to}' type='chat'><body>{body}</body></message>")

    def expect_message(self, body, timeout=None):
        return self.expect(q(NS_CLIENT, "message"), timeout,
                           match=lambda e: e.findtext(q(NS_CLIENT, "body")) == body)

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
