#include <doctest/doctest.h>

#include "register_logic.hpp"

using namespace parley::mod_register;

namespace {

Policy open_policy() {
  Policy p;
  p.allow_registration = true;
  return p;
}

QueryContent fields(std::optional<std::string> username, std::optional<std::string> password) {
  QueryContent q;
  q.username = std::move(username);
  q.password = std::move(password);
  q.children = (q.username ? 1 : 0) + (q.password ? 1 : 0);
  return q;
}

QueryContent form(std::string type, std::vector<FormField> f) {
  QueryContent q;
  q.form = DataForm{std::move(type), std::move(f)};
  q.children = 1;
  return q;
}

Decision unauth(const QueryContent& q, const Policy& p = open_policy()) {
  return decide_set(q, Requester::unauthenticated, {}, "example.org", p);
}

Decision own(const QueryContent& q, const Policy& p = Policy{}) {
  return decide_set(q, Requester::own_account, "bill", "example.org", p);
}

}  // namespace

TEST_CASE("registration with the plain fields (XEP-0077 example 4)") {
  Decision d = unauth(fields("bill", "Calliope"));
  REQUIRE(d.kind == Decision::Kind::register_account);
  CHECK(d.username == "bill");
  CHECK(d.password == "Calliope");
}

TEST_CASE("registration refused when the server does not allow it") {
  Decision d = unauth(fields("bill", "Calliope"), Policy{});
  CHECK(d.condition == "service-unavailable");
  CHECK(decide_get(Requester::unauthenticated, Policy{}).condition == "service-unavailable");
  CHECK(decide_get(Requester::unauthenticated, open_policy()).answer == GetAnswer::registration_form);
}

TEST_CASE("missing or empty fields are not acceptable (section 3.1)") {
  CHECK(unauth(fields(std::nullopt, "pw")).condition == "not-acceptable");
  CHECK(unauth(fields("bill", std::nullopt)).condition == "not-acceptable");
  CHECK(unauth(fields("bill", "")).condition == "not-acceptable");  // <password/>
  CHECK(unauth(fields("", "pw")).condition == "not-acceptable");
  CHECK(unauth(QueryContent{}).condition == "not-acceptable");
}

