// Converse.js (the web client, unmodified, from npm: the latest, 14) in
// headless Chromium over WebSocket or BOSH (a URL http://.../http-bind),
// driven by tests/integration/test_websocket.py and test_bosh.py through
// puppeteer-core and Debian's chromium-headless-shell. The page embeds
// Converse as its quickstart says since 14 (an ES module: <script
// type="module">, then converse.initialize).
// Usage: node converse_ws.mjs URL DOMAIN USER PASSWORD
// Prints: "ONLINE <jid>", "GOT <from> <body>", "SENT", "STOPPED". Answers the
// first chat message with "echo: <body>" typed into the chat box Converse
// opened for it (its textarea, then Enter), as a user would.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

const [url, domain, username, password] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, "node_modules", "converse.js", "dist");
const chromium = process.env.CHROMIUM || "/usr/bin/chromium-headless-shell";

// The page needs an http origin (Converse keeps its state in the browser's storage).
const page_html = `<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/dist/converse.min.css"><script type="module" src="/dist/converse.min.js"></script></head>
<body class="converse-fullscreen"></body></html>`;
const server = http.createServer((req, res) => {
  if (req.url === "/") {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end(page_html);
    return;
  }
  const file = path.join(dist, path.normalize(req.url.replace(/^\/dist\//, "")).replace(/^(\.\.[/\\])+/, ""));
  fs.readFile(file, (err, data) => {
    if (err) {
      res.writeHead(404);
      res.end();
      return;
    }
    const type = file.endsWith(".js") ? "text/javascript" : file.endsWith(".css") ? "text/css"
      : file.endsWith(".wasm") ? "application/wasm" : file.endsWith(".json") ? "application/json"
      : "application/octet-stream";
    res.writeHead(200, { "Content-Type": type });
    res.end(data);
  });
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}/`;

// The browser is closed on every way out: puppeteer starts it in a process
// group of its own, so an exit that skips browser.close() (this timeout did)
// leaves a headless Chromium running on, orphaned, for the rest of the run.
let browser = null;
const timer = setTimeout(async () => {
  console.log("TIMEOUT");
  try {
    if (browser) await browser.close();
  } finally {
    process.exit(2);
  }
}, 180000);

browser = await puppeteer.launch({
  executablePath: chromium,
  headless: "shell",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  if (process.env.CONVERSE_DEBUG) page.on("console", (m) => console.error(`console: ${m.text()}`));
  await page.goto(origin);
  // The module has run: it defines window.converse.
  await page.waitForFunction(() => window.converse !== undefined, { timeout: 30000 });
  await page.evaluate(
    ({ url, jid, password, loglevel }) => {
      window.__messages = [];
      window.__loglevel = loglevel;
      window.converse.plugins.add("parley-test", {
        initialize() {
          const api = this._converse.api;
          window.__api = api;
          api.listen.on("connected", () => {
            // Every message stanza Converse's connection receives (Strophe handler: true keeps it).
            api.listen.stanza("message", (stanza) => {
              const body = stanza.querySelector("body");
              if (body) window.__messages.push({ from: stanza.getAttribute("from"), body: body.textContent });
              return true;
            });
            window.__connected = true;
          });
        },
      });
      window.converse.initialize({
        // ws:// or wss://: WebSocket; http:// or https:// (/http-bind): BOSH (test_bosh.py).
        ...(url.startsWith("ws") ? { websocket_url: url } : { bosh_service_url: url }),
        jid,
        password,
        auto_login: true,
        discover_connection_methods: false,
        view_mode: "fullscreen",
        whitelisted_plugins: ["parley-test"],
        // No OMEMO: these servers have no PEP (the contact's device list is an
        // error), and the chat box it checks the contact's devices for may then
        // never send (seen over BOSH on a loaded machine). Chatting is tested.
        blacklisted_plugins: ["converse-omemo"],
        allow_non_roster_messaging: true,
        persistent_store: "localStorage",
        loglevel: window.__loglevel || "error",
      });
    },
    { url, jid: `${username}@${domain}/converse`, password, loglevel: process.env.CONVERSE_DEBUG ? "debug" : "error" },
  );
  await page.waitForFunction(() => window.__connected === true, { timeout: 30000 });
  console.log(`ONLINE ${await page.evaluate(() => window.__api.user.jid())}`);
  await page.waitForFunction(() => window.__messages.length > 0, { timeout: 30000 });
  const msg = await page.evaluate(() => window.__messages[0]);
  console.log(`GOT ${msg.from} ${msg.body}`);
  // The chat box Converse opened for the message: type the answer and press Enter.
  const bare = msg.from.split("/")[0];
  const textarea = `converse-chat[jid="${bare}"] textarea.chat-textarea`;
  // Shown (force): in fullscreen mode a chat that arrives is not brought to the front.
  await page.evaluate((jid) => { window.__api.chats.open(jid, {}, true); }, bare);
  await page.waitForSelector(textarea, { visible: true, timeout: 30000 });
  // The text put in at once (as a paste would; typing it key by key costs a
  // browser round trip per key), then Enter in the textarea: Converse's own
  // key handler sends what the box holds. The box may still be rendering
  // (its capability checks, OMEMO's device list, re-render it with the saved
  // draft, empty): until Converse shows the message as sent, again.
  const text = `echo: ${msg.body}`;
  const shown = (jid, body) => [...document.querySelectorAll(`converse-chat[jid="${jid}"] .chat-msg__text`)]
    .some((el) => el.textContent.trim() === body);
  for (let attempt = 1; ; ++attempt) {
    await page.$eval(textarea, (el, t) => { el.value = t; el.focus(); }, text);
    await page.keyboard.press("Enter");
    try {
      await page.waitForFunction(shown, { timeout: 5000 }, bare, text);
      break;
    } catch (e) {
      if (attempt === 12) throw e;  // a minute: Chromium shares CI's two cores with a sanitized server and a build
    }
  }
  // A ping then is a round trip through the server after the message.
  await page.evaluate(() => window.__api.ping());
  console.log("SENT");
} finally {
  await browser.close();
  server.close();
  clearTimeout(timer);
}
console.log("STOPPED");
process.exit(0);
