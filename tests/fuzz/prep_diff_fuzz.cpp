// libFuzzer target: the ASCII fast paths of the address preparation against
// libidn. The first byte picks the profile; the rest, folded to ASCII, is the
// part. Both paths must give the same prepared string or the same error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/addr/prep.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string part;
  part.reserve(size - 1);
  for (size_t i = 1; i < size; ++i) part += static_cast<char>(data[i] & 0x7F);
  using Prep = parley::Result<std::string, parley::JidError> (*)(std::string_view);
  Prep fast = &parley::nodeprep;
  Prep idn = &parley::detail::nodeprep_idn;
  switch (data[0] % 3) {
    case 1:
      fast = &parley::resourceprep;
      idn = &parley::detail::resourceprep_idn;
      break;
    case 2:
      fast = &parley::nameprep_domain;
      idn = &parley::detail::nameprep_domain_idn;
      break;
    default:
      break;
  }
  auto a = fast(part);
  auto b = idn(part);
  if (a.has_value() != b.has_value()) std::abort();
  if (a && *a != *b) std::abort();
  if (!a && a.error() != b.error()) std::abort();
  return 0;
}
