// mod_mam's rules: what is archived, preferences, times, ids, durations, and the query
// form and RSM set with malformed input.
#include <doctest/doctest.h>

#include "mam_logic.hpp"

using namespace parley::mod_mam;

namespace {

const ChildName body{"body", ns_client};
const ChildName store{"store", ns_hints};
const ChildName no_store{"no-store", ns_hints};
const ChildName no_permanent_store{"no-permanent-store", ns_hints};
const ChildName receipt{"request", "urn:xmpp:receipts"};
const ChildName foreign_body{"body", "urn:example"};

const parley::ArchiveIds kIds(std::string("0123456789abcdef", 16));

QueryResultOrError parse(std::vector<FormField> fields, RsmIn rsm = {}, bool flip = false) {
  return parse_query(fields, rsm, flip, QueryLimits{10, 50, 5}, kIds);
}

std::string error_of(const QueryResultOrError& r) { return r.error ? r.error->condition : "ok"; }

}  // namespace

TEST_CASE("archivable: chat and normal with a body, or a store hint (XEP-0313 5.1.1, XEP-0334)") {
  CHECK(archivable("chat", {body}));
  CHECK(archivable("normal", {body}));
  CHECK(archivable("", {body}));
  CHECK(archivable("unknown-type", {body}));  // RFC 6121 5.2.2: normal
  CHECK_FALSE(archivable("chat", {receipt}));
  CHECK_FALSE(archivable("chat", {foreign_body}));
  CHECK(archivable("chat", {receipt, store}));
  CHECK_FALSE(archivable("groupchat", {body}));
  CHECK_FALSE(archivable("headline", {body}));
  CHECK_FALSE(archivable("error", {body}));
  CHECK_FALSE(archivable("chat", {body, no_store}));
  CHECK_FALSE(archivable("chat", {no_permanent_store, body}));
  CHECK_FALSE(archivable("chat", {store, no_store}));  // no-store wins
}

TEST_CASE("preferences: never wins, then always, then the default; bare JIDs cover resources") {
  Prefs p;
  p.default_mode = Mode::never;
  p.always = {"carol@example.org", "dave@example.org/phone"};
  p.never = {"carol@example.org/work"};
  CHECK(should_archive(p, "carol@example.org"));
  CHECK(should_archive(p, "carol@example.org/home"));
  CHECK_FALSE(should_archive(p, "carol@example.org/work"));
  CHECK(should_archive(p, "dave@example.org/phone"));
  CHECK_FALSE(should_archive(p, "dave@example.org/laptop"));
  CHECK_FALSE(should_archive(p, "carol@example.org.evil"));  // a prefix is not the JID
  CHECK_FALSE(should_archive(p, "eve@example.org"));
  p.default_mode = Mode::always;
  CHECK(should_archive(p, "eve@example.org"));
  p.default_mode = Mode::roster;
  CHECK(should_archive(p, "eve@example.org"));
}

TEST_CASE("decide: the roster is asked only for a roster default and a JID in neither list") {
  Prefs p;
  p.default_mode = Mode::roster;
  p.always = {"carol@example.org"};
  p.never = {"mallory@example.org"};
  CHECK(decide(p, "carol@example.org/home") == Decision::archive);
  CHECK(decide(p, "mallory@example.org") == Decision::skip);
  CHECK(decide(p, "eve@example.org") == Decision::ask_roster);
  p.default_mode = Mode::always;
  CHECK(decide(p, "eve@example.org") == Decision::archive);
  p.default_mode = Mode::never;
  CHECK(decide(p, "eve@example.org") == Decision::skip);
}

TEST_CASE("preferences round-trip through their stored form; corrupt text is refused") {
  Prefs p;
  p.default_mode = Mode::roster;
  p.always = {"a@b", "c@d/e"};
  p.never = {"f@g"};
  auto back = decode_prefs(encode_prefs(p));
  REQUIRE(back);
  CHECK(back->default_mode == Mode::roster);
  CHECK(back->always == p.always);
  CHECK(back->never == p.never);
  CHECK(decode_prefs("never")->always.empty());
  CHECK_FALSE(decode_prefs(""));
  CHECK_FALSE(decode_prefs("sometimes"));
  CHECK_FALSE(decode_prefs("always\nmaybe x@y"));
  CHECK_FALSE(decode_prefs("always\nalways "));
  CHECK(parse_mode("always") == Mode::always);
  CHECK_FALSE(parse_mode("Always"));
}

