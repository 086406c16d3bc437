// mod_mam/mam_prefs.hpp - the archiving preferences (XEP-0313 section 6) on the host's
// keyval store (issue 11; either backend), and the `roster` default honoured.
//
// Stored per account (keyval user = the bare JID, key "prefs", mam_logic's encoding);
// the SQLite table mod_mam_prefs of earlier versions is moved in at the first start.
// The decision per message must be made on the message's loop, from memory, before the
// core delivers it (the live copy carries the archive id). So each loop keeps the
// preferences of the owners it has seen (bounded: max_cached per loop, then cleared and
// read again), set on every loop when the owner changes them. A message whose owner's
// preferences this loop has not read yet, or whose decision needs the roster (default
// `roster`, the JID in neither list), is decided asynchronously:
//   outgoing  the message goes on at once; it is appended when decided;
//   incoming  the message is held (the filter takes it), with the owner's other
//             messages that arrive meanwhile, in order; when decided each is appended
//             (with its <stanza-id/>) or not, and routed again, once: the verdict is
//             remembered for the second pass (consumed there).
// The roster is asked of the roster module (events 27-28, parley::AccountQuery), at
// each such message: it is never cached, so a contact added a moment ago counts.
// Everything here runs on worker loops; each loop's state is its own (no lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mam_logic.hpp"
#include "parley/module.hpp"
#include "parley/sdk/old_tables.hpp"

namespace parley::mod_mam {

class MamPrefs {
 public:
  static constexpr std::size_t max_cached = 10000;  // owners' preferences per loop
  static constexpr std::size_t default_max_held = 10000;  // incoming messages held per loop

  // From start(): `defaults` are the configured default's; `max_held` incoming messages
  // are held per loop at most (the option max_held_messages).
  void start(Host& host, Prefs defaults, std::string_view domain, std::size_t max_held = default_max_held);
  void on_answer(const Event& event) { asks_.on_answer(event); }

  // The owner's preferences (stored or the default), later on this loop (nullopt: unreadable).
  void get(const std::string& owner, std::function<void(std::optional<Prefs>)> done);
  // Stores them; every loop's copy is set before done(true) runs.
  void set(const std::string& owner, Prefs prefs, std::function<void(bool)> done);
  // The account is gone.
  void remove(const std::string& owner);

  // The decision for a message when it can be made now, without a callback (the common
  // case: preferences cached, no roster question, nothing of the owner's held): true to
  // archive. nullopt: ask outgoing() or incoming(), which decide the rest.
  std::optional<bool> outgoing_now(const std::string& owner, std::string_view with);
  std::optional<bool> incoming_now(const std::string& owner, std::string_view with);
  // Outgoing (the owner's message to `with`): archive(with) runs now or later if it is to be archived.
  void outgoing(const std::string& owner, std::string with, std::function<void()> archive);
  // Incoming: `now` if the caller decides now (then *archive says whether to append);
  // `held` if the message was taken: release(message, archive) runs later on this loop
  // for each held message, in order, and must append (if so) and route it again;
  // `refused` if it can be neither: its owner's earlier messages are held and max_held
  // are held on this loop (it may not overtake them, RFC 6120 10.1; the caller bounces it).
  enum class Incoming { now, held, refused };
  using Release = std::function<void(Element, bool)>;
  Incoming incoming(const std::string& owner, std::string_view with, ElementRef message, bool* archive,
                    Release release);
  // From a release that was to archive but could not (the append refused): the message's
  // second pass is let through as decided, not taken for a new one (held again behind
  // later messages, or appended twice). Call before routing it again.
  void let_pass(const std::string& owner, std::string_view with);

 private:
  struct Held {
    std::string with;
    Element message;
  };
  struct Owner {
    std::deque<Held> held;  // incoming, in arrival order, while a decision is under way
  };
  struct Loop {
    std::unordered_map<std::string, Prefs> prefs;            // owners read on this loop
    std::unordered_map<std::string, Owner> waiting;           // owners with held messages
    std::unordered_map<std::string, std::vector<bool>> verdicts;  // owner\nwith -> for the second pass
    std::size_t held = 0;
  };

  const Prefs* cached(const std::string& owner);
  void remember(const std::string& owner, const Prefs& prefs, bool overwrite);
  // The owner's preferences on this loop: now if cached, else read (done(nullopt): unreadable).
  void load(const std::string& owner, std::function<void(std::optional<Prefs>)> done);
  // The final decision for `with` (asks the roster if needed).
  void resolve(const std::string& owner, const std::string& with, std::function<void(bool)> done);
  void release_held(const std::string& owner, Release release);

  Host* host_ = nullptr;
  std::size_t max_held_ = default_max_held;
  Prefs defaults_;
  std::string domain_;
  PerLoop<Loop> loops_;
  AccountQuery asks_;
  OldTables move_;
};

}  // namespace parley::mod_mam
