// mod_offline: offline messages (XEP-0160) with delayed-delivery stamps
// (XEP-0203), in the map store (see mod_offline.hpp for the files and threads).
//
// A chat or normal message with content for a user who has no available
// resource of non-negative priority is stored, stamped
//   <delay xmlns='urn:xmpp:delay' from='DOMAIN' stamp='...Z'>Offline Storage</delay>
// and delivered, in arrival order, to the first session that then sends
// available presence with a non-negative priority; it is removed only once
// its bytes were written to that session's socket (docs/modules/mod_offline.md).
//
// Options:
//   max_messages          per-user quota (default 1000): the map store's item limit,
//                         checked with the write
//   max_per_sender        of it, messages from one sender's bare JID (default
//                         max_messages / 4; past it: resource-constraint)
//   delivery_batch_messages, delivery_batch_bytes
//                         delivery is paced: a batch of at most this many
//                         messages / bytes at a time (default 32, 64 KiB)
//   durability            `immediate` (default) or `write_back`
//   write_back_window     seconds a message stays in memory only (default 60)
//   write_back_max_bytes  memory for held messages, all users (default 64 MiB;
//                         each worker loop holds its share)
//   hold_live_seconds, hold_live_max_messages, hold_live_max_bytes
//                         live messages that arrive during a login's delivery wait
//                         behind it, up to these bounds (10 s, 256, 1 MiB; 0 s: off;
//                         offline_hold.cpp)
//
// Counters: stored, delivered, flushed, bounced_quota, bounced_sender_share, held_live,
// hold_overflows, hold_timeouts.
#include "mod_offline.hpp"

#include <cstdlib>
#include <functional>

#include "offline_item.hpp"

namespace mod_offline {

parley::Result<void, std::string> ModOffline::start() {
  domain_ = host().module_host();
  max_messages_ = host().option_int("max_messages").value_or(default_max_messages);
  if (max_messages_ < 1) return parley::unexpected(std::string("max_messages must be at least 1"));
  max_per_sender_ = host().option_int("max_per_sender").value_or(std::max<int64_t>(1, max_messages_ / 4));
  if (max_per_sender_ < 1) return parley::unexpected(std::string("max_per_sender must be at least 1"));
  std::string durability = host().option_string("durability").value_or("immediate");
  if (durability == "write_back") write_back_ = true;
  else if (durability != "immediate")
    return parley::unexpected("durability must be 'immediate' or 'write_back', not '" + durability + "'");
  int64_t window = host().option_int("write_back_window").value_or(default_window_seconds);
  if (window < 0) return parley::unexpected(std::string("write_back_window must not be negative"));
  int64_t max_bytes = host().option_int("write_back_max_bytes").value_or(default_max_bytes);
  if (max_bytes < 1) return parley::unexpected(std::string("write_back_max_bytes must be positive"));
  window_ms_ = window * 1000;
  batch_messages_ = host().option_int("delivery_batch_messages").value_or(default_batch_messages);
  if (batch_messages_ < 1 || batch_messages_ > 10000)
    return parley::unexpected(std::string("delivery_batch_messages must be from 1 to 10000"));
  batch_bytes_ = host().option_int("delivery_batch_bytes").value_or(default_batch_bytes);
  if (batch_bytes_ < 1024) return parley::unexpected(std::string("delivery_batch_bytes must be at least 1024"));
  int64_t hold_seconds = host().option_int("hold_live_seconds").value_or(default_hold_seconds);
  if (hold_seconds < 0 || hold_seconds > 3600)
    return parley::unexpected(std::string("hold_live_seconds must be from 0 to 3600"));
  hold_ms_ = hold_seconds * 1000;
  int64_t hold_messages = host().option_int("hold_live_max_messages").value_or(default_hold_messages);
  if (hold_messages < 1) return parley::unexpected(std::string("hold_live_max_messages must be at least 1"));
  hold_messages_ = static_cast<std::size_t>(hold_messages);
  int64_t hold_bytes = host().option_int("hold_live_max_bytes").value_or(default_hold_bytes);
  if (hold_bytes < 1024) return parley::unexpected(std::string("hold_live_max_bytes must be at least 1024"));
  hold_bytes_ = static_cast<std::size_t>(hold_bytes);
  // The live-message filter runs only for sessions whose delivery is pending (offline_hold.cpp).
  host().hook_mode(PARLEY_EVENT_STANZA_OUT, hold_ms_ > 0 ? PARLEY_HOOKS_PER_SESSION : PARLEY_HOOKS_OFF);
  if (!host().supports_1_2()) return parley::unexpected(std::string("needs a host with module ABI 1.2 (post)"));
  if (!host().supports_map()) return parley::unexpected(std::string("this server has no map store"));
  loops_.init(host());
  max_bytes_per_loop_ = std::max<std::size_t>(1, static_cast<std::size_t>(max_bytes) / loops_.size());
  // The queues of a server that kept them in this module's own SQLite table (before
  // the map store): moved over once, in arrival order, the table dropped once empty;
  // every use of the queues waits.
  move_.start(host(), {parley::OldTables::Move{"mod_offline_messages",
                                               "SELECT user, printf('old%020d', id), sender || char(10) || xml "
                                               "FROM mod_offline_messages WHERE host = ?1 ORDER BY id",
                                               "DELETE FROM mod_offline_messages WHERE host = ?1",
                                               parley::KeyvalMove::Target::map}});
  return {};
}

// Off the loops. What write-back held was put at SERVER_STOPPING (a clean stop); an
// unload or reload is refused while it holds anything (its flush timer is pending).
void ModOffline::stop() {
  for (uint32_t loop = 0; loop < loops_.size(); ++loop) loops_.at(loop).users.clear();
}

uint32_t ModOffline::owner_of(const std::string& user) const {
  return static_cast<uint32_t>(std::hash<std::string>{}(user) % loops_.size());
}

// Always a post, on the owner loop too: after what other loops posted there
// before. A message the core routes again on another loop (its recipient's
// session was cut there) is admitted through a post to the owner loop; the
// sender's loop sees that route settled (Router::fence_offline) as soon as the
// post is queued, and stores the sender's next message with no fence. Run at
// once when that loop is the owner, the newer one was put first (issue: a cut
// slow reader's messages out of order, session 12). The inbox is one FIFO.
bool ModOffline::on_owner(const std::string& user, std::function<void()> fn) {
  return parley::post(host(), owner_of(user), std::move(fn));
}

std::string ModOffline::new_key() {
  using namespace std::chrono;
  auto us = duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
  return parley::offline::item_key(static_cast<uint64_t>(us), static_cast<uint32_t>(parley::current_loop(host())),
                                   here().counter++);
}

int64_t ModOffline::steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// Only the step into "available with a non-negative priority" delivers (XEP-0160:
// "when the recipient next sends non-negative available presence").
void ModOffline::on_presence(const parley::Event& event) {
  auto stanza = event.stanza();
  if (!stanza || event.session() == 0) return;
  auto type = stanza->attr("type");
  bool eligible = false;
  if (!type || type->empty()) {
    std::string priority = stanza->child_text("priority");  // the core checked it: -128..127
    eligible = priority.empty() || std::atoi(priority.c_str()) >= 0;
  } else if (*type != "unavailable") {
    return;
  }
  // The slot holds no object: its pointer is one of two markers (no free
  // function), so an idle session pays no allocation for one bit (issue 18).
  void* const state = host().session_get_data(event.session());
  const bool was = state == &kEligible;
  if (state != nullptr || eligible)
    host().session_set_data(event.session(), const_cast<char*>(eligible ? &kEligible : &kNotEligible), nullptr);
  if (!eligible || was) return;
  std::string user(event.user());
  parley_session_id session = event.session();
  bool hold = start_hold(session);  // live messages wait behind the stored ones
  on_owner(user, [this, user, session, hold] {
    if (hold) here().users[user].holding = true;
    request_delivery(user, session);
  });
}

}  // namespace mod_offline

