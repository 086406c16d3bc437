// mod_hello: a third-party Parley module. Answers
//   <iq type='get' to='example.org'><hello xmlns='urn:example:hello'/></iq>
// with <hello xmlns='urn:example:hello'>GREETING</hello>, GREETING being the
// `greeting` option (default "hello"), counts the greetings, and adds its
// namespace to the server's disco#info features.
#include <string>

#include <parley/module.hpp>

namespace {

constexpr const char* ns_hello = "urn:example:hello";

class ModHello : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    greeting_ = host().option_string("greeting").value_or("hello");
    if (greeting_.empty()) return parley::unexpected(std::string("greeting must not be empty"));
    host().info("mod_hello started for " + host().module_host() + ", greeting '" + greeting_ + "'");
    return {};
  }

  void on_hello(const parley::IqRequest& request) {
    parley::Element reply = parley::make_iq_result(request.iq());
    reply.add_child("hello", ns_hello).add_text(greeting_);
    host().route(std::move(reply));
    host().counter_add("greetings");
  }

 private:
  std::string greeting_;
};

}  // namespace

PARLEY_MODULE(ModHello, "mod_hello", "1.0.0",
              parley::option("greeting", PARLEY_OPT_STRING),
              parley::iq_handler<&ModHello::on_hello>(PARLEY_IQ_SERVER, PARLEY_IQ_GET, ns_hello),
              parley::disco_feature(ns_hello))
