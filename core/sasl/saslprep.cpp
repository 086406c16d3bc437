#include "core/sasl/saslprep.hpp"

#include <stringprep.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "core/addr/utf8.hpp"

namespace parley::sasl {

namespace {

Result<std::string, std::string> saslprep_once(std::string_view text) {
  const std::string z(text);
  char* raw = nullptr;
  const int rc = stringprep_profile(z.c_str(), &raw, "SASLprep", STRINGPREP_NO_UNASSIGNED);
  std::unique_ptr<char, decltype(&std::free)> out(raw, &std::free);
  if (rc != STRINGPREP_OK || !out) return unexpected(std::string(stringprep_strerror(static_cast<Stringprep_rc>(rc))));
  return std::string(out.get());
}

}  // namespace

Result<std::string, std::string> saslprep(std::string_view text) {
  if (!is_clean_utf8(text)) return unexpected(std::string("not UTF-8, or contains NUL"));
  auto once = saslprep_once(text);
  if (!once) return once;
  bool ascii = std::all_of(once->begin(), once->end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) return once;
  // libidn's NFKC is not idempotent for the PR-29 sequences (see
  // core/addr/prep.cpp): a password whose preparation is not stable would
  // verify on one path and not on another, so it is refused everywhere.
  auto twice = saslprep_once(*once);
  if (!twice || *twice != *once) return unexpected(std::string("preparation is not stable (PR-29 sequence)"));
  return once;
}

}  // namespace parley::sasl
