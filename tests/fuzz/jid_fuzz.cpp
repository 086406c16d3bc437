// libFuzzer target: JID parsing. Beyond "no crash", a parsed JID must be a fixed
// point: its canonical string parses back to the same JID, and rebuilding it from
// its parts gives it again (otherwise two spellings could address different
// sessions, or a stored roster item could fail to match its own contact).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/addr/jid.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto jid = parley::Jid::parse(text);
  if (!jid) return 0;

  const std::string full = jid->full();
  auto again = parley::Jid::parse(full);
  if (!again || !(*again == *jid) || again->full() != full) std::abort();

  auto made = parley::Jid::make(jid->local(), jid->domain(), jid->resource());
  if (!made || !(*made == *jid)) std::abort();

  if (jid->bare().full() != jid->bare_str() || jid->domain().empty()) std::abort();
  if (parley::JidHash{}(*again) != parley::JidHash{}(*jid)) std::abort();
  return 0;
}
