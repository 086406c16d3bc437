// The BOSH <body/> wrapper (XEP-0124 §4, XEP-0206): one HTTP request body
// parsed into its attributes and its payloads, each serialized again as the
// c2s stream reads it. The same restricted XML as a stream (xml/: no DOCTYPE,
// comment, processing instruction or entity; UTF-8; the stanza limits), so
// nothing a TCP client could not send reaches the stream through BOSH.
// Pure: no loop, no I/O (the fuzz target and unit tests drive it alone).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/result.hpp"
#include "xml/element.hpp"
#include "xml/limits.hpp"

namespace parley::bosh {

inline constexpr std::string_view kNs = "http://jabber.org/protocol/httpbind";
inline constexpr std::string_view kXboshNs = "urn:xmpp:xbosh";
// Attribute names as xml/ reports them (namespaced ones as {uri}local).
inline constexpr std::string_view kXmppVersion = "{urn:xmpp:xbosh}version";
inline constexpr std::string_view kXmppRestart = "{urn:xmpp:xbosh}restart";

struct Body {
  std::vector<xml::Attribute> attrs;  // rid, sid, wait, hold, to, xml:lang, ...
  // Each child element, serialized for a jabber:client stream: an element
  // left in the httpbind namespace (a client that did not declare
  // jabber:client on its stanzas) is taken as jabber:client, as Prosody does.
  std::vector<std::string> payloads;
  std::string_view attr(std::string_view name) const;  // "" when absent
  bool has(std::string_view name) const;
};

// Parses one request body. The error says why it is not a well-formed
// <body xmlns='http://jabber.org/protocol/httpbind'> within `limits` (the
// answer is then bad-request).
Result<Body, std::string> parse_body(std::string_view bytes, const xml::Limits& limits);

// A rid, sid-free decimal: 1 to 2^53 - 1 (XEP-0124 §14.1). Nothing else.
std::optional<uint64_t> parse_rid(std::string_view text);
// A non-negative decimal attribute (wait, hold, pause...), at most `max`.
std::optional<uint64_t> parse_uint(std::string_view text, uint64_t max);
// "1.6" -> {1, 6}; nullopt if malformed.
std::optional<std::pair<unsigned, unsigned>> parse_version(std::string_view text);

}  // namespace parley::bosh
