// StanzaJS over WebSocket (a ws:// or wss:// URL, tests/integration/test_websocket.py)
// or BOSH (an http:// or https:// URL to /http-bind, test_bosh.py).
// Usage: node stanza_client.mjs URL DOMAIN USER PASSWORD [RESOURCE]
// Prints one line per event on stdout: "ONLINE <jid>", "GOT <from> <body>";
// answers the first chat message with "echo: <body>", then disconnects.
import * as XMPP from "stanza";

const [url, domain, username, password, resource = "stanzajs"] = process.argv.slice(2);
const bosh = url.startsWith("http");
const client = XMPP.createClient({
  jid: `${username}@${domain}`,
  password,
  resource,
  transports: bosh ? { websocket: false, bosh: url } : { websocket: url, bosh: false },
});

let answered = false;
client.on("session:started", () => {
  client.sendPresence();
  console.log(`ONLINE ${client.jid}`);
});

client.on("chat", async (msg) => {
  if (answered || !msg.body) return;
  answered = true;
  console.log(`GOT ${msg.from} ${msg.body}`);
  client.sendMessage({ to: msg.from, type: "chat", body: `echo: ${msg.body}` });
  // A round trip before leaving: the echo was processed by the server.
  await client.ping(domain);
  console.log("SENT");
  client.disconnect();
});

client.on("disconnected", () => {
  console.log(answered ? "STOPPED" : "DISCONNECTED");
  process.exit(answered ? 0 : 1);
});

client.on("auth:failed", () => {
  console.log("FAILED auth");
  process.exit(1);
});

setTimeout(() => {
  console.log("TIMEOUT");
  process.exit(2);
}, 30000);

client.connect();
