// Every row of RFC 6121 Appendix A (A.2 outbound, A.3 inbound), plus the
// pre-approval rules of section 3.4.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "subscription_state.hpp"

using namespace mod_roster;

namespace {

SubState state(const std::string& name) {
  if (name == "None") return {Subscription::none, false, false, false};
  if (name == "None + Pending Out") return {Subscription::none, true, false, false};
  if (name == "None + Pending In") return {Subscription::none, false, true, false};
  if (name == "None + Pending Out+In") return {Subscription::none, true, true, false};
  if (name == "To") return {Subscription::to, false, false, false};
  if (name == "To + Pending In") return {Subscription::to, false, true, false};
  if (name == "From") return {Subscription::from, false, false, false};
  if (name == "From + Pending Out") return {Subscription::from, true, false, false};
  if (name == "Both") return {Subscription::both, false, false, false};
  FAIL("unknown state " << name);
  return {};
}

struct Row {
  const char* existing;
  bool forward;          // ROUTE? (A.2) / DELIVER? (A.3)
  const char* next;      // nullptr: "no state change"
};

void check_table(Direction d, SubType type, const std::vector<Row>& rows) {
  REQUIRE(rows.size() == 9);
  for (const Row& row : rows) {
    CAPTURE(row.existing);
    const SubState before = state(row.existing);
    REQUIRE(state_name(before).value_or("") == std::string(row.existing));
    // Without pre-approval the tables apply exactly as written.
    const Transition t = transition(before, d, type, /*preapproval=*/false);
    CHECK(t.forward == row.forward);
    const SubState expected = row.next ? state(row.next) : before;
    CHECK(t.next == expected);
    CHECK(state_name(t.next).has_value());
  }
}

}  // namespace

TEST_CASE("the nine states of A.1 have names, impossible combinations none") {
  CHECK(state_name({Subscription::to, true, false, false}) == std::nullopt);
  CHECK(state_name({Subscription::from, false, true, false}) == std::nullopt);
  CHECK(state_name({Subscription::both, true, false, false}) == std::nullopt);
  CHECK(state_name({Subscription::both, false, true, false}) == std::nullopt);
}

TEST_CASE("A.2.1 outbound subscribe") {
  check_table(Direction::outbound, SubType::subscribe,
              {{"None", true, "None + Pending Out"},
               {"None + Pending Out", true, nullptr},
               {"None + Pending In", true, "None + Pending Out+In"},
               {"None + Pending Out+In", true, nullptr},
               {"To", true, nullptr},
               {"To + Pending In", true, nullptr},
               {"From", true, "From + Pending Out"},
               {"From + Pending Out", true, nullptr},
               {"Both", true, nullptr}});
}

TEST_CASE("A.2.2 outbound unsubscribe") {
  check_table(Direction::outbound, SubType::unsubscribe,
              {{"None", true, nullptr},
               {"None + Pending Out", true, "None"},
               {"None + Pending In", true, nullptr},
               {"None + Pending Out+In", true, "None + Pending In"},
               {"To", true, "None"},
               {"To + Pending In", true, "None + Pending In"},
               {"From", true, nullptr},
               {"From + Pending Out", true, "From"},
               {"Both", true, "From"}});
}

TEST_CASE("A.2.3 outbound subscribed") {
  check_table(Direction::outbound, SubType::subscribed,
              {{"None", false, nullptr},
               {"None + Pending Out", false, nullptr},
               {"None + Pending In", true, "From"},
               {"None + Pending Out+In", true, "From + Pending Out"},
               {"To", false, nullptr},
               {"To + Pending In", true, "Both"},
               {"From", false, nullptr},
               {"From + Pending Out", false, nullptr},
               {"Both", false, nullptr}});
}

TEST_CASE("A.2.4 outbound unsubscribed") {
  check_table(Direction::outbound, SubType::unsubscribed,
              {{"None", false, nullptr},
               {"None + Pending Out", false, nullptr},
               {"None + Pending In", true, "None"},
               {"None + Pending Out+In", true, "None + Pending Out"},
               {"To", false, nullptr},
               {"To + Pending In", true, "To"},
               {"From", true, "None"},
               {"From + Pending Out", true, "None + Pending Out"},
               {"Both", true, "To"}});
}

TEST_CASE("A.3.1 inbound subscribe") {
  check_table(Direction::inbound, SubType::subscribe,
              {{"None", true, "None + Pending In"},
               {"None + Pending Out", true, "None + Pending Out+In"},
               {"None + Pending In", false, nullptr},
               {"None + Pending Out+In", false, nullptr},
               {"To", true, "To + Pending In"},
               {"To + Pending In", false, nullptr},
               {"From", false, nullptr},
               {"From + Pending Out", false, nullptr},
               {"Both", false, nullptr}});
}

