// The XEP-0160 / RFC 6121 / XEP-0334 storage rules and the XEP-0203 stamp.
#include <chrono>
#include <regex>

#include <doctest/doctest.h>

#include "offline_rules.hpp"

using namespace parley::offline;

namespace {

constexpr std::string_view client = "jabber:client";
const ChildName body{"body", client};
const ChildName thread{"thread", client};
const ChildName composing{"composing", ns_chatstates};
const ChildName active{"active", ns_chatstates};
const ChildName store_hint{"store", ns_hints};
const ChildName no_store_hint{"no-store", ns_hints};
const ChildName no_permanent_store{"no-permanent-store", ns_hints};
const ChildName receipt{"received", "urn:xmpp:receipts"};

}  // namespace

TEST_CASE("chat and normal messages with a body are stored (XEP-0160 section 4)") {
  CHECK(classify("chat", {body}) == Disposition::store);
  CHECK(classify("normal", {body}) == Disposition::store);
  CHECK(classify("", {body}) == Disposition::store);  // no type: normal
  CHECK(classify("chat", {active, body, thread}) == Disposition::store);
  // A type RFC 6121 does not know is treated as normal.
  CHECK(classify("bogus", {body}) == Disposition::store);
}

TEST_CASE("other content than a body is content too") {
  CHECK(classify("chat", {receipt}) == Disposition::store);
  CHECK(classify("normal", {ChildName{"x", "jabber:x:data"}}) == Disposition::store);
}

TEST_CASE("chat states alone are not stored and not silently lost") {
  CHECK(classify("chat", {composing}) == Disposition::refuse);
  CHECK(classify("chat", {composing, thread}) == Disposition::refuse);
  CHECK(classify("chat", {}) == Disposition::refuse);
  CHECK(classify("", {}) == Disposition::refuse);
}

TEST_CASE("error, headline and groupchat (RFC 6121 8.5.2.2)") {
  CHECK(classify("error", {body}) == Disposition::drop);
  CHECK(classify("headline", {body}) == Disposition::drop);
  CHECK(classify("groupchat", {body}) == Disposition::refuse);
}

TEST_CASE("XEP-0334 hints") {
  CHECK(classify("chat", {body, no_store_hint}) == Disposition::refuse);
  CHECK(classify("headline", {body, no_store_hint}) == Disposition::drop);
  CHECK(classify("chat", {body, no_permanent_store}) == Disposition::store);  // offline is not an archive
  CHECK(classify("chat", {composing, store_hint}) == Disposition::store);
  CHECK(classify("headline", {body, store_hint}) == Disposition::store);
  CHECK(classify("error", {body, store_hint}) == Disposition::drop);
  CHECK(classify("groupchat", {body, store_hint}) == Disposition::refuse);
}

TEST_CASE("the delay stamp is XEP-0082 UTC with milliseconds") {
  using namespace std::chrono;
  // 2002-09-10T23:08:25Z, XEP-0203's example, plus 7 ms.
  system_clock::time_point t{seconds(1031699305) + milliseconds(7)};
  CHECK(delay_stamp(t) == "2002-09-10T23:08:25.007Z");
  CHECK(delay_stamp(system_clock::time_point{}) == "1970-01-01T00:00:00.000Z");
  CHECK(delay_stamp(system_clock::time_point{milliseconds(-1)}) == "1969-12-31T23:59:59.999Z");
  std::regex format(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  CHECK(std::regex_match(delay_stamp(system_clock::now()), format));
}
