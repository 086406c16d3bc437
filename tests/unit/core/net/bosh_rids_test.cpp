// The BOSH rid window (XEP-0124 §14) and <body/> framing (§4), alone:
// in-order processing of requests that arrive out of order, replay of a
// repeated rid, item-not-found outside the window, and bodies fragmented,
// malformed or hostile.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/net/bosh_body.hpp"
#include "core/net/bosh_rids.hpp"

using namespace parley::bosh;

namespace {

auto none_held = [](uint64_t) { return false; };

std::vector<uint64_t> drain(RidWindow<std::string>& w, std::vector<std::string>* what = nullptr) {
  std::vector<uint64_t> out;
  while (auto next = w.next_ready()) {
    out.push_back(next->first);
    if (what) what->push_back(next->second);
  }
  return out;
}

}  // namespace

TEST_CASE("requests are processed in rid order, a gap holding the ones after it") {
  RidWindow<std::string> w(100, 3, 3);  // creation was rid 100
  std::optional<std::string> displaced;
  CHECK(w.admit(103, "c", none_held, displaced) == Admit::queued);
  CHECK(w.admit(102, "b", none_held, displaced) == Admit::queued);
  CHECK(drain(w).empty());  // 101 missing
  CHECK(w.waiting() == 2);
  CHECK(w.admit(101, "a", none_held, displaced) == Admit::queued);
  std::vector<std::string> what;
  CHECK(drain(w, &what) == std::vector<uint64_t>{101, 102, 103});
  CHECK(what == std::vector<std::string>{"a", "b", "c"});
  CHECK(w.last_processed() == 103);
}

TEST_CASE("the last waiting request is the highest rid, not the last to arrive") {
  // The session reads "the last request" of XEP-0124 §12 (empty? a pause?) from it.
  RidWindow<std::string> w(100, 3, 3);
  std::optional<std::string> displaced;
  CHECK(w.last_waiting() == nullptr);
  CHECK(w.admit(102, "data", none_held, displaced) == Admit::queued);
  CHECK(w.admit(101, "empty", none_held, displaced) == Admit::queued);
  REQUIRE(w.last_waiting() != nullptr);
  CHECK(*w.last_waiting() == "data");
  drain(w);
  CHECK(w.last_waiting() == nullptr);
}

TEST_CASE("a rid past the window is item-not-found, and so is an old one no longer kept") {
  RidWindow<std::string> w(10, 2, 2);
  std::optional<std::string> displaced;
  CHECK(w.admit(13, "x", none_held, displaced) == Admit::not_found);  // window: 11, 12
  CHECK(w.admit(12, "x", none_held, displaced) == Admit::queued);
  CHECK(w.admit(11, "y", none_held, displaced) == Admit::queued);
  CHECK(drain(w).size() == 2);
  CHECK(w.admit(10, "z", none_held, displaced) == Admit::not_found);  // processed, never answered, not held
  CHECK(w.admit(5, "z", none_held, displaced) == Admit::not_found);
}

TEST_CASE("a repeated rid gets its answer again while it is kept; a held one is re-targeted") {
  RidWindow<std::string> w(1, 2, 2);
  std::optional<std::string> displaced;
  for (uint64_t rid = 2; rid <= 4; ++rid) {
    CHECK(w.admit(rid, "r", none_held, displaced) == Admit::queued);
    CHECK(drain(w) == std::vector<uint64_t>{rid});
    w.answered(rid, "<body rid='" + std::to_string(rid) + "'/>");
  }
  CHECK(w.admit(4, "again", none_held, displaced) == Admit::replay);
  REQUIRE(w.answer(4) != nullptr);
  CHECK(*w.answer(4) == "<body rid='4'/>");
  CHECK(w.admit(3, "again", none_held, displaced) == Admit::replay);
  CHECK(w.answer(2) == nullptr);  // only the last two are kept
  CHECK(w.admit(2, "again", none_held, displaced) == Admit::not_found);
  // Processed and not answered yet: the caller moves the answer to the new copy.
  CHECK(w.admit(5, "held", none_held, displaced) == Admit::queued);
  drain(w);
  CHECK(w.admit(5, "held again", [](uint64_t rid) { return rid == 5; }, displaced) == Admit::repeat_held);
  // Acknowledged answers are not kept.
  w.acknowledged(4);
  CHECK(w.kept() == 0);
}

TEST_CASE("a rid repeated while it waits for its gap replaces the waiting copy") {
  RidWindow<std::string> w(1, 3, 3);
  std::optional<std::string> displaced;
  CHECK(w.admit(3, "first", none_held, displaced) == Admit::queued);
  CHECK(w.admit(3, "second", none_held, displaced) == Admit::replaced);
  REQUIRE(displaced);
  CHECK(*displaced == "first");
  CHECK(w.waiting() == 1);
  CHECK(w.admit(2, "gap", none_held, displaced) == Admit::queued);
  std::vector<std::string> what;
  drain(w, &what);
  CHECK(what == std::vector<std::string>{"gap", "second"});
}

