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

// The largest request the server reads unless told otherwise (ControlServer::
// set_max_request_bytes: the server derives it from limits.max_account_part_bytes, since
// import-user carries one part of an account's XEP-0227 <user/>); also the default bound
// on one netstring. The socket is the server user's own (0600).
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
// needs more bytes, or one that can never become valid. A netstring longer than
// max_bytes can never become valid.
RequestScan scan_request(std::string_view buffer, size_t max_bytes = kMaxRequestBytes);

// One netstring at `pos` of what arrived so far: complete (value, and next: the position
// after its ','), incomplete (more bytes may complete it) or malformed (error). The pieces
// of a streamed answer are read with it (see control_server.hpp).
struct NetstringScan {
  ScanStatus status = ScanStatus::incomplete;
  std::string value;
  size_t next = 0;
  std::string error;
};
NetstringScan scan_netstring(std::string_view buffer, size_t pos, size_t max_bytes = kMaxRequestBytes);

}  // namespace parley::control
