// register: creates the bench accounts, in-band (XEP-0077) or, for Parley, with parleyctl.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <set>

#include "run_context.hpp"
#include "scenarios.hpp"

extern char** environ;

namespace parley::bench {

namespace {

// The host's accounts, as `parleyctl list-users` prints them (one per line).
std::set<std::string> existing_parley_users(const CommonOptions& common, const RegisterOptions& options) {
  std::set<std::string> users;
  const std::string command = "'" + options.parleyctl + "' --config '" + options.parley_config + "' list-users '" +
                              common.domain + "' 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return users;
  char line[1024];
  while (std::fgets(line, sizeof line, pipe)) {
    std::string user(line);
    while (!user.empty() && (user.back() == '\n' || user.back() == '\r')) user.pop_back();
    if (const size_t at = user.find('@'); at != std::string::npos) user.resize(at);
    users.insert(user);
  }
  pclose(pipe);
  return users;
}

pid_t spawn_parleyctl(const RegisterOptions& options, const std::string& domain, const Account& account) {
  std::vector<std::string> args = {options.parleyctl, "--config", options.parley_config, "register",
                                   account.user, domain, account.password};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  if (posix_spawn(&pid, options.parleyctl.c_str(), &actions, nullptr, argv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

int register_with_parleyctl(RunContext& run, const CommonOptions& common, const RegisterOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const auto existing = existing_parley_users(common, options);
  const auto accounts = run.accounts(common.first, options.users);
  uint64_t created = 0, existed = 0, failed = 0;
  std::set<pid_t> running;
  auto reap_one = [&] {
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid <= 0 || !running.erase(pid)) return;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ++created;
    else ++failed;
  };
  for (size_t i = 0; i < accounts.size(); ++i) {
    if (existing.count(accounts[i].user)) {
      ++existed;
      continue;
    }
    while (running.size() >= std::max(1u, options.jobs)) reap_one();
    pid_t pid = spawn_parleyctl(options, common.domain, accounts[i]);
    if (pid < 0) {
      ++failed;
      continue;
    }
    running.insert(pid);
    if (common.progress && i % 100 == 0) std::fprintf(stderr, "\r  registering %zu/%zu", i, accounts.size());
  }
  while (!running.empty()) reap_one();
  if (common.progress) std::fprintf(stderr, "\r  registered %zu accounts       \n", accounts.size());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Report r = run.start_report();
  r.add("method", "method", std::string("parleyctl"));
  r.add("users", "users", static_cast<int64_t>(options.users));
  r.add("created", "created", static_cast<int64_t>(created));
  r.add("existed", "already there", static_cast<int64_t>(existed));
  r.add("failed", "failed", static_cast<int64_t>(failed));
  r.add("seconds", "seconds", seconds, 2);
  run.emit(r);
  return failed == 0 ? 0 : 1;
}

}  // namespace

int run_register(const CommonOptions& common, const RegisterOptions& options) {
  auto ctx = RunContext::create(common, "register");
  if (!ctx) {
    std::fprintf(stderr, "parley-bench: %s\n", ctx.error().c_str());
    return 2;
  }
  RunContext& run = **ctx;
  if (!options.parleyctl.empty()) {
    if (options.parley_config.empty()) {
      std::fprintf(stderr, "parley-bench: --parleyctl needs --parley-config\n");
      return 2;
    }
    return register_with_parleyctl(run, common, options);
  }

  std::atomic<uint64_t> created{0}, existed{0};
  auto fleet = run.make_fleet(options.users);
  fleet->add_clients(run.accounts(common.first, options.users), [](size_t i) { return static_cast<unsigned>(i); });
  fleet->set_hooks({.on_online =
                        [&](XmppClient& c) {
                          if (c.registration() == XmppClient::Registration::created) created.fetch_add(1);
                          else existed.fetch_add(1);
                          c.close();
                        },
                    .on_stanza = {},
                    .on_closed = {}});
  std::vector<size_t> all(options.users);
  std::iota(all.begin(), all.end(), size_t{0});
  const double seconds = fleet->login(all, XmppClient::Mode::register_account, common.login_rate,
                                      common.login_concurrency, 1e9, common.progress);
  auto stats = fleet->collect_logins();
  fleet->close_all(15);
  Report r = run.start_report();
  r.add("method", "method", std::string("XEP-0077"));
  r.add("users", "users", static_cast<int64_t>(options.users));
  r.add("created", "created", static_cast<int64_t>(created.load()));
  r.add("existed", "already there", static_cast<int64_t>(existed.load()));
  r.add("failed", "failed", static_cast<int64_t>(stats.failed));
  r.add("seconds", "seconds", seconds, 2);
  RunContext::add_failures(r, stats.failures);
  fleet.reset();
  run.emit(r);
  return stats.failed == 0 ? 0 : 1;
}

}  // namespace parley::bench
