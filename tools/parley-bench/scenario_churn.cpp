// churn: N sessions online; for a while, R per second of them disconnect and log in again. Shows the
// cost of a login under load and whether the server's memory comes back (a leak would show here).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <thread>

#include "run_context.hpp"
#include "scenarios.hpp"

namespace parley::bench {

namespace {

// One worker's part of the churn: closes its online clients one after another at its share of the rate.
class ChurnShard {
 public:
  ChurnShard(Fleet& fleet, unsigned w, double rate) : fleet_(fleet), w_(w), rate_(rate) {}

  void begin() {  // worker thread
    uv_timer_init(fleet_.worker(w_).loop(), &timer_);
    timer_.data = this;
    start_ns_ = uv_hrtime();
    uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<ChurnShard*>(t->data)->tick(); }, 1, 1);
  }

  void end() {  // worker thread
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  }

  uint64_t closes() const { return closes_.load(); }

 private:
  void tick() {
    const auto& members = fleet_.members(w_);
    if (members.empty()) return;
    const double allowed = static_cast<double>(uv_hrtime() - start_ns_) / 1e9 * rate_;
    size_t scanned = 0;
    while (static_cast<double>(closes_.load(std::memory_order_relaxed)) < allowed && scanned < members.size()) {
      XmppClient& client = fleet_.client(members[next_ % members.size()]);
      ++next_;
      ++scanned;
      if (client.phase() != XmppClient::Phase::online) continue;  // still reconnecting
      client.close();
      closes_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  Fleet& fleet_;
  unsigned w_;
  double rate_;
  uv_timer_t timer_{};
  uint64_t start_ns_ = 0;
  size_t next_ = 0;
  std::atomic<uint64_t> closes_{0};
};

}  // namespace

int run_churn(const CommonOptions& common, const ChurnOptions& options) {
  auto ctx = RunContext::create(common, "churn");
  if (!ctx) {
    std::fprintf(stderr, "parley-bench: %s\n", ctx.error().c_str());
    return 2;
  }
  RunContext& run = **ctx;
  std::atomic<bool> churning{false};
  std::vector<std::unique_ptr<ChurnShard>> shards;  // before the fleet, which calls into them
  auto fleet = run.make_fleet(options.sessions);
  fleet->add_clients(run.accounts(common.first, options.sessions), [](size_t i) { return static_cast<unsigned>(i); });
  Fleet* f = fleet.get();
  fleet->set_hooks({.on_online = {},
                    .on_stanza = {},
                    .on_closed = [&churning, f](XmppClient& c) {
                      if (churning.load()) f->enqueue_login(c);
                    }});

  std::vector<size_t> all(options.sessions);
  std::iota(all.begin(), all.end(), size_t{0});
  const double base_seconds = fleet->login(all, XmppClient::Mode::login, common.login_rate,
                                           common.login_concurrency, 1e9, common.progress);
  auto base = fleet->collect_logins();
  Report r = run.start_report();
  r.add("sessions", "sessions", static_cast<int64_t>(options.sessions));
  r.add("base_logins_ok", "initial logins ok", static_cast<int64_t>(base.ok));
  r.add("base_login_seconds", "initial login phase s", base_seconds, 2);
  if (base.ok != options.sessions) {
    RunContext::add_failures(r, base.failures);
    fleet->close_all(10);
    run.emit(r);
    return 1;
  }

  std::this_thread::sleep_for(std::chrono::seconds(1));
  const auto before = run.sample_server();
  fleet->set_pacing(XmppClient::Mode::login, 0, common.login_concurrency);
  for (unsigned w = 0; w < fleet->threads(); ++w)
    shards.push_back(std::make_unique<ChurnShard>(*fleet, w, options.rate / fleet->threads()));
  churning = true;
  const uint64_t ok_before = fleet->counters().logins_ok.load();
  const uint64_t failed_before = fleet->counters().logins_failed.load();
  const auto start = std::chrono::steady_clock::now();
  for (unsigned w = 0; w < fleet->threads(); ++w) fleet->worker(w).run_sync([&, w] { shards[w]->begin(); });
  while (std::chrono::steady_clock::now() - start < std::chrono::duration<double>(options.duration)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (common.progress) {
      std::fprintf(stderr, "\r  reconnections %lu", static_cast<unsigned long>(fleet->counters().logins_ok.load() - ok_before));
    }
  }
  for (unsigned w = 0; w < fleet->threads(); ++w) fleet->worker(w).run_sync([&, w] { shards[w]->end(); });
  uint64_t closes = 0;
  for (auto& s : shards) closes += s->closes();
  // Let the reconnections under way finish.
  const auto settle_deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(common.login_timeout + 10);
  while (fleet->counters().logins_ok.load() + fleet->counters().logins_failed.load() - ok_before - failed_before < closes &&
         std::chrono::steady_clock::now() < settle_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  churning = false;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto after = run.sample_server();
  if (common.progress) std::fprintf(stderr, "\n");
  auto stats = fleet->collect_logins();

  r.add("churn_rate", "offered reconnections/s", options.rate, 1);
  r.add("disconnects", "disconnections", static_cast<int64_t>(closes));
  add_login_fields(r, stats, seconds);
  r.add("dropped", "sessions dropped", static_cast<int64_t>(stats.dropped));
  if (before && after) {
    const double cpu = after->cpu_s - before->cpu_s;
    r.add("server_cpu_s", "server CPU s", cpu, 2);
    r.add("server_cpu_ms_per_login", "server CPU ms per reconnection",
          stats.ok ? cpu * 1000 / static_cast<double>(stats.ok) : 0.0, 3);
    r.add("server_rss_kib_before", "server RSS before KiB", static_cast<int64_t>(before->rss_kib));
    r.add("server_rss_kib_after", "server RSS after KiB", static_cast<int64_t>(after->rss_kib));
  }
  RunContext::add_failures(r, stats.failures);
  r.add("tls_session", "TLS session", fleet->tls_description());
  fleet->close_all(15);
  run.emit(r);
  return stats.failed == 0 && stats.dropped == 0 ? 0 : 1;
}

}  // namespace parley::bench
