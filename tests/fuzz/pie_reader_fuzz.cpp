// libFuzzer target: XEP-0227 documents (core/export/pie_reader.hpp), as parleyctl import
// and the control socket's import-user read them. Beyond "no crash": the first byte picks
// the chunk size (1-64) the rest is fed in, and the users and the outcome must not depend
// on the cut; every user read serializes and reads back to the same element. Its top bit
// turns on parts (PieLimits::part_bytes, 512): where a user is cut into parts must not
// depend on the chunks either.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/export/pie_reader.hpp"
#include "xml/serializer.hpp"

namespace {

struct Outcome {
  std::vector<std::string> users;  // host, name, serialized element
  bool ok = false;
  std::string error;
};

Outcome run(std::string_view doc, size_t chunk, size_t part_bytes = 0) {
  Outcome out;
  parley::pie::PieLimits limits;
  limits.max_user_bytes = 4096;
  limits.max_depth = 16;
  limits.part_bytes = part_bytes;
  uint32_t next_part = 0;
  parley::pie::PieReader reader(
      [&](parley::pie::PieUser&& u) {
        // Parts of one user come numbered in order, the last one marked.
        if (u.part != next_part) std::abort();
        next_part = u.last ? 0 : next_part + 1;
        out.users.push_back(u.host + "\n" + u.name + "\n" + parley::xml::serialize(u.user));
        return true;
      },
      limits);
  bool ok = true;
  for (size_t at = 0; ok && at < doc.size(); at += chunk) {
    auto r = reader.feed(doc.substr(at, chunk));
    if (!r) {
      ok = false;
      out.error = r.error().message;
    }
  }
  if (ok) {
    auto r = reader.finish();
    if (!r) {
      ok = false;
      out.error = r.error().message;
    }
  }
  out.ok = ok;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t chunk = 1 + data[0] % 64;
  size_t part_bytes = (data[0] & 0x80) ? 512 : 0;
  std::string_view doc(reinterpret_cast<const char*>(data) + 1, size - 1);
  Outcome whole = run(doc, doc.size() + 1, part_bytes);
  Outcome cut = run(doc, chunk, part_bytes);
  // Expat reports some errors at a different point when input is cut; the users
  // delivered before the first error and the verdict must agree.
  if (whole.ok != cut.ok) std::abort();
  if (whole.ok && whole.users != cut.users) std::abort();
  // A user read back from its serialization is the same user.
  for (const std::string& u : whole.users) {
    size_t a = u.find('\n'), b = u.find('\n', a + 1);
    std::string host = u.substr(0, a), name = u.substr(a + 1, b - a - 1), xml = u.substr(b + 1);
    std::string escaped;
    parley::xml::escape_attr_to(escaped, host);
    std::string again = "<server-data xmlns='urn:xmpp:pie:0'><host jid='" + escaped + "'>" + xml + "</host></server-data>";
    Outcome back = run(again, again.size() + 1);
    if (!back.ok || back.users.size() != 1 || back.users[0] != u) std::abort();
  }
  return 0;
}
