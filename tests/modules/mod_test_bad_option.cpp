// mod_test_bad_option: declares a required string option `secret` (and an
// optional int `rounds`). Enabled without `secret`, with `secret` of another
// type, or with an undeclared key, the server must refuse to start and name
// the module and the option.
#include "parley/module.hpp"

namespace {

class ModTestBadOption : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    // The loader checked the declared options before start(); this is a backstop.
    if (!host().option_string("secret")) return parley::unexpected(std::string("option 'secret' is missing"));
    return {};
  }
};

}  // namespace

PARLEY_MODULE(ModTestBadOption, "mod_test_bad_option", "1.0.0",
              parley::required_option("secret", PARLEY_OPT_STRING), parley::option("rounds", PARLEY_OPT_INT))