TEST_CASE("XEP-0082 DateTime") {
  CHECK(parse_datetime("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_datetime("2010-06-07T00:00:00Z") == int64_t{1275868800} * 1000000);
  CHECK(parse_datetime("2010-06-07T00:00:00.5Z") == int64_t{1275868800} * 1000000 + 500000);
  CHECK(parse_datetime("2010-06-07T02:00:00+02:00") == int64_t{1275868800} * 1000000);
  CHECK(parse_datetime("2010-06-06T22:00:00-02:00") == int64_t{1275868800} * 1000000);
  CHECK(parse_datetime("2000-02-29T00:00:00Z"));
  CHECK(parse_datetime("1969-12-31T23:59:59Z") == -1000000);
  for (const char* bad : {"", "yesterday", "2010-06-07", "2010-06-07T00:00:00", "2010-13-07T00:00:00Z",
                          "2010-06-31T00:00:00Z", "2001-02-29T00:00:00Z", "2010-06-07T24:00:00Z",
                          "2010-06-07 00:00:00Z", "2010-06-07T00:00:00.Z", "2010-06-07T00:00:00Zjunk",
                          "2010-06-07T00:00:00+2:00", "2010-06-07T00:00:00.1234567891Z", "+010-06-07T00:00:00Z"})
    CHECK_MESSAGE(!parse_datetime(bad), bad);
}

TEST_CASE("ids and durations") {
  CHECK(parse_positive("1") == 1u);
  CHECK(parse_positive("9223372036854775807") == 9223372036854775807u);
  for (const char* bad : {"", "0", "-1", "+1", "1a", "9223372036854775808", "99999999999999999999", " 1"})
    CHECK_MESSAGE(!parse_positive(bad), bad);
  CHECK(parse_duration("7d") == 7 * 86400);
  CHECK(parse_duration("1w") == 7 * 86400);
  CHECK(parse_duration("12h") == 12 * 3600);
  CHECK(parse_duration("30m") == 1800);
  CHECK(parse_duration("45s") == 45);
  CHECK(parse_duration("3600") == 3600);
  CHECK(parse_duration("never") == 0);
  CHECK(parse_duration("0") == 0);
  for (const char* bad : {"", "d", "7x", "-1d", "1.5h", "9999999999999d"}) CHECK_MESSAGE(!parse_duration(bad), bad);
}

TEST_CASE("query: fields, RSM, defaults and caps") {
  auto r = parse({{"FORM_TYPE", {"urn:xmpp:mam:2"}},
                  {"with", {"a@b"}},
                  {"start", {"2010-06-07T00:00:00Z"}},
                  {"end", {"2010-07-07T13:23:54Z"}},
                  {"after-id", {"5"}},
                  {"before-id", {"9"}}});
  REQUIRE(r.query);
  CHECK(r.query->with == "a@b");
  CHECK(r.query->start_us == int64_t{1275868800} * 1000000);
  CHECK(r.query->after_id == 5);
  CHECK(r.query->before_id == 9);
  CHECK(r.query->max == 10);  // the default page
  CHECK_FALSE(r.query->from_end);

  r = parse({}, RsmIn{std::string("1000"), std::nullopt, std::string(""), false}, true);
  REQUIRE(r.query);
  CHECK(r.query->max == 50);  // capped
  CHECK(r.query->from_end);
  CHECK(r.query->page_before == 0);
  CHECK(r.query->flip);
  r = parse({}, RsmIn{std::string("0"), std::string("7"), std::nullopt, false});
  REQUIRE(r.query);
  CHECK(r.query->max == 0);
  CHECK(r.query->page_after == 7);
  r = parse({}, RsmIn{std::nullopt, std::nullopt, std::string("8"), false});
  CHECK(r.query->page_before == 8);
  CHECK(r.query->from_end);
  r = parse({{"ids", {"3", "1"}}});  // decimal: the ids of earlier versions
  REQUIRE(r.query);
  CHECK(r.query->by_ids);
  CHECK(r.query->ids == std::vector<uint64_t>{3, 1});
  // The ids this version hands out (parley/sdk/archive_ids.hpp), in every place.
  r = parse({{"ids", {kIds.encode(1733541234567890)}}, {"after-id", {kIds.encode(17)}}},
            RsmIn{std::nullopt, kIds.encode(21), std::nullopt, false});
  REQUIRE(r.query);
  CHECK(r.query->ids == std::vector<uint64_t>{1733541234567890});
  CHECK(r.query->after_id == 17);
  CHECK(r.query->page_after == 21);
  const parley::ArchiveIds other(std::string("fedcba9876543210", 16));
  CHECK(error_of(parse({{"ids", {other.encode(1733541234567890)}}})) == "item-not-found");
  CHECK(error_of(parse({}, RsmIn{std::nullopt, std::nullopt, other.encode(5), false})) == "item-not-found");
}

TEST_CASE("query: malformed input is refused with the right condition") {
  CHECK(error_of(parse({{"FORM_TYPE", {"urn:xmpp:mam:1"}}})) == "bad-request");
  CHECK(error_of(parse({{"FORM_TYPE", {}}})) == "bad-request");
  CHECK(error_of(parse({{"start", {"yesterday"}}})) == "bad-request");
  CHECK(error_of(parse({{"start", {}}})) == "bad-request");
  CHECK(error_of(parse({{"end", {"2010-06-07T00:00:00Z", "2010-06-08T00:00:00Z"}}})) == "bad-request");
  CHECK(error_of(parse({{"start", {"2010-06-08T00:00:00Z"}}, {"end", {"2010-06-07T00:00:00Z"}}})) == "bad-request");
  CHECK(error_of(parse({{"with", {}}})) == "bad-request");
  CHECK(error_of(parse({{"with", {""}}})) == "bad-request");
  CHECK(error_of(parse({{"after-id", {"abc"}}})) == "item-not-found");  // opaque ids: not in the archive
  CHECK(error_of(parse({{"before-id", {"0"}}})) == "item-not-found");
  CHECK(error_of(parse({{"after-id", {}}})) == "bad-request");
  CHECK(error_of(parse({{"ids", {}}})) == "bad-request");
  CHECK(error_of(parse({{"ids", {"1", "x"}}})) == "item-not-found");
  CHECK(error_of(parse({{"ids", {"1", "2", "3", "4", "5", "6"}}})) == "policy-violation");  // over max_ids
  CHECK(error_of(parse({{"fulltext", {"hi"}}})) == "feature-not-implemented");
  CHECK(error_of(parse({}, RsmIn{std::string("-1"), std::nullopt, std::nullopt, false})) == "bad-request");
  CHECK(error_of(parse({}, RsmIn{std::string("ten"), std::nullopt, std::nullopt, false})) == "bad-request");
  CHECK(error_of(parse({}, RsmIn{std::string(""), std::nullopt, std::nullopt, false})) == "bad-request");
  CHECK(error_of(parse({}, RsmIn{std::nullopt, std::string("x"), std::nullopt, false})) == "item-not-found");
  CHECK(error_of(parse({}, RsmIn{std::nullopt, std::string(""), std::nullopt, false})) == "item-not-found");
  CHECK(error_of(parse({}, RsmIn{std::nullopt, std::nullopt, std::string("x"), false})) == "item-not-found");
  CHECK(error_of(parse({}, RsmIn{std::nullopt, std::string("1"), std::string("2"), false})) == "bad-request");
  CHECK(error_of(parse({}, RsmIn{std::nullopt, std::nullopt, std::nullopt, true})) == "feature-not-implemented");
}
