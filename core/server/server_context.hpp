// What every loop and session of one running server shares. Owned by Server;
// sessions reach it by reference and never outlive it.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/config/config.hpp"
#include "core/loop/worker_loop.hpp"
#include "core/c2s/idle_parser_sweep.hpp"
#include "core/net/lingering_sockets.hpp"
#include "core/modules/archive_holds.hpp"
#include "core/modules/module_pause.hpp"
#include "core/modules/module_tables.hpp"
#include "core/session/session_table.hpp"
#include "xml/element.hpp"
#include "xml/limits.hpp"

namespace parley {

namespace tls {
class ContextStore;
}
namespace http_client {
class Client;
}
namespace storage {
class StoragePool;
class ArchiveStore;
class KeyvalStore;
class MapStore;
class AccountStore;
}

class C2sStream;
class ComponentDirectory;
struct ComponentLinks;
class Connection;
class LoopGauges;
class Listener;
class Session;
class PendingIqs;
class Router;

// A counter one loop writes and any thread reads: a load and a store, no
// read-modify-write (ARCHITECTURE.md: per-loop shards, summed when read, no
// shared atomic written per stanza).
class LoopCounter {
 public:
  // One writer (its loop). The store releases: a reader that sees a count
  // with get_acquire() also sees what the loop did before counting (the
  // router's fences rely on it; on x86 both are plain moves).
  void add(int64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_release); }
  int64_t get() const { return value_.load(std::memory_order_relaxed); }
  int64_t get_acquire() const { return value_.load(std::memory_order_acquire); }

 private:
  std::atomic<int64_t> value_{0};
};

// The core's counters of one loop, on cache lines of their own.
struct alignas(64) LoopMetrics {
  LoopCounter connections_accepted;
  LoopCounter connections_open;  // up at construction, down at destruction (both on the loop)
  LoopCounter stanzas_in;
  LoopCounter stanzas_routed_cross_loop;
  LoopCounter auth_failures;
  LoopCounter stream_errors;
  LoopCounter stanzas_refused_route_full;  // answered resource-constraint (limits.max_route_queue)
  // issue 13 (/metrics): connections of an HTTP listener not upgraded, and
  // upgraded to a WebSocket (the rest of connections_open is TCP c2s); TLS
  // handshakes done and failed; routed stanzas handed to a connection.
  LoopCounter connections_http;
  LoopCounter connections_websocket;
  LoopCounter tls_handshakes;
  LoopCounter tls_failures;
  LoopCounter stanzas_out;
  // BOSH sessions (socketless connections, counted in connections_open too).
  LoopCounter connections_bosh;
};

// Everything one worker loop owns. Touched only on that loop's thread.
struct LoopContext {
  explicit LoopContext(unsigned index);
  ~LoopContext();
  // Sessions held because the archive is behind (ABI 1.11 archive_append_paced): each
  // released when its append is stored, all when the store goes away
  // (core/modules/archive_holds.hpp, host_api_archive.cpp). Before `loop`: its task may
  // still be in the loop's inbox when the loop is destroyed.
  ArchiveHolds archive_holds;
  WorkerLoop loop;
  LoopMetrics metrics;
  // The sessions of this loop; each owns its stream (and connection) while attached.
  std::unordered_map<SessionId, std::unique_ptr<Session>> sessions;
  // Streams whose session was detached, until their connection has closed.
  std::unordered_map<C2sStream*, std::unique_ptr<C2sStream>> orphan_streams;
  // Sockets of connections cut as slow readers, kept open a while (limits.slow_reader_linger).
  LingeringSockets lingering;
  // Online streams holding an expat parser, freed once quiet (limits.idle_parser_release).
  IdleParserSweep parser_sweep;
  void watch_parser(SessionId id, unsigned period_s);
  std::vector<std::unique_ptr<Listener>> listeners;
  uint64_t next_serial = 1;
  // External components (XEP-0114) connected to this loop: created with the
  // first one (core/component/component_directory.hpp).
  std::unique_ptr<ComponentLinks> components;
  // The HTTP client modules' requests run on (issue 14, http_request): made
  // with this loop's first request (core/http_client).
  std::unique_ptr<http_client::Client> http_client;

  // This loop's snapshot of what modules registered; swapped only here.
  std::shared_ptr<const ModuleTables> modules = std::make_shared<ModuleTables>();
  // The routes that leave this loop for another worker loop, each bounded by
  // limits.max_route_queue: stanzas this loop posted to loop i, and stanzas
  // from loop i it took in. Each array is written by this loop only; a
  // route's queue is routed_to[t] of the source minus received_from[s] of the
  // target (ARCHITECTURE.md: a queue per route, its length a metric, no
  // shared atomic written per stanza). A stanza is counted received once the
  // target has handled it (delivered, or routed on from there): a route whose
  // counts agree holds nothing of the source's any more. Empty until
  // size_routes().
  std::unique_ptr<LoopCounter[]> routed_to;
  std::unique_ptr<LoopCounter[]> received_from;
  void size_routes(size_t loops) {
    routed_to = std::make_unique<LoopCounter[]>(loops);
    received_from = std::make_unique<LoopCounter[]>(loops);
  }

  // Iqs modules sent (send_iq) and wait on from this loop (ABI 1.2).
  std::unique_ptr<PendingIqs> pending_iqs;

  // Its queue lengths sampled each second, decayed averages (/metrics, issue 13).
  std::unique_ptr<LoopGauges> gauges;

