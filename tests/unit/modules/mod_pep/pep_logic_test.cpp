#include <doctest/doctest.h>

#include "pubsub_logic.hpp"

using namespace parley::pubsub;

namespace {
Form form(std::initializer_list<std::pair<std::string, std::string>> fields) {
  Form out;
  for (const auto& [k, v] : fields) out.push_back(FormField{k, {v}});
  return out;
}
}  // namespace

TEST_CASE("SHA-1 and base64 (FIPS 180 and RFC 4648 vectors)") {
  CHECK(base64(sha1("abc")) == "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
  CHECK(base64(sha1("")) == "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
  CHECK(base64("f") == "Zg==");
  CHECK(base64("fo") == "Zm8=");
  CHECK(base64("foo") == "Zm9v");
}

TEST_CASE("XEP-0115 5.2: the simple example") {
  CapsInfo info;
  info.identities.push_back({"client", "pc", "", "Exodus 0.9.1"});
  info.features = {"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
                   "http://jabber.org/protocol/muc", "http://jabber.org/protocol/caps"};
  CHECK(caps_ver(info) == std::optional<std::string>("QgayPKawpkPSDYmwT/WM94uAlu0="));
}

TEST_CASE("XEP-0115 5.3: the complex example (languages, an extended form)") {
  CapsInfo info;
  info.identities.push_back({"client", "pc", "en", "Psi 0.11"});
  info.identities.push_back({"client", "pc", "el", "\xce\xa8 0.11"});
  info.features = {"http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info",
                   "http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/muc"};
  CapsForm f;
  f.form_type = "urn:xmpp:dataforms:softwareinfo";
  f.fields = {{"ip_version", {"ipv6", "ipv4"}}, {"os", {"Mac"}}, {"os_version", {"10.5.1"}},
              {"software", {"Psi"}}, {"software_version", {"0.11"}}};
  info.forms.push_back(f);
  CHECK(caps_ver(info) == std::optional<std::string>("q07IKJEyjvHSyhy//CH0CxmKi8w="));
}

TEST_CASE("XEP-0115 5.4: duplicates are not trusted, a changed feature changes the hash") {
  CapsInfo info;
  info.identities.push_back({"client", "pc", "", "Exodus 0.9.1"});
  info.features = {"http://jabber.org/protocol/muc", "http://jabber.org/protocol/muc"};
  CHECK_FALSE(caps_ver(info).has_value());
  info.features = {"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
                   "http://jabber.org/protocol/muc", "http://jabber.org/protocol/caps", "urn:x+notify"};
  CHECK(caps_ver(info) != std::optional<std::string>("QgayPKawpkPSDYmwT/WM94uAlu0="));
  info.identities.push_back({"client", "pc", "", "Exodus 0.9.1"});
  CHECK_FALSE(caps_ver(info).has_value());
}

TEST_CASE("a node_config form applies, with max_items 'max' and the limit") {
  Limits limits;
  limits.max_items = 100;
  NodeConfig c;
  CHECK_FALSE(apply_config(c, form({{"pubsub#access_model", "whitelist"}, {"pubsub#max_items", "max"},
                                    {"pubsub#persist_items", "true"}, {"pubsub#send_last_published_item", "never"}}),
                           limits));
  CHECK(c.access == AccessModel::whitelist);
  CHECK(c.max_items == -1);
  CHECK(c.effective_max_items(limits) == 100);
  CHECK(c.send_last == SendLast::never);
  CHECK_FALSE(apply_config(c, form({{"pubsub#max_items", "7"}}), limits));
  CHECK(c.effective_max_items(limits) == 7);
}

TEST_CASE("a refused form changes nothing") {
  Limits limits;
  limits.max_items = 10;
  NodeConfig c;
  auto e = apply_config(c, form({{"pubsub#access_model", "open"}, {"pubsub#max_items", "11"}}), limits);
  REQUIRE(e);
  CHECK(e->field == "pubsub#max_items");
  CHECK(c.access == AccessModel::presence);  // the valid field before it was not applied either
  CHECK(apply_config(c, form({{"pubsub#access_model", "authorize"}}), limits));
  CHECK(apply_config(c, form({{"pubsub#persist_items", "yes"}}), limits));
  CHECK(apply_config(c, form({{"pubsub#no_such_option", "1"}}), limits));
  CHECK(apply_config(c, form({{"pubsub#max_items", "0"}}), limits));
}

TEST_CASE("publish-options preconditions (XEP-0060 7.1.5)") {
  Limits limits;
  limits.max_items = 50;
  NodeConfig c;
  CHECK_FALSE(precondition_mismatch(c, form({{"pubsub#access_model", "presence"}}), limits));
  CHECK(precondition_mismatch(c, form({{"pubsub#access_model", "open"}}), limits) ==
        std::optional<std::string>("pubsub#access_model"));
  // "true" and "1" are the same boolean.
  CHECK_FALSE(precondition_mismatch(c, form({{"pubsub#persist_items", "true"}}), limits));
  CHECK(precondition_mismatch(c, form({{"pubsub#persist_items", "0"}}), limits));
  // An unknown option never matches.
  CHECK(precondition_mismatch(c, form({{"pubsub#unknown", "x"}}), limits));
  // "max" matches a node whose max_items is the limit.
  c.max_items = 50;
  CHECK_FALSE(precondition_mismatch(c, form({{"pubsub#max_items", "max"}}), limits));
  c.max_items = 1;
  CHECK(precondition_mismatch(c, form({{"pubsub#max_items", "max"}}), limits));
  CHECK_FALSE(precondition_mismatch(c, form({{"FORM_TYPE", std::string(publish_options_form_type)},
                                              {"pubsub#max_items", "1"}}),
                                    limits));
}

TEST_CASE("the stored configuration round-trips, lists and odd text included") {
  NodeConfig c;
  c.access = AccessModel::roster;
  c.max_items = -1;
  c.persist_items = false;
  c.roster_groups = {"Friends", "Work\nmates"};
  c.whitelist = {"a@x"};
  c.outcasts = {"b@x"};
  c.title = "back\\slash";
  NodeConfig back = parse_config(serialize_config(c));
  CHECK(serialize_config(back) == serialize_config(c));
  CHECK(back.roster_groups == c.roster_groups);
  CHECK(back.title == c.title);
  CHECK(parse_config("garbage").access == AccessModel::presence);
}

TEST_CASE("access models") {
  NodeConfig c;
  CHECK(check_access(c, true, "me@x", false, {}) == Access::allowed);
  CHECK(check_access(c, false, "you@x", false, {}) == Access::presence_required);
  CHECK(check_access(c, false, "you@x", true, {}) == Access::allowed);
  c.access = AccessModel::open;
  CHECK(check_access(c, false, "stranger@y", false, {}) == Access::allowed);
  c.outcasts = {"stranger@y"};
  CHECK(check_access(c, false, "stranger@y", false, {}) == Access::outcast);
  c.access = AccessModel::roster;
  c.roster_groups = {"Friends"};
  CHECK(check_access(c, false, "you@x", true, {"Work"}) == Access::not_in_group);
  CHECK(check_access(c, false, "you@x", true, {"Work", "Friends"}) == Access::allowed);
  c.access = AccessModel::whitelist;
  CHECK(check_access(c, false, "you@x", true, {}) == Access::not_whitelisted);
  c.whitelist = {"you@x"};
  CHECK(check_access(c, false, "you@x", false, {}) == Access::allowed);
}

TEST_CASE("roster groups as mod_roster stores them") {
  CHECK(decode_roster_groups("7:Friends4:Work") == std::vector<std::string>{"Friends", "Work"});
  CHECK(decode_roster_groups("").empty());
  CHECK(decode_roster_groups("99:short") .empty());
}

TEST_CASE("RSM pages over a node's items (XEP-0059)") {
  auto page = [](Page p) { return std::pair{p.begin, p.end}; };
  CHECK(page(rsm_page(5, std::nullopt, std::nullopt, false, 2)) == std::pair<std::size_t, std::size_t>{0, 2});
  CHECK(page(rsm_page(5, 1, std::nullopt, false, 2)) == std::pair<std::size_t, std::size_t>{2, 4});
  CHECK(page(rsm_page(5, 4, std::nullopt, false, 2)) == std::pair<std::size_t, std::size_t>{5, 5});
  CHECK(page(rsm_page(5, std::nullopt, std::nullopt, true, 2)) == std::pair<std::size_t, std::size_t>{3, 5});
  CHECK(page(rsm_page(5, std::nullopt, 1, false, 2)) == std::pair<std::size_t, std::size_t>{0, 1});
  CHECK(page(rsm_page(5, std::nullopt, std::nullopt, false, 0)) == std::pair<std::size_t, std::size_t>{0, 0});
}

TEST_CASE("strings encoded and decoded (a session's saved caps)") {
  std::vector<std::string> in{"v1", "", "a:b", "12345678901:x", "line\nbreak"};
  CHECK(decode_roster_groups(encode_strings(in)) == in);
  CHECK(decode_roster_groups("5:ab").empty());  // cut short: nothing made up
}

TEST_CASE("XEP-0153 photo hashes: base64 as vCards write it, SHA-1 in hex") {
  CHECK(base64_decode("aGVsbG8=") == std::optional<std::string>("hello"));
  CHECK(base64_decode("aGVs\nbG8h") == std::optional<std::string>("hello!"));  // line breaks, no padding
  CHECK(base64_decode("aGk=") == std::optional<std::string>("hi"));
  CHECK(base64_decode("").value_or("x").empty());
  CHECK_FALSE(base64_decode("aGVsbG8").has_value());  // not a multiple of four
  CHECK_FALSE(base64_decode("a*==").has_value());
  for (std::string bytes : {std::string("\x89PNG\r\n\x1a\n", 8), std::string(300, '\xff')})
    CHECK(base64_decode(base64(bytes)) == std::optional<std::string>(bytes));
  CHECK(hex(sha1("abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d");
}
