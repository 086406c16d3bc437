// tools/parley-bench/run_context.hpp - what every scenario sets up first: the target, the TLS client
// context, the salted-password cache, the accounts, the server's /proc samples, and the report's
// common fields and its output.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tls/openssl_ptr.hpp"
#include "fleet.hpp"
#include "parley/result.hpp"
#include "proc_stats.hpp"
#include "report.hpp"
#include "scenarios.hpp"
#include "scram_client.hpp"
#include "xmpp_client.hpp"

namespace parley::bench {

class RunContext {
 public:
  static Result<std::unique_ptr<RunContext>, std::string> create(const CommonOptions& options, std::string scenario);
  ~RunContext();  // saves the salted-password cache

  const CommonOptions& options() const { return options_; }
  const Target& target() const { return target_; }
  unsigned threads() const { return threads_; }

  // Accounts user_prefix + (first + i), i < n.
  std::vector<Account> accounts(size_t first, size_t n) const;
  // A fleet with the run's threads and source addresses for `sessions` clients in all.
  std::unique_ptr<Fleet> make_fleet(size_t sessions) const;

  // The server's cost now; nullopt without --server-pid (or if it is gone: a warning is printed).
  std::optional<ProcSample> sample_server() const;

  // A report holding the common fields; the scenario appends its own.
  Report start_report() const;
  // Appends the generator's own CPU, prints the table (stdout), the JSON line (stdout and --json).
  void emit(Report& report) const;

  // Adds the failure reasons (the most frequent few) to the report and prints them to stderr.
  static void add_failures(Report& report, const std::map<std::string, uint64_t>& failures);

 private:
  RunContext(const CommonOptions& options, std::string scenario) : options_(options), scenario_(std::move(scenario)) {}

  CommonOptions options_;
  std::string scenario_;
  unsigned threads_ = 1;
  Target target_;
  tls::SslCtxPtr ssl_ctx_;
  SaltedPasswordCache cache_;
  double start_cpu_ = 0;
};

// The login fields of a report: counts, logins/s over `seconds`, latency percentiles.
void add_login_fields(Report& report, Fleet::LoginStats& stats, double seconds);

}  // namespace parley::bench