  // While a module is swapped (hot reload) every event that would enter
  // module code on this loop waits here, in order (module_pause.hpp).
  ModulePause module_pause;

  // Sessions over their byte rate wait here for their read to resume: one
  // timer per loop, not one per session.
  void throttle(SessionId id, uint64_t resume_at_ms);
  std::vector<std::pair<uint64_t, SessionId>> throttled;  // (resume at, session)
  uv_timer_t throttle_timer{};
  bool throttle_timer_ready = false;


  // The LoopContext of the calling thread, or nullptr off the worker loops.
  static LoopContext* current();
  void make_current();

  SessionId new_session_id() { return make_session_id(loop.index(), next_serial++); }
  Session* find(SessionId id) {
    auto it = sessions.find(id);
    return it == sessions.end() ? nullptr : it->second.get();
  }
  // The attached stream of a session of this loop, and its connection.
  C2sStream* stream_of(SessionId id);
  Connection* connection_of(SessionId id);
};

// Connections per source address, across loops. Touched on connect and close
// only, never on the stanza path.
class ConnectionCounter {
 public:
  bool try_add(const std::string& ip, size_t limit);
  void remove(const std::string& ip);

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, size_t> counts_;
};

// Failed authentications per source address in a sliding window, across
// loops (a password-guessing client opens a new stream per few guesses).
// Touched on SASL failures and SASL starts only.
class AuthFailureTracker {
 public:
  // Records a failure at `now_ms`; returns the failures of `ip` in the window.
  unsigned record(const std::string& ip, uint64_t now_ms, uint64_t window_ms);
  // Failures of `ip` in the window ending at `now_ms`.
  unsigned count(const std::string& ip, uint64_t now_ms, uint64_t window_ms);

 private:
  struct Entry {
    uint64_t window_start_ms = 0;
    unsigned failures = 0;
  };
  void prune(uint64_t now_ms, uint64_t window_ms);
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  uint64_t pruned_at_ms_ = 0;
};

// Accounts known to exist (RFC 6121 §8.5.1 checks skip the database for
// them). Forgotten when removed; cleared whole when full, which only costs
// checks again.
class KnownAccounts {
 public:
  bool contains(const std::string& bare) const;
  void add(const std::string& bare);
  void remove(const std::string& bare);

 private:
  static constexpr size_t kMaxEntries = 1 << 20;
  mutable std::mutex mutex_;
  std::unordered_set<std::string> accounts_;
};


class ServerContext {
 public:
  explicit ServerContext(const config::Config& config);

  const config::Config& config;
  xml::Limits xml_limits;
  std::set<std::string, std::less<>> hosts;  // heterogeneous: a lookup by string_view allocates nothing
  storage::StoragePool* storage = nullptr;
  storage::ArchiveStore* archive = nullptr;  // the archive store (module ABI archive_*)
  storage::KeyvalStore* keyval = nullptr;    // the keyval store (module ABI keyval_*, issue 11)
  storage::MapStore* map = nullptr;          // the map store (module ABI map_*): the keyval store's thread
  storage::AccountStore* accounts = nullptr;  // accounts and credentials (issue 11): never SQL here
  // The server's persistent secret (data_dir/sasl_secret): what modules' keys derive from
  // (ABI 1.9 derive_key). Set before the modules start, read-only after.
  std::string server_secret;
  Router* router = nullptr;
  // The configured external components (XEP-0114) and where each is
  // connected: a route of the route table. Null without component listeners.
  std::shared_ptr<ComponentDirectory> components;
  SessionTable sessions;
  ConnectionCounter connections;
  ConnectionCounter http_connections;  // limits.http_max_connections_per_ip (issue 13)
  ConnectionCounter bosh_sessions;     // limits.bosh_max_sessions_per_ip (issue 13, BOSH)
  AuthFailureTracker auth_failures;
  KnownAccounts known_accounts;
  std::vector<std::unique_ptr<LoopContext>> loops;
  std::atomic<bool> shutting_down{false};
  // issue 17 (module ABI server_stop): asks for a graceful shutdown; set by
  // Server before the modules start, callable from any thread.
  std::function<void()> request_stop;

  // A core counter summed over the loops (any thread).
  int64_t total(LoopCounter LoopMetrics::*counter) const {
    int64_t sum = 0;
    for (const auto& loop : loops) sum += (loop->metrics.*counter).get();
    return sum;
  }

  // Stanzas waiting in the route from any loop to loop `target`.
  int64_t route_queue(unsigned target) const {
    int64_t sum = 0;
    const LoopContext& to = *loops[target];
    if (!to.received_from) return 0;
    for (size_t s = 0; s < loops.size(); ++s)
      if (loops[s]->routed_to) sum += loops[s]->routed_to[target].get() - to.received_from[s].get();
    return sum;
  }

  bool is_local_host(std::string_view domain) const { return hosts.find(domain) != hosts.end(); }

  // The TLS contexts are swapped on SIGHUP; a session takes a reference when it
  // starts TLS and keeps its SSL_CTX alive through OpenSSL's own ref-count.
  std::shared_ptr<tls::ContextStore> tls_store() const;
  void set_tls_store(std::shared_ptr<tls::ContextStore> store);

 private:
  mutable std::mutex tls_mutex_;
  std::shared_ptr<tls::ContextStore> tls_store_;
};

}  // namespace parley
