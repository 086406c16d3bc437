// mod_blocking: XEP-0191 Blocking Command (see mod_blocking.hpp for the map
// of the files).
//
// Options:
//   max_items           blocked items per user (default 1000); more is policy-violation
//   cache_idle_seconds  how long the list of a user without sessions stays cached (default 120)
//   max_cached_lists    past this many cached lists, idle ones go at the next sweep (default 10000)
#include <charconv>

#include "mod_blocking.hpp"

namespace mod_blocking {

parley::Result<void, std::string> ModBlocking::start() {
  domain_ = host().module_host();
  if (auto v = host().option_int("max_items")) {
    if (*v < 1) return parley::unexpected(std::string("max_items must be at least 1"));
    max_items_ = static_cast<std::size_t>(*v);
  }
  if (auto v = host().option_int("cache_idle_seconds")) {
    if (*v < 1) return parley::unexpected(std::string("cache_idle_seconds must be at least 1"));
    idle_ = std::chrono::seconds(*v);
  }
  if (auto v = host().option_int("max_cached_lists")) {
    if (*v < 1) return parley::unexpected(std::string("max_cached_lists must be at least 1"));
    max_cached_ = static_cast<std::size_t>(*v);
  }
  if (!host().supports_1_2()) return parley::unexpected(std::string("needs a host with module ABI 1.2 (post)"));
  if (!host().supports_map()) return parley::unexpected(std::string("this server has no map store"));
  loops_.init(host());
  asks_.init(host(), "mod_blocking");
  // on_stanza_out runs only for sessions of users whose list blocks something.
  host().hook_mode(PARLEY_EVENT_STANZA_OUT, PARLEY_HOOKS_PER_SESSION);
  // The blocklists of a server that kept them in this module's own table (before the map
  // store): moved over once, in the order they were blocked, the table dropped once
  // empty; loads wait for it.
  move_.start(host(), {parley::OldTables::Move{"mod_blocking_items",
                                               "SELECT user, jid, '' FROM mod_blocking_items WHERE host = ?1 ORDER BY id",
                                               "DELETE FROM mod_blocking_items WHERE host = ?1",
                                               parley::KeyvalMove::Target::map}});
  return {};
}

// Off the loops, once no entry point of the module runs any more.
void ModBlocking::stop() {
  for (uint32_t loop = 0; loop < loops_.size(); ++loop) loops_.at(loop).lists.clear();
}

// Across a reload only the resources that asked for the blocklist need to
// survive (the lists come back from storage): "v1" and their session ids.
// Runs while every entry point of the module is paused: the loops' sets
// are read from here without a race.
parley::Result<std::string, std::string> ModBlocking::save_state() {
  std::string out = "v1";
  for (uint32_t loop = 0; loop < loops_.size(); ++loop)
    for (parley_session_id id : loops_.at(loop).interested) out += " " + std::to_string(id);
  return out;
}

parley::Result<void, std::string> ModBlocking::restore_state(std::string_view bytes) {
  if (bytes.empty()) return {};
  if (bytes.substr(0, 2) != "v1") return parley::unexpected(std::string("unknown mod_blocking state format"));
  std::unordered_set<parley_session_id> ids;
  std::size_t pos = 2;
  while (pos < bytes.size()) {
    if (bytes[pos] == ' ') {
      ++pos;
      continue;
    }
    parley_session_id id = 0;
    auto [end, ec] = std::from_chars(bytes.data() + pos, bytes.data() + bytes.size(), id);
    if (ec != std::errc()) return parley::unexpected(std::string("corrupt mod_blocking state"));
    ids.insert(id);
    pos = static_cast<std::size_t>(end - bytes.data());
  }
  // Each id goes to its session's loop (a session that closed meanwhile is
  // not found and needs nothing).
  for (parley_session_id id : ids)
    parley::post_to_session(host(), id, [this, id] { here().interested.insert(id); });
  return {};
}

}  // namespace mod_blocking

using mod_blocking::ModBlocking;

// Inbound filters run early (10): before a presence or offline module (50)
// acts on a stanza the user does not want.
PARLEY_MODULE(ModBlocking, "mod_blocking", "1.0.0",
              parley::option("max_items", PARLEY_OPT_INT),
              parley::option("cache_idle_seconds", PARLEY_OPT_INT),
              parley::option("max_cached_lists", PARLEY_OPT_INT),
              parley::iq_handler<&ModBlocking::on_iq>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET | PARLEY_IQ_SET,
                                                      mod_blocking::ns_blocking),
              parley::hook<&ModBlocking::on_stanza_in>(PARLEY_EVENT_STANZA_IN, 10),
              parley::hook<&ModBlocking::on_to_local>(PARLEY_EVENT_MESSAGE_TO_LOCAL, 10),
              parley::hook<&ModBlocking::on_to_local>(PARLEY_EVENT_PRESENCE_TO_LOCAL, 10),
              parley::hook<&ModBlocking::on_to_local>(PARLEY_EVENT_IQ_TO_LOCAL, 10),
              parley::hook<&ModBlocking::on_to_local>(PARLEY_EVENT_OFFLINE_MESSAGE, 10),
              parley::hook<&ModBlocking::on_stanza_out>(PARLEY_EVENT_STANZA_OUT, 10),
              parley::hook<&ModBlocking::on_session_bound>(PARLEY_EVENT_SESSION_BOUND),
              parley::hook<&ModBlocking::on_session_closed>(PARLEY_EVENT_SESSION_CLOSED),
              parley::hook<&ModBlocking::on_user_removed>(PARLEY_EVENT_USER_REMOVED),
              parley::hook<&ModBlocking::on_roster_answer>(PARLEY_EVENT_ADMIN_USER_ANSWER),
              parley::hook<&ModBlocking::on_account_export>(PARLEY_EVENT_ACCOUNT_EXPORT),
              parley::hook<&ModBlocking::on_account_import>(PARLEY_EVENT_ACCOUNT_IMPORT),
              parley::disco_feature(mod_blocking::ns_blocking),
              // The blocklists before the map store: kept so that a server that has rows in
              // it gets them moved (OldTables in start()), then dropped.
              parley::schema("CREATE TABLE mod_blocking_items (id INTEGER PRIMARY KEY, host TEXT NOT NULL, "
                             "user TEXT NOT NULL, jid TEXT NOT NULL, UNIQUE (host, user, jid))"))