TEST_CASE("rids: only 1 to 2^53-1, decimal") {
  CHECK(parse_rid("1") == 1u);
  CHECK(parse_rid("9007199254740991") == 9007199254740991u);
  CHECK(!parse_rid("9007199254740992"));
  CHECK(!parse_rid("0"));
  CHECK(!parse_rid(""));
  CHECK(!parse_rid("-1"));
  CHECK(!parse_rid("12a"));
  CHECK(!parse_rid(" 12"));
  CHECK(!parse_rid("99999999999999999999999"));
  CHECK(parse_version("1.11") == std::pair<unsigned, unsigned>{1, 11});
  CHECK(!parse_version("1"));
  CHECK(!parse_version("x.1"));
}

TEST_CASE("a body: its attributes and its payloads, unqualified stanzas taken as jabber:client") {
  parley::xml::Limits limits;
  auto b = parse_body(
      "<body rid='5' sid='0-abc' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' "
      "xmpp:restart='true' xml:lang='en'>"
      "<message to='a@b' xmlns='jabber:client'><body>hi &amp; bye</body></message>"
      "<presence><status>away</status><x xmlns='urn:other'><y/></x></presence>"
      "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGE=</auth>"
      "</body>",
      limits);
  REQUIRE(b);
  CHECK(b->attr("rid") == "5");
  CHECK(b->attr("sid") == "0-abc");
  CHECK(b->attr(kXmppRestart) == "true");
  CHECK(b->attr("xml:lang") == "en");
  REQUIRE(b->payloads.size() == 3);
  CHECK(b->payloads[0] == "<message to='a@b'><body>hi &amp; bye</body></message>");
  // Its children too (they inherited the wrapper's namespace); another namespace stays.
  CHECK(b->payloads[1] == "<presence><status>away</status><x xmlns='urn:other'><y/></x></presence>");
  CHECK(b->payloads[2] == "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGE=</auth>");
  auto empty = parse_body("<body rid='1' xmlns='http://jabber.org/protocol/httpbind'/>", limits);
  REQUIRE(empty);
  CHECK(empty->payloads.empty());
}

TEST_CASE("a payload in the streams namespace stands alone: it parses again in a fresh body") {
  // Regression (bosh_body_fuzz): it was written as <stream:auth>, a prefix nothing declared.
  parley::xml::Limits limits;
  auto b = parse_body(
      "<body rid='5' xmlns='http://jabber.org/protocol/httpbind'>"
      "<auth xmlns='http://etherx.jabber.org/streams' mechanism='PLAIN'>AGE=</auth></body>",
      limits);
  REQUIRE(b);
  REQUIRE(b->payloads.size() == 1);
  CHECK(b->payloads[0] == "<auth xmlns='http://etherx.jabber.org/streams' mechanism='PLAIN'>AGE=</auth>");
  auto again = parse_body("<body xmlns='http://jabber.org/protocol/httpbind'>" + b->payloads[0] + "</body>", limits);
  REQUIRE(again);
  CHECK(again->payloads == b->payloads);
}

TEST_CASE("malformed, partial, hostile or foreign bodies are refused") {
  parley::xml::Limits limits;
  limits.max_stanza_bytes = 4096;
  const char* bad[] = {
      "",
      "not xml",
      "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'>",                    // not complete
      "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><message>",           // partial payload
      "<body rid='1' xmlns='urn:other'/>",                                             // another namespace
      "<bodyx rid='1' xmlns='http://jabber.org/protocol/httpbind'/>",                  // another name
      "<body xmlns='http://jabber.org/protocol/httpbind'>text</body>",                 // character data
      "<!DOCTYPE x [<!ENTITY a 'b'>]><body xmlns='http://jabber.org/protocol/httpbind'/>",  // DTD
      "<body xmlns='http://jabber.org/protocol/httpbind'><!-- c --></body>",           // comment
      "<body xmlns='http://jabber.org/protocol/httpbind'><?pi x?></body>",             // processing instruction
      "<body xmlns='http://jabber.org/protocol/httpbind'><m>&ent;</m></body>",         // entity reference
      "<body xmlns='http://jabber.org/protocol/httpbind'><m>\xff</m></body>",          // not UTF-8
  };
  for (const char* text : bad) {
    CAPTURE(text);
    CHECK(!parse_body(text, limits));
  }
  // A payload above the stanza limit.
  std::string big = "<body xmlns='http://jabber.org/protocol/httpbind'><message><body>" + std::string(8000, 'a') +
                    "</body></message></body>";
  CHECK(!parse_body(big, limits));
  // Deeper than max_depth.
  std::string deep = "<body xmlns='http://jabber.org/protocol/httpbind'>";
  for (int i = 0; i < 100; ++i) deep += "<a>";
  for (int i = 0; i < 100; ++i) deep += "</a>";
  deep += "</body>";
  CHECK(!parse_body(deep, limits));
}

TEST_CASE("a body cut anywhere is refused") {
  parley::xml::Limits limits;
  std::string text =
      "<body rid='7' sid='1-x' xmlns='http://jabber.org/protocol/httpbind'><iq type='get' id='1'><query "
      "xmlns='jabber:iq:roster'/></iq></body>";
  auto whole = parse_body(text, limits);
  REQUIRE(whole);
  CHECK(whole->payloads.size() == 1);
  for (size_t cut = 0; cut < text.size(); ++cut) {
    CAPTURE(cut);
    CHECK(!parse_body(text.substr(0, cut), limits));
  }
}
