#include <doctest/doctest.h>

#include "adhoc_logic.hpp"

using namespace parley::mod_adhoc;

namespace {

Form form(std::initializer_list<std::pair<const char*, std::vector<std::string>>> fields) {
  Form f;
  f.type = "submit";
  for (const auto& [var, values] : fields) f.fields[var] = values;
  return f;
}

const StageSpec& stage_of(const char* node, size_t stage = 0) {
  const CommandSpec* c = find_command(node);
  REQUIRE(c != nullptr);
  REQUIRE(stage < c->stages.size());
  return c->stages[stage];
}

}  // namespace

TEST_CASE("actions: absent is execute, unknown is malformed") {
  CHECK(parse_action(std::nullopt) == Action::execute);
  CHECK(parse_action("") == Action::execute);
  CHECK(parse_action("execute") == Action::execute);
  CHECK(parse_action("next") == Action::next);
  CHECK(parse_action("prev") == Action::prev);
  CHECK(parse_action("complete") == Action::complete);
  CHECK(parse_action("cancel") == Action::cancel);
  CHECK_FALSE(parse_action("Execute").has_value());
  CHECK_FALSE(parse_action("finish").has_value());
}

TEST_CASE("form values: single, multi and text-multi lines") {
  Form f = form({{"motd", {"line one", "line two"}}, {"accountjid", {"a@localhost"}}, {"empty", {}}});
  CHECK(f.single("accountjid") == "a@localhost");
  CHECK(f.single("missing").empty());
  CHECK(f.single("empty").empty());
  CHECK(f.text("motd") == "line one\nline two");
  CHECK(f.values("motd").size() == 2);
}

TEST_CASE("the XEP-0133 commands are all there, with their fields") {
  for (const char* suffix : {"add-user", "delete-user", "end-user-session", "change-user-password",
                             "get-registered-users-num", "get-online-users-num", "get-active-users-num",
                             "get-online-users-list", "get-online-users", "announce", "set-motd", "edit-motd",
                             "delete-motd", "shutdown", "disable-user", "reenable-user", "get-user-roster",
                             "get-user-lastlogin", "user-stats", "get-disabled-users-num", "get-idle-users-num",
                             "get-registered-users-list", "get-disabled-users-list", "get-idle-users",
                             "set-welcome", "delete-welcome"}) {
    CAPTURE(suffix);
    const CommandSpec* c = find_command(std::string("http://jabber.org/protocol/admin#") + suffix);
    REQUIRE(c != nullptr);
    CHECK(c->admin);
    for (const StageSpec& s : c->stages) {
      REQUIRE_FALSE(s.fields.empty());
      CHECK(std::string_view(s.fields.front().var) == "FORM_TYPE");
    }
  }
  // Not offered (docs/modules/mod_adhoc.md says why): asking for them is item-not-found.
  for (const char* suffix : {"restart", "get-user-password", "edit-admin", "edit-blacklist", "edit-whitelist"})
    CHECK(find_command(std::string("http://jabber.org/protocol/admin#") + suffix) == nullptr);
  // XEP-0133's forms, field for field, for the new ones.
  CHECK(std::string_view(stage_of("http://jabber.org/protocol/admin#disable-user").fields[1].var) == "accountjids");
  CHECK(stage_of("http://jabber.org/protocol/admin#disable-user").fields[1].type == FieldType::jid_multi);
  CHECK(std::string_view(stage_of("http://jabber.org/protocol/admin#user-stats").fields[1].var) == "accountjid");
  CHECK(stage_of("http://jabber.org/protocol/admin#set-welcome").fields[1].type == FieldType::text_multi);
  CHECK(find_command("http://jabber.org/protocol/admin#get-idle-users-num")->stages.empty());
  const StageSpec& add = stage_of("http://jabber.org/protocol/admin#add-user");
  std::vector<std::string> vars;
  for (const FieldSpec& f : add.fields) vars.push_back(f.var);
  CHECK(vars == std::vector<std::string>{"FORM_TYPE", "accountjid", "password", "password-verify", "email",
                                         "given_name", "surname"});
}

TEST_CASE("submissions: required fields, FORM_TYPE, passwords, JIDs") {
  const StageSpec& add = stage_of("http://jabber.org/protocol/admin#add-user");
  CHECK_FALSE(check_submission(add, form({{"FORM_TYPE", {ns_admin}},
                                          {"accountjid", {"juliet@localhost"}},
                                          {"password", {"R0m30"}},
                                          {"password-verify", {"R0m30"}}}))
                  .has_value());
  // The required accountjid missing, or empty.
  CHECK(check_submission(add, form({{"password", {"x"}}})).has_value());
  CHECK(check_submission(add, form({{"accountjid", {""}}})).has_value());
  // Another FORM_TYPE.
  CHECK(check_submission(add, form({{"FORM_TYPE", {"urn:other"}}, {"accountjid", {"a@localhost"}}})).has_value());
  // Passwords that differ.
  auto wrong = check_submission(
      add, form({{"accountjid", {"a@localhost"}}, {"password", {"one"}}, {"password-verify", {"two"}}}));
  REQUIRE(wrong.has_value());
  CHECK(wrong->find("passwords") != std::string::npos);
  // Two values in a single field; something that is no JID.
  CHECK(check_submission(add, form({{"accountjid", {"a@localhost", "b@localhost"}}})).has_value());
  CHECK(check_submission(add, form({{"accountjid", {"a b@localhost"}}})).has_value());
  CHECK(check_submission(add, form({{"accountjid", {"@localhost"}}})).has_value());
  CHECK(check_submission(add, form({{"accountjid", {"a@localhost/"}}})).has_value());
  const StageSpec& del = stage_of("http://jabber.org/protocol/admin#delete-user");
  CHECK_FALSE(check_submission(del, form({{"accountjids", {"a@localhost", "b@localhost"}}})).has_value());
}