using mod_offline::ModOffline;

PARLEY_MODULE(ModOffline, "mod_offline", "2.0.0",
              parley::option("max_messages", PARLEY_OPT_INT),
              parley::option("durability", PARLEY_OPT_STRING),
              parley::option("write_back_window", PARLEY_OPT_INT),
              parley::option("write_back_max_bytes", PARLEY_OPT_INT),
              parley::option("max_per_sender", PARLEY_OPT_INT),
              parley::option("delivery_batch_messages", PARLEY_OPT_INT),
              parley::option("delivery_batch_bytes", PARLEY_OPT_INT),
              parley::option("hold_live_seconds", PARLEY_OPT_INT),
              parley::option("hold_live_max_messages", PARLEY_OPT_INT),
              parley::option("hold_live_max_bytes", PARLEY_OPT_INT),
              parley::hook<&ModOffline::on_offline_message>(PARLEY_EVENT_OFFLINE_MESSAGE),
              // Before modules that take the broadcast over (HANDLED) would hide it.
              parley::hook<&ModOffline::on_presence>(PARLEY_EVENT_PRESENCE_BROADCAST, 20),
              parley::hook<&ModOffline::on_user_removed>(PARLEY_EVENT_USER_REMOVED),
              // After blocking's filter (10), before client state indication's (40) and
              // stream management's counting: what it holds is counted when written.
              parley::hook<&ModOffline::on_stanza_out>(PARLEY_EVENT_STANZA_OUT, 30),
              parley::hook<&ModOffline::on_session_closed>(PARLEY_EVENT_SESSION_CLOSED),
              parley::hook<&ModOffline::on_server_stopping>(PARLEY_EVENT_SERVER_STOPPING),
              parley::hook<&ModOffline::on_account_export>(PARLEY_EVENT_ACCOUNT_EXPORT),
              parley::hook<&ModOffline::on_account_import>(PARLEY_EVENT_ACCOUNT_IMPORT),
              parley::disco_feature("msgoffline"),
              // The old table (before the map store): its rows are moved at the first
              // start, and it stays declared (empty) so that the schema's version does not go back.
              parley::schema("CREATE TABLE mod_offline_messages (id INTEGER PRIMARY KEY, host TEXT NOT NULL, "
                             "user TEXT NOT NULL, stamp TEXT NOT NULL, xml TEXT NOT NULL)"),
              parley::schema("CREATE INDEX mod_offline_messages_by_user ON mod_offline_messages (host, user, id)"),
              parley::schema("ALTER TABLE mod_offline_messages ADD COLUMN sender TEXT NOT NULL DEFAULT ''"),
              parley::schema("CREATE INDEX mod_offline_messages_by_sender ON mod_offline_messages (host, user, sender)"))
