// mod_blocking: XEP-0191 Blocking Command.
//
//   mod_blocking.cpp       the module: options, state across a reload, declarations
//   blocking_commands.cpp  the urn:xmpp:blocking iq (blocklist, block, unblock) and pushes
//   blocking_filter.cpp    enforcement: the hooks on stanzas from and to blocked addresses
//   blocking_cache.cpp     the in-memory blocklists the (synchronous) hooks consult
//   blocklist.cpp, blocking_jid.cpp  the pure logic (unit-tested)
//
// Hooks are synchronous and storage is not, so every hook decides from a cache
// of blocklists. A list is loaded when one of its user's sessions binds (the
// session's input is held until then), and on demand for a stanza to a user
// whose list is not cached: the stanza is held, the list loaded, and a copy of
// the stanza routed again, which then finds the list. Lists of users without
// sessions are evicted after `cache_idle_seconds`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "blocking_jid.hpp"
#include "blocklist.hpp"
#include "parley/module.hpp"

namespace mod_blocking {

inline constexpr const char* ns_blocking = "urn:xmpp:blocking";
inline constexpr const char* ns_blocking_errors = "urn:xmpp:blocking:errors";
inline constexpr const char* ns_client = "jabber:client";
inline constexpr const char* ns_stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";

class ModBlocking : public parley::Module {
 public:
  parley::Result<void, std::string> start() override;
  void stop() override;
  parley::Result<std::string, std::string> save_state() override;
  parley::Result<void, std::string> restore_state(std::string_view bytes) override;

  // urn:xmpp:blocking, to the user's own account.
  void on_iq(const parley::IqRequest& request);

  // Outbound: the user's own stanzas to a blocked address are refused.
  parley::Outcome on_stanza_in(const parley::Event& event);
  // Inbound: stanzas from a blocked address are not delivered (message,
  // presence and iq to a local user, and messages about to be stored offline).
  parley::Outcome on_to_local(const parley::Event& event);
  void on_session_bound(const parley::Event& event);
  void on_session_closed(const parley::Event& event);
  void on_user_removed(const parley::Event& event);

 private:
  // Runs once the list is loaded (true) or could not be (false).
  using Ready = std::function<void(bool loaded)>;

  struct Entry {
    bool loaded = false;
    Blocklist list;
    // Loads in flight, one per loop thread, each with the continuations that
    // must run on that loop (a session's hold is released on its own loop).
    std::map<std::thread::id, std::vector<Ready>> waiting;
    int pending_writes = 0;
    std::chrono::steady_clock::time_point last_use;
  };

  // --- cache (blocking_cache.cpp) ---
  // `fn` runs now if `user`'s list is cached, else on this loop after a load.
  void with_list(const std::string& user, Ready fn);
  void start_load(const std::string& user);
  // nullopt: not cached. Otherwise whether `user`'s list blocks `address`.
  std::optional<bool> cached_blocks(const std::string& user, const BlockJid& address);
  bool is_cached(const std::string& user);
  // After a failed write the cache may say what storage does not: forget it.
  void forget_list(const std::string& user);
  void arm_eviction_if_offline(const std::string& user, parley_session_id closing = 0);
  void arm_eviction();
  void sweep();

  // --- commands (blocking_commands.cpp) ---
  void send_blocklist(const parley::ElementView& iq, const std::string& user);
  void block(parley::Element iq, const std::string& user, std::vector<std::string> items);
  void unblock(parley::Element iq, const std::string& user, std::vector<std::string> items);
  // One storage statement per chunk of items; `done` runs after the last.
  void write_items(const std::string& sql_head, const std::string& user, const std::vector<std::string>& items,
                   std::function<void(std::string error)> done);
  void finish_write(const std::string& user);
  void push(const std::string& user, const char* command, const std::vector<std::string>& items);
  void send_unavailable(const std::string& user, const std::vector<std::string>& added);
  void probe_for(const std::string& user, const std::vector<std::string>& removed);

  // --- enforcement (blocking_filter.cpp) ---
  parley::Outcome refuse_inbound(parley::ElementRef stanza);
  void refuse_outbound(parley::ElementView stanza, parley_session_id session);
  void reroute(parley::Element stanza, std::vector<std::string> loaded);
  void fail_held(parley::Element stanza);

  std::string domain_;
  std::chrono::milliseconds idle_{std::chrono::seconds(120)};
  std::size_t max_items_ = 1000;
  std::size_t max_cached_ = 10000;

  std::mutex mu_;
  std::unordered_map<std::string, Entry> lists_;              // by localpart
  std::unordered_set<parley_session_id> interested_;          // sessions that asked for the blocklist
  std::atomic<bool> eviction_armed_{false};
  std::atomic<uint64_t> push_ids_{0};
};

}  // namespace mod_blocking
