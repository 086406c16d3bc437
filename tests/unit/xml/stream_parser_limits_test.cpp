// StreamParser: the hostile-input limits, checked before expat buffers the bytes.
#include <doctest/doctest.h>

#include <chrono>

#include "parser_recorder.hpp"

using namespace parley::xml;
using namespace parley::xml::test;

namespace {

std::string header() { return std::string(kClientHeader); }

// Parses header() under the default limits, then `body` under `limits`; true on a policy violation.
std::vector<std::string> run(const std::string& body, const Limits& limits, bool bytewise) {
  Recorder r;
  const Limits defaults;
  StreamParser p(r, defaults);
  p.feed(header());
  p.set_limits(limits);
  if (bytewise) {
    for (char c : body) p.feed(std::string_view(&c, 1));
  } else {
    p.feed(body);
  }
  return r.events;
}

bool violates(const std::string& body, const Limits& limits) {
  const std::vector<std::string> events = run(body, limits, false);
  CHECK(run(body, limits, true) == events);
  return !events.empty() && events.back().rfind("error policy-violation", 0) == 0;
}

// The same for a whole stream, header included, under `limits`.
bool stream_violates(const std::string& input, const Limits& limits) {
  const std::vector<std::string> events = parse_whole(input, limits);
  CHECK(parse_bytewise(input, limits) == events);
  return !events.empty() && events.back().rfind("error policy-violation", 0) == 0;
}

}  // namespace

TEST_CASE("stanza size: exactly the limit passes, one byte more is a policy violation") {
  const std::string stanza = "<message><body>" + std::string(100, 'x') + "</body></message>";
  Limits limits;
  limits.max_stanza_bytes = stanza.size();
  CHECK_FALSE(violates(stanza + stanza, limits));
  limits.max_stanza_bytes = stanza.size() - 1;
  CHECK(violates(stanza, limits));
}

TEST_CASE("stanza size is counted from the last idle point, whitespace included") {
  const std::string stanza = "<presence/>";
  Limits limits;
  limits.max_stanza_bytes = stanza.size();
  // Keepalives alone move the idle point.
  CHECK_FALSE(violates(std::string(5000, ' ') + stanza, limits));
  CHECK_FALSE(violates(stanza + "\n" + stanza + "\n", limits));
}

TEST_CASE("the stream header is subject to the limits too") {
  Limits limits;
  limits.max_stanza_bytes = 64;
  CHECK(stream_violates(header(), limits));
  Limits few;
  few.max_attributes = 4;  // the client header has 3 attributes and 2 namespace declarations
  CHECK(stream_violates(header(), few));
  few.max_attributes = 5;
  CHECK_FALSE(stream_violates(header(), few));
}

TEST_CASE("a never-ending start tag is caught before expat buffers it") {
  Limits limits;
  limits.max_stanza_bytes = 4096;
  Recorder r;
  StreamParser p(r, limits);
  p.feed(header());
  // 64 MiB in one feed(): must fail after max_stanza_bytes + 1, without parsing (or copying) the rest.
  std::string huge = "<message to='";
  huge.append(64u << 20, 'a');
  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(p.feed(huge));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(r.has_error(ParseError::policy_violation));
  CHECK(elapsed < std::chrono::milliseconds(200));
  CHECK_FALSE(p.has_live_parser());
}

TEST_CASE("a never-ending text node and a never-ending attribute list are caught") {
  Limits limits;
  limits.max_stanza_bytes = 10000;
  CHECK(violates("<message><body>" + std::string(20000, 'x'), limits));
  std::string attrs = "<message";
  for (int i = 0; i < 3000; ++i) attrs += " a" + std::to_string(i) + "='1'";
  CHECK(violates(attrs, limits));
}

TEST_CASE("element depth") {
  Limits limits;
  limits.max_depth = 5;  // stream, stanza and three more
  std::string ok = "<iq><a><b><c/></b></a></iq>";
  CHECK_FALSE(violates(ok, limits));
  std::string deep = "<iq><a><b><c><d/></c></b></a></iq>";
  CHECK(violates(deep, limits));
  // The default is 32; a billion nested elements stop at 33.
  std::string very_deep;
  for (int i = 0; i < 10000; ++i) very_deep += "<a>";
  CHECK(violates(very_deep, Limits{}));
}

TEST_CASE("attribute count, namespace declarations included") {
  Limits limits;
  limits.max_attributes = 3;
  CHECK_FALSE(violates("<message a='1' b='2' c='3'/>", limits));
  CHECK(violates("<message a='1' b='2' c='3' d='4'/>", limits));
  CHECK(violates("<message xmlns:p='urn:p' a='1' b='2' p:c='3'/>", limits));
  CHECK(violates("<message><x xmlns='urn:x' xmlns:a='urn:a' xmlns:b='urn:b' xmlns:c='urn:c'/></message>", limits));
}

TEST_CASE("attribute value length (after unescaping)") {
  Limits limits;
  limits.max_attribute_bytes = 10;
  CHECK_FALSE(violates("<message id='0123456789'/>", limits));
  CHECK_FALSE(violates("<message id='&amp;&amp;&amp;&amp;&amp;&amp;&amp;&amp;&amp;&amp;'/>", limits));
  CHECK(violates("<message id='0123456789a'/>", limits));
}

TEST_CASE("name length: element, attribute, prefix, namespace URI") {
  Limits limits;
  limits.max_name_bytes = 8;
  CHECK_FALSE(violates("<message/>", limits));
  CHECK(violates("<messages1/>", limits));
  CHECK(violates("<message longattr1='1'/>", limits));
  CHECK(violates("<message xmlns:prefix123='u' prefix123:a='1'/>", limits));
  CHECK(violates("<message xmlns='urn:long:uri'/>", limits));
}

TEST_CASE("limits can be changed mid-stream") {
  Limits small;
  small.max_stanza_bytes = 20;
  Limits big;
  Recorder r;
  StreamParser p(r, big);
  CHECK(p.feed(header() + "<message><body>0123456789</body></message>"));
  p.set_limits(small);
  CHECK_FALSE(p.feed("<message><body>0123456789</body></message>"));
  CHECK(r.has_error(ParseError::policy_violation));
  CHECK(r.stanzas.size() == 1);
}

TEST_CASE("buffered_bytes reports the unfinished stanza") {
  Recorder r;
  Limits limits;
  StreamParser p(r, limits);
  p.feed(header());
  CHECK(p.buffered_bytes() == 0);
  p.feed("<message><body>abc");
  CHECK(p.buffered_bytes() == 18);
  p.feed("</body></message>");
  CHECK(p.buffered_bytes() == 0);
}

TEST_CASE("elements per stanza: the limit counts the top element, resets per stanza") {
  std::string children;
  for (int i = 0; i < 9; ++i) children += "<a/>";
  const std::string stanza = "<message>" + children + "</message>";  // 10 elements
  Limits limits;
  limits.max_stanza_elements = 10;
  CHECK_FALSE(violates(stanza + stanza + stanza, limits));  // 10 each: fine, the count starts again
  limits.max_stanza_elements = 9;
  CHECK(violates(stanza, limits));
  // Nested or flat, every element counts.
  limits.max_stanza_elements = 3;
  CHECK(violates("<iq><a><b><c/></b></a></iq>", limits));
  CHECK_FALSE(violates("<iq><a><b/></a></iq>", limits));
}
