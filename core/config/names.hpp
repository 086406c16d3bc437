// core/config/names.hpp - syntax checks for the names a configuration holds.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace parley::config {

// A host name as served: ASCII letters, digits and hyphens in dot-separated labels of 1..63,
// at most 253 in all, lowercased on the way. Internationalized names must be given in their
// A-label (xn--) form. Returns the lowercased name, or nullopt with `why` set.
std::optional<std::string> normalize_domain(std::string_view name, std::string& why);

// An IPv4 or IPv6 address literal (no brackets, no zone, no port) in its canonical text
// form ("0:0::1" -> "::1"), or nullopt.
std::optional<std::string> normalize_ip(std::string_view ip);

// True for 0.0.0.0 and ::, which overlap every other address of their family on a port.
bool is_wildcard_ip(std::string_view canonical_ip);
bool is_ipv6(std::string_view canonical_ip);

// mod_[a-z0-9_]+
bool is_module_name(std::string_view name);

}  // namespace parley::config
