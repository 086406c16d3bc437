#include "core/net/bosh_body.hpp"

#include "core/stanza/namespaces.hpp"
#include "xml/serializer.hpp"
#include "xml/stream_parser.hpp"

namespace parley::bosh {

std::string_view Body::attr(std::string_view name) const {
  for (const xml::Attribute& a : attrs)
    if (a.name == name) return a.value;
  return {};
}

bool Body::has(std::string_view name) const {
  for (const xml::Attribute& a : attrs)
    if (a.name == name) return true;
  return false;
}

namespace {

// The <body/> read as a stream of its own: its start tag is the "header",
// its children the "stanzas", its end tag the "close".
struct Collector final : xml::StreamParser::Handler {
  Body body;
  std::string error;
  bool opened = false;
  bool closed = false;

  void on_stream_open(const xml::StreamHeader& header) override {
    opened = true;
    if (header.name != "body" || header.xmlns != kNs) {
      error = "the root is not <body xmlns='http://jabber.org/protocol/httpbind'/>";
      return;
    }
    body.attrs = header.attrs;
  }
  // A payload written without its namespace inherits the wrapper's: it and
  // its descendants in it are jabber:client.
  static void requalify(xml::Element& e) {
    if (e.xmlns() == kNs) e.set_xmlns(std::string(ns::client));
    for (xml::Element* child : e.children()) requalify(*child);
  }
  void on_stanza(xml::Element&& e) override {
    if (!error.empty()) return;
    requalify(e);
    xml::SerializeContext ctx;
    ctx.default_ns = ns::client;
    // A payload stands alone: an element in the streams namespace carries its own
    // declaration, not a stream: prefix that nothing in the <body/> declared (it would not
    // parse again; found by bosh_body_fuzz).
    ctx.stream_prefix = false;
    body.payloads.push_back(xml::serialize(e, ctx));
  }
  void on_stream_close() override { closed = true; }
  void on_parse_error(xml::ParseError e, std::string_view detail) override {
    error = std::string(xml::condition_name(e));
    if (!detail.empty()) error += std::string(": ") + std::string(detail);
  }
};

bool only_space(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  return true;
}

}  // namespace

Result<Body, std::string> parse_body(std::string_view bytes, const xml::Limits& limits) {
  Collector c;
  xml::StreamParser parser(c, limits);
  size_t used = 0;
  try {
    used = parser.feed_pausable(bytes);
  } catch (...) {
    return unexpected(std::string("internal error"));
  }
  if (!c.error.empty()) return unexpected(std::move(c.error));
  if (!c.opened) return unexpected(std::string("no <body/>"));
  if (!c.closed) return unexpected(std::string("the <body/> is not complete"));
  // Nothing but white space after the wrapper (one document per request).
  if (used < bytes.size() && !only_space(bytes.substr(used))) return unexpected(std::string("data after </body>"));
  return std::move(c.body);
}

std::optional<uint64_t> parse_uint(std::string_view text, uint64_t max) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(ch - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

std::optional<uint64_t> parse_rid(std::string_view text) {
  auto v = parse_uint(text, (uint64_t{1} << 53) - 1);
  if (!v || *v == 0) return std::nullopt;
  return v;
}

std::optional<std::pair<unsigned, unsigned>> parse_version(std::string_view text) {
  size_t dot = text.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto major = parse_uint(text.substr(0, dot), 1000000);
  auto minor = parse_uint(text.substr(dot + 1), 1000000);
  if (!major || !minor) return std::nullopt;
  return std::pair<unsigned, unsigned>{static_cast<unsigned>(*major), static_cast<unsigned>(*minor)};
}

}  // namespace parley::bosh
