#include "core/addr/prep.hpp"

#include <arpa/inet.h>
#include <idna.h>
#include <stringprep.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>

#include "core/addr/utf8.hpp"

namespace parley {
namespace {

// Preparation can shrink a string (mapping to nothing, composition), so the raw
// input may exceed 1023 bytes; past this it cannot be legitimate and we refuse it
// before handing it to libidn.
constexpr size_t kRawPartMaxBytes = 4 * kJidPartMaxBytes;
constexpr size_t kLabelMaxOctets = 63;

struct CodePointRange {
  char32_t first;
  char32_t last;
};

constexpr CodePointRange kLocalpartDisallowed[] = {
#include "core/addr/localpart_disallowed.inc"
};

bool localpart_disallowed(char32_t cp) {
  const auto* end = std::end(kLocalpartDisallowed);
  const auto* it = std::upper_bound(std::begin(kLocalpartDisallowed), end, cp,
                                    [](char32_t c, const CodePointRange& r) { return c < r.first; });
  if (it == std::begin(kLocalpartDisallowed)) return false;
  --it;
  return cp <= it->last;
}

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};
using CString = std::unique_ptr<char, FreeDeleter>;

std::optional<std::string> run_stringprep_once(std::string_view in, const char* profile,
                                               Stringprep_profile_flags flags) {
  const std::string z(in);
  char* raw = nullptr;
  const int rc = stringprep_profile(z.c_str(), &raw, profile, flags);
  CString out(raw);
  if (rc != STRINGPREP_OK || !out) return std::nullopt;
  return std::string(out.get());
}

bool has_non_ascii(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

// The prepared form, refused (nullopt) when preparing it again would change it.
// libidn's NFKC is not idempotent for the PR-29 class (Unicode Corrigendum #5):
// it composes a Hangul L+V pair across a combining mark and leaves the marks
// out of canonical order, so U+1100 U+0301 U+1161 U+0323 prepares to U+AC00
// U+0301 U+0323 and that to U+AC00 U+0323 U+0301. A string whose preparation is
// not stable would name one account or resource on one path and another on
// the next (a bind, then the 'to' of a stanza to it), so it names nothing.
// Prepared ASCII is stable: the second pass is only paid for the rest.
std::optional<std::string> run_stringprep(std::string_view in, const char* profile,
                                          Stringprep_profile_flags flags) {
  auto once = run_stringprep_once(in, profile, flags);
  if (!once || !has_non_ascii(*once)) return once;
  auto twice = run_stringprep_once(*once, profile, flags);
  if (!twice || *twice != *once) return std::nullopt;
  return once;
}

void ascii_lower(std::string& s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
}

bool starts_with_ace_prefix(std::string_view label) {
  return label.size() >= 4 && label.substr(0, 4) == "xn--";
}

// IDNA2003 treats these as label separators too; a U-label holding one would be
// split differently when parsed again.
bool contains_dot_like(std::string_view utf8) {
  static constexpr std::string_view kDots[] = {"\xE3\x80\x82", "\xEF\xBC\x8E", "\xEF\xBD\xA1"};
  return std::any_of(std::begin(kDots), std::end(kDots),
                     [&](std::string_view d) { return utf8.find(d) != std::string_view::npos; });
}

bool is_ip_literal(std::string_view d) {
  if (d.front() == '[') {
    if (d.size() < 3 || d.back() != ']') return false;
    const std::string inner(d.substr(1, d.size() - 2));
    in6_addr a6;
    return inet_pton(AF_INET6, inner.c_str(), &a6) == 1;
  }
  // inet_pton(AF_INET) takes dotted decimal only: anything else is a name
  // (and the common case, so it costs no copy).
  if (d.find_first_not_of("0123456789.") != std::string_view::npos) return false;
  const std::string s(d);
  in_addr a4;
  return inet_pton(AF_INET, s.c_str(), &a4) == 1;
}

// Turns one lower-case A-label back into its U-label; nullopt for a fake A-label
// (libidn returns such a label unchanged instead of failing).
std::optional<std::string> a_label_to_u_label(const std::string& label) {
  char* raw = nullptr;
  const int rc = idna_to_unicode_8z8z(label.c_str(), &raw, IDNA_USE_STD3_ASCII_RULES);
  CString out(raw);
  if (rc != IDNA_SUCCESS || !out) return std::nullopt;
  std::string u(out.get());
  if (u == label || starts_with_ace_prefix(u) || contains_dot_like(u)) return std::nullopt;
  if (!is_clean_utf8(u)) return std::nullopt;
  return u;
}

// ---- ASCII fast paths ----
// What libidn's profiles do to ASCII input, without libidn (its profiles copy,
// convert to UCS-4 and normalize every string): addresses are ASCII nearly
// always, and every stanza's 'to' is prepared. Each gives exactly what the
// libidn path gives, value or error (tests/unit/core/addr/prep_ascii_test.cpp
// tries every ASCII character in every place; tests/fuzz/prep_diff_fuzz.cpp
// compares the two on any ASCII input).

// Nodeprep on ASCII: B.2 folds A-Z, NFKC changes nothing; prohibited are the
// space (C.1.1), the controls (C.2.1) and Nodeprep's own " & ' / : < > @.
bool nodeprep_refuses_ascii(unsigned char c) {
  switch (c) {
    case '"': case '&': case '\'': case '/': case ':': case '<': case '>': case '@':
      return true;
    default:
      return c <= 0x20 || c == 0x7F;
  }
}

Result<std::string, JidError> nodeprep_ascii(std::string_view in) {
  std::string out(in);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (nodeprep_refuses_ascii(u)) return unexpected(JidError::bad_localpart);
    if (u >= 'A' && u <= 'Z') c = static_cast<char>(u - 'A' + 'a');
  }
  if (out.size() > kJidPartMaxBytes) return unexpected(JidError::too_long);
  return out;
}

// Resourceprep on ASCII: no folding, NFKC changes nothing, the space is
// allowed; prohibited are the controls (C.2.1), NUL included.
Result<std::string, JidError> resourceprep_ascii(std::string_view in) {
  for (char c : in) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return unexpected(JidError::bad_resourcepart);
  }
  if (in.size() > kJidPartMaxBytes) return unexpected(JidError::too_long);
  return std::string(in);
}

