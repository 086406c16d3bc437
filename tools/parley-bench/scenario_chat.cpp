// chat: P pairs of sessions; in each pair the first sends to the second with at most W messages in
// flight, until M messages in all were delivered. Bodies carry a sequence number and the send time,
// so the receiver measures latency and notices loss, duplicates and reordering.
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <deque>
#include <numeric>
#include <thread>

#include "run_context.hpp"
#include "scenarios.hpp"
#include "xml/serializer.hpp"

namespace parley::bench {

namespace {

struct Pair {
  XmppClient* sender = nullptr;
  XmppClient* receiver = nullptr;
  std::string to;  // the receiver's full JID, escaped for an attribute
  uint64_t quota = 0;
  uint64_t sent = 0;
  uint64_t received = 0;
};

// The pairs of one worker and its pacing; touched only by that worker's thread, except the atomics.
class ChatShard {
 public:
  ChatShard(Worker& worker, std::vector<Pair>& pairs, const ChatOptions& options, double rate)
      : worker_(worker), pairs_(pairs), options_(options), rate_(rate) {
    padding_.assign(options.body_bytes, 'x');
  }

  void add_pair(uint32_t index) { mine_.push_back(index); }

  // Worker thread.
  void begin() {
    uv_timer_init(worker_.loop(), &timer_);
    timer_.data = this;
    timer_ready_ = true;
    start_ns_ = uv_hrtime();
    for (uint32_t index : mine_) {
      Pair& pair = pairs_[index];
      pair.to.clear();
      xml::escape_attr_to(pair.to, pair.receiver->full_jid());
      const uint64_t initial = std::min<uint64_t>(options_.window, pair.quota);
      for (uint64_t k = 0; k < initial; ++k) want_send(index);
    }
  }

  void on_message(XmppClient& client, const xml::Element& stanza) {
    if (stanza.name() != "message") return;
    if (stanza.attr("type") == "error") {
      errors_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const std::string body = stanza.child_text("body");
    uint64_t seq = 0, sent_ns = 0;
    const char* p = body.data();
    const char* end = p + body.size();
    auto r1 = std::from_chars(p, end, seq);
    if (r1.ec != std::errc() || r1.ptr == end) return;  // not ours
    auto r2 = std::from_chars(r1.ptr + 1, end, sent_ns);
    if (r2.ec != std::errc()) return;
    const uint64_t now = uv_hrtime();
    Pair& pair = pairs_[client.tag / 2];
    if (&client != pair.receiver) return;
    if (seq != pair.received) out_of_order_.fetch_add(1, std::memory_order_relaxed);
    ++pair.received;
    latencies_.add(now - sent_ns);
    delivered_.fetch_add(1, std::memory_order_relaxed);
    last_ns_.store(now, std::memory_order_relaxed);
    if (pair.sent < pair.quota) want_send(client.tag / 2);
  }

  // Worker thread: no more sending.
  void finish() {
    stopped_ = true;
    waiting_.clear();
    if (timer_ready_) {
      uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
      timer_ready_ = false;
    }
  }

  Latencies& latencies() { return latencies_; }
  uint64_t delivered() const { return delivered_.load(std::memory_order_relaxed); }
  uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
  uint64_t out_of_order() const { return out_of_order_.load(std::memory_order_relaxed); }
  uint64_t last_ns() const { return last_ns_.load(std::memory_order_relaxed); }

 private:
  void want_send(uint32_t index) {
    if (stopped_) return;
    if (rate_ > 0 && !take_token()) {
      waiting_.push_back(index);
      if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_)))
        uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<ChatShard*>(t->data)->drain_waiting(); }, 1, 1);
      return;
    }
    send(index);
  }

  bool take_token() {
    const double allowed = static_cast<double>(uv_hrtime() - start_ns_) / 1e9 * rate_ + 1;
    if (static_cast<double>(tokens_used_) >= allowed) return false;
    ++tokens_used_;
    return true;
  }

  void drain_waiting() {
    while (!waiting_.empty() && take_token()) {
      const uint32_t index = waiting_.front();
      waiting_.pop_front();
      send(index);
    }
    if (waiting_.empty()) uv_timer_stop(&timer_);
  }

  void send(uint32_t index) {
    Pair& pair = pairs_[index];
    if (pair.sent >= pair.quota) return;
    const uint64_t seq = pair.sent++;
    std::string& m = scratch_;
    m.clear();
    m += "<message type='chat' to='";
    m += pair.to;
    m += "' id='m";
    m += std::to_string(seq);
    m += "'><body>";
    m += std::to_string(seq);
    m += ' ';
    m += std::to_string(uv_hrtime());
    if (!padding_.empty()) {
      m += ' ';
      m += padding_;
    }
    m += "</body></message>";
    pair.sender->send(m);
    sent_.fetch_add(1, std::memory_order_relaxed);
  }

  Worker& worker_;
  std::vector<Pair>& pairs_;
  const ChatOptions& options_;
  double rate_;  // this shard's share, messages per second; 0: unpaced
  std::vector<uint32_t> mine_;
  std::deque<uint32_t> waiting_;  // one entry per send that waits for a token
  uv_timer_t timer_{};
  bool timer_ready_ = false;
  bool stopped_ = false;
  uint64_t start_ns_ = 0;
  uint64_t tokens_used_ = 0;
  std::string padding_;
  std::string scratch_;
  Latencies latencies_;
  std::atomic<uint64_t> delivered_{0}, sent_{0}, errors_{0}, out_of_order_{0}, last_ns_{0};
};

}  // namespace

