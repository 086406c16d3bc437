"""A deliberately small XMPP client over a raw socket, for protocol tests.

It speaks just enough to reach any state (stream open, after STARTTLS, after
SASL, bound) and then lets a test put arbitrary bytes on the wire and read the
server's answer element by element. Standard library only: socket, ssl and
xml.etree's XMLPullParser (expat).
"""

import base64
import hashlib
import hmac
import itertools
import os
import socket
import ssl
import time
import xml.etree.ElementTree as ET

NS_STREAM = "http://etherx.jabber.org/streams"
NS_CLIENT = "jabber:client"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"
NS_STANZA_ERRORS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_PING = "urn:xmpp:ping"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"


def q(ns, name):
    """Clark notation: q(NS_CLIENT, 'message') -> '{jabber:client}message'."""
    return f"{{{ns}}}{name}"


STREAM_ERROR = q(NS_STREAM, "error")
FEATURES = q(NS_STREAM, "features")


class StreamClosed(Exception):
    """The server closed the stream or the socket while we waited for something."""


class StreamErrorReceived(Exception):
    def __init__(self, condition, element):
        super().__init__(f"stream error <{condition}/>: {ET.tostring(element, 'unicode')}")
        self.condition = condition
        self.element = element


def stream_error_condition(element):
    """The defined condition of a <stream:error/>, e.g. 'conflict'."""
    for child in element:
        if child.tag.startswith("{" + NS_STREAM_ERRORS + "}") and not child.tag.endswith("}text"):
            return child.tag.split("}", 1)[1]
    return None


def stanza_error_condition(stanza):
    """(type, condition) of a stanza's <error/>, or (None, None)."""
    error = stanza.find(q(NS_CLIENT, "error"))
    if error is None:
        return None, None
    for child in error:
        if child.tag.startswith("{" + NS_STANZA_ERRORS + "}") and not child.tag.endswith("}text"):
            return error.get("type"), child.tag.split("}", 1)[1]
    return error.get("type"), None


def sasl_failure_condition(element):
    for child in element:
        if child.tag.startswith("{" + NS_SASL + "}") and not child.tag.endswith("}text"):
            return child.tag.split("}", 1)[1]
    return None


def xml_escape(text):
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&apos;").replace('"', "&quot;"))


