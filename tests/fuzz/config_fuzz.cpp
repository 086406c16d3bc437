// libFuzzer target: parley.yml from arbitrary bytes. No crash, no exception escaping,
// and every error carries a reason.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = parley::config::load_config_string(text, "fuzz.yml");
  if (!r) {
    if (r.error().reason.empty() || r.error().line < 0 || r.error().column < 0) std::abort();
    (void)r.error().to_string();
  } else {
    // A loaded configuration honours its invariants.
    if (r->hosts.empty() || r->listen.empty()) std::abort();
    for (const auto& l : r->listen) if (l.port == 0) std::abort();
  }
  return 0;
}
