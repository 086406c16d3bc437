// mod_test_echo: answers iq get urn:parley:test:echo with its payload echoed.
#include "parley/module.hpp"

namespace {

class ModTestEcho : public parley::Module {
 public:
  void on_echo(const parley::IqRequest& request) {
    parley::Element reply = parley::make_iq_result(request.iq());
    if (auto payload = request.payload()) reply.add_child(payload->clone());
    host().route(std::move(reply));
    host().counter_add("echoes");
  }
};

}  // namespace

PARLEY_MODULE(ModTestEcho, "mod_test_echo", "1.0.0",
              parley::iq_handler<&ModTestEcho::on_echo>(PARLEY_IQ_SERVER, PARLEY_IQ_GET, "urn:parley:test:echo"),
              parley::disco_feature("urn:parley:test:echo"),
              parley::preauth_feature("<echo-before xmlns='urn:parley:test:echo'/>"),
              parley::session_feature("<echo-after xmlns='urn:parley:test:echo'/>"))
