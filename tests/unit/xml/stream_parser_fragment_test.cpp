// StreamParser: any split of the input gives the same callbacks; stream restarts with pipelined bytes.
#include <doctest/doctest.h>

#include <random>

#include "parser_recorder.hpp"
#include "sample_streams.hpp"

using namespace parley::xml;
using namespace parley::xml::test;


TEST_CASE("realistic streams parse without errors") {
  for (const std::string& s : realistic_streams()) {
    const std::vector<std::string> events = parse_whole(s);
    CAPTURE(s);
    REQUIRE(events.size() >= 3);
    CHECK(events.front().rfind("open ", 0) == 0);
    for (const std::string& e : events) CHECK(e.rfind("error", 0) != 0);
  }
}

TEST_CASE("every split point gives the same callbacks as the whole buffer") {
  for (const std::string& s : realistic_streams()) {
    const std::vector<std::string> whole = parse_whole(s);
    for (size_t cut = 1; cut < s.size(); ++cut) {
      CAPTURE(cut);
      REQUIRE(parse_pieces(s, {cut}) == whole);
    }
  }
}

TEST_CASE("single bytes give the same callbacks as the whole buffer") {
  for (const std::string& s : realistic_streams()) {
    CHECK(parse_bytewise(s) == parse_whole(s));
  }
}

TEST_CASE("random multi-way splits give the same callbacks") {
  std::mt19937 rng(12345);
  for (const std::string& s : realistic_streams()) {
    const std::vector<std::string> whole = parse_whole(s);
    for (int round = 0; round < 200; ++round) {
      std::vector<size_t> cuts;
      size_t pos = 0;
      while (true) {
        pos += 1 + rng() % 40;
        if (pos >= s.size()) break;
        cuts.push_back(pos);
      }
      REQUIRE(parse_pieces(s, cuts) == whole);
    }
  }
}

TEST_CASE("erroneous streams: every split point gives the same callbacks") {
  const std::vector<std::string> bad = {
      std::string(kClientHeader) + "<message><body>caf\xE9</body></message>",
      std::string(kClientHeader) + "<presence/><message><!-- c --></message>",
      std::string(kClientHeader) + "<presence/><message><!DOCTYPE x></message>",
      "<?xml version='1.0'?><!DOCTYPE s [<!ENTITY a 'b'>]><s/>",
      std::string(kClientHeader) + "<presence/>text<presence/>",
      std::string(kClientHeader) + "<message><p:x/></message>",
      std::string(kClientHeader) + "<message>&custom;</message>",
      std::string(kClientHeader) + "<message a='1' a='1'/>",
      std::string(kClientHeader) + "<presence/></stream:stream><garbage",
      "<?xml version='1.0' encoding='latin1'?><stream/>",
      // Found by the fuzzer: "<!D" after an error position must not change the condition.
      "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.<!D0'>",
      // Found by the fuzzer: "]]>" makes expat swallow the text before it, unless a feed ended inside it.
      std::string(kClientHeader) + "<presence/>text]]>",
      std::string(kClientHeader) + "  ]]>",
      std::string(kClientHeader) + "<message>text]]></message>",
      // Found by the fuzzer: expat takes a NUL among the first bytes for UTF-16.
      std::string(":\0:", 3),
      std::string("x\0<stream/>", 11),
  };
  for (const std::string& s : bad) {
    const std::vector<std::string> whole = parse_whole(s);
    CAPTURE(s);
    for (size_t cut = 1; cut < s.size(); ++cut) {
      CAPTURE(cut);
      REQUIRE(parse_pieces(s, {cut}) == whole);
    }
    CHECK(parse_bytewise(s) == whole);
  }
}

TEST_CASE("reset(discard_rest=true) from on_stanza drops the rest of the buffer (STARTTLS)") {
  Recorder r;
  Limits limits;
  StreamParser p(r, limits);
  r.after_stanza = [&](const Element& e) {
    if (e.name() == "starttls") p.reset(true);
  };
  CHECK(p.feed(std::string(kClientHeader) +
               "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message to='victim'><body>injected</body></message>"));
  REQUIRE(r.stanzas.size() == 1);
  CHECK(r.stanzas[0].name() == "starttls");
  CHECK_FALSE(p.has_live_parser());
  // After the TLS handshake: a new stream, XML declaration allowed again.
  CHECK(p.feed(std::string(kClientHeader) + "<presence/>"));
  CHECK(r.headers.size() == 2);
  REQUIRE(r.stanzas.size() == 2);
  CHECK(r.stanzas[1].name() == "presence");
  CHECK(r.errors == 0);
}

