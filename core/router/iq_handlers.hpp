// IQ handlers keyed by (scope, type, namespace of the payload), as ejabberd's
// gen_iq_handler. Filled before the loops start and read-only afterwards, so
// lookups on the stanza path take no lock.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/addr/jid.hpp"
#include "xml/element.hpp"

namespace parley {

enum class IqScope {
  server,   // addressed to a served domain
  account,  // addressed to a local user's bare JID (or no 'to': the sender's own account)
};

struct IqRequest {
  const xml::Element& iq;
  const Jid& from;
  const Jid& to;
  unsigned loop;  // the loop the request is handled on
};

// A handler must answer with exactly one result or error (RFC 6120 §8.2.3).
using IqHandler = std::function<void(const IqRequest&)>;

class IqHandlers {
 public:
  void add(IqScope scope, std::string type, std::string xmlns, IqHandler handler);
  const IqHandler* find(IqScope scope, std::string_view type, std::string_view xmlns) const;

  // Features announced in the server's disco#info (XEP-0030).
  void add_server_feature(std::string feature);
  const std::vector<std::string>& server_features() const { return server_features_; }

 private:
  std::map<std::tuple<IqScope, std::string, std::string>, IqHandler, std::less<>> handlers_;
  std::vector<std::string> server_features_;
};

}  // namespace parley
