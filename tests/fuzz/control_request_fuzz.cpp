// libFuzzer target: the control socket's request framing (core/control/netstring.hpp).
// Beyond "no crash": a complete request is canonical (re-encoding its argv gives the same
// bytes), every malformed one says why, and parse_netstrings round-trips what it accepts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/control/netstring.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace parley::control;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  RequestScan scan = scan_request(in);
  switch (scan.status) {
    case ScanStatus::complete:
      if (scan.args.empty() || encode_request(scan.args) != in) std::abort();
      break;
    case ScanStatus::malformed:
      if (scan.error.empty() || !scan.args.empty()) std::abort();
      break;
    case ScanStatus::incomplete:
      if (!scan.args.empty()) std::abort();
      break;
  }
  auto parsed = parse_netstrings(in);
  if (parsed && encode_netstrings(*parsed) != in) std::abort();
  return 0;
}
