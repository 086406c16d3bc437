// @xmpp/client over WebSocket, driven by tests/integration/test_websocket.py.
// Usage: node xmpp_client_ws.mjs URL DOMAIN USER PASSWORD
// Prints one line per event on stdout: "ONLINE <jid>", "GOT <from> <body>";
// answers every chat message with "echo: <body>" and stops after the first.
import { client, xml } from "@xmpp/client";

if (!globalThis.WebSocket) {
  // Node before 22 has no WebSocket without a flag: the ws package's is the same API.
  globalThis.WebSocket = (await import("ws")).WebSocket;
}

const [url, domain, username, password] = process.argv.slice(2);
const xmpp = client({ service: url, domain, username, password, resource: "xmppjs" });

xmpp.on("error", (err) => {
  console.log(`ERROR ${err.condition || ""} ${err.message}`);
});

xmpp.on("stanza", async (stanza) => {
  if (!stanza.is("message")) return;
  const body = stanza.getChildText("body");
  if (body === null) return;
  console.log(`GOT ${stanza.attrs.from} ${body}`);
  await xmpp.send(xml("message", { to: stanza.attrs.from, type: "chat" }, xml("body", {}, `echo: ${body}`)));
  // A round trip before stopping: the echo was processed by the server.
  await xmpp.iqCaller.request(xml("iq", { type: "get", to: domain }, xml("ping", "urn:xmpp:ping")));
  console.log("SENT");
  await xmpp.stop();
  console.log("STOPPED");
  process.exit(0);
});

xmpp.on("online", async (address) => {
  await xmpp.send(xml("presence"));
  console.log(`ONLINE ${address.toString()}`);
});

setTimeout(() => {
  console.log("TIMEOUT");
  process.exit(2);
}, 30000);

xmpp.start().catch((err) => {
  console.log(`FAILED ${err.condition || ""} ${err.message}`);
  process.exit(1);
});