TEST_CASE("a minimum password length") {
  Policy p = open_policy();
  p.min_password_length = 6;
  CHECK(unauth(fields("bill", "short"), p).condition == "not-acceptable");
  CHECK(unauth(fields("bill", "sixsix"), p).kind == Decision::Kind::register_account);
  // Characters, not bytes: five two-byte letters are five.
  CHECK(unauth(fields("bill", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"), p).condition == "not-acceptable");
  CHECK(own(fields("bill", "short"), p).condition == "not-acceptable");
}

TEST_CASE("registration through a data form") {
  Decision d = unauth(form("submit", {{"FORM_TYPE", {"jabber:iq:register"}},
                                      {"username", {"juliet"}},
                                      {"password", {"R0m30"}}}));
  REQUIRE(d.kind == Decision::Kind::register_account);
  CHECK(d.username == "juliet");
  CHECK(d.password == "R0m30");
  // The form takes precedence over plain fields (section 6).
  QueryContent both = form("submit", {{"username", {"juliet"}}, {"password", {"R0m30"}}});
  both.username = "other";
  both.password = "x";
  CHECK(unauth(both).username == "juliet");
  CHECK(unauth(form("submit", {{"username", {"juliet"}}, {"password", {}}})).condition == "not-acceptable");
  CHECK(unauth(form("form", {{"username", {"juliet"}}, {"password", {"pw"}}})).condition == "bad-request");
  CHECK(unauth(form("submit", {{"FORM_TYPE", {"urn:other"}}, {"username", {"j"}}, {"password", {"p"}}}))
            .condition == "bad-request");
}

TEST_CASE("a stream that has not authenticated cannot cancel a registration") {
  QueryContent q;
  q.remove = true;
  q.children = 1;
  CHECK(unauth(q).condition == "unexpected-request");
}

TEST_CASE("cancelling one's registration (section 3.2)") {
  QueryContent q;
  q.remove = true;
  q.children = 1;
  Decision d = own(q);
  REQUIRE(d.kind == Decision::Kind::remove_account);
  CHECK(d.username == "bill");
  q.children = 2;  // <remove/> and something else
  CHECK(own(q).condition == "bad-request");
  q.children = 1;
  Policy p;
  p.allow_remove = false;
  CHECK(own(q, p).condition == "not-allowed");
  CHECK(decide_set(q, Requester::other_account, "bill", "example.org", Policy{}).condition == "forbidden");
}

TEST_CASE("changing one's password (section 3.3)") {
  Decision d = own(fields("bill", "newpass"));
  REQUIRE(d.kind == Decision::Kind::change_password);
  CHECK(d.username == "bill");
  CHECK(d.password == "newpass");
  CHECK(own(fields("Bill", "newpass")).kind == Decision::Kind::change_password);
  CHECK(own(fields("bill@example.org", "newpass")).kind == Decision::Kind::change_password);
  CHECK(own(fields("bill@other.org", "newpass")).condition == "forbidden");
  CHECK(own(fields("ted", "newpass")).condition == "forbidden");
  CHECK(own(fields(std::nullopt, "newpass")).condition == "bad-request");
  // An empty password never replaces the existing one.
  CHECK(own(fields("bill", "")).condition == "bad-request");
  CHECK(own(fields("bill", std::nullopt)).condition == "bad-request");
  CHECK(own(QueryContent{}).condition == "bad-request");
  Policy p;
  p.allow_password_change = false;
  CHECK(own(fields("bill", "newpass"), p).condition == "not-allowed");
  // The change-password form of section 3.3 (example 20).
  Decision f = own(form("submit", {{"FORM_TYPE", {"jabber:iq:register:changepassword"}},
                                   {"username", {"bill@example.org"}},
                                   {"old_password", {"theglobe"}},
                                   {"password", {"groundlings"}}}));
  REQUIRE(f.kind == Decision::Kind::change_password);
  CHECK(f.password == "groundlings");
  // The cancellation form is only answered to one the server asked for (it
  // never does): sent unasked it removes nothing and changes no password.
  CHECK(own(form("submit", {{"FORM_TYPE", {"jabber:iq:register:cancel"}},
                            {"username", {"bill"}},
                            {"password", {"theglobe"}}}))
            .condition == "bad-request");
}

TEST_CASE("who may ask") {
  CHECK(decide_get(Requester::own_account, Policy{}).answer == GetAnswer::registered);
  CHECK(decide_get(Requester::other_account, open_policy()).condition == "forbidden");
  CHECK(decide_get(Requester::foreign, open_policy()).condition == "service-unavailable");
  CHECK(decide_set(fields("x", "y"), Requester::foreign, "", "example.org", open_policy()).condition ==
        "service-unavailable");
}

TEST_CASE("errors carry their legacy code") {
  CHECK(error_shape("conflict").code == 409);
  CHECK(error_shape("conflict").type == "cancel");
  CHECK(error_shape("not-acceptable").code == 406);
  CHECK(error_shape("not-acceptable").type == "modify");
  CHECK(error_shape("service-unavailable").code == 503);
  CHECK(error_shape("resource-constraint").type == "wait");
  CHECK(error_shape("not-allowed").code == 405);
  CHECK(error_shape("bad-request").code == 400);
}

TEST_CASE("code points") {
  CHECK(code_points("") == 0);
  CHECK(code_points("abc") == 3);
  CHECK(code_points("\xe2\x82\xac") == 1);
  CHECK(code_points("\xf0\x9f\x98\x80x") == 2);
  CHECK(code_points("\xc3") == 1);
}
