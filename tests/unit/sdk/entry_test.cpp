// PARLEY_MODULE itself: the exported entry returns the generated def.
#include <doctest/doctest.h>

#include <cstring>

#include "parley/module.hpp"

namespace {
class Hello : public parley::Module {
 public:
  void on_hello(const parley::IqRequest&) {}
};
}  // namespace

PARLEY_MODULE(Hello, "mod_hello_entry", "1.2.3",
              parley::iq_handler<&Hello::on_hello>(PARLEY_IQ_SERVER, PARLEY_IQ_GET, "urn:hello"))

TEST_CASE("parley_module_entry returns the module's def") {
  parley_module_entry_fn entry = &parley_module_entry;
  const parley_module_def* def = entry();
  REQUIRE(def != nullptr);
  CHECK(std::strcmp(def->name, "mod_hello_entry") == 0);
  CHECK(def->iq_handler_count == 1);
  CHECK(def == entry());  // a static, the same every time
}
