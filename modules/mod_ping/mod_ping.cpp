// mod_ping: XEP-0199 XMPP Ping. A client pings the server to check the stream
// is alive; the answer is an empty result.
#include "parley/module.hpp"

namespace {

constexpr const char* ns_ping = "urn:xmpp:ping";

class ModPing : public parley::Module {
 public:
  void on_ping(const parley::IqRequest& request) { host().route(parley::make_iq_result(request.iq())); }
};

}  // namespace

PARLEY_MODULE(ModPing, "mod_ping", "1.0.0",
              parley::iq_handler<&ModPing::on_ping>(PARLEY_IQ_SERVER, PARLEY_IQ_GET, ns_ping),
              parley::disco_feature(ns_ping))
