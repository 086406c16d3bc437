// mod_test_throws: throws from a hook (messages whose body is "throw") and
// from an iq handler (urn:parley:test:throws). The server must log it, answer
// internal-server-error where a stanza is being handled, and keep running.
#include <stdexcept>

#include "parley/module.hpp"

namespace {

class ModTestThrows : public parley::Module {
 public:
  parley::Outcome on_stanza(const parley::Event& event) {
    auto stanza = event.stanza();
    if (stanza && stanza->name() == "message" && stanza->child_text("body") == "throw")
      throw std::runtime_error("mod_test_throws: asked to throw by a message");
    return parley::Outcome::pass;
  }
  parley::Outcome on_iq(const parley::IqRequest&) { throw std::runtime_error("mod_test_throws: asked to throw by an iq"); }
};

}  // namespace

PARLEY_MODULE(ModTestThrows, "mod_test_throws", "1.0.0",
              parley::hook<&ModTestThrows::on_stanza>(PARLEY_EVENT_STANZA_IN, 50),
              parley::iq_handler<&ModTestThrows::on_iq>(PARLEY_IQ_SERVER, PARLEY_IQ_GET | PARLEY_IQ_SET,
                                                        "urn:parley:test:throws"))