// A name (not an IP literal) of ASCII labels: IDNA2003's ToASCII leaves an
// ASCII label as it is (RFC 3490 §4.1 step 1 skips Nameprep) and checks the
// STD3 rules: letters, digits and hyphens, no hyphen first or last, 1..63
// octets. An A-label ("xn--") is left to the libidn path (it is turned into its
// U-label): nullopt.
std::optional<Result<std::string, JidError>> domain_ascii(std::string_view in) {
  std::string out(in);
  ascii_lower(out);
  size_t pos = 0;
  while (true) {
    const size_t dot = out.find('.', pos);
    const std::string_view label =
        std::string_view(out).substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (label.empty() || label.size() > kLabelMaxOctets || label.front() == '-' || label.back() == '-')
      return unexpected(JidError::bad_domainpart);
    if (starts_with_ace_prefix(label)) return std::nullopt;
    for (char c : label)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return unexpected(JidError::bad_domainpart);
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  if (out.size() > kJidPartMaxBytes) return unexpected(JidError::too_long);
  return out;
}

}  // namespace

Result<std::string, JidError> nodeprep(std::string_view in) {
  if (!in.empty() && in.size() <= kRawPartMaxBytes && !has_non_ascii(in)) return nodeprep_ascii(in);
  return detail::nodeprep_idn(in);
}

Result<std::string, JidError> resourceprep(std::string_view in) {
  if (!in.empty() && in.size() <= kRawPartMaxBytes && !has_non_ascii(in)) return resourceprep_ascii(in);
  return detail::resourceprep_idn(in);
}

