#include "jid_prep.hpp"

#include <cstddef>

namespace mod_roster {

namespace {

constexpr std::size_t kPartMax = 1023;

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra = 0;
    unsigned min = 0;
    unsigned cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, min = 0x10000, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

void fold_ascii(std::string& s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
}

bool ascii_control_or_space(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u <= 0x20 || u == 0x7F;
}

bool valid_local(std::string_view s) {
  if (s.empty() || s.size() > kPartMax) return false;
  for (char c : s) {
    // RFC 7622 3.3.1: these are not allowed in a localpart.
    if (ascii_control_or_space(c)) return false;
    switch (c) {
      case '"': case '&': case '\'': case '/': case ':': case '<': case '>': case '@':
        return false;
      default:
        break;
    }
  }
  return true;
}

bool valid_domain(std::string_view s) {
  if (s.empty() || s.size() > kPartMax) return false;
  if (s.front() == '[') return s.back() == ']' && s.size() > 2;  // IPv6 literal
  std::size_t label = 0;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    ++label;
    if (u >= 0x80) continue;  // an IDN U-label: kept as sent
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_';
    if (!ok) return false;
  }
  return label > 0;
}

bool valid_resource(std::string_view s) {
  if (s.empty() || s.size() > kPartMax) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return false;
  }
  return true;
}

}  // namespace

std::optional<PreparedJid> prepare_jid(std::string_view text) {
  if (text.empty() || !valid_utf8(text)) return std::nullopt;
  PreparedJid jid;
  std::string_view rest = text;
  const auto slash = rest.find('/');
  if (slash != std::string_view::npos) {
    jid.resource = std::string(rest.substr(slash + 1));
    if (!valid_resource(jid.resource)) return std::nullopt;
    rest = rest.substr(0, slash);
  }
  const auto at = rest.find('@');
  if (at != std::string_view::npos) {
    jid.local = std::string(rest.substr(0, at));
    if (!valid_local(jid.local)) return std::nullopt;
    rest = rest.substr(at + 1);
  }
  // RFC 7622 3.2: one trailing dot is not part of the domain.
  if (!rest.empty() && rest.back() == '.') rest.remove_suffix(1);
  jid.domain = std::string(rest);
  if (!valid_domain(jid.domain)) return std::nullopt;
  fold_ascii(jid.local);
  fold_ascii(jid.domain);
  return jid;
}

}  // namespace mod_roster