TEST_CASE("reset(discard_rest=false) from on_stanza parses the pipelined rest as a new stream (SASL)") {
  const std::string input = std::string(kClientHeader) +
                            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>" +
                            std::string(kClientHeader) +
                            "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>";
  auto run = [&](const std::vector<size_t>& cuts) {
    Recorder r;
    Limits limits;
    StreamParser p(r, limits);
    r.after_stanza = [&](const Element& e) {
      if (e.name() == "auth") p.reset(false);
    };
    size_t pos = 0;
    for (size_t cut : cuts) {
      CHECK(p.feed(std::string_view(input).substr(pos, cut - pos)));
      pos = cut;
    }
    CHECK(p.feed(std::string_view(input).substr(pos)));
    return r.events;
  };
  const std::vector<std::string> whole = run({});
  REQUIRE(whole.size() == 4);
  CHECK(whole[0].rfind("open", 0) == 0);
  CHECK(whole[1].rfind("stanza <auth", 0) == 0);
  CHECK(whole[2].rfind("open", 0) == 0);
  CHECK(whole[3].rfind("stanza <iq", 0) == 0);
  for (size_t cut = 1; cut < input.size(); ++cut) {
    CAPTURE(cut);
    REQUIRE(run({cut}) == whole);
  }
  std::vector<size_t> bytes;
  for (size_t i = 1; i < input.size(); ++i) bytes.push_back(i);
  CHECK(run(bytes) == whole);
}

TEST_CASE("reset() from outside a callback drops a partial stream") {
  Recorder r;
  Limits limits;
  StreamParser p(r, limits);
  CHECK(p.feed(std::string(kClientHeader) + "<message><bo"));
  p.reset(false);
  CHECK_FALSE(p.has_live_parser());
  CHECK(p.buffered_bytes() == 0);
  CHECK(p.feed(std::string(kClientHeader) + "<presence/>"));
  CHECK(r.headers.size() == 2);
  REQUIRE(r.stanzas.size() == 1);
  CHECK(r.stanzas[0].name() == "presence");
}

TEST_CASE("reset() after an error starts a clean stream") {
  Recorder r;
  Limits limits;
  StreamParser p(r, limits);
  CHECK_FALSE(p.feed(std::string(kClientHeader) + "<a></b>"));
  p.reset(false);
  CHECK(p.feed(std::string(kClientHeader) + "<presence/>"));
  CHECK(r.stanzas.size() == 1);
}

TEST_CASE("reset() inside on_parse_error always drops the rest") {
  struct ResetOnError : StreamParser::Handler {
    StreamParser* parser = nullptr;
    int opens = 0;
    int errors = 0;
    void on_stream_open(const StreamHeader&) override { ++opens; }
    void on_stanza(Element&&) override {}
    void on_stream_close() override {}
    void on_parse_error(ParseError, std::string_view) override {
      ++errors;
      parser->reset(false);
    }
  } h;
  Limits limits;
  StreamParser p(h, limits);
  h.parser = &p;
  // An expat error, then one the parser raises itself (invalid UTF-8).
  CHECK(p.feed(std::string(kClientHeader) + "<a></b>" + std::string(kClientHeader)));
  CHECK(p.feed(std::string(kClientHeader) + "\xFF" + std::string(kClientHeader)));
  CHECK(h.errors == 2);
  CHECK(h.opens == 2);
}

TEST_CASE("reset(false) from on_stream_close parses a following stream") {
  Recorder r;
  Limits limits;
  StreamParser p(r, limits);
  r.after_close = [&] { p.reset(false); };
  CHECK(p.feed(std::string(kClientHeader) + "<presence/></stream:stream>" + std::string(kClientHeader) + "<presence/>"));
  CHECK(r.headers.size() == 2);
  CHECK(r.stanzas.size() == 2);
}
