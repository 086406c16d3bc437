#include "core/sasl/saslprep.hpp"

#include <stringprep.h>

#include <cstdlib>
#include <memory>

#include "core/addr/utf8.hpp"

namespace parley::sasl {

Result<std::string, std::string> saslprep(std::string_view text) {
  if (!is_clean_utf8(text)) return unexpected(std::string("not UTF-8, or contains NUL"));
  const std::string z(text);
  char* raw = nullptr;
  const int rc = stringprep_profile(z.c_str(), &raw, "SASLprep", STRINGPREP_NO_UNASSIGNED);
  std::unique_ptr<char, decltype(&std::free)> out(raw, &std::free);
  if (rc != STRINGPREP_OK || !out) return unexpected(std::string(stringprep_strerror(static_cast<Stringprep_rc>(rc))));
  return std::string(out.get());
}

}  // namespace parley::sasl