def tls_client_context(max_version=None):
    """Test servers use self-signed certificates: encrypt, do not verify."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


class RawClient:
    _ids = itertools.count(1)

    def __init__(self, port, domain="localhost", host="127.0.0.1", direct_tls=False,
                 timeout=10.0, tls_max_version=None, source=None):
        self.domain = domain
        self.timeout = timeout
        self.tls_max_version = tls_max_version
        # source: another loopback address (127.0.0.x) to connect from.
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.tls = False
        self.header = None           # attributes of the server's stream header
        self.closed_by_peer = False  # the server sent </stream:stream>
        self.eof = False             # the socket reached end of file
        self.missing_header = False  # a stream error or close came without a stream header
        self.received = []           # every top-level element, in order
        self.jid = None
        self._queue = []
        self._parser = None
        self._depth = 0
        self._root = None
        if direct_tls:
            self._wrap_tls()
        self._reset_parser()

    # -- transport -----------------------------------------------------------

    def _wrap_tls(self):
        ctx = tls_client_context(self.tls_max_version)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.domain)
        self.tls = True

    def _reset_parser(self):
        self._parser = ET.XMLPullParser(events=("start", "end"))
        self._depth = 0
        self._root = None
        self.header = None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Reads once; False on timeout. Sets eof at end of file."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except ssl.SSLWantReadError:
            return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            self.eof = True
            return True
        if not data:
            self.eof = True
            return True
        self._feed(data)
        return True

    def _feed(self, data):
        if self.closed_by_peer:
            return  # nothing after </stream:stream> is part of the stream
        # One read may carry the end of one stream and the start of the next: a client
        # that pipelines after <auth/> gets <success/> and the new stream's header in
        # one TLS record (the server writes what one loop turn produced as one). The
        # new stream starts at its XML declaration, which nothing else may contain:
        # the part before it goes to the old parser (reset after <success/>).
        restart_at = data.find(b"<?xml", 1)
        if restart_at > 0:
            self._feed(data[:restart_at])
            self._feed(data[restart_at:])
            return
        if self.header is None and data.lstrip().startswith((b"<stream:error", b"</stream:")):
            # The server answered without opening its stream first (RFC 6120
            # 4.9.1.1 says it must). Parse it anyway, and say so.
            self.missing_header = True
            self._parser.feed(f"<stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}'>"
                              .encode())
        self._parser.feed(data)
        restart = False
        for event, elem in self._parser.read_events():
            if event == "start":
                self._depth += 1
                if self._depth == 1:
                    self._root = elem
                    self.header = dict(elem.attrib)
                    self.header["tag"] = elem.tag
            else:
                self._depth -= 1
                if self._depth == 1:
                    self._queue.append(elem)
                    self.received.append(elem)
                    self._root.remove(elem)
                    # After these the old stream is gone; whatever the server
                    # sends next starts a new XML document (RFC 6120 5.4.3.3, 6.4.6).
                    restart = elem.tag in (q(NS_TLS, "proceed"), q(NS_SASL, "success"))
                elif self._depth == 0:
                    self.closed_by_peer = True
        if restart:
            self._reset_parser()

    # -- reading -------------------------------------------------------------

    def read_header(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while self.header is None:
            if self.eof:
                raise StreamClosed("connection closed before the stream header")
            if not self._fill(deadline):
                raise TimeoutError("no stream header from the server")
        return self.header

    def next_element(self, timeout=None):
        """The next top-level element, or raises StreamClosed / TimeoutError."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self._queue:
            if self.closed_by_peer or self.eof:
                raise StreamClosed("stream closed by the server")
            if not self._fill(deadline):
                raise TimeoutError("nothing received in time")
        return self._queue.pop(0)

    def expect(self, tag, timeout=None, match=None):
        """Skips elements until one with `tag` (and `match(elem)`) arrives.

        A stream error raises StreamErrorReceived unless it is what we expect.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            elem = self.next_element(max(0.01, deadline - time.monotonic()))
            if elem.tag == tag and (match is None or match(elem)):
                return elem
            if elem.tag == STREAM_ERROR:
                raise StreamErrorReceived(stream_error_condition(elem), elem)

    def expect_stream_error(self, timeout=None):
        """Waits for a <stream:error/> and returns its condition."""
        elem = self.expect(STREAM_ERROR, timeout)
        return stream_error_condition(elem)

    def wait_closed(self, timeout=None):
        """True once the server closed the stream (</stream:stream> or EOF)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not (self.closed_by_peer or self.eof):
            if not self._fill(deadline):
                return False
        return True

    def wait_eof(self, timeout=None):
        """True once the server closed the TCP connection itself."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return False
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
                self.eof = True
                break
            if not data:
                self.eof = True
            elif not self.closed_by_peer:
                self._feed(data)
        return True

    def stream_error_received(self):
        for elem in self.received:
            if elem.tag == STREAM_ERROR:
                return stream_error_condition(elem)
        return None

    def quiet(self, seconds):
        """Reads for `seconds` and returns what arrived. Not a negative check
        (silence for a while proves nothing on a slow run: use
        nothing_before_sync() or nothing_before_marker()); only for a wait
        whose point is time itself, e.g. a rate limit's bucket refilling."""
        deadline = time.monotonic() + seconds
        got = []
        while time.monotonic() < deadline:
            try:
                got.append(self.next_element(max(0.01, deadline - time.monotonic())))
            except TimeoutError:
                break
            except StreamClosed:
                break
        return got

    def expect_nothing_until(self, match, timeout=None):
        """Reads until the marker, an element for which `match(elem)` holds,
        and returns every element that came before it (those already waiting
        included), in order; the marker itself is consumed (and left out of
        `received`). Raises TimeoutError or StreamClosed if the marker never
        comes, so a check built on it cannot pass without its round trip."""
        deadline = time.monotonic() + (timeout or self.timeout)
        before = []
        while True:
            elem = self.next_element(max(0.01, deadline - time.monotonic()))
            if match(elem):
                # Test machinery, not traffic: out of `received` too.
                for i in range(len(self.received) - 1, -1, -1):
                    if self.received[i] is elem:
                        del self.received[i]
                        break
                return before
            before.append(elem)

    def expect_nothing_until_reply(self, stanza_id, timeout=None):
        """expect_nothing_until with the reply to `stanza_id` as the marker (a
        request sent after the stanzas under test is their round trip): returns
        (what came before it, the reply)."""
        replies = []

        def is_reply(elem):
            if elem.get("id") != stanza_id:
                return False
            replies.append(elem)
            return True

        before = self.expect_nothing_until(is_reply, timeout)
        return before, replies[0]

    def nothing_before_sync(self, timeout=None):
        """A round trip (a ping to the server) that returns what arrived before
        its answer. The answer proves the server processed every stanza this
        stream sent before the ping, and wrote to it whatever that caused on
        the stream's own loop (the answer to its own stanza, an error): assert
        on the returned list, e.g. `== []`."""
        stanza_id = self.new_id()
        self.send(f"<iq type='get' id='{stanza_id}' to='{self.domain}'><ping xmlns='{NS_PING}'/></iq>")
        return self.expect_nothing_until(
            lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == stanza_id, timeout)

    def nothing_before_marker(self, sender, to=None, timeout=None):
        """For what another client's stanza must not bring here: `sender`, the
        client whose stanza was the stimulus, sends this client a marker
        message (to its full JID unless `to` says otherwise) and this returns
        what arrived before the marker. The server routes a stanza on the
        sender's loop and deliveries from one loop to another keep their
        order, so the marker comes after anything the sender's earlier
        stanzas delivered here. What a module routes later (after a storage
        read) needs a witness first: wait until the stanza reached a client
        that must get it, then send the marker."""
        body = f"marker {sender.new_id()}"
        sender.message(to or self.jid, body)

        def is_marker(e):
            return e.tag == q(NS_CLIENT, "message") and e.findtext(q(NS_CLIENT, "body")) == body
        return self.expect_nothing_until(is_marker, timeout)

    # -- stream negotiation --------------------------------------------------

    def open_stream(self, to=None, version="1.0", ns=NS_CLIENT, stream_ns=NS_STREAM,
                    xml_decl=True, prefix="", extra=""):
        """Sends a stream header; any argument may be made wrong on purpose."""
        self._reset_parser()
        to = self.domain if to is None else to
        head = "<?xml version='1.0'?>" if xml_decl else ""
        attrs = f" to='{to}'" if to else ""
        if version is not None:
            attrs += f" version='{version}'"
        head += (f"{prefix}<stream:stream{attrs} xmlns='{ns}' xmlns:stream='{stream_ns}'"
                 f" xml:lang='en'{extra}>")
        self.send(head)

    def start(self, **kwargs):
        """Opens a stream and returns the <stream:features/> element."""
        self.open_stream(**kwargs)
        self.read_header()
        return self.expect(FEATURES)

    @staticmethod
    def mechanisms(features):
        mechs = features.find(q(NS_SASL, "mechanisms"))
        if mechs is None:
            return []
        return [m.text for m in mechs.findall(q(NS_SASL, "mechanism"))]

    def starttls(self):
        """STARTTLS on the open stream; returns the features of the new stream."""
        self.send(f"<starttls xmlns='{NS_TLS}'/>")
        self.expect(q(NS_TLS, "proceed"))
        self._wrap_tls()
        return self.start()

    def auth_plain(self, user, password, authzid=""):
        """Returns the <success/> or <failure/> element."""
        payload = base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>")
        return self._sasl_outcome()

    def _sasl_outcome(self, timeout=None):
        while True:
            elem = self.next_element(timeout)
            if elem.tag in (q(NS_SASL, "success"), q(NS_SASL, "failure"),
                            q(NS_SASL, "challenge")):
                return elem
            if elem.tag == STREAM_ERROR:
                raise StreamErrorReceived(stream_error_condition(elem), elem)

    def auth_scram(self, user, password, mechanism="SCRAM-SHA-1", gs2_flag=None):
        """SCRAM (RFC 5802/7677), with channel binding for -PLUS mechanisms.

        gs2_flag overrides the channel-binding flag: 'n', 'y', 'p=tls-unique' or
        'p=tls-server-end-point' (RFC 5929 §4.1: the server certificate's
        SHA-256, right for the test servers' SHA-256-signed certificates).
        Returns the final <success/> or <failure/> element; on success the
        server signature has been verified.
        """
        plus = mechanism.endswith("-PLUS")
        digest = {"SCRAM-SHA-1": hashlib.sha1, "SCRAM-SHA-256": hashlib.sha256,
                  "SCRAM-SHA-512": hashlib.sha512}[mechanism.removesuffix("-PLUS")]
        if gs2_flag is None:
            gs2_flag = "p=tls-unique" if plus else "n"
        gs2_header = f"{gs2_flag},,".encode()
        cbind_data = b""
        if gs2_flag == "p=tls-server-end-point":
            cbind_data = hashlib.sha256(self.sock.getpeercert(binary_form=True)).digest()
        elif gs2_flag.startswith("p="):
            cbind_data = self.sock.get_channel_binding(gs2_flag[2:])
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = f"n={user.replace('=', '=3D').replace(',', '=2C')},r={nonce}".encode()
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>"
                  f"{base64.b64encode(gs2_header + first_bare).decode()}</auth>")
        elem = self._sasl_outcome()
        if elem.tag != q(NS_SASL, "challenge"):
            return elem
        server_first = base64.b64decode(elem.text or "")
        fields = dict(item.split(b"=", 1) for item in server_first.split(b","))
        if not fields[b"r"].startswith(nonce.encode()):
            raise AssertionError(f"server nonce does not extend ours: {server_first!r}")
        salt = base64.b64decode(fields[b"s"])
        iterations = int(fields[b"i"])
        salted = hashlib.pbkdf2_hmac(digest().name, password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", digest).digest()
        stored_key = digest(client_key).digest()
        final_bare = b"c=" + base64.b64encode(gs2_header + cbind_data) + b",r=" + fields[b"r"]
        auth_message = first_bare + b"," + server_first + b"," + final_bare
        signature = hmac.new(stored_key, auth_message, digest).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        final = final_bare + b",p=" + base64.b64encode(proof)
        self.send(f"<response xmlns='{NS_SASL}'>{base64.b64encode(final).decode()}</response>")
        elem = self._sasl_outcome()
        if elem.tag == q(NS_SASL, "success"):
            server_key = hmac.new(salted, b"Server Key", digest).digest()
            expected = hmac.new(server_key, auth_message, digest).digest()
            data = base64.b64decode(elem.text or "")
            if not data:
                # RFC 6120 6.4.6 allows the final data in a last challenge instead.
                raise AssertionError("SCRAM <success/> without server-final-message")
            got = dict(item.split(b"=", 1) for item in data.split(b","))
            if base64.b64decode(got.get(b"v", b"")) != expected:
                raise AssertionError(f"bad SCRAM server signature: {data!r}")
        return elem

    def bind(self, resource=None):
        child = (f"<bind xmlns='{NS_BIND}'><resource>{xml_escape(resource)}</resource></bind>"
                 if resource else f"<bind xmlns='{NS_BIND}'/>")
        result = self.iq("set", child)
        if result.get("type") != "result":
            raise AssertionError(f"bind failed: {ET.tostring(result, 'unicode')}")
        self.jid = result.find(f"{q(NS_BIND, 'bind')}/{q(NS_BIND, 'jid')}").text
        return self.jid

    def login(self, user, password, resource=None, mechanism="PLAIN", session=True,
              presence=False):
        """Everything up to a bound (and optionally available) session."""
        features = self.start()
        if not self.tls:
            assert features.find(q(NS_TLS, "starttls")) is not None, "no STARTTLS offered"
            features = self.starttls()
        mechs = self.mechanisms(features)
        assert mechanism in mechs, f"{mechanism} not in offered mechanisms {mechs}"
        if mechanism == "PLAIN":
            outcome = self.auth_plain(user, password)
        else:
            outcome = self.auth_scram(user, password, mechanism)
        if outcome.tag != q(NS_SASL, "success"):
            raise AssertionError(f"authentication failed: {ET.tostring(outcome, 'unicode')}")
        features = self.start()
        assert features.find(q(NS_BIND, "bind")) is not None, "no resource binding offered"
        self.bind(resource)
        session_feature = features.find(q(NS_SESSION, "session"))
        if session and session_feature is not None and session_feature.find(
                q(NS_SESSION, "optional")) is None:
            result = self.iq("set", f"<session xmlns='{NS_SESSION}'/>")
            assert result.get("type") == "result", ET.tostring(result, "unicode")
        if presence:
            self.send("<presence/>")
            self.sync()
        return self.jid

    def sync(self, timeout=None):
        """A round trip to the server, so that everything sent before is processed."""
        reply = self.iq("get", f"<ping xmlns='{NS_PING}'/>", to=self.domain, timeout=timeout)
        assert reply.get("type") in ("result", "error")

    # -- stanzas -------------------------------------------------------------

    def new_id(self):
        return f"raw{next(self._ids)}"

    def iq(self, type_, child="", to=None, timeout=None):
        """Sends an iq and returns the reply with the same id."""
        stanza_id = self.new_id()
        to_attr = f" to='{to}'" if to else ""
        self.send(f"<iq type='{type_}' id='{stanza_id}'{to_attr}>{child}</iq>")
        return self.expect(q(NS_CLIENT, "iq"), timeout, match=lambda e: e.get("id") == stanza_id)

    def message(self, to, body, type_="chat", extra_attrs=""):
        stanza_id = self.new_id()
        self.send(f"<message to='{to}' type='{type_}' id='{stanza_id}'{extra_attrs}>"
                  f"<body>{xml_escape(body)}</body></message>")
        return stanza_id

    def expect_message(self, body=None, timeout=None):
        def match(elem):
            if body is None:
                return True
            b = elem.find(q(NS_CLIENT, "body"))
            return b is not None and b.text == body
        return self.expect(q(NS_CLIENT, "message"), timeout, match=match)

    def close(self, timeout=5):
        """Clean close: </stream:stream>, wait for the server's, drop the socket."""
        try:
            if not (self.closed_by_peer or self.eof):
                self.send("</stream:stream>")
                self.wait_closed(timeout)
        except OSError:
            pass
        finally:
            self.abort()

    def abort(self):
        try:
            self.sock.close()
        except OSError:
            pass
