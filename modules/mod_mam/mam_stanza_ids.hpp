// XEP-0359 stanza ids of the user archives, kept apart from the archiving itself: which
// <stanza-id/> a message may carry on its way (section 4: only the archive's server says
// what the archive's id is), the check of a claim that comes back to MESSAGE_TO_LOCAL,
// and the sender's id that only the carbon of a sent message keeps (XEP-0313 3.4).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "parley/module.hpp"
#include "parley/sdk/archive_ids.hpp"

namespace parley::mod_mam {

class StanzaIds {
 public:
  // `ids` (the module's archive id codec) outlives this object.
  void start(Host& host, const ArchiveIds& ids);

  // At a client's STANZA_IN: removes every <stanza-id/> that claims the recipient's
  // bare JID or the bare JID of an account of this domain (the sender's own included),
  // compared prepared (RFC 7622: 'Bob@Example.org' is 'bob@example.org').
  void strip_forged(ElementRef message, const std::string& recipient) const;

  // Removes the <stanza-id by=owner/> (other entities' stay).
  static void strip_own(ElementRef message, const std::string& owner);

  // At MESSAGE_TO_LOCAL, a <stanza-id by=owner id=claimed/>: this module's (a message
  // routed again: stream management, a decision that waited) or a forgery that came by
  // no client's STANZA_IN (a component, another host's user through a room).
  enum class Claim {
    ours,      // routed again by this module after a check: pass it on as it is
    checking,  // taken: the archive is asked, the message routed again after
    forged,    // removed from the message: archive it as any other
  };
  Claim check(const std::string& owner, ElementRef message);

  // The next pass of this message through MESSAGE_TO_LOCAL on this loop is ours.
  void trust(const std::string& owner, const std::string& id);

  // The sender's archive id put on a stanza in STANZA_IN (60) for mod_carbons (90),
  // to be taken off (95) before it is routed. Hooks of one stanza run one after the
  // other on its loop, so the loop's flag is this stanza's.
  void mark_sent_id();
  bool take_sent_id();

 private:
  bool take_trusted(const std::string& owner, const std::string& id);
  std::unordered_set<std::string>* trusted_here();
  int32_t loop_here() const;

  Host* host_ = nullptr;
  const ArchiveIds* ids_ = nullptr;
  std::string domain_;  // the served domain: its accounts' archive ids are made here only
  std::vector<std::unordered_set<std::string>> trusted_;  // per loop: "owner\nid" routed again
  std::vector<char> sent_id_on_;                          // per loop: see mark_sent_id()
};

}  // namespace parley::mod_mam
