// connect: N sessions log in at a controlled rate, then stay idle; the cost of a login and of an idle
// session on the server.
#include <chrono>
#include <cstdio>
#include <numeric>
#include <thread>

#include "run_context.hpp"
#include "scenarios.hpp"

namespace parley::bench {

int run_connect(const CommonOptions& common, const ConnectOptions& options) {
  auto ctx = RunContext::create(common, "connect");
  if (!ctx) {
    std::fprintf(stderr, "parley-bench: %s\n", ctx.error().c_str());
    return 2;
  }
  RunContext& run = **ctx;
  auto fleet = run.make_fleet(options.sessions);
  fleet->add_clients(run.accounts(common.first, options.sessions), [](size_t i) { return static_cast<unsigned>(i); });

  std::vector<size_t> all(options.sessions);
  std::iota(all.begin(), all.end(), size_t{0});
  const auto before = run.sample_server();
  const double bench_cpu_before = self_cpu_seconds();
  const double seconds = fleet->login(all, XmppClient::Mode::login, common.login_rate, common.login_concurrency,
                                      1e9, common.progress);
  const auto after_login = run.sample_server();
  const double bench_cpu_login = self_cpu_seconds() - bench_cpu_before;
  auto stats = fleet->collect_logins();

  if (options.hold > 0 && common.progress) std::fprintf(stderr, "  holding %zu sessions idle for %.1f s\n",
                                                        static_cast<size_t>(stats.ok), options.hold);
  std::this_thread::sleep_for(std::chrono::duration<double>(options.hold));
  const auto after_hold = run.sample_server();
  const uint64_t dropped = fleet->counters().dropped.load();

  Report r = run.start_report();
  r.add("sessions", "sessions", static_cast<int64_t>(options.sessions));
  add_login_fields(r, stats, seconds);
  r.add("bench_cpu_login_s", "generator CPU s (logins)", bench_cpu_login, 2);
  r.add("hold_s", "idle hold s", options.hold, 1);
  r.add("dropped", "sessions dropped while idle", static_cast<int64_t>(dropped));
  if (before && after_login && after_hold) {
    const double cpu = after_login->cpu_s - before->cpu_s;
    r.add("server_rss_kib_before", "server RSS before KiB", static_cast<int64_t>(before->rss_kib));
    r.add("server_rss_kib_after", "server RSS idle KiB", static_cast<int64_t>(after_hold->rss_kib));
    const double delta = static_cast<double>(after_hold->rss_kib) - static_cast<double>(before->rss_kib);
    r.add("rss_kib_per_session", "server RSS per session KiB", stats.ok ? delta / static_cast<double>(stats.ok) : 0.0, 2);
    r.add("server_cpu_login_s", "server CPU s (logins)", cpu, 2);
    r.add("server_cpu_ms_per_login", "server CPU ms per login", stats.ok ? cpu * 1000 / static_cast<double>(stats.ok) : 0.0, 3);
    r.add("server_cpu_idle_s", "server CPU s (idle hold)", after_hold->cpu_s - after_login->cpu_s, 2);
  }
  RunContext::add_failures(r, stats.failures);
  r.add("tls_session", "TLS session", fleet->tls_description());
  fleet->close_all(15);
  run.emit(r);
  return stats.failed == 0 && stats.ok == options.sessions && dropped == 0 ? 0 : 1;
}

}  // namespace parley::bench
