#include "blocking_jid.hpp"

#include <cstddef>

namespace mod_blocking {

namespace {

constexpr std::size_t part_max_bytes = 1023;  // RFC 7622 §3.2-§3.4
constexpr std::size_t label_max_bytes = 63;

// Well-formed UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    char32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr char32_t min_for[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_for[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

void ascii_lower(std::string& s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
}

bool ascii_control(unsigned char c) { return c < 0x20 || c == 0x7F; }

// Nodeprep's prohibited ASCII (RFC 3920 Appendix A.5 and the controls).
bool valid_local(std::string_view s) {
  if (s.empty() || s.size() > part_max_bytes || !valid_utf8(s)) return false;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (ascii_control(c) || c == ' ') return false;
    switch (c) {
      case '"': case '&': case '\'': case '/': case ':': case '<': case '>': case '@':
        return false;
      default:
        break;
    }
  }
  return true;
}

bool valid_resource(std::string_view s) {
  if (s.empty() || s.size() > part_max_bytes || !valid_utf8(s)) return false;
  for (char ch : s)
    if (ascii_control(static_cast<unsigned char>(ch))) return false;
  return true;
}

bool valid_ip6_literal(std::string_view s) {
  if (s.size() < 4 || s.front() != '[' || s.back() != ']') return false;
  std::string_view inner = s.substr(1, s.size() - 2);
  bool colon = false;
  for (char c : inner) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (c == ':') colon = true;
    else if (!hex && c != '.') return false;
  }
  return colon;
}

// STD3 rules for ASCII labels (letters, digits, hyphen, no hyphen at either
// end); a label with non-ASCII characters is an IDN label, accepted as UTF-8.
bool valid_domain(std::string_view s) {
  if (s.empty() || s.size() > part_max_bytes || !valid_utf8(s)) return false;
  if (s.front() == '[') return valid_ip6_literal(s);
  std::size_t start = 0;
  while (true) {
    std::size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > label_max_bytes) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char ch : label) {
      auto c = static_cast<unsigned char>(ch);
      if (c >= 0x80) continue;
      bool ldh = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ldh) return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

}  // namespace

std::string BlockJid::bare() const { return has_local() ? local + "@" + domain : domain; }

std::string BlockJid::full() const { return has_resource() ? bare() + "/" + resource : bare(); }

std::optional<BlockJid> parse_jid(std::string_view text) {
  if (text.empty() || text.size() > 3 * part_max_bytes + 2) return std::nullopt;
  std::string_view rest = text;
  BlockJid jid;
  if (std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view resource = rest.substr(slash + 1);
    if (!valid_resource(resource)) return std::nullopt;
    jid.resource = std::string(resource);
    rest = rest.substr(0, slash);
  }
  if (std::size_t at = rest.find('@'); at != std::string_view::npos) {
    std::string_view local = rest.substr(0, at);
    if (!valid_local(local)) return std::nullopt;
    jid.local = std::string(local);
    ascii_lower(jid.local);
    rest = rest.substr(at + 1);
  }
  if (!rest.empty() && rest.back() == '.') rest.remove_suffix(1);  // RFC 7622 §3.2: the root label
  if (!valid_domain(rest)) return std::nullopt;
  jid.domain = std::string(rest);
  ascii_lower(jid.domain);
  return jid;
}

std::vector<std::string> match_forms(const BlockJid& address) {
  std::vector<std::string> forms;
  if (address.has_local() && address.has_resource()) forms.push_back(address.full());
  if (address.has_local()) forms.push_back(address.bare());
  if (address.has_resource()) forms.push_back(address.domain + "/" + address.resource);
  forms.push_back(address.domain);
  bool ip_literal = address.domain.front() == '[' ||
                    address.domain.find_first_not_of("0123456789.") == std::string::npos;
  if (!ip_literal) {
    for (std::size_t dot = address.domain.find('.'); dot != std::string::npos;
         dot = address.domain.find('.', dot + 1))
      forms.push_back(address.domain.substr(dot + 1));
  }
  return forms;
}

bool item_blocks(std::string_view item, const BlockJid& address) {
  for (const std::string& form : match_forms(address))
    if (form == item) return true;
  return false;
}

}  // namespace mod_blocking
