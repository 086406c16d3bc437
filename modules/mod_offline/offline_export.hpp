// mod_offline/offline_export.hpp - offline messages in XEP-0227 export and import
// (issue 11): <offline-messages xmlns='urn:xmpp:pie:0'/> holding the stored
// <message xmlns='jabber:client'/> stanzas, oldest first, each with its XEP-0203 delay.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "parley/module.hpp"

namespace parley::offline {

// One message of a file, as mod_offline stores it.
struct ImportedMessage {
  std::string stamp;   // its delay's stamp (the time it was first stored), or now
  std::string xml;     // the stanza, with a <delay/> (ours, stamped now, if it had none)
  std::string sender;  // the sender's bare JID (max_per_sender)
};

// The <message/> children of `list`; an element that is not a jabber:client message is
// an error (its text). `now_stamp` stamps messages that carry no delay.
Result<std::vector<ImportedMessage>, std::string> import_messages(const Host& host, ElementView list,
                                                                  std::string_view domain,
                                                                  const std::string& now_stamp);

}  // namespace parley::offline
