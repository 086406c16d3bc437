// mod_ping: XEP-0199 XMPP Ping. A client pings the server to check the stream
// is alive; the answer is an empty result.
#include "parley/module.hpp"

namespace {

constexpr const char* ns_ping = "urn:xmpp:ping";

class ModPing : public parley::Module {
 public:
  void on_ping(const parley::IqRequest& request) { host().route(parley::make_iq_result(request.iq())); }

  // A ping without 'to', or to the sender's own bare JID, is for the account:
  // the server answers on its behalf (RFC 6120 §10.3.3, RFC 6121 §8.5.2).
  // Another account's bare JID gets service-unavailable, which is also what a
  // ping to an account that does not exist gets (RFC 6121 §8.5.1): answering
  // those would tell anyone which accounts exist. XEP-0199 pings a client at
  // its full JID, which the core delivers to that resource.
  void on_account_ping(const parley::IqRequest& request) {
    if (parley::bare_jid(request.from()) != parley::bare_jid(request.to()))
      return host().bounce(request.iq(), "service-unavailable");
    host().route(parley::make_iq_result(request.iq()));
  }
};

}  // namespace

PARLEY_MODULE(ModPing, "mod_ping", "1.1.0",
              parley::iq_handler<&ModPing::on_ping>(PARLEY_IQ_SERVER, PARLEY_IQ_GET, ns_ping),
              parley::iq_handler<&ModPing::on_account_ping>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET, ns_ping),
              parley::disco_feature(ns_ping))
