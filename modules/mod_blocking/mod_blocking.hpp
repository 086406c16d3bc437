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
//
// Storage: the map store (issue 11): one map per user (the localpart), an item per
// blocked JID (its key; the value is empty), in the order they were blocked.
//
// Threads: no lock anywhere. Each worker loop keeps its own cache
// (parley::PerLoop), read and written only by that loop, so the stanza path
// is a hash lookup in memory no other thread touches. A user's blocklist
// commands run on one owning loop (a hash of the user): it checks them
// against its copy, changes it, writes storage, and once the write committed
// posts the change to every other loop, each of which applies it to its copy
// (if it has one) and posts an acknowledgement back. The answer to the
// command goes out when every loop has acknowledged: once a client sees the
// result, a stanza handled on any loop is judged by the new list. Changes
// reach each loop in the owner's order (posts from one loop to another are
// FIFO); a change that comes while that loop's load is in flight is replayed
// on the loaded rows (changes are set operations and were committed before
// they were posted, so a replay over rows that include them is harmless).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "blocking_jid.hpp"
#include "blocklist.hpp"
#include "parley/module.hpp"
#include "parley/sdk/old_tables.hpp"

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
  // The last check, on what is written to a session whose user blocks anyone:
  // what was stored before the block (offline messages, pending subscription
  // requests) reaches the session without passing on_to_local again.
  parley::Outcome on_stanza_out(const parley::Event& event);
  void on_session_bound(const parley::Event& event);
  void on_session_closed(const parley::Event& event);
  void on_user_removed(const parley::Event& event);
  // Answers to the roster questions of a block (events 27-28, send_unavailable).
  void on_roster_answer(const parley::Event& event) { asks_.on_answer(event); }
  // XEP-0227 export and import of the blocklist (blocking_export.cpp).
  void on_account_export(const parley::Event& event);
  void on_account_import(const parley::Event& event);

 private:
  // Runs once the list is loaded (true) or could not be (false).
  using Ready = std::function<void(bool loaded)>;

  // A change to a list, as the owning loop made it and every loop applies it.
  struct Change {
    enum class Kind { add, remove, clear, forget } kind;
    std::vector<std::string> items;
  };

  // What a list being loaded collects; only while a load is in flight.
  struct Loading {
    std::vector<Ready> waiting;     // continuations on this loop, run when the load answers
    std::vector<Change> missed;     // changes that came while loading, replayed on the rows
  };

  // One user's list in one loop's cache: one per online user on the loops
  // that route to it, so kept to 32 bytes (issue 18, idle memory); what a
  // load needs is allocated for the load alone.
  struct Entry {
    bool loaded = false;
    bool loading = false;           // a load of this loop is in flight
    bool reload = false;            // forgotten while loading: that answer is stale, load again
    int pending_writes = 0;         // the owning loop's writes not committed yet
    Blocklist list;
    std::unique_ptr<Loading> load;  // null: nothing waits, nothing missed
    std::chrono::steady_clock::time_point last_use;

    Loading& loading_state() {
      if (!load) load = std::make_unique<Loading>();
      return *load;
    }
    bool nothing_waits() const { return !load || load->waiting.empty(); }
    // The continuations that waited; the load's state goes with them.
    std::vector<Ready> take_waiting() {
      std::vector<Ready> ready;
      if (load) ready = std::move(load->waiting);
      load.reset();
      return ready;
    }
  };
  static_assert(sizeof(Entry) <= 32, "one per online user and loop: see issue 18");

  // Looked up by a string_view (the event's user) without making a string of it.
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  // Everything one worker loop keeps; only that loop touches it.
  struct LoopState {
    std::unordered_map<std::string, Entry, NameHash, std::equal_to<>> lists;  // by localpart
    std::unordered_set<parley_session_id> interested;     // sessions of this loop that asked for the list
    bool eviction_armed = false;
    uint64_t push_ids = 0;  // pushes sent by this loop (ids carry the loop's number)
  };

  // --- cache (blocking_cache.cpp) ---
  LoopState& here() { return loops_.here(); }
  // The loop that runs `user`'s commands.
  uint32_t owner_of(const std::string& user) const;
  // `fn` runs now if `user`'s list is cached on this loop, else on this loop after a load.
  void with_list(const std::string& user, Ready fn);
  void start_load(const std::string& user);
  void load(const std::string& user);  // start_load's, once the old rows are moved
  // The user's list is cached here and empty: nothing to check (the common case, decided
  // before any address is split).
  bool blocks_nothing(std::string_view user);
  // nullopt: not cached here. Otherwise whether `user`'s list blocks `address`.
  std::optional<bool> cached_blocks(const std::string& user, const parley::Jid& address);
  bool is_cached(const std::string& user);
  // Turns on_stanza_out on for the user's sessions on this loop once this loop's
  // copy of the list blocks anything (a per-session filter: sessions of users who
  // block no one are written without it). It stays on until the session ends.
  void filter_sessions(const std::string& user);
  // Applies a change made by the owning loop to this loop's copy.
  void apply(const std::string& user, const Change& change);
  // Posts `change` to every loop but this one; `done` runs here once all applied it.
  void publish(const std::string& user, Change change, std::function<void()> done);
  // After a failed write the cache may say what storage does not: every loop forgets it.
  void forget_everywhere(const std::string& user);
  void arm_eviction_if_offline(const std::string& user, parley_session_id closing = 0);
  void arm_eviction();
  void sweep();

  // --- commands (blocking_commands.cpp) ---
  void send_blocklist(const parley::ElementView& iq, const std::string& user);
  // On the owning loop, with the list loaded there.
  void block(parley::Element iq, const std::string& user, std::vector<std::string> items);
  void unblock(parley::Element iq, const std::string& user, std::vector<std::string> items);
  // The map store's answer to a change: `done` gets the error ("" if stored).
  parley::Host::MapFn written(std::function<void(std::string error)> done);
  void written_refused(const std::string& user, const std::shared_ptr<parley::Element>& held);
  void finish_write(const std::string& user);
  void push(const std::string& user, const char* command, const std::vector<std::string>& items);
  // Unavailable presence to the subscribed contacts `added` covers (a roster question
  // when the user has an available resource), then `then`, on this loop.
  void send_unavailable(const std::string& user, const std::vector<std::string>& added, std::function<void()> then);
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

  parley::PerLoop<LoopState> loops_;
  parley::AccountQuery asks_;  // the user's subscriptions, of whichever module keeps rosters
  // The rows of mod_blocking_items (the table before the map store), moved once.
  parley::OldTables move_;
};

}  // namespace mod_blocking
