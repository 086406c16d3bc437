// StreamParser::pause(): a callback stops the parse after its element; the
// caller keeps the rest and feeds it later, to the same stream or, after a
// reset(), as the start of the next one (SASL success with a pipelined
// stream header). Checked at every split of the input.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "parser_recorder.hpp"

using namespace parley::xml;
using namespace parley::xml::test;

namespace {

const std::string kNext =
    "<stream:stream to='example.com' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    "version='1.0'>";

// Feeds `input` in two pieces cut at `cut`, pausing at <auth/>; what was not
// consumed is kept, then (after `restart`, a reset as at SASL success) fed.
std::vector<std::string> run(const std::string& input, size_t cut, bool restart) {
  Recorder r;
  Limits limits;
  StreamParser p(r, limits);
  bool paused = false;  // as the connection's reading stops with the pause
  r.after_stanza = [&](const Element& e) {
    if (e.name() == "auth") {
      p.pause();
      paused = true;
    }
  };
  std::string kept;
  for (std::string_view piece : {std::string_view(input).substr(0, cut), std::string_view(input).substr(cut)}) {
    if (paused) {
      kept += piece;  // what arrives meanwhile waits behind what was kept
      continue;
    }
    const size_t used = p.feed_pausable(piece);
    if (paused) kept = std::string(piece.substr(used));
    else CHECK(used == piece.size());
  }
  REQUIRE(paused);
  if (restart) p.reset(false);
  r.after_stanza = nullptr;
  CHECK(p.feed_pausable(kept) == kept.size());
  return r.events;
}

}  // namespace

TEST_CASE("after a pause the rest is parsed by the next stream, at every split") {
  const std::string input = std::string(kClientHeader) + "<auth mechanism='PLAIN'>x</auth>" + kNext + "<iq id='1'/>";
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    CAPTURE(cut);
    auto events = run(input, cut, true);
    REQUIRE(events.size() == 4);
    CHECK(events[1] == "stanza <auth xmlns='jabber:client' mechanism='PLAIN'>x</auth>");
    CHECK(events[2].rfind("open {http://etherx.jabber.org/streams}stream default=jabber:client", 0) == 0);
    CHECK(events[3] == "stanza <iq xmlns='jabber:client' id='1'/>");
  }
}

TEST_CASE("without a restart the paused stream goes on where it stopped") {
  const std::string input = std::string(kClientHeader) + "<auth>x</auth><presence>\xC3\xA9</presence><a:b xmlns:a='urn:x'/>";
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    CAPTURE(cut);
    auto events = run(input, cut, false);
    REQUIRE(events.size() == 4);
    CHECK(events[2] == "stanza <presence xmlns='jabber:client'>\xC3\xA9</presence>");
    CHECK(events[3] == "stanza <b xmlns='urn:x'/>");
  }
}

TEST_CASE("pause outside a callback does nothing; right after the header it keeps the rest too") {
  Recorder r;
  Limits limits;
  StreamParser p(r, limits);
  p.pause();
  const std::string input = std::string(kClientHeader) + "<presence/>";
  CHECK(p.feed_pausable(input) == input.size());
  CHECK(r.last() == "stanza <presence xmlns='jabber:client'/>");

  Recorder r2;
  StreamParser q(r2, limits);
  r2.after_open = [&](const StreamHeader&) { q.pause(); };
  CHECK(q.feed_pausable(input) == kClientHeader.size());
  r2.after_open = nullptr;
  CHECK(q.feed_pausable("<presence/>") == std::string("<presence/>").size());
  CHECK(r2.last() == "stanza <presence xmlns='jabber:client'/>");
}
