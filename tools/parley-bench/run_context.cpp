#include "run_context.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <thread>

#include "core/tls/client_context.hpp"

namespace parley::bench {

Result<std::unique_ptr<RunContext>, std::string> RunContext::create(const CommonOptions& options,
                                                                    std::string scenario) {
  std::unique_ptr<RunContext> ctx(new RunContext(options, std::move(scenario)));
  ctx->start_cpu_ = self_cpu_seconds();
  ctx->threads_ = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());

  Target& t = ctx->target_;
  t.domain = options.domain;
  t.server.sin_family = AF_INET;
  t.server.sin_port = htons(options.port);
  if (inet_pton(AF_INET, options.address.c_str(), &t.server.sin_addr) != 1)
    return unexpected("--address: not an IPv4 address: " + options.address);
  if (options.tls == "starttls") t.tls = TlsMode::starttls;
  else if (options.tls == "direct") t.tls = TlsMode::direct;
  else if (options.tls == "none") t.tls = TlsMode::none;
  else return unexpected("--tls: starttls, direct or none, not " + options.tls);
  if (options.mechanism == "SCRAM-SHA-256") t.mechanism = Mechanism::scram_sha256;
  else if (options.mechanism == "SCRAM-SHA-1") t.mechanism = Mechanism::scram_sha1;
  else if (options.mechanism == "PLAIN") t.mechanism = Mechanism::plain;
  else return unexpected("--mechanism: SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN, not " + options.mechanism);
  t.login_timeout_s = options.login_timeout;
  t.stream_management = options.stream_management;
  t.csi_inactive = options.csi_inactive;

  tls::ClientOptions tls_options;
  tls_options.ca_file = options.ca_file;
  tls_options.alpn_xmpp = t.tls == TlsMode::direct;
  auto ssl_ctx = tls::make_client_context(tls_options);
  if (!ssl_ctx) return unexpected("TLS: " + ssl_ctx.error());
  ctx->ssl_ctx_ = std::move(*ssl_ctx);
  t.ssl_ctx = ctx->ssl_ctx_.get();
  t.scram_cache = &ctx->cache_;
  if (!options.scram_cache.empty()) {
    if (auto loaded = ctx->cache_.load(options.scram_cache); !loaded) return unexpected(loaded.error());
  }
  return ctx;
}

RunContext::~RunContext() {
  if (!options_.scram_cache.empty()) {
    if (auto saved = cache_.save(options_.scram_cache); !saved)
      std::fprintf(stderr, "parley-bench: %s\n", saved.error().c_str());
  }
}

std::vector<Account> RunContext::accounts(size_t first, size_t n) const {
  std::vector<Account> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back({options_.user_prefix + std::to_string(first + i), options_.password});
  return out;
}

std::unique_ptr<Fleet> RunContext::make_fleet(size_t sessions) const {
  unsigned sources = options_.source_ips;
  // Each source address has the whole ephemeral port range (about 28,000) towards the server's port.
  if (sources == 0) sources = static_cast<unsigned>(sessions / 20000 + 1);
  return std::make_unique<Fleet>(target_, threads_, loopback_sources(sources), options_.resource);
}

std::optional<ProcSample> RunContext::sample_server() const {
  if (options_.server_pid <= 0) return std::nullopt;
  auto sample = sample_process(options_.server_pid);
  if (!sample) {
    std::fprintf(stderr, "parley-bench: %s\n", sample.error().c_str());
    return std::nullopt;
  }
  return *sample;
}

Report RunContext::start_report() const {
  Report r;
  r.add("scenario", "scenario", scenario_);
  if (!options_.label.empty()) r.add("server", "server", options_.label);
  if (!options_.tag.empty()) r.add("tag", "tag", options_.tag);
  r.add("tls", "TLS", options_.tls);
  r.add("mechanism", "SASL mechanism", options_.mechanism);
  r.add("threads", "generator threads", static_cast<int64_t>(threads_));
  return r;
}

void RunContext::emit(Report& report) const {
  report.add("bench_cpu_s", "generator CPU s", self_cpu_seconds() - start_cpu_, 2);
  std::printf("parley-bench %s\n", scenario_.c_str());
  report.print_table(stdout);
  const std::string line = report.json();
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (!options_.json_file.empty()) {
    std::ofstream out(options_.json_file, std::ios::app);
    out << line << '\n';
  }
}

void RunContext::add_failures(Report& report, const std::map<std::string, uint64_t>& failures) {
  std::vector<std::pair<uint64_t, std::string>> sorted;
  for (const auto& [why, n] : failures) sorted.emplace_back(n, why);
  std::sort(sorted.rbegin(), sorted.rend());
  std::string text;
  for (size_t i = 0; i < sorted.size() && i < 3; ++i) {
    if (!text.empty()) text += "; ";
    text += std::to_string(sorted[i].first) + "x " + sorted[i].second;
  }
  if (!text.empty()) {
    report.add("failures", "failures", text);
    std::fprintf(stderr, "parley-bench: failures: %s\n", text.c_str());
  }
}

void add_login_fields(Report& r, Fleet::LoginStats& stats, double seconds) {
  r.add("logins_ok", "logins ok", static_cast<int64_t>(stats.ok));
  r.add("logins_failed", "logins failed", static_cast<int64_t>(stats.failed));
  r.add("login_seconds", "login phase s", seconds, 2);
  r.add("logins_per_s", "logins/s", seconds > 0 ? static_cast<double>(stats.ok) / seconds : 0.0, 1);
  r.add("login_p50_ms", "login p50 ms", stats.latencies.percentile_ms(50), 2);
  r.add("login_p99_ms", "login p99 ms", stats.latencies.percentile_ms(99), 2);
  r.add("login_p999_ms", "login p99.9 ms", stats.latencies.percentile_ms(99.9), 2);
  r.add("login_max_ms", "login max ms", stats.latencies.max_ms(), 2);
}

}  // namespace parley::bench
