// offline: senders send M messages to R users who are offline, then those users log in; how long
// until every message is delivered, and how many are lost. A server without offline storage bounces
// or drops them: the report then says "not supported" instead of giving numbers.
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <thread>

#include "run_context.hpp"
#include "scenarios.hpp"
#include "xml/serializer.hpp"

namespace parley::bench {

namespace {

struct OfflineState {
  size_t receivers = 0;
  size_t senders = 0;
  uint64_t messages = 0;
  unsigned batch = 1;
  std::vector<std::string> receiver_jids;  // bare, escaped for an attribute
  std::vector<uint64_t> next_seq;          // per sender; touched by the sender's worker only
  std::unique_ptr<std::atomic<uint8_t>[]> seen;
  std::atomic<uint64_t> sent{0}, bounced{0}, delivered{0}, duplicates{0}, senders_done{0}, last_ns{0};

  // Worker thread of `sender`: the next batch, then a ping whose answer asks for the one after.
  void send_batch(XmppClient& sender, size_t s) {
    std::string out;
    unsigned n = 0;
    for (; n < batch && next_seq[s] < messages; ++n) {
      const uint64_t seq = next_seq[s];
      next_seq[s] += senders;
      out += "<message type='chat' to='";
      out += receiver_jids[seq % receivers];
      out += "' id='o" + std::to_string(seq) + "'><body>" + std::to_string(seq) + " " +
             std::to_string(uv_hrtime()) + "</body></message>";
    }
    if (n == 0) {
      senders_done.fetch_add(1);
      return;
    }
    out += "<iq type='get' id='p" + std::to_string(next_seq[s]) + "'><ping xmlns='urn:xmpp:ping'/></iq>";
    sender.send(out);
    sent.fetch_add(n);
  }

