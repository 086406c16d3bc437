// libFuzzer target for xml::StreamParser (and the serializer).
//
// Input: byte 0 = flags, bytes 1-2 = split point, the rest = the stream bytes. Checks, besides "no crash,
// no sanitizer report":
//  - feeding the stream in two pieces split anywhere (with an optional release_if_idle() in between)
//    gives the same callbacks as feeding it whole, and so does feeding it byte by byte;
//  - an idle parser never holds max_stanza_bytes or more;
//  - every stanza re-parses from its serialization to an equal tree.
// A stanza named "rs" makes the handler restart the stream (reset(false)) from inside on_stanza. With
// flag 8, a stanza named "ps" pauses the parser (pause()) in the split runs, whose feeder then feeds the
// rest at once: the callbacks must be those of the whole run, which never pauses.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "xml/serializer.hpp"
#include "xml/stream_parser.hpp"

using namespace parley::xml;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "xml_stream_fuzz: %s\n", what);
  std::abort();
}

Limits generous_limits() {
  Limits l;
  l.max_stanza_bytes = 64u << 20;
  l.max_depth = 1000;
  l.max_attributes = 100000;
  l.max_attribute_bytes = 64u << 20;
  l.max_name_bytes = 64u << 20;
  return l;
}

class Reparser : public StreamParser::Handler {
 public:
  std::vector<Element> stanzas;
  int errors = 0;
  void on_stream_open(const StreamHeader&) override {}
  void on_stanza(Element&& e) override { stanzas.push_back(std::move(e)); }
  void on_stream_close() override {}
  void on_parse_error(ParseError, std::string_view) override { ++errors; }
};

void check_round_trip(const Element& e, const std::string& default_ns) {
  const std::string xml = serialize(e, SerializeContext{default_ns, true});
  std::string doc = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='";
  escape_attr_to(doc, default_ns);
  doc += "'>";
  doc += xml;
  static const Limits limits = generous_limits();
  Reparser r;
  StreamParser p(r, limits);
  p.feed(doc);
  if (r.errors != 0 || r.stanzas.size() != 1) {
    std::fprintf(stderr, "serialized: %s\n", xml.c_str());
    fail("serialized stanza does not re-parse");
  }
  if (!(r.stanzas[0] == e)) {
    std::fprintf(stderr, "serialized: %s\nreparsed:   %s\n", xml.c_str(), serialize(r.stanzas[0]).c_str());
    fail("round trip changed the stanza");
  }
}

class Recorder : public StreamParser::Handler {
 public:
  explicit Recorder(bool round_trip) : round_trip_(round_trip) {}
  StreamParser* parser = nullptr;
  bool pause_at_ps = false;
  std::vector<std::string> events;

  void on_stream_open(const StreamHeader& h) override {
    std::string line = "open {" + h.xmlns + "}" + h.name + " " + h.default_xmlns;
    for (const Attribute& a : h.attrs) line += " " + a.name + "=" + a.value;
    events.push_back(std::move(line));
    default_ns_ = h.default_xmlns;
  }
  void on_stanza(Element&& e) override {
    events.push_back("stanza " + serialize(e, SerializeContext{{}, false}));
    if (round_trip_) check_round_trip(e, default_ns_);
    if (e.name() == "rs") parser->reset(false);
    if (e.name() == "ps" && pause_at_ps) parser->pause();
  }
  void on_stream_close() override { events.push_back("close"); }
  void on_parse_error(ParseError err, std::string_view detail) override {
    events.push_back("error " + std::string(condition_name(err)) + " " + std::string(detail));
  }

 private:
  bool round_trip_;
  std::string default_ns_;
};

void check_idle_bound(const StreamParser& p, const Limits& limits) {
  if (p.buffered_bytes() >= limits.max_stanza_bytes && limits.max_stanza_bytes > 0) fail("parser holds a whole stanza's worth");
}

// Feeds a piece; after a pause, feeds what it left (as the c2s stream does when its input resumes).
void feed_all(StreamParser& p, std::string_view piece) {
  while (true) {
    const size_t used = p.feed_pausable(piece);
    if (used > piece.size()) fail("feed_pausable used more than it was given");
    if (used == piece.size()) return;
    piece.remove_prefix(used);
  }
}

std::vector<std::string> run(std::string_view input, const std::vector<size_t>& cuts, const Limits& limits,
                             bool release, bool round_trip, bool pause = false) {
  Recorder rec(round_trip);
  StreamParser p(rec, limits);
  rec.parser = &p;
  rec.pause_at_ps = pause;
  size_t pos = 0;
  for (size_t cut : cuts) {
    feed_all(p, input.substr(pos, cut - pos));
    check_idle_bound(p, limits);
    if (release) p.release_if_idle();
    pos = cut;
  }
  feed_all(p, input.substr(pos));
  check_idle_bound(p, limits);
  return rec.events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t flags = data[0];
  const size_t split_seed = static_cast<size_t>(data[1]) | (static_cast<size_t>(data[2]) << 8);
  const std::string_view input(reinterpret_cast<const char*>(data + 3), size - 3);
  const bool release = flags & 1;
  const bool bytewise = (flags & 2) && input.size() <= 2048;
  const bool pause = flags & 8;
  Limits limits;
  if (flags & 4) {
    limits.max_stanza_bytes = 300;
    limits.max_depth = 6;
    limits.max_attributes = 5;
    limits.max_attribute_bytes = 40;
    limits.max_name_bytes = 24;
  }

  const std::vector<std::string> whole = run(input, {}, limits, false, true);
  const size_t split = input.empty() ? 0 : split_seed % (input.size() + 1);
  if (run(input, {split}, limits, release, false, pause) != whole) fail("split result differs from whole");
  if (bytewise) {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
    if (run(input, cuts, limits, release, false, pause) != whole) fail("byte-at-a-time result differs from whole");
  }
  return 0;
}