TEST_CASE("A.3.1 footnote: an already subscribed contact gets an automatic subscribed") {
  for (const char* name : {"From", "From + Pending Out", "Both"}) {
    CAPTURE(name);
    CHECK(transition(state(name), Direction::inbound, SubType::subscribe).auto_reply_subscribed);
  }
  for (const char* name : {"None", "None + Pending Out", "None + Pending In", "None + Pending Out+In", "To",
                           "To + Pending In"}) {
    CAPTURE(name);
    CHECK_FALSE(transition(state(name), Direction::inbound, SubType::subscribe).auto_reply_subscribed);
  }
}

TEST_CASE("A.3.2 inbound unsubscribe") {
  check_table(Direction::inbound, SubType::unsubscribe,
              {{"None", false, nullptr},
               {"None + Pending Out", false, nullptr},
               {"None + Pending In", true, "None"},
               {"None + Pending Out+In", true, "None + Pending Out"},
               {"To", false, nullptr},
               {"To + Pending In", true, "To"},
               {"From", true, "None"},
               {"From + Pending Out", true, "None + Pending Out"},
               {"Both", true, "To"}});
}

TEST_CASE("A.3.3 inbound subscribed") {
  check_table(Direction::inbound, SubType::subscribed,
              {{"None", false, nullptr},
               {"None + Pending Out", true, "To"},
               {"None + Pending In", false, nullptr},
               {"None + Pending Out+In", true, "To + Pending In"},
               {"To", false, nullptr},
               {"To + Pending In", false, nullptr},
               {"From", false, nullptr},
               {"From + Pending Out", true, "Both"},
               {"Both", false, nullptr}});
}

TEST_CASE("A.3.4 inbound unsubscribed") {
  check_table(Direction::inbound, SubType::unsubscribed,
              {{"None", false, nullptr},
               {"None + Pending Out", true, "None"},
               {"None + Pending In", false, nullptr},
               {"None + Pending Out+In", true, "None + Pending In"},
               {"To", true, "None"},
               {"To + Pending In", true, "None + Pending In"},
               {"From", false, nullptr},
               {"From + Pending Out", true, "From"},
               {"Both", true, "From"}});
}

TEST_CASE("3.4.1 an outbound subscribed without a request pre-approves (None, None + Pending Out, To)") {
  for (const char* name : {"None", "None + Pending Out", "To"}) {
    CAPTURE(name);
    const SubState before = state(name);
    const Transition t = transition(before, Direction::outbound, SubType::subscribed);
    CHECK_FALSE(t.forward);  // MUST NOT be routed
    SubState expected = before;
    expected.approved = true;
    CHECK(t.next == expected);
  }
  // Already subscribed: silently ignored, no pre-approval.
  for (const char* name : {"From", "From + Pending Out", "Both"}) {
    CAPTURE(name);
    const Transition t = transition(state(name), Direction::outbound, SubType::subscribed);
    CHECK_FALSE(t.forward);
    CHECK_FALSE(t.next.approved);
  }
}

TEST_CASE("3.4 a pre-approved contact's request is approved by the server") {
  struct Case { const char* from; const char* to; };
  for (Case c : {Case{"None", "From"}, Case{"None + Pending Out", "From + Pending Out"}, Case{"To", "Both"}}) {
    CAPTURE(c.from);
    SubState before = state(c.from);
    before.approved = true;
    const Transition t = transition(before, Direction::inbound, SubType::subscribe);
    CHECK_FALSE(t.forward);                 // not delivered to the user
    CHECK(t.auto_reply_subscribed);         // answered on the user's behalf
    CHECK(t.next == state(c.to));           // and the approval is used up
  }
}

TEST_CASE("3.4 an outbound unsubscribed cancels a pre-approval without being routed") {
  for (const char* name : {"None", "None + Pending Out", "To"}) {
    CAPTURE(name);
    SubState before = state(name);
    before.approved = true;
    const Transition t = transition(before, Direction::outbound, SubType::unsubscribed);
    CHECK_FALSE(t.forward);
    CHECK(t.next == state(name));
  }
}

TEST_CASE("approving a pending request clears a pre-approval; other stanzas keep it") {
  SubState before = state("None + Pending In");
  before.approved = true;  // cannot normally happen, but must not survive an approval
  CHECK(transition(before, Direction::outbound, SubType::subscribed).next == state("From"));
  SubState pre = state("None");
  pre.approved = true;
  CHECK(transition(pre, Direction::outbound, SubType::subscribe).next.approved);
  CHECK(transition(pre, Direction::inbound, SubType::unsubscribed).next.approved);
}

TEST_CASE("type names") {
  CHECK(parse_sub_type("subscribe") == SubType::subscribe);
  CHECK(parse_sub_type("unsubscribed") == SubType::unsubscribed);
  CHECK_FALSE(parse_sub_type("probe"));
  CHECK_FALSE(parse_sub_type(""));
  CHECK(parse_subscription("both") == Subscription::both);
  CHECK_FALSE(parse_subscription("remove"));
  CHECK(subscription_name(Subscription::from) == "from");
}