int run_chat(const CommonOptions& common, const ChatOptions& options) {
  auto ctx = RunContext::create(common, "chat");
  if (!ctx) {
    std::fprintf(stderr, "parley-bench: %s\n", ctx.error().c_str());
    return 2;
  }
  if (options.pairs == 0 || options.window == 0) {
    std::fprintf(stderr, "parley-bench: --pairs and --window must be at least 1\n");
    return 2;
  }
  RunContext& run = **ctx;
  const size_t sessions = options.pairs * 2;
  // Declared before the fleet so that they outlive it: its workers call into them until it is gone.
  std::vector<Pair> pairs(options.pairs);
  std::vector<std::unique_ptr<ChatShard>> shards;
  auto fleet = run.make_fleet(sessions);
  // Both ends of a pair on one worker: the window is then kept without any cross-thread traffic.
  fleet->add_clients(run.accounts(common.first, sessions), [](size_t i) { return static_cast<unsigned>(i / 2); });

  const double shard_rate = options.rate / fleet->threads();
  for (unsigned w = 0; w < fleet->threads(); ++w)
    shards.push_back(std::make_unique<ChatShard>(fleet->worker(w), pairs, options, shard_rate));
  for (size_t p = 0; p < options.pairs; ++p) {
    pairs[p].sender = &fleet->client(2 * p);
    pairs[p].receiver = &fleet->client(2 * p + 1);
    pairs[p].quota = options.messages / options.pairs + (p < options.messages % options.pairs ? 1 : 0);
    shards[fleet->client(2 * p).worker().index()]->add_pair(static_cast<uint32_t>(p));
  }
  fleet->set_hooks({.on_online = {},
                    .on_stanza = [&](XmppClient& c, const xml::Element& s) {
                      shards[c.worker().index()]->on_message(c, s);
                    },
                    .on_closed = {}});

  std::vector<size_t> all(sessions);
  std::iota(all.begin(), all.end(), size_t{0});
  const double login_seconds = fleet->login(all, XmppClient::Mode::login, common.login_rate,
                                            common.login_concurrency, 1e9, common.progress);
  auto logins = fleet->collect_logins();
  Report r = run.start_report();
  r.add("pairs", "pairs", static_cast<int64_t>(options.pairs));
  r.add("window", "window", static_cast<int64_t>(options.window));
  r.add("messages", "messages", static_cast<int64_t>(options.messages));
  r.add("rate", "offered rate msg/s (0 = unpaced)", options.rate, 0);
  add_login_fields(r, logins, login_seconds);
  if (logins.ok != sessions) {
    RunContext::add_failures(r, logins.failures);
    r.add("messages_lost", "messages lost", static_cast<int64_t>(-1));
    fleet->close_all(10);
    run.emit(r);
    return 1;
  }

  std::this_thread::sleep_for(std::chrono::duration<double>(options.settle));
  const auto before = run.sample_server();
  const double bench_cpu_before = self_cpu_seconds();
  const uint64_t start_ns = uv_hrtime();
  for (unsigned w = 0; w < fleet->threads(); ++w) fleet->worker(w).post([&, w] { shards[w]->begin(); });

  auto total = [&](auto getter) {
    uint64_t sum = 0;
    for (auto& s : shards) sum += getter(*s);
    return sum;
  };
  uint64_t last_delivered = 0;
  auto last_progress = std::chrono::steady_clock::now();
  auto last_print = last_progress;
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const uint64_t delivered = total([](ChatShard& s) { return s.delivered(); });
    const auto now = std::chrono::steady_clock::now();
    if (delivered >= options.messages) break;
    if (delivered != last_delivered) {
      last_delivered = delivered;
      last_progress = now;
    } else if (now - last_progress > std::chrono::duration<double>(options.drain_timeout)) {
      std::fprintf(stderr, "\nparley-bench: no delivery for %.0f s, giving up\n", options.drain_timeout);
      break;
    }
    if (common.progress && now - last_print > std::chrono::seconds(1)) {
      last_print = now;
      std::fprintf(stderr, "\r  delivered %lu/%lu", static_cast<unsigned long>(delivered),
                   static_cast<unsigned long>(options.messages));
    }
  }
  const auto after = run.sample_server();
  const double bench_cpu_chat = self_cpu_seconds() - bench_cpu_before;
  for (unsigned w = 0; w < fleet->threads(); ++w) fleet->worker(w).run_sync([&, w] { shards[w]->finish(); });
  if (common.progress) std::fprintf(stderr, "\r  delivered %lu/%lu\n",
                                    static_cast<unsigned long>(total([](ChatShard& s) { return s.delivered(); })),
                                    static_cast<unsigned long>(options.messages));

  Latencies latencies;
  uint64_t last_ns = start_ns;
  for (unsigned w = 0; w < fleet->threads(); ++w) {
    fleet->worker(w).run_sync([&, w] {
      latencies.merge(shards[w]->latencies());
      last_ns = std::max(last_ns, shards[w]->last_ns());
    });
  }
  const uint64_t delivered = total([](ChatShard& s) { return s.delivered(); });
  const uint64_t sent = total([](ChatShard& s) { return s.sent(); });
  const double seconds = static_cast<double>(last_ns - start_ns) / 1e9;
  const uint64_t dropped = fleet->counters().dropped.load();
  const uint64_t lost = sent - std::min(sent, delivered);

  r.add("messages_sent", "messages sent", static_cast<int64_t>(sent));
  r.add("messages_delivered", "messages delivered", static_cast<int64_t>(delivered));
  r.add("messages_lost", "messages lost", static_cast<int64_t>(lost));
  r.add("messages_unsent", "messages never sent", static_cast<int64_t>(options.messages - std::min(options.messages, sent)));
  r.add("message_errors", "error stanzas received", static_cast<int64_t>(total([](ChatShard& s) { return s.errors(); })));
  r.add("out_of_order", "out of order", static_cast<int64_t>(total([](ChatShard& s) { return s.out_of_order(); })));
  r.add("sessions_dropped", "sessions dropped", static_cast<int64_t>(dropped));
  r.add("chat_seconds", "chat phase s", seconds, 3);
  r.add("msgs_per_s", "delivered msg/s", seconds > 0 ? static_cast<double>(delivered) / seconds : 0.0, 0);
  r.add("lat_p50_ms", "latency p50 ms", latencies.percentile_ms(50), 3);
  r.add("lat_p99_ms", "latency p99 ms", latencies.percentile_ms(99), 3);
  r.add("lat_p999_ms", "latency p99.9 ms", latencies.percentile_ms(99.9), 3);
  r.add("lat_max_ms", "latency max ms", latencies.max_ms(), 3);
  r.add("bench_cpu_chat_s", "generator CPU s (chat)", bench_cpu_chat, 2);
  if (before && after) {
    const double cpu = after->cpu_s - before->cpu_s;
    r.add("server_cpu_s", "server CPU s", cpu, 2);
    r.add("server_cpu_s_per_100k", "server CPU s per 100k msg",
          delivered ? cpu * 1e5 / static_cast<double>(delivered) : 0.0, 3);
    r.add("server_rss_kib", "server RSS KiB", static_cast<int64_t>(after->rss_kib));
  }
  if (common.stream_management) {
    // XEP-0198: the <r/> the server sent that the clients answered (during the whole run).
    std::atomic<uint64_t> acks{0};
    for (unsigned w = 0; w < fleet->threads(); ++w)
      fleet->worker(w).run_sync([&, w] {
        for (size_t i : fleet->members(w)) acks.fetch_add(fleet->client(i).acks_sent());
      });
    r.add("sm_acks_sent", "XEP-0198 acks sent", static_cast<int64_t>(acks.load()));
  }
  auto later = fleet->collect_logins();
  RunContext::add_failures(r, later.failures);
  r.add("tls_session", "TLS session", fleet->tls_description());
  fleet->close_all(15);
  run.emit(r);
  return lost == 0 && delivered == options.messages && dropped == 0 ? 0 : 1;
}

}  // namespace parley::bench
