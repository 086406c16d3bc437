// StreamParser: dropping the expat parser between stanzas and re-creating it (ARCHITECTURE.md, "Memory
// per connection"), and what that saves.
#include <doctest/doctest.h>

#include "parser_recorder.hpp"
#include "sample_streams.hpp"

using namespace parley::xml;
using namespace parley::xml::test;

TEST_CASE("release between stanzas, re-create on the next feed, without a second on_stream_open") {
  Recorder r;
  Limits limits;
  StreamParser p(r, limits);
  CHECK_FALSE(p.release_if_idle());  // nothing yet
  p.feed("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='x'>");
  CHECK(p.has_live_parser());
  CHECK(p.release_if_idle());
  CHECK_FALSE(p.has_live_parser());
  CHECK_FALSE(p.release_if_idle());  // already released
  CHECK(p.feed("<message to='a@b'><body>hi</body></message>"));
  CHECK(p.has_live_parser());
  CHECK(r.headers.size() == 1);
  REQUIRE(r.stanzas.size() == 1);
  CHECK(r.stanzas[0].xmlns() == "jabber:client");
  CHECK(r.stanzas[0].child_text("body", "jabber:client") == "hi");
  // Stream-prefixed elements and the stream close still resolve.
  CHECK(p.release_if_idle());
  CHECK(p.feed("<stream:features/>"));
  CHECK(p.release_if_idle());
  CHECK(p.feed("</stream:stream>"));
  CHECK(r.stanzas.size() == 2);
  CHECK(r.stanzas[1].xmlns() == "http://etherx.jabber.org/streams");
  CHECK(r.events.back() == "close");
  CHECK(r.errors == 0);
}

TEST_CASE("release refuses while a stanza or a partial token is in progress") {
  Recorder r;
  Limits limits;
  StreamParser p(r, limits);
  p.feed(std::string(kClientHeader).substr(0, 30));
  CHECK_FALSE(p.release_if_idle());  // header incomplete
  p.feed(std::string(kClientHeader).substr(30));
  p.feed("<message><bo");
  CHECK_FALSE(p.release_if_idle());  // inside a stanza
  p.feed("dy>x</body></message><pres");
  CHECK(r.stanzas.size() == 1);
  CHECK_FALSE(p.release_if_idle());  // partial start tag buffered
  p.feed("ence/>\r");
  CHECK(r.stanzas.size() == 2);
  CHECK_FALSE(p.release_if_idle());  // a CR expat holds back (it may become CRLF)
  p.feed("\n \xE2");
  CHECK_FALSE(p.release_if_idle());  // a cut UTF-8 sequence (an error to come, but not ours to hide)
  p.reset(false);
  p.feed(std::string(kClientHeader) + "<presence/>  ");
  CHECK(p.release_if_idle());  // whitespace keepalives leave the parser idle
  CHECK(r.errors == 0);
}

TEST_CASE("release is refused inside a callback") {
  Recorder r;
  Limits limits;
  StreamParser p(r, limits);
  bool released = true;
  r.after_stanza = [&](const Element&) { released = p.release_if_idle(); };
  p.feed(std::string(kClientHeader) + "<presence/>");
  CHECK_FALSE(released);
  CHECK(p.has_live_parser());
}

TEST_CASE("release after the stream ended frees the parser") {
  Recorder r;
  Limits limits;
  StreamParser p(r, limits);
  p.feed(std::string(kClientHeader) + "<presence/></stream:stream>");
  CHECK_FALSE(p.has_live_parser());  // freed as soon as the stream was over
  CHECK_FALSE(p.release_if_idle());
}

TEST_CASE("with a release at every possible point, every split gives the same callbacks") {
  for (const std::string& s : realistic_streams()) {
    const std::vector<std::string> whole = parse_whole(s);
    for (size_t cut = 1; cut < s.size(); ++cut) {
      CAPTURE(cut);
      REQUIRE(parse_pieces(s, {cut}, Limits{}, true) == whole);
    }
    CHECK(parse_bytewise(s, Limits{}, true) == whole);
  }
}

TEST_CASE("a stanza split across a release attempt parses identically") {
  const std::string stanza = "<message type='chat'><body>caf\xC3\xA9</body><x xmlns='urn:x' xmlns:p='urn:p' p:a='1'/></message>";
  const std::string input = std::string(kClientHeader) + "<presence/>" + stanza + "<presence/>";
  const std::vector<std::string> whole = parse_whole(input);
  const size_t stanza_start = std::string(kClientHeader).size() + std::string("<presence/>").size();
  for (size_t cut = stanza_start; cut <= stanza_start + stanza.size(); ++cut) {
    CAPTURE(cut);
    Recorder r;
    Limits limits;
    StreamParser p(r, limits);
    p.feed(std::string_view(input).substr(0, cut));
    const bool released = p.release_if_idle();
    CHECK(released == (cut == stanza_start || cut == stanza_start + stanza.size()));
    p.feed(std::string_view(input).substr(cut));
    CHECK(r.events == whole);
  }
}

TEST_CASE("the primer replays every namespace declaration of the root (s2s dialback prefix)") {
  Recorder r;
  Limits limits;
  StreamParser p(r, limits);
  p.feed("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:server' "
         "xmlns:db='jabber:server:dialback' xml:lang='en'>");
  CHECK(p.release_if_idle());
  CHECK(p.feed("<db:result from='a' to='b'>key</db:result>"));
  CHECK(p.release_if_idle());
  CHECK(p.feed("<message><db:x/></message>"));
  REQUIRE(r.stanzas.size() == 2);
  CHECK(r.stanzas[0].xmlns() == "jabber:server:dialback");
  CHECK(r.stanzas[1].xmlns() == "jabber:server");
  CHECK(r.stanzas[1].first_child()->xmlns() == "jabber:server:dialback");
  CHECK(r.errors == 0);
}

TEST_CASE("the primer escapes what it replays") {
  Recorder r;
  Limits limits;
  StreamParser p(r, limits);
  p.feed("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns=\"urn:a'&amp;&lt;b\">");
  CHECK(p.release_if_idle());
  CHECK(p.feed("<x/>"));
  REQUIRE(r.stanzas.size() == 1);
  CHECK(r.stanzas[0].xmlns() == "urn:a'&<b");
}

TEST_CASE("errors after a release are the same errors") {
  Recorder r;
  Limits limits;
  StreamParser p(r, limits);
  p.feed(std::string(kClientHeader));
  CHECK(p.release_if_idle());
  CHECK_FALSE(p.feed("<foo:bar/>"));
  CHECK(r.has_error(ParseError::bad_namespace_prefix));
}