TEST_CASE("list fields: closed options, the open shutdown delay, max_items") {
  const StageSpec& list = stage_of("http://jabber.org/protocol/admin#get-online-users-list");
  CHECK_FALSE(check_submission(list, form({{"max_items", {"25"}}})).has_value());
  CHECK_FALSE(check_submission(list, form({{"max_items", {"none"}}})).has_value());
  CHECK(check_submission(list, form({{"max_items", {"7"}}})).has_value());
  CHECK(parse_max_items("none") == size_t{0});
  CHECK(parse_max_items("") == size_t{0});
  CHECK(parse_max_items("100") == size_t{100});
  CHECK_FALSE(parse_max_items("0").has_value());
  CHECK_FALSE(parse_max_items("-1").has_value());
  const StageSpec& shutdown = stage_of("http://jabber.org/protocol/admin#shutdown");
  CHECK_FALSE(check_submission(shutdown, form({{"delay", {"30"}}})).has_value());
  CHECK_FALSE(check_submission(shutdown, form({{"delay", {"5"}}})).has_value());  // open: any seconds
  CHECK_FALSE(check_submission(shutdown, form({})).has_value());                  // nothing is required
  CHECK(check_submission(shutdown, form({{"delay", {"soon"}}})).has_value());
  CHECK(check_submission(shutdown, form({{"delay", {"86401"}}})).has_value());
  CHECK(parse_delay("") == uint64_t{0});
  CHECK(parse_delay("120") == uint64_t{120});
}

TEST_CASE("choices offered at run time") {
  std::vector<std::string> offered{"a@localhost/one", "a@localhost/two"};
  CHECK_FALSE(check_choices(form({{"sessions", {"a@localhost/two"}}}), "sessions", offered).has_value());
  CHECK(check_choices(form({{"sessions", {"a@localhost/three"}}}), "sessions", offered).has_value());
}

TEST_CASE("sessions: per requester, bounded, ended ids remembered, expiry") {
  SessionStore store(2, 1000);
  CommandSession* a = store.create("admin@localhost/one", "http://jabber.org/protocol/admin#add-user", 0);
  REQUIRE(a != nullptr);
  std::string id = a->id;
  CHECK(id.rfind("add-user:", 0) == 0);
  CommandSession* found = nullptr;
  CHECK(store.find("admin@localhost/one", id, 10, found) == SessionStore::Found::ok);
  CHECK(found == a);
  // Another requester (even the same account's other resource) does not get it.
  CHECK(store.find("admin@localhost/two", id, 10, found) == SessionStore::Found::unknown);
  CHECK(store.find("admin@localhost/one", "made-up", 10, found) == SessionStore::Found::unknown);
  // At most two live sessions per requester.
  CHECK(store.create("admin@localhost/one", "n", 10) != nullptr);
  CHECK(store.create("admin@localhost/one", "n", 10) == nullptr);
  CHECK(store.create("admin@localhost/two", "n", 10) != nullptr);
  // Ended: session-expired, not bad-sessionid.
  store.end(id);
  CHECK(store.find("admin@localhost/one", id, 20, found) == SessionStore::Found::ended);
  CHECK(store.create("admin@localhost/one", "n", 20) != nullptr);
  // Timed out: ended too (a find renews the expiry of a live one).
  CommandSession* b = store.create("x@localhost/r", "n", 100);
  REQUIRE(b != nullptr);
  std::string bid = b->id;
  CHECK(store.find("x@localhost/r", bid, 1000, found) == SessionStore::Found::ok);  // renewed to 2000
  CHECK(store.find("x@localhost/r", bid, 1999, found) == SessionStore::Found::ok);  // renewed to 2999
  CHECK(store.find("x@localhost/r", bid, 3000, found) == SessionStore::Found::ended);
}

TEST_CASE("ended ids are remembered in a bounded list") {
  SessionStore store(1, 1000);
  std::string first;
  for (size_t i = 0; i < SessionStore::kRemembered + 1; ++i) {
    CommandSession* s = store.create("a@localhost/r", "n", 0);
    REQUIRE(s != nullptr);
    if (i == 0) first = s->id;
    store.end(s->id);
  }
  CommandSession* found = nullptr;
  CHECK(store.find("a@localhost/r", first, 1, found) == SessionStore::Found::unknown);
  CHECK(store.size() == 0);
}

TEST_CASE("xml:lang on <command/>: any language tag is taken, anything else is bad-locale") {
  for (const char* tag : {"en", "de-CH", "zh-Hant-TW", "x-klingon", "i-enochian", "sl-rozaj-biske", "es-419"})
    CHECK_MESSAGE(acceptable_language(tag), tag);
  for (const char* tag : {"", "-", "en-", "-en", "e n", "en_US", "1en", "toolongsubtag", "en--us", "d\xc3\xa9"})
    CHECK_FALSE_MESSAGE(acceptable_language(tag), tag);
}
