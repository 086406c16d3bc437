// mod_offline: offline messages (XEP-0160) with delayed-delivery stamps (XEP-0203),
// kept in the map store (issue 11: SQLite or PostgreSQL, as `storage: backend`).
//
//   mod_offline.cpp        the module: options, start/stop, declarations, presence
//   offline_admit.cpp      a message for an offline user: the rules, the quota, the
//                          sender's share, immediate or write-back storing
//   offline_delivery.cpp   delivery at login, paced by what the connection wrote
//   offline_hold.cpp       live messages that arrive during that delivery wait behind it
//   offline_account.cpp    account removal, XEP-0227 export and import
//   offline_rules.*        what is stored (pure), offline_item.* how (pure)
//   offline_export.*       parsing an import file's <offline-messages/>
//
// Threads. Every user has an owner loop (a hash of the localpart). Its state there
// (the sender counts of its queue, write-back's held messages, whether a delivery
// runs) is read and written only by that loop: the loop an offline message arrives on
// posts it there, and so does the loop of a session that becomes available. No lock.
// The store keeps one user's operations in the order they were made; the owner loop
// makes the puts, the session's loop the reads and removals of a delivery, which the
// owner starts only after the puts it issued, so a delivery sees every message
// acknowledged before it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "parley/module.hpp"
#include "parley/sdk/old_tables.hpp"

namespace mod_offline {

constexpr int64_t default_max_messages = 1000;
constexpr int64_t default_window_seconds = 60;
constexpr int64_t default_max_bytes = 64ll * 1024 * 1024;
constexpr int64_t default_batch_messages = 32;
constexpr int64_t default_batch_bytes = 64 * 1024;
constexpr int64_t default_hold_seconds = 10;
constexpr int64_t default_hold_messages = 256;
constexpr int64_t default_hold_bytes = 1024 * 1024;
// Users whose counts an owner loop remembers while nothing is pending for them.
constexpr std::size_t max_idle_users = 10000;

// A message on its way into the queue (or held by write-back).
struct Incoming {
  std::string key;
  std::string sender;  // bare JID (max_per_sender)
  std::string xml;     // as delivered, <delay/> included
  int64_t arrived_ms = 0;
  parley_session_id held_session = 0;  // the sender's session, held until stored (immediate)
  std::shared_ptr<parley::Element> original;  // for the bounce
};

// A user's state on its owner loop.
struct UserState {
  bool loaded = false;   // senders/total reflect the store (as of the load, plus puts since)
  bool loading = false;
  bool stale = false;    // items were removed or added elsewhere since (a delivery, an import, a failed
                         // read): read the counts again once no put is in flight
  int64_t total = 0;     // items stored or being put
  std::unordered_map<std::string, int64_t> senders;  // of them, per sender
  int puts_in_flight = 0;
  std::deque<Incoming> waiting;  // arrived while loading
  std::deque<Incoming> held;     // write-back: not in the store yet
  bool delivering = false;
  bool redeliver = false;
  parley_session_id redeliver_to = 0;
  bool holding = false;  // a session of the user holds live messages until settle() (offline_hold.cpp)
};

// Live messages for a session whose offline delivery has not ended (offline_hold.cpp),
// on the session's loop: written after the stored ones, in arrival order.
struct Hold {
  std::vector<parley::OutBytes> stanzas;
  std::size_t bytes = 0;
  uint64_t timer = 0;  // the hold's time bound
};

struct LoopState {
  std::unordered_map<std::string, UserState> users;
  std::unordered_map<parley_session_id, Hold> holds;  // sessions of this loop
  bool own_send = false;  // a delivery's send is passing the outgoing filters
  std::size_t held_bytes = 0;
  std::size_t held_count = 0;
  uint64_t timer = 0;  // the write-back flush timer, 0 when none
  uint32_t counter = 0;  // for item keys
  bool stopping = false;  // SERVER_STOPPING ran on this loop: admit_at_stop from then on
};

// A session's slot: whether its last presence was available with a
// non-negative priority (XEP-0160's trigger), as which of these two the slot
// points at (nothing allocated; the host frees nothing).
inline constexpr char kEligible = 1;
inline constexpr char kNotEligible = 0;

class ModOffline : public parley::Module {
 public:
  parley::Result<void, std::string> start() override;
  void stop() override;

  parley::Outcome on_offline_message(const parley::Event& event);
  void on_presence(const parley::Event& event);
  void on_user_removed(const parley::Event& event);
  void on_server_stopping(const parley::Event& event);
  void on_account_export(const parley::Event& event);
  void on_account_import(const parley::Event& event);
  parley::Outcome on_stanza_out(const parley::Event& event);
  void on_session_closed(const parley::Event& event);

 private:
  friend struct Flush;
  uint32_t owner_of(const std::string& user) const;
  // Runs fn on the user's owner loop, posted there even from it (mod_offline.cpp says why). false: could not post.
  bool on_owner(const std::string& user, std::function<void()> fn);
  LoopState& here() { return loops_.here(); }
  std::string new_key();
  static int64_t steady_ms();

  // offline_admit.cpp (owner loop)
  void admit(const std::string& user, Incoming message);
  void admit_loaded(const std::string& user, UserState& st, Incoming message);
  void admit_at_stop(const std::string& user, std::shared_ptr<Incoming> message);
  void load_counts(const std::string& user);
  void stored(const std::string& user, Incoming& message, const std::string& error);
  void finish_sender(Incoming& message, std::function<void()> then);
  void refuse_full(Incoming& message);
  void refuse_sender_share(Incoming& message);
  void arm_timer(int64_t delay_ms);
  void on_flush_timer(uint64_t id);
  void flush_user(const std::string& user, UserState& st, std::size_t n, std::function<void()> then = {});
  void flush_all_here();
  void maybe_forget(const std::string& user);

  // offline_delivery.cpp
  void deliver_if_online(const std::string& user);           // owner loop
  void request_delivery(const std::string& user, parley_session_id session);  // owner loop
  void start_delivery(const std::string& user, parley_session_id session);    // session's loop
  void delivery_ended(const std::string& user);              // owner loop

  // offline_hold.cpp
  bool start_hold(parley_session_id session);    // session's loop; true if it holds
  void release_hold(parley_session_id session);  // session's loop
  void arm_hold_timer(parley_session_id session, Hold& hold);  // session's loop
  void settle(const std::string& user);          // owner loop: releases the holds once nothing is pending
  static bool idle(const UserState& st);

  std::string domain_;
  int64_t max_messages_ = default_max_messages;
  int64_t max_per_sender_ = default_max_messages / 4;
  int64_t batch_messages_ = default_batch_messages;
  int64_t batch_bytes_ = default_batch_bytes;
  int64_t hold_ms_ = default_hold_seconds * 1000;  // 0: live messages are not held
  std::size_t hold_messages_ = default_hold_messages;
  std::size_t hold_bytes_ = default_hold_bytes;
  bool write_back_ = false;
  int64_t window_ms_ = default_window_seconds * 1000;
  std::size_t max_bytes_per_loop_ = default_max_bytes;
  parley::PerLoop<LoopState> loops_;
  parley::OldTables move_;
};

}  // namespace mod_offline
