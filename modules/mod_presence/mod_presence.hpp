// mod_presence: the module class shared by
//   mod_presence.cpp       options, the hooks (directed presence, broadcasts,
//                          logout, probes, removed accounts), declarations
//   presence_sessions.cpp  what the module knows of each session, in the
//                          session's slot; reading the presence of a user's
//                          sessions on their loops; state across a reload
//   presence_fanout.cpp    broadcasts, probes at login and the unavailable
//                          at logout, in batches; probe answers
//   presence_logic.cpp     the pure logic (unit-tested)
//
// Threads: no lock. What the module knows of a session (its presence, the
// recipients of its directed presence) lives in the session's slot, owned by
// the session's loop and freed with the session. A question about another
// user's presence (a probe, a new resource, the contacts at login) is asked
// of each of that user's sessions on its own loop (post_to_session), which
// posts its answer back to the asking loop. An answer is sent as soon as it
// arrives, before anything that loop received later from the same session:
// posts between two loops keep their order, so a newer presence broadcast
// from that session cannot be overtaken by the older answer. The work a
// presence stanza causes after a roster read runs per session in order (a
// Sequencer per loop), so that an update can never overtake the initial
// presence.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "parley/module.hpp"
#include "parley/sdk/old_tables.hpp"
#include "presence_logic.hpp"

namespace mod_presence {

inline constexpr const char* ns_client = "jabber:client";
inline constexpr const char* ns_delay = "urn:xmpp:delay";

class ModPresence;

// What the module knows of one bound session: its slot, on its loop. Every
// bound session that sent presence keeps one for its whole life, so it is
// kept small (issue 18, idle memory): the bare JID is derived from `full`
// when needed, and the last presence is kept as the bytes it serializes to
// (about a quarter of its element tree's heap), parsed again only when a
// probe or a new resource asks for it (last_presence()).
struct SessionPresence {
  ModPresence* self = nullptr;
  parley_session_id id = 0;
  std::string full;
  bool available = false;
  std::string last;  // the last broadcast presence while available, serialized; empty: none
  DirectedSet directed;
};

// The serialized form `last` keeps of a presence: the element's own bytes,
// in a string no larger than they are.
std::string compact_presence(const parley::ElementView& presence);

// The last unavailable presence of an account (§4.3.2), as stored: in the
// keyval store (issue 11), user the localpart, key "last", value
// "STAMP\nXML" (a XEP-0082 stamp holds no newline).
struct LastUnavailable {
  std::string xml;
  std::string stamp;
};
inline constexpr const char* last_key = "last";
std::string encode_last(const LastUnavailable& last);
std::optional<LastUnavailable> decode_last(std::string_view value);

// One roster item.
struct Contact {
  RosterRow row;
};

using Shared = std::shared_ptr<parley::Element>;

class ModPresence : public parley::Module {
 public:
  parley::Result<void, std::string> start() override;
  parley::Result<std::string, std::string> save_state() override;
  parley::Result<void, std::string> restore_state(std::string_view bytes) override;

  // mod_presence.cpp: the hooks.
  parley::Outcome on_stanza_in(const parley::Event& ev);
  parley::Outcome on_broadcast(const parley::Event& ev);
  void on_closed(const parley::Event& ev);
  parley::Outcome on_presence_to_local(const parley::Event& ev);
  void on_user_removed(const parley::Event& ev);
  void on_roster_answer(const parley::Event& ev) { asks_.on_answer(ev); }

  // The slot's free function (on the session's loop).
  void forget(SessionPresence* s);

 private:
  // ---- presence_sessions.cpp ----
  // The session's slot, made if `full` is given and there is none; null if
  // the session is not on this loop.
  SessionPresence* slot(parley_session_id id, std::string_view full = {});
  // Asks every session of `bare` but `except` (a full JID), each on its own
  // loop, for its presence if it is available: each(copy) runs on this loop
  // as each answer arrives, then done(how many were available).
  void each_presence(const std::string& bare, const std::string& except,
                     std::function<void(parley::Element)> each, std::function<void(std::size_t)> done);

  // ---- presence_fanout.cpp ----
  void show_other_resources(const std::string& bare, const std::string& full);
  void load_roster(const std::string& bare, std::function<void(std::optional<std::vector<Contact>>)> fn);
  // The stored last unavailable presence of the account `user` (a localpart of
  // this host): fn(nullopt) if none or if the store failed (logged).
  void get_last(const std::string& user, std::function<void(std::optional<LastUnavailable>)> fn);
  // The same for the accounts `users` (localparts of this host) in one keyval operation
  // (ABI 1.8 keyval_get_many: 256 users per statement; a get each on an older host):
  // fn(user -> presence) with those that have one; empty if the store failed (logged).
  using LastByUser = std::unordered_map<std::string, LastUnavailable>;
  void get_last_many(std::vector<std::string> users, std::function<void(LastByUser)> fn);
  void route_copy(const parley::Element& presence, const std::string& to);
  void in_batches(std::size_t n, std::function<void(std::size_t)> step, std::function<void()> done,
                  std::size_t from = 0);
  void broadcast_available(Shared presence, const std::string& bare, const std::string& full, bool initial,
                           parley_session_id session, std::shared_ptr<const std::vector<Contact>> roster,
                           std::function<void()> done);
  void probe_batches(std::string bare, std::string full, parley_session_id session,
                     std::shared_ptr<const std::vector<Contact>> roster, std::size_t from, std::size_t count,
                     std::function<void()> done);
  void send_unavailable(parley_session_id id, const std::string& bare, Shared presence, bool was_available,
                        std::set<std::string> directed);
  void remember_unavailable(const std::string& bare, const parley::Element& presence);
  parley::Element unavailable_answer(const std::string& account, const std::string& to,
                                     const std::optional<LastUnavailable>& last,
                                     const std::optional<std::string>& probe_id);
  void answer_probe(const std::string& user, const std::string& prober, const std::string& reply_to,
                    const std::optional<std::string>& probe_id, const std::optional<std::string>& subscription,
                    const std::optional<LastUnavailable>& last);

  // Each loop's own: the sessions it keeps a slot for (for save_state) and
  // the per-session job chains. Touched only by that loop.
  struct LoopState {
    std::unordered_map<parley_session_id, SessionPresence*> sessions;
    Sequencer sequencer;
  };
  LoopState& here() { return loops_.here(); }

  std::size_t max_directed_ = 1000;
  std::size_t batch_ = 256;
  std::size_t batch_bytes_ = 256 * 1024;
  parley::PerLoop<LoopState> loops_;
  parley::AccountQuery asks_;  // roster reads, answered by the roster module (events 27-28)
  parley::OldTables move_;     // mod_presence_last of before the keyval store, moved at start
  parley::Metric tracked_;  // gauge: sessions with a slot of this module
};

}  // namespace mod_presence
