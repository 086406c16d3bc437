// core/control/netstring.hpp - the control protocol's framing, shared by the server and
// parleyctl.
//
// A request is the command's argv, each argument a netstring ("<len>:<bytes>,", the
// length in decimal without leading zeros), followed by "\n". Netstrings let arguments
// hold any byte (spaces, newlines, a password with a comma) with no quoting rules.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "parley/result.hpp"

namespace parley::control {

// The largest request the server reads; also the bound on one netstring. import-user
// carries one account's XEP-0227 <user/> (a vCard photo, an offline queue: up to
// core/export's 16 MiB per user); the socket is the server user's own (0600).
inline constexpr size_t kMaxRequestBytes = 20 * 1024 * 1024;

// The whole input must be netstrings, nothing else (no trailing "\n").
Result<std::vector<std::string>, std::string> parse_netstrings(std::string_view input);
std::string encode_netstrings(const std::vector<std::string>& items);

// A request: encode_netstrings(argv) + "\n".
std::string encode_request(const std::vector<std::string>& argv);

enum class ScanStatus { incomplete, complete, malformed };
struct RequestScan {
  ScanStatus status = ScanStatus::incomplete;
  std::vector<std::string> args;  // when complete: at least one (the command name)
  std::string error;              // when malformed
};

// Looks at what arrived so far: a complete request (which must end the input), one that
// needs more bytes, or one that can never become valid.
RequestScan scan_request(std::string_view buffer);

}  // namespace parley::control
