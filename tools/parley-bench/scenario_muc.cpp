// muc: group chat fan-out (XEP-0045). O sessions join one room (the first creates it and accepts it as
// an instant room, the others join with no history); then the first sends M groupchat messages at R
// messages per second, each delivered by the server to every occupant (the sender's own copy
// included): M x O deliveries. Bodies carry a sequence number and the send time, so each occupant
// measures the delivery latency and notices loss. The report gives the server's CPU per delivered
// message and the latency percentiles; the joins are outside the measured phase. By default the room
// broadcasts only moderators' presence (muc#roomconfig_presencebroadcast, which the three servers
// support): the joins then cost O(O) presences instead of O(O^2), the fan-out is unchanged.
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

constexpr std::string_view kNsMucUser = "http://jabber.org/protocol/muc#user";

// What one worker's occupants saw; touched only by that worker's thread, except the atomics.
struct MucShard {
  Latencies latencies;
  std::vector<uint64_t> next_seq;  // per member: the next sequence number expected
  std::atomic<uint64_t> delivered{0}, joined{0}, errors{0}, out_of_order{0}, configured{0}, last_ns{0};
};

bool is_self_presence(const xml::Element& s) {
  if (s.name() != "presence" || !s.attr("type").empty()) return false;
  const xml::Element* x = s.find_child("x", kNsMucUser);
  if (!x) return false;
  for (const xml::Element* c : x->children())
    if (c->name() == "status" && c->attr("code") == "110") return true;
  return false;
}

// The room's sender: M messages at `rate` per second from its worker's loop.
class MucSender {
 public:
  MucSender(XmppClient& client, std::string room, uint64_t messages, double rate)
      : client_(client), room_(std::move(room)), messages_(messages), rate_(rate) {}

  // Worker thread.
  void begin(uv_loop_t* loop) {
    uv_timer_init(loop, &timer_);
    timer_.data = this;
    start_ns_ = uv_hrtime();
    uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<MucSender*>(t->data)->tick(); }, 0, 1);
  }
  void finish() {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer_)))
      uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  }
  uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }

 private:
  void tick() {
    const double allowed = static_cast<double>(uv_hrtime() - start_ns_) / 1e9 * rate_ + 1;
    while (seq_ < messages_ && static_cast<double>(seq_) < allowed) {
      std::string& m = scratch_;
      m.clear();
      m += "<message type='groupchat' to='";
      m += room_;
      m += "'><body>";
      m += std::to_string(seq_);
      m += ' ';
      m += std::to_string(uv_hrtime());
      m += "</body></message>";
      client_.send(m);
      ++seq_;
      sent_.store(seq_, std::memory_order_relaxed);
    }
    if (seq_ >= messages_) uv_timer_stop(&timer_);
  }

  XmppClient& client_;
  std::string room_;
  uint64_t messages_;
  double rate_;
  uv_timer_t timer_{};
  uint64_t start_ns_ = 0;
  uint64_t seq_ = 0;
  std::atomic<uint64_t> sent_{0};
  std::string scratch_;
};

}  // namespace