  void on_stanza(XmppClient& client, const xml::Element& stanza) {
    if (client.tag >= receivers) {  // a sender
      const size_t s = client.tag - receivers;
      if (stanza.name() == "iq" && stanza.attr("id").substr(0, 1) == "p") send_batch(client, s);
      else if (stanza.name() == "message" && stanza.attr("type") == "error") bounced.fetch_add(1);
      return;
    }
    if (stanza.name() != "message" || stanza.attr("type") == "error") return;
    const std::string body = stanza.child_text("body");
    uint64_t seq = 0;
    auto r = std::from_chars(body.data(), body.data() + body.size(), seq);
    if (r.ec != std::errc() || seq >= messages) return;
    if (seen[seq].exchange(1) != 0) {
      duplicates.fetch_add(1);
      return;
    }
    delivered.fetch_add(1);
    last_ns.store(uv_hrtime());
  }
};

// Waits while `progress()` keeps changing, until `done()` or `stall_s` without change.
template <class Done, class Progress>
bool wait_for(Done done, Progress progress, double stall_s) {
  uint64_t last = progress();
  auto last_change = std::chrono::steady_clock::now();
  while (!done()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const uint64_t now_value = progress();
    const auto now = std::chrono::steady_clock::now();
    if (now_value != last) {
      last = now_value;
      last_change = now;
    } else if (now - last_change > std::chrono::duration<double>(stall_s)) {
      return false;
    }
  }
  return true;
}

}  // namespace

int run_offline(const CommonOptions& common, const OfflineOptions& options) {
  auto ctx = RunContext::create(common, "offline");
  if (!ctx) {
    std::fprintf(stderr, "parley-bench: %s\n", ctx.error().c_str());
    return 2;
  }
  if (options.receivers == 0 || options.senders == 0) {
    std::fprintf(stderr, "parley-bench: --receivers and --senders must be at least 1\n");
    return 2;
  }
  RunContext& run = **ctx;
  OfflineState state;  // before the fleet: its workers call into it until the fleet is gone
  state.receivers = options.receivers;
  state.senders = options.senders;
  state.messages = options.messages;
  state.batch = std::max(1u, options.batch);
  state.seen.reset(new std::atomic<uint8_t>[options.messages]());
  for (size_t s = 0; s < options.senders; ++s) state.next_seq.push_back(s);
  const auto accounts = run.accounts(common.first, options.receivers + options.senders);
  for (size_t i = 0; i < options.receivers; ++i) {
    std::string jid;
    xml::escape_attr_to(jid, accounts[i].user + "@" + common.domain);
    state.receiver_jids.push_back(jid);
  }

  auto fleet = run.make_fleet(accounts.size());
  fleet->add_clients(accounts, [](size_t i) { return static_cast<unsigned>(i); });
  fleet->set_hooks({.on_online = {},
                    .on_stanza = [&](XmppClient& c, const xml::Element& s) { state.on_stanza(c, s); },
                    .on_closed = {}});

  Report r = run.start_report();
  r.add("receivers", "offline receivers", static_cast<int64_t>(options.receivers));
  r.add("senders", "senders", static_cast<int64_t>(options.senders));
  r.add("messages", "messages", static_cast<int64_t>(options.messages));

  // 1. The senders log in and send everything while the receivers are offline.
  std::vector<size_t> senders(options.senders);
  std::iota(senders.begin(), senders.end(), options.receivers);
  fleet->login(senders, XmppClient::Mode::login, common.login_rate, common.login_concurrency, 1e9, common.progress);
  auto sender_logins = fleet->collect_logins();
  if (sender_logins.ok != options.senders) {
    RunContext::add_failures(r, sender_logins.failures);
    r.add("status", "status", std::string("sender logins failed"));
    fleet->close_all(10);
    run.emit(r);
    return 1;
  }
  const auto before = run.sample_server();
  const uint64_t store_start = uv_hrtime();
  for (size_t s = 0; s < options.senders; ++s) {
    XmppClient& sender = fleet->client(options.receivers + s);
    sender.worker().post([&state, &sender, s] { state.send_batch(sender, s); });
  }
  const bool all_sent = wait_for([&] { return state.senders_done.load() == options.senders; },
                                 [&] { return state.sent.load(); }, options.drain_timeout);
  const double store_seconds = static_cast<double>(uv_hrtime() - store_start) / 1e9;
  std::this_thread::sleep_for(std::chrono::seconds(1));  // let the server finish writing
  const auto after_store = run.sample_server();
  r.add("messages_sent", "messages sent", static_cast<int64_t>(state.sent.load()));
  r.add("store_seconds", "sending phase s", store_seconds, 3);
  r.add("store_msgs_per_s", "sent to offline msg/s",
        store_seconds > 0 ? static_cast<double>(state.sent.load()) / store_seconds : 0.0, 0);

  // 2. The receivers log in; the server delivers what it kept.
  std::vector<size_t> receivers(options.receivers);
  std::iota(receivers.begin(), receivers.end(), size_t{0});
  const uint64_t deliver_start = uv_hrtime();
  fleet->login(receivers, XmppClient::Mode::login, common.login_rate, common.login_concurrency, 1e9, common.progress);
  auto receiver_logins = fleet->collect_logins();
  const uint64_t expected = state.sent.load() - std::min(state.sent.load(), state.bounced.load());
  wait_for([&] { return state.delivered.load() >= expected; }, [&] { return state.delivered.load(); },
           options.drain_timeout);
  const auto after_deliver = run.sample_server();
  const uint64_t delivered = state.delivered.load();
  const uint64_t bounced = state.bounced.load();
  const bool supported = delivered > 0 && bounced == 0;
  const uint64_t lost = state.sent.load() - std::min(state.sent.load(), delivered);
  r.add("supported", "offline storage supported", supported);
  r.add("status", "status", std::string(supported ? (all_sent ? "ok" : "sending stalled") : "not supported"));
  r.add("receiver_logins_ok", "receiver logins ok", static_cast<int64_t>(receiver_logins.ok));
  r.add("messages_bounced", "messages bounced (error)", static_cast<int64_t>(bounced));
  r.add("messages_delivered", "messages delivered", static_cast<int64_t>(delivered));
  r.add("duplicates", "duplicates", static_cast<int64_t>(state.duplicates.load()));
  if (supported) {
    const double deliver_seconds = static_cast<double>(std::max(state.last_ns.load(), deliver_start) - deliver_start) / 1e9;
    r.add("messages_lost", "messages lost", static_cast<int64_t>(lost));
    r.add("deliver_seconds", "login to all delivered s", deliver_seconds, 3);
    r.add("deliver_msgs_per_s", "delivered msg/s",
          deliver_seconds > 0 ? static_cast<double>(delivered) / deliver_seconds : 0.0, 0);
  }
  if (before && after_store && after_deliver) {
    r.add("server_cpu_store_s", "server CPU s (store)", after_store->cpu_s - before->cpu_s, 2);
    r.add("server_cpu_deliver_s", "server CPU s (login + deliver)", after_deliver->cpu_s - after_store->cpu_s, 2);
    r.add("server_rss_kib_stored", "server RSS with messages stored KiB", static_cast<int64_t>(after_store->rss_kib));
  }
  RunContext::add_failures(r, receiver_logins.failures);
  r.add("tls_session", "TLS session", fleet->tls_description());
  fleet->close_all(15);
  run.emit(r);
  return supported && lost == 0 ? 0 : (supported ? 1 : 3);
}

}  // namespace parley::bench
