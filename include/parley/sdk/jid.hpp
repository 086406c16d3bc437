// parley/sdk/jid.hpp - parley::Jid, the one XMPP address type of every module:
// parsed and prepared by the host's own rules (RFC 7622: nodeprep, nameprep
// with IDNA, resourceprep; host entry jid_prepare, ABI 1.1), so that a module
// compares addresses exactly as the core routes them. Modules keep no JID
// parser or UTF-8 validator of their own.
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#pragma once

#include <compare>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "parley/module.h"
#include "parley/result.hpp"
#include "parley/sdk/detail.hpp"
#include "parley/sdk/host.hpp"

namespace parley {

// Why an address was refused. An error is a value (a stanza answers it with
// jid-malformed); nothing here throws for bad input.
enum class JidError {
  empty,              // no text at all
  too_long,           // more raw bytes than three prepared parts can come from
  bad_utf8,           // not well-formed UTF-8 (overlong, surrogate, truncated)
  bad_localpart,      // '@' with nothing before it, or refused by nodeprep (or over 1023 bytes)
  bad_domainpart,     // empty, or refused by nameprep/IDNA (or over 1023 bytes)
  bad_resourcepart,   // '/' with nothing after it, or refused by resourceprep (or over 1023 bytes)
  unsupported,        // the host predates jid_prepare (ABI 1.0)
};

inline std::string_view jid_error_text(JidError e) noexcept {
  switch (e) {
    case JidError::empty: return "empty address";
    case JidError::too_long: return "address too long";
    case JidError::bad_utf8: return "address is not valid UTF-8";
    case JidError::bad_localpart: return "invalid localpart";
    case JidError::bad_domainpart: return "invalid domainpart";
    case JidError::bad_resourcepart: return "invalid resourcepart";
    case JidError::unsupported: return "the server cannot prepare addresses";
  }
  return "invalid address";
}

namespace detail {

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past
// U+10FFFF. Only used to say *why* the host refused an address.
inline bool valid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra;
    char32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr char32_t min_for[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_for[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

}  // namespace detail

// An XMPP address, always holding prepared (canonical) parts, so that
// comparing two Jids is comparing strings. Default-constructed: empty()
// (no domain), the "no address" value.
class Jid {
 public:
  // Any part longer than this (after preparation) is refused by the host.
  static constexpr std::size_t part_max_bytes = 1023;

  Jid() = default;

  // Parses and prepares `text` through the host (any thread). The first '/'
  // starts the resource, then the first '@' ends the localpart (RFC 7622 3.1).
  static Result<Jid, JidError> parse(const Host& host, std::string_view text) {
    if (text.empty()) return unexpected(JidError::empty);
    // The core's own bound: three parts whose preparation may shrink them
    // 4x, and the separators. Longer is refused before any host call.
    if (text.size() > 3 * 4 * part_max_bytes + 2) return unexpected(JidError::too_long);
    if (!host.supports(PARLEY_HOST_ENTRY_END(jid_prepare))) return unexpected(JidError::unsupported);
    detail::StringSink out;
    if (host.api()->jid_prepare(detail::to_c(text), out.sink()) == 1 && !out.failed)
      return split(out.take());
    return unexpected(why_refused(host, text));
  }

  // An address the server prepared already (a stanza's stamped 'from', an
  // event's jid(), a session's full JID, what full() gave): split only.
  // Never use it for text a client wrote.
  static Jid prepared(std::string_view canonical) { return split(canonical); }

  const std::string& local() const noexcept { return local_; }
  const std::string& domain() const noexcept { return domain_; }
  const std::string& resource() const noexcept { return resource_; }

  bool empty() const noexcept { return domain_.empty(); }
  bool has_local() const noexcept { return !local_.empty(); }
  bool has_resource() const noexcept { return !resource_.empty(); }
  bool is_bare() const noexcept { return resource_.empty(); }

  Jid bare() const {
    Jid b;
    b.local_ = local_;
    b.domain_ = domain_;
    return b;
  }
  // "local@domain" (or "domain").
  std::string bare_str() const {
    std::string s;
    s.reserve(local_.size() + 1 + domain_.size());
    if (!local_.empty()) s.append(local_).push_back('@');
    s += domain_;
    return s;
  }
  // "local@domain/resource", absent parts left out.
  std::string full() const {
    std::string s = bare_str();
    if (!resource_.empty()) s.append(1, '/').append(resource_);
    return s;
  }

  bool operator==(const Jid&) const = default;
  std::strong_ordering operator<=>(const Jid&) const = default;

 private:
  static Jid split(std::string_view text) {
    Jid jid;
    std::string_view rest = text;
    if (const std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
      jid.resource_ = std::string(rest.substr(slash + 1));
      rest = rest.substr(0, slash);
    }
    if (const std::size_t at = rest.find('@'); at != std::string_view::npos) {
      jid.local_ = std::string(rest.substr(0, at));
      rest = rest.substr(at + 1);
    }
    jid.domain_ = std::string(rest);
    return jid;
  }

  static bool host_accepts(const Host& host, std::string_view text) {
    detail::StringSink out;
    return host.api()->jid_prepare(detail::to_c(text), out.sink()) == 1;
  }

  // The host says only yes or no; the error path finds which part it refused
  // (the structure first, then each part through the host).
  static JidError why_refused(const Host& host, std::string_view text) {
    if (!detail::valid_utf8(text)) return JidError::bad_utf8;
    std::string_view rest = text;
    std::string_view resource;
    bool has_resource = false;
    if (const std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
      resource = rest.substr(slash + 1);
      rest = rest.substr(0, slash);
      has_resource = true;
    }
    std::string_view local;
    bool has_local = false;
    if (const std::size_t at = rest.find('@'); at != std::string_view::npos) {
      local = rest.substr(0, at);
      rest = rest.substr(at + 1);
      has_local = true;
    }
    if (has_local && local.empty()) return JidError::bad_localpart;
    if (rest.empty() || !host_accepts(host, rest)) return JidError::bad_domainpart;
    if (has_resource && resource.empty()) return JidError::bad_resourcepart;
    if (has_local && !host_accepts(host, text.substr(0, local.size() + 1 + rest.size())))
      return JidError::bad_localpart;
    return JidError::bad_resourcepart;
  }

  std::string local_;
  std::string domain_;
  std::string resource_;
};

// For unordered containers keyed by address.
struct JidHash {
  std::size_t operator()(const Jid& jid) const noexcept {
    const std::hash<std::string_view> h;
    std::size_t seed = h(jid.local());
    for (const std::string* part : {&jid.domain(), &jid.resource()})
      seed ^= h(*part) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
    return seed;
  }
};

}  // namespace parley