int run_muc(const CommonOptions& common, const MucOptions& options) {
  auto ctx = RunContext::create(common, "muc");
  if (!ctx) {
    std::fprintf(stderr, "parley-bench: %s\n", ctx.error().c_str());
    return 2;
  }
  if (options.occupants == 0 || options.messages == 0 || options.rate <= 0) {
    std::fprintf(stderr, "parley-bench: --occupants and --messages must be at least 1, --rate above 0\n");
    return 2;
  }
  RunContext& run = **ctx;
  const size_t n = options.occupants;
  const std::string service = options.service.empty() ? "conference." + common.domain : options.service;
  const std::string room = options.room + "@" + service;
  std::vector<std::unique_ptr<MucShard>> shards;
  auto fleet = run.make_fleet(n);
  fleet->add_clients(run.accounts(common.first, n),
                     [&](size_t i) { return static_cast<unsigned>(i % fleet->threads()); });
  for (unsigned w = 0; w < fleet->threads(); ++w) shards.push_back(std::make_unique<MucShard>());
  for (size_t i = 0; i < n; ++i) fleet->client(i).tag = static_cast<uint32_t>(i);
  // Each worker's members, by position, for the per-occupant sequence check.
  std::vector<uint32_t> slot(n);
  for (unsigned w = 0; w < fleet->threads(); ++w) {
    shards[w]->next_seq.assign(fleet->members(w).size(), 0);
    for (size_t k = 0; k < fleet->members(w).size(); ++k) slot[fleet->members(w)[k]] = static_cast<uint32_t>(k);
  }
  fleet->set_hooks({.on_online = {},
                    .on_stanza =
                        [&](XmppClient& c, const xml::Element& s) {
                          MucShard& shard = *shards[c.worker().index()];
                          if (s.name() == "message") {
                            if (s.attr("type") == "error") {
                              shard.errors.fetch_add(1, std::memory_order_relaxed);
                              return;
                            }
                            const std::string body = s.child_text("body");
                            uint64_t seq = 0, sent_ns = 0;
                            const char* p = body.data();
                            const char* end = p + body.size();
                            auto r1 = std::from_chars(p, end, seq);
                            if (r1.ec != std::errc() || r1.ptr == end) return;  // not ours (history, subject)
                            if (std::from_chars(r1.ptr + 1, end, sent_ns).ec != std::errc()) return;
                            const uint64_t now = uv_hrtime();
                            uint64_t& expected = shard.next_seq[slot[c.tag]];
                            if (seq != expected) shard.out_of_order.fetch_add(1, std::memory_order_relaxed);
                            expected = seq + 1;
                            shard.latencies.add(now - sent_ns);
                            shard.delivered.fetch_add(1, std::memory_order_relaxed);
                            shard.last_ns.store(now, std::memory_order_relaxed);
                          } else if (is_self_presence(s)) {
                            shard.joined.fetch_add(1, std::memory_order_relaxed);
                          } else if (s.name() == "iq" && s.attr("id") == "muc-config") {
                            if (s.attr("type") == "result") shard.configured.fetch_add(1, std::memory_order_relaxed);
                            else shard.errors.fetch_add(1, std::memory_order_relaxed);
                          } else if (s.name() == "presence" && s.attr("type") == "error") {
                            shard.errors.fetch_add(1, std::memory_order_relaxed);
                          }
                        },
                    .on_closed = {}});

  std::vector<size_t> all(n);
  std::iota(all.begin(), all.end(), size_t{0});
  const double login_seconds = fleet->login(all, XmppClient::Mode::login, common.login_rate,
                                            common.login_concurrency, 1e9, common.progress);
  auto logins = fleet->collect_logins();
  Report r = run.start_report();
  r.add("occupants", "occupants", static_cast<int64_t>(n));
  r.add("messages", "groupchat messages", static_cast<int64_t>(options.messages));
  r.add("rate", "offered rate msg/s", options.rate, 0);
  add_login_fields(r, logins, login_seconds);
  auto total = [&](auto getter) {
    uint64_t sum = 0;
    for (auto& s : shards) sum += getter(*s);
    return sum;
  };
  auto wait_for = [&](auto done, double timeout_s) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  };
  auto fail = [&](const char* what) {
    std::fprintf(stderr, "parley-bench: %s\n", what);
    RunContext::add_failures(r, logins.failures);
    r.add("deliveries_lost", "deliveries lost", static_cast<int64_t>(-1));
    fleet->close_all(10);
    run.emit(r);
    return 1;
  };
  if (logins.ok != n) return fail("not every session logged in");

  // The room: the first occupant creates it and accepts the default configuration (an instant room).
  auto join_xml = [&](size_t i) {
    return "<presence to='" + room + "/o" + std::to_string(i) +
           "'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>";
  };
  XmppClient& owner = fleet->client(0);
  owner.worker().run_sync([&] { owner.send(join_xml(0)); });
  if (!wait_for([&] { return total([](MucShard& s) { return s.joined.load(); }) >= 1; }, 10))
    return fail("the room was not created");
  owner.worker().run_sync([&] {
    std::string form = "<x xmlns='jabber:x:data' type='submit'>";
    if (!options.presence_broadcast.empty()) {
      form += "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"
              "<field var='muc#roomconfig_presencebroadcast'>";
      for (size_t start = 0; start < options.presence_broadcast.size();) {
        size_t comma = options.presence_broadcast.find(',', start);
        if (comma == std::string::npos) comma = options.presence_broadcast.size();
        form += "<value>" + options.presence_broadcast.substr(start, comma - start) + "</value>";
        start = comma + 1;
      }
      form += "</field>";
    }
    form += "</x>";
    owner.send("<iq type='set' id='muc-config' to='" + room + "'><query xmlns='http://jabber.org/protocol/muc#owner'>" +
               form + "</query></iq>");
  });
  if (!wait_for([&] { return total([](MucShard& s) { return s.configured.load(); }) >= 1; }, 10))
    return fail("the room was not configured");
  const uint64_t join_start = uv_hrtime();
  for (unsigned w = 0; w < fleet->threads(); ++w)
    fleet->worker(w).post([&, w] {
      for (size_t i : fleet->members(w))
        if (i != 0) fleet->client(i).send(join_xml(i));
    });
  // Every occupant gets its own presence (110) once; the first one counted twice would not be ours.
  if (!wait_for([&] { return total([](MucShard& s) { return s.joined.load(); }) >= n; }, options.join_timeout))
    return fail("not every occupant joined");
  const double join_seconds = static_cast<double>(uv_hrtime() - join_start) / 1e9;
  r.add("join_seconds", "joins s (all occupants)", join_seconds, 2);
  if (options.inactive) {
    // After the joins (an inactive session's own presence would be held):
    // the room's messages then meet CSI's filter, as on a phone in a pocket.
    for (unsigned w = 0; w < fleet->threads(); ++w)
      fleet->worker(w).run_sync([&, w] {
        for (size_t i : fleet->members(w))
          if (i != 0) fleet->client(i).send("<inactive xmlns='urn:xmpp:csi:0'/>");
      });
  }

  std::this_thread::sleep_for(std::chrono::duration<double>(options.settle));
  const auto before = run.sample_server();
  const double bench_cpu_before = self_cpu_seconds();
  const uint64_t start_ns = uv_hrtime();
  MucSender sender(owner, room, options.messages, options.rate);
  owner.worker().run_sync([&] { sender.begin(owner.worker().loop()); });

  const uint64_t expected = options.messages * n;
  uint64_t last_delivered = 0;
  auto last_progress = std::chrono::steady_clock::now();
  auto last_print = last_progress;
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const uint64_t delivered = total([](MucShard& s) { return s.delivered.load(); });
    const auto now = std::chrono::steady_clock::now();
    if (delivered >= expected) break;
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
                   static_cast<unsigned long>(expected));
    }
  }
  const auto after = run.sample_server();
  const double bench_cpu = self_cpu_seconds() - bench_cpu_before;
  owner.worker().run_sync([&] { sender.finish(); });
  if (common.progress) std::fprintf(stderr, "\n");

  Latencies latencies;
  uint64_t last_ns = start_ns;
  for (unsigned w = 0; w < fleet->threads(); ++w)
    fleet->worker(w).run_sync([&, w] {
      latencies.merge(shards[w]->latencies);
      last_ns = std::max(last_ns, shards[w]->last_ns.load());
    });
  const uint64_t delivered = total([](MucShard& s) { return s.delivered.load(); });
  const uint64_t lost = expected - std::min(expected, delivered);
  const double seconds = static_cast<double>(last_ns - start_ns) / 1e9;
  const uint64_t dropped = fleet->counters().dropped.load();
  r.add("messages_sent", "messages sent", static_cast<int64_t>(sender.sent()));
  r.add("deliveries", "deliveries", static_cast<int64_t>(delivered));
  r.add("deliveries_lost", "deliveries lost", static_cast<int64_t>(lost));
  r.add("message_errors", "error stanzas received", static_cast<int64_t>(total([](MucShard& s) { return s.errors.load(); })));
  r.add("out_of_order", "out of order", static_cast<int64_t>(total([](MucShard& s) { return s.out_of_order.load(); })));
  r.add("sessions_dropped", "sessions dropped", static_cast<int64_t>(dropped));
  r.add("muc_seconds", "fan-out phase s", seconds, 3);
  r.add("deliveries_per_s", "deliveries/s", seconds > 0 ? static_cast<double>(delivered) / seconds : 0.0, 0);
  r.add("lat_p50_ms", "latency p50 ms", latencies.percentile_ms(50), 3);
  r.add("lat_p99_ms", "latency p99 ms", latencies.percentile_ms(99), 3);
  r.add("lat_max_ms", "latency max ms", latencies.max_ms(), 3);
  r.add("bench_cpu_muc_s", "generator CPU s (fan-out)", bench_cpu, 2);
  if (before && after) {
    const double cpu = after->cpu_s - before->cpu_s;
    r.add("server_cpu_s", "server CPU s", cpu, 3);
    r.add("server_cpu_us_per_delivery", "server CPU us per delivered message",
          delivered ? cpu * 1e6 / static_cast<double>(delivered) : 0.0, 2);
    r.add("server_rss_kib", "server RSS KiB", static_cast<int64_t>(after->rss_kib));
  }
  auto later = fleet->collect_logins();
  RunContext::add_failures(r, later.failures);
  fleet->close_all(15);
  run.emit(r);
  return lost == 0 && dropped == 0 ? 0 : 1;
}

}  // namespace parley::bench
