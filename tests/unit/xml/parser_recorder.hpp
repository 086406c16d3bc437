// Test helper: a StreamParser::Handler that records every callback, and helpers that parse whole
// buffers and fragments.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "xml/serializer.hpp"
#include "xml/stream_parser.hpp"

namespace parley::xml::test {

inline constexpr std::string_view kClientHeader =
    "<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>";

// One callback, as a line of text: "open ...", "stanza <serialized>", "close", "error <condition> <detail>".
class Recorder : public StreamParser::Handler {
 public:
  std::vector<std::string> events;
  std::vector<Element> stanzas;
  std::vector<StreamHeader> headers;
  int errors = 0;
  // Run after the event was recorded; tests use them to reset() or stop() from inside a callback.
  std::function<void(const Element&)> after_stanza;
  std::function<void(const StreamHeader&)> after_open;
  std::function<void()> after_close;

  void on_stream_open(const StreamHeader& h) override {
    std::string line = "open {" + h.xmlns + "}" + h.name + " default=" + h.default_xmlns;
    for (const Attribute& a : h.attrs) line += " " + a.name + "=" + a.value;
    events.push_back(line);
    headers.push_back(h);
    if (after_open) after_open(h);
  }
  void on_stanza(Element&& stanza) override {
    events.push_back("stanza " + serialize(stanza, SerializeContext{{}, false}));
    stanzas.push_back(std::move(stanza));
    if (after_stanza) after_stanza(stanzas.back());
  }
  void on_stream_close() override {
    events.push_back("close");
    if (after_close) after_close();
  }
  void on_parse_error(ParseError e, std::string_view detail) override {
    ++errors;
    events.push_back("error " + std::string(condition_name(e)) + " " + std::string(detail));
  }

  std::string last() const { return events.empty() ? std::string() : events.back(); }
  bool has_error(ParseError e) const {
    const std::string prefix = "error " + std::string(condition_name(e));
    for (const std::string& ev : events) {
      if (ev.rfind(prefix, 0) == 0) return true;
    }
    return false;
  }
};

// Parses `input` in the given pieces (sizes), returns the events.
inline std::vector<std::string> parse_pieces(std::string_view input, const std::vector<size_t>& cuts,
                                             const Limits& limits = Limits{}, bool release_between = false) {
  Recorder r;
  StreamParser p(r, limits);
  size_t pos = 0;
  for (size_t cut : cuts) {
    p.feed(input.substr(pos, cut - pos));
    if (release_between) p.release_if_idle();
    pos = cut;
  }
  p.feed(input.substr(pos));
  return r.events;
}

inline std::vector<std::string> parse_whole(std::string_view input, const Limits& limits = Limits{}) {
  return parse_pieces(input, {}, limits);
}

inline std::vector<std::string> parse_bytewise(std::string_view input, const Limits& limits = Limits{},
                                               bool release_between = false) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
  return parse_pieces(input, cuts, limits, release_between);
}

// Parses one element (serialized in a stream whose default namespace is default_ns) and returns it.
inline Element reparse(std::string_view xml, std::string_view default_ns = "jabber:client") {
  Recorder r;
  Limits limits;
  StreamParser p(r, limits);
  std::string doc = "<stream:stream xmlns='" + std::string(default_ns) +
                    "' xmlns:stream='http://etherx.jabber.org/streams'>";
  doc += xml;
  p.feed(doc);
  if (r.stanzas.size() != 1 || r.errors != 0) return Element("reparse-failed");
  return r.stanzas.front();
}

}  // namespace parley::xml::test
