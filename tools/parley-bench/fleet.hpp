// tools/parley-bench/fleet.hpp - many clients spread over the worker loops, logged in at a controlled
// rate. Every scenario is built on one.
//
// Each worker has a Shard: the clients that live on that worker, a launcher that starts logins at the
// shard's share of the rate with at most its share of logins in flight, and the bookkeeping of the
// logins (latencies, failures). The scenario adds its own behaviour through Hooks, which run on the
// worker's thread after the shard's bookkeeping. The main thread starts things with post() and
// watches the atomic counters.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "latency.hpp"
#include "worker.hpp"
#include "xmpp_client.hpp"

namespace parley::bench {

struct Account {
  std::string user;
  std::string password;
};

class Fleet {
 public:
  struct Hooks {
    std::function<void(XmppClient&)> on_online;
    std::function<void(XmppClient&, const xml::Element&)> on_stanza;
    std::function<void(XmppClient&)> on_closed;
  };

  struct Counters {
    std::atomic<uint64_t> logins_ok{0};
    std::atomic<uint64_t> logins_failed{0};
    std::atomic<uint64_t> dropped{0};  // online sessions the server cut (or that failed later)
    std::atomic<uint64_t> closed{0};
  };

  // What the logins since the last collect_logins() did.
  struct LoginStats {
    uint64_t ok = 0;
    uint64_t failed = 0;
    uint64_t dropped = 0;
    Latencies latencies;
    std::map<std::string, uint64_t> failures;  // reason -> count
  };

  // `sources` (may be empty: no explicit bind) are the 127.0.0.X addresses to spread clients over.
  Fleet(const Target& target, unsigned threads, std::vector<sockaddr_in> sources, std::string resource);
  ~Fleet();  // closes every handle, stops the workers
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Main thread, before any login: one client per account, client i on worker worker_of(i).
  void add_clients(const std::vector<Account>& accounts, const std::function<unsigned(size_t)>& worker_of);
  void set_hooks(Hooks hooks) { hooks_ = std::move(hooks); }

  size_t size() const { return clients_.size(); }
  XmppClient& client(size_t i) { return *clients_[i]; }
  const Account& account(size_t i) const { return accounts_[i]; }
  unsigned threads() const { return static_cast<unsigned>(workers_.size()); }
  Worker& worker(unsigned w) { return *workers_[w]; }
  const std::vector<size_t>& members(unsigned w) const { return members_[w]; }
  Counters& counters() { return counters_; }
  const Target& target() const { return target_; }

  // Main thread: logs in (or registers) the clients in `indices` at `rate` per second in total (0: no
  // pacing) with at most `concurrency` in flight in total, then waits until each is online or failed,
  // or `timeout_s` passed. Prints progress to stderr when `progress`. Returns the seconds it took.
  double login(const std::vector<size_t>& indices, XmppClient::Mode mode, double rate, unsigned concurrency,
               double timeout_s, bool progress);
  // Worker thread: queue one more login on the client's shard (churn).
  void enqueue_login(XmppClient& client);
  // Main thread: sets the pacing of each shard for enqueue_login() (rate and concurrency in total).
  void set_pacing(XmppClient::Mode mode, double rate, unsigned concurrency);

  // Main thread: merges and resets the login bookkeeping of every shard.
  LoginStats collect_logins();

  // Main thread: the TLS protocol and cipher of some online client ("" if none is online).
  std::string tls_description();

  // Main thread: closes every client gracefully and waits until all sockets are closed (or timeout).
  void close_all(double timeout_s);

  // Worker thread: the client's source address, or nullptr.
  const sockaddr_in* source_for(size_t index) const;

 private:
  class Shard;
  friend class Shard;

  const Target& target_;
  std::string resource_;
  std::vector<sockaddr_in> sources_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::vector<size_t>> members_;
  std::vector<Account> accounts_;
  std::vector<std::unique_ptr<XmppClient>> clients_;
  std::vector<uint8_t> pending_;  // 1 while the client's login is in flight; touched by its worker only
  Hooks hooks_;
  Counters counters_;
};

// Source addresses 127.0.0.1 .. 127.0.0.count, at most 254 (none when count <= 1: the kernel picks).
std::vector<sockaddr_in> loopback_sources(unsigned count);

}  // namespace parley::bench
