#include "core/control/netstring.hpp"

#include <utility>

namespace parley::control {

namespace {

constexpr size_t kMaxLengthDigits = 10;

using One = NetstringScan;

One malformed(std::string why) {
  One r;
  r.status = ScanStatus::malformed;
  r.error = std::move(why);
  return r;
}

One parse_one(std::string_view in, size_t pos, size_t max_bytes = kMaxRequestBytes) {
  size_t digits_start = pos;
  size_t length = 0;
  while (pos < in.size() && in[pos] >= '0' && in[pos] <= '9') {
    if (pos - digits_start == kMaxLengthDigits) return malformed("netstring length too long");
    length = length * 10 + static_cast<size_t>(in[pos] - '0');
    ++pos;
  }
  size_t digits = pos - digits_start;
  if (pos == in.size()) return One{};  // more digits or the ':' may follow
  if (digits == 0) return malformed("expected a netstring length");
  if (digits > 1 && in[digits_start] == '0') return malformed("netstring length with a leading zero");
  if (in[pos] != ':') return malformed("expected ':' after a netstring length");
  if (length > max_bytes) return malformed("netstring too long");
  ++pos;
  if (in.size() - pos < length + 1) return One{};
  if (in[pos + length] != ',') return malformed("expected ',' after a netstring");
  One r;
  r.status = ScanStatus::complete;
  r.value = std::string(in.substr(pos, length));
  r.next = pos + length + 1;
  return r;
}

}  // namespace

Result<std::vector<std::string>, std::string> parse_netstrings(std::string_view input) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < input.size()) {
    One one = parse_one(input, pos);
    if (one.status == ScanStatus::malformed) return unexpected(std::move(one.error));
    if (one.status == ScanStatus::incomplete) return unexpected(std::string("truncated netstring"));
    out.push_back(std::move(one.value));
    pos = one.next;
  }
  return out;
}

std::string encode_netstrings(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    out += std::to_string(item.size());
    out += ':';
    out += item;
    out += ',';
  }
  return out;
}

std::string encode_request(const std::vector<std::string>& argv) { return encode_netstrings(argv) + "\n"; }

NetstringScan scan_netstring(std::string_view buffer, size_t pos, size_t max_bytes) {
  return parse_one(buffer, pos, max_bytes);
}

RequestScan scan_request(std::string_view buffer, size_t max_bytes) {
  RequestScan scan;
  size_t pos = 0;
  for (;;) {
    if (pos == buffer.size()) {
      scan.status = ScanStatus::incomplete;
      scan.args.clear();
      return scan;
    }
    if (buffer[pos] == '\n') {
      if (pos + 1 != buffer.size()) {
        scan.status = ScanStatus::malformed;
        scan.error = "data after the end of the request";
      } else if (scan.args.empty()) {
        scan.status = ScanStatus::malformed;
        scan.error = "empty request";
      } else {
        scan.status = ScanStatus::complete;
        return scan;
      }
      scan.args.clear();
      return scan;
    }
    One one = parse_one(buffer, pos, max_bytes);
    if (one.status != ScanStatus::complete) {
      scan.status = one.status;
      scan.error = std::move(one.error);
      scan.args.clear();
      return scan;
    }
    scan.args.push_back(std::move(one.value));
    pos = one.next;
  }
}

}  // namespace parley::control
