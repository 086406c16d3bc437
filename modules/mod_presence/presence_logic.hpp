// mod_presence's pure logic (the standard library and parley::Jid only,
// unit-tested on its own):
// subscription states, who gets a broadcast, how a probe is answered, the
// directed-presence set, the per-session job sequencer and the bytes that
// carry the module's state across a hot reload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/module.hpp"

namespace mod_presence {

// RFC 6121 §4.7.1: the presence types ("" = available).
bool known_presence_type(std::string_view type);

// RFC 6121 §2.1.2.5 subscription values as mod_roster stores them.
bool has_from(std::string_view subscription);  // the contact receives the user's presence
bool has_to(std::string_view subscription);    // the user receives the contact's presence

// One row of the user's roster as far as presence is concerned.
struct RosterRow {
  std::string contact;       // bare JID
  std::string subscription;  // none, to, from, both
};

// Bare JIDs of the contacts subscribed to the user's presence (§4.2.2, §4.4.2).
std::vector<std::string> subscribers(const std::vector<RosterRow>& roster);
// Bare JIDs of the contacts whose presence the user has (§4.3.1: probed at login).
std::vector<std::string> probe_targets(const std::vector<RosterRow>& roster);

// The entities a session's directed presence reached (§4.6): available adds,
// unavailable removes. Kept as addressed (a full or a bare JID).
// Held by every session's slot, and empty in almost all of them: the set is
// made on the first recipient and freed when it empties (8 bytes per session
// instead of an empty std::set's 48; issue 18).
class DirectedSet {
 public:
  void add(std::string_view jid) {
    if (!jids_) jids_ = std::make_unique<std::set<std::string>>();
    jids_->emplace(jid);
  }
  // Adds jid unless that would make the set larger than `cap`; false:
  // refused (a recipient already in the set is always fine).
  bool add_capped(std::string_view jid, std::size_t cap) {
    if (size() >= cap && !contains(jid)) return false;
    add(jid);
    return true;
  }
  void remove(std::string_view jid) {
    if (!jids_) return;
    jids_->erase(std::string(jid));
    if (jids_->empty()) jids_.reset();
  }
  bool contains(std::string_view jid) const { return jids_ && jids_->count(std::string(jid)) != 0; }
  bool empty() const { return !jids_ || jids_->empty(); }
  std::size_t size() const { return jids_ ? jids_->size() : 0; }
  const std::set<std::string>& jids() const {
    static const std::set<std::string> none;
    return jids_ ? *jids_ : none;
  }
  std::set<std::string> take() {
    std::set<std::string> out;
    if (jids_) out = std::move(*jids_);
    jids_.reset();
    return out;
  }

 private:
  std::unique_ptr<std::set<std::string>> jids_;
};

// Who gets a session's unavailable presence (§4.5.2): every subscriber (bare
// JID), then every directed-presence recipient not already covered by one
// (a recipient whose bare JID is a subscriber got it through the broadcast).
std::vector<std::string> unavailable_targets(const std::vector<RosterRow>& roster,
                                             const std::set<std::string>& directed);

// How the contact's server answers a probe (§4.3.2).
enum class ProbeAnswer {
  unsubscribed,  // the prober has no subscription: <presence type='unsubscribed'/>
  unavailable,   // subscribed, no available resource: <presence type='unavailable'/>
  available,     // subscribed: the last presence of each available resource
};
// `subscription`: the prober's item in the probed user's roster, if any;
// `same_account`: the user probing their own account (implicitly subscribed).
ProbeAnswer answer_probe(const std::optional<std::string>& subscription, bool same_account,
                         std::size_t available_resources);

// XEP-0082 DateTime in UTC ("2002-09-10T23:41:07Z"), for XEP-0203 <delay/>.
std::string xmpp_stamp(std::time_t t);

// Runs jobs one after another per key (a session id): a job gets `done` and
// calls it once, maybe later (after a storage call); the next job of that key
// starts then. Presence of one session therefore leaves in the order the
// client sent it, whatever order storage answers in. Not thread-safe: the
// module keeps one per loop, and a session's jobs run on its loop.
class Sequencer {
 public:
  using Done = std::function<void()>;
  using Job = std::function<void(Done)>;

  void submit(uint64_t key, Job job);
  std::size_t active_keys() const;

 private:
  void run(uint64_t key, Job job);
  void next(uint64_t key);

  struct Chain {
    std::deque<Job> waiting;
  };
  std::map<uint64_t, Chain> chains_;  // present = a job of that key is running
};

// Length-prefixed fields ("5:alice3:bob"): any bytes survive, including the
// separators. decode_fields returns nullopt on a malformed input.
std::string encode_fields(const std::vector<std::string>& fields);
std::optional<std::vector<std::string>> decode_fields(std::string_view bytes);

}  // namespace mod_presence
