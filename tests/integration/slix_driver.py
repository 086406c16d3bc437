"""slixmpp (1.8) clients for the integration tests, on one asyncio loop per test.

Things worth knowing about slixmpp 1.8, read from its source:
- SCRAM channel binding is tls-unique only (ssl.SSLSocket.get_channel_binding),
  so the -PLUS mechanisms need TLS 1.2 (tls-unique is undefined in TLS 1.3).
- Over TLS, a non-PLUS SCRAM sends the gs2 flag 'y' ("I could bind, I think you
  cannot"); a server that offers -PLUS must then refuse (RFC 5802 section 6).
  `channel_binding=False` below makes the client send 'n' instead.
- `sasl_mech=` restricts the client to exactly that mechanism.
"""

import asyncio
import ssl

import slixmpp


def tls_context(max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # test servers have self-signed certificates
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


class SlixClient:
    """A ClientXMPP whose events are collected for the test to await."""

    def __init__(self, loop, jid, password, mech=None, tls_max_version=None,
                 channel_binding=True):
        self.loop = loop
        self.xmpp = slixmpp.ClientXMPP(jid, password, sasl_mech=mech)
        self.xmpp.register_plugin("xep_0030")
        self.xmpp.register_plugin("xep_0199")
        self.xmpp.ssl_context = tls_context(tls_max_version)
        self.xmpp.reconnect_max_attempts = 0
        if not channel_binding:
            mechanisms = self.xmpp["feature_mechanisms"]
            default = mechanisms._default_credentials

            def without_channel_binding(required, optional):
                creds = default(required, optional)
                if "channel_binding" in creds:
                    creds["channel_binding"] = b""
                return creds
            mechanisms.sasl_callback = without_channel_binding

        self.session = loop.create_future()     # True once online, or an error string
        self.messages = asyncio.Queue()
        self.stream_errors = []
        self.auth_failures = []
        self.disconnected = asyncio.Event()
        x = self.xmpp
        x.add_event_handler("session_start", self._on_session)
        x.add_event_handler("failed_auth", self._on_failed_auth)
        x.add_event_handler("failed_all_auth", lambda _: self._settle("failed_all_auth"))
        x.add_event_handler("no_auth", lambda _: self._settle("no_auth"))
        x.add_event_handler("connection_failed", lambda e: self._settle(f"connection_failed: {e}"))
        x.add_event_handler("stream_error", self._on_stream_error)
        x.add_event_handler("disconnected", self._on_disconnected)
        x.add_event_handler("message", lambda m: self.messages.put_nowait(m))

    def _settle(self, value):
        if not self.session.done():
            self.session.set_result(value)

    def _on_session(self, _):
        self.xmpp.send_presence()
        self._settle(True)

    def _on_failed_auth(self, stanza):
        self.auth_failures.append(stanza["condition"])
        self._settle(f"failed_auth: {stanza['condition']}")

    def _on_stream_error(self, error):
        self.stream_errors.append(error["condition"])

    def _on_disconnected(self, _):
        self.disconnected.set()
        self._settle("disconnected")

    @property
    def mechanism(self):
        mech = getattr(self.xmpp["feature_mechanisms"], "mech", None)
        return mech.name if mech is not None else None

    @property
    def jid(self):
        return str(self.xmpp.boundjid)

    def tls_version(self):
        transport = self.xmpp.transport
        sslobj = transport.get_extra_info("ssl_object") if transport else None
        return sslobj.version() if sslobj else None

    async def connect(self, port, direct_tls=False, timeout=20):
        """Returns True once the session is online, else a description of why not."""
        self.xmpp.connect(("127.0.0.1", port), use_ssl=direct_tls,
                          force_starttls=not direct_tls, disable_starttls=direct_tls)
        try:
            return await asyncio.wait_for(asyncio.shield(self.session), timeout)
        except asyncio.TimeoutError:
            return "timeout"

    async def sync(self, timeout=10):
        """A ping round trip to the server. The loop only runs inside
        SlixRunner.run(), so this is also how queued stanzas get flushed."""
        await self.xmpp["xep_0199"].ping(jid=self.xmpp.boundjid.domain, timeout=timeout)

    async def next_message(self, timeout=10):
        return await asyncio.wait_for(self.messages.get(), timeout)

    async def expect_body(self, body, timeout=10):
        deadline = self.loop.time() + timeout
        while True:
            msg = await self.next_message(max(0.01, deadline - self.loop.time()))
            if msg["body"] == body:
                return msg

    async def close(self, timeout=5):
        if not self.disconnected.is_set():
            try:
                await asyncio.wait_for(self.xmpp.disconnect(wait=2.0), timeout)
            except (asyncio.TimeoutError, Exception):
                self.xmpp.abort()


class SlixRunner:
    """Owns the event loop; tests call run(coroutine)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.clients = []

    def client(self, jid, password, **kwargs):
        c = SlixClient(self.loop, jid, password, **kwargs)
        self.clients.append(c)
        return c

    def run(self, coro, timeout=60):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def close(self):
        for c in self.clients:
            try:
                self.loop.run_until_complete(c.close())
            except Exception:
                pass
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()
        asyncio.set_event_loop(None)
