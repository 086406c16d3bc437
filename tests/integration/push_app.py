"""Helpers of the mod_push suites (test_mod_push.py, test_mod_push_store.py):
the app server (a raw XEP-0114 component, or slixmpp's ComponentXMPP as
SlixApp), publishes awaited and answered, the summary form read."""

import asyncio
import itertools
import xml.etree.ElementTree as ET

import slixmpp

from component_client import NS_COMPONENT
from conftest import PASSWORD
from rawxmpp import RawClient, q

NS_PUSH = "urn:xmpp:push:0"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_DATA = "jabber:x:data"
SECRET = "app-secret"
PUBLISH_OPTIONS = ("<x xmlns='jabber:x:data' type='submit'>"
                   "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
                   "<field var='secret'><value>eruio234vzxc2kla-91</value></field>"
                   "<field var='endpoint'><value>https://push.example/a&amp;b</value></field></x>")


# One server for the module: each login gets a resource of its own, so that a
# previous test's session of the same full JID, still leaving, never meets
# the new one (its exit or unavailable presence reaching the new session).
_resources = (f"r{n}" for n in itertools.count(1))


def login(server, made, user, resource=None):
    resource = resource or next(_resources)
    c = RawClient(server.c2s_port)
    made.append(c)
    c.login(user, PASSWORD, resource=resource, presence=True)
    return c


def enable(client, node, options=""):
    reply = client.iq("set", f"<enable xmlns='{NS_PUSH}' jid='app.localhost' node='{node}'>{options}</enable>",
                      to=client.jid.split("/")[0])
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")


def form_fields(x):
    return {f.get("var"): [v.text for v in f.findall(q(NS_DATA, "value"))] for f in x.findall(q(NS_DATA, "field"))}


class SlixApp:
    """The app server as issue 14 names it: slixmpp's ComponentXMPP
    (XEP-0114) for app.localhost, on its own asyncio loop, which runs while
    the test waits for a publish (expect_push). Answers are written with
    send_raw (straight to the socket: no loop turn needed)."""

    def __init__(self, port):
        from slix_driver import SlixRunner
        self.runner = SlixRunner()
        self.xmpp = slixmpp.ComponentXMPP("app.localhost", SECRET, "127.0.0.1", port)
        self.iqs = asyncio.Queue()
        self.xmpp.register_handler(slixmpp.xmlstream.handler.Callback(
            "push publish", slixmpp.xmlstream.matcher.MatchXPath(f"{{{NS_COMPONENT}}}iq/{{{NS_PUBSUB}}}pubsub"),
            lambda iq: self.iqs.put_nowait(ET.fromstring(str(iq)))))
        started = self.runner.loop.create_future()
        self.xmpp.add_event_handler("session_start", lambda _: started.done() or started.set_result(True))
        self.xmpp.connect()
        self.runner.run(asyncio.wait_for(started, 20))

    def expect_push(self, node, answer="result", condition=None, timeout=15):
        """As RawComponent's expect: publishes to other nodes are skipped."""
        loop = self.runner.loop

        async def wait():
            deadline = loop.time() + timeout
            while True:
                iq = await asyncio.wait_for(self.iqs.get(), max(0.01, deadline - loop.time()))
                publish = iq.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish")
                if publish is not None and publish.get("node") == node:
                    return iq, publish
        iq, publish = self.runner.run(wait())
        self.xmpp.send_raw(answer_xml(iq, answer, condition))
        return iq, publish

    def close(self, timeout=5):
        done = self.xmpp.disconnect()
        if asyncio.isfuture(done) or asyncio.iscoroutine(done):
            try:
                self.runner.run(done, timeout=timeout)
            except Exception:
                pass
        self.runner.close()


def slix_app(server, made):
    app = SlixApp(server.component_port)
    made.append(app)
    return app


def answer_xml(iq, answer, condition):
    if answer == "result":
        return f"<iq type='result' id='{iq.get('id')}' from='app.localhost' to='{iq.get('from')}'/>"
    return (f"<iq type='error' id='{iq.get('id')}' from='app.localhost' to='{iq.get('from')}'>"
            f"<error type='{answer}'><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")


def expect_push(app, node, answer="result", condition=None):
    """The next publish to `node` at the app server (raw or slixmpp); answered."""
    if isinstance(app, SlixApp):
        return app.expect_push(node, answer, condition)
    iq = app.expect(q(NS_COMPONENT, "iq"),
                    match=lambda e: e.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish") is not None)
    publish = iq.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish")
    app.send(answer_xml(iq, answer, condition))
    return iq, publish


def counters(server):
    out = server.ctl("status").stdout
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def next_push(app):
    """The next publish at the raw app server, whatever its node; answered."""
    iq = app.expect(q(NS_COMPONENT, "iq"),
                    match=lambda e: e.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish") is not None)
    app.send(f"<iq type='result' id='{iq.get('id')}' from='app.localhost' to='{iq.get('from')}'/>")
    return iq, iq.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish")


def push_to(app, node):
    """The first publish to `node` at the raw app server, and the publishes
    to other nodes that came before it (all answered)."""
    others = []
    while True:
        iq, p = next_push(app)
        if p.get("node") == node:
            return iq, p, others
        others.append(p)


def summary(publish):
    return form_fields(publish.find(f"{{{NS_PUBSUB}}}item/{{{NS_PUSH}}}notification/{{{NS_DATA}}}x"))