Result<std::string, JidError> detail::nodeprep_idn(std::string_view in) {
  if (in.empty()) return unexpected(JidError::bad_localpart);
  if (in.size() > kRawPartMaxBytes) return unexpected(JidError::too_long);
  const auto cps = utf8_decode(in);
  if (!cps) return unexpected(JidError::bad_localpart);
  for (char32_t cp : *cps) {
    if (cp == 0 || (cp >= 0x80 && localpart_disallowed(cp))) {
      return unexpected(JidError::bad_localpart);
    }
  }
  auto out = run_stringprep(in, "Nodeprep", STRINGPREP_NO_UNASSIGNED);
  if (!out || out->empty()) return unexpected(JidError::bad_localpart);
  if (out->size() > kJidPartMaxBytes) return unexpected(JidError::too_long);
  return std::move(*out);
}

Result<std::string, JidError> detail::resourceprep_idn(std::string_view in) {
  if (in.empty()) return unexpected(JidError::bad_resourcepart);
  if (in.size() > kRawPartMaxBytes) return unexpected(JidError::too_long);
  if (!is_clean_utf8(in)) return unexpected(JidError::bad_resourcepart);
  auto out = run_stringprep(in, "Resourceprep", Stringprep_profile_flags{});
  if (!out || out->empty()) return unexpected(JidError::bad_resourcepart);
  if (out->size() > kJidPartMaxBytes) return unexpected(JidError::too_long);
  return std::move(*out);
}

namespace {

Result<std::string, JidError> nameprep_domain_once(std::string_view in, bool fast) {
  if (in.size() > kRawPartMaxBytes) return unexpected(JidError::too_long);
  if (!in.empty() && in.back() == '.') in.remove_suffix(1);
  if (in.empty()) return unexpected(JidError::bad_domainpart);
  if (!is_clean_utf8(in)) return unexpected(JidError::bad_domainpart);
  if (is_ip_literal(in)) {
    if (in.size() > kJidPartMaxBytes) return unexpected(JidError::too_long);
    return std::string(in);
  }
  if (in.front() == '[') return unexpected(JidError::bad_domainpart);
  if (fast && !has_non_ascii(in))
    if (auto done = domain_ascii(in)) return std::move(*done);

  const std::string z(in);
  char* raw = nullptr;
  const int rc = idna_to_ascii_8z(z.c_str(), &raw, IDNA_USE_STD3_ASCII_RULES);
  CString ascii_c(raw);
  if (rc != IDNA_SUCCESS || !ascii_c) return unexpected(JidError::bad_domainpart);
  std::string ascii(ascii_c.get());
  ascii_lower(ascii);

  std::string out;
  out.reserve(ascii.size());
  size_t pos = 0;
  while (true) {
    const size_t dot = ascii.find('.', pos);
    const std::string label = ascii.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (label.empty() || label.size() > kLabelMaxOctets) return unexpected(JidError::bad_domainpart);
    if (!out.empty()) out.push_back('.');
    if (starts_with_ace_prefix(label)) {
      const auto u = a_label_to_u_label(label);
      if (!u) return unexpected(JidError::bad_domainpart);
      out += *u;
    } else {
      out += label;
    }
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  if (out.size() > kJidPartMaxBytes) return unexpected(JidError::too_long);
  return out;
}

Result<std::string, JidError> nameprep_domain_twice(std::string_view in, bool fast) {
  auto once = nameprep_domain_once(in, fast);
  if (!once || !has_non_ascii(*once)) return once;
  // As run_stringprep: Nameprep has the same NFKC, and a domain that prepares
  // differently a second time would not name one host.
  auto twice = nameprep_domain_once(*once, fast);
  if (!twice || *twice != *once) return unexpected(JidError::bad_domainpart);
  return once;
}

}  // namespace

Result<std::string, JidError> nameprep_domain(std::string_view in) { return nameprep_domain_twice(in, true); }

Result<std::string, JidError> detail::nameprep_domain_idn(std::string_view in) {
  return nameprep_domain_twice(in, false);
}

}  // namespace parley
