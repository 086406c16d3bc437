#include "core/config/names.hpp"

#include <arpa/inet.h>

namespace parley::config {

std::optional<std::string> normalize_domain(std::string_view name, std::string& why) {
  if (name.empty()) return why = "is empty", std::nullopt;
  if (name.size() > 253) return why = "is longer than 253 characters", std::nullopt;
  if (name.back() == '.') return why = "must not end with a dot", std::nullopt;
  std::string out;
  out.reserve(name.size());
  size_t label = 0;
  for (size_t i = 0; i < name.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (c >= 0x80) {
      why = "contains non-ASCII characters; write an internationalized name in its A-label (xn--) form";
      return std::nullopt;
    }
    if (c == '.') {
      if (label == 0) return why = "has an empty label", std::nullopt;
      if (out.back() == '-') return why = "has a label ending with '-'", std::nullopt;
      label = 0;
      out += '.';
      continue;
    }
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return why = std::string("contains the character '") + static_cast<char>(c) + "'", std::nullopt;
    if (c == '-' && label == 0) return why = "has a label starting with '-'", std::nullopt;
    if (++label > 63) return why = "has a label longer than 63 characters", std::nullopt;
    out += static_cast<char>(c);
  }
  if (out.back() == '-') return why = "has a label ending with '-'", std::nullopt;
  return out;
}

std::optional<std::string> normalize_ip(std::string_view ip) {
  if (ip.empty() || ip.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  const std::string s(ip);
  char text[INET6_ADDRSTRLEN];
  unsigned char bin[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, s.c_str(), bin) == 1) {
    if (!inet_ntop(AF_INET, bin, text, sizeof text)) return std::nullopt;
    return std::string(text);
  }
  if (inet_pton(AF_INET6, s.c_str(), bin) == 1) {
    if (!inet_ntop(AF_INET6, bin, text, sizeof text)) return std::nullopt;
    return std::string(text);
  }
  return std::nullopt;
}

bool is_wildcard_ip(std::string_view ip) { return ip == "0.0.0.0" || ip == "::"; }

bool is_ipv6(std::string_view ip) { return ip.find(':') != std::string_view::npos; }

bool is_module_name(std::string_view name) {
  if (name.size() <= 4 || name.substr(0, 4) != "mod_") return false;
  for (char c : name.substr(4)) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace parley::config
