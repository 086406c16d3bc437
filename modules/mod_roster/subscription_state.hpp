// mod_roster/subscription_state.hpp - the presence subscription state machine
// of RFC 6121 Appendix A (A.2 outbound, A.3 inbound) with the pre-approval
// flag of section 3.4, as a pure function. Standard library only.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mod_roster {

enum class Subscription { none, to, from, both };

// One contact as seen from one user: the roster item's subscription, its
// 'ask' (Pending Out), a request the contact sent and the user has not
// answered (Pending In), and a pre-approval (RFC 6121 3.4).
struct SubState {
  Subscription sub = Subscription::none;
  bool pending_out = false;
  bool pending_in = false;
  bool approved = false;

  bool operator==(const SubState&) const = default;
};

enum class Direction { outbound, inbound };
enum class SubType { subscribe, subscribed, unsubscribe, unsubscribed };

struct Transition {
  SubState next;
  // Outbound: route the stanza to the contact. Inbound: deliver it to the user.
  bool forward = false;
  // Inbound subscribe: the user's server answers 'subscribed' on the user's
  // behalf (already subscribed, or pre-approved: RFC 6121 3.1.3, 3.4).
  bool auto_reply_subscribed = false;
};

// The nine states of Appendix A.1 (pre-approval aside). nullopt for a
// combination no table has (Pending Out with 'to'/'both', Pending In with
// 'from'/'both').
std::optional<std::string_view> state_name(const SubState& s);

// RFC 6121 Appendix A for `type` in `direction`, starting from `s`. With
// `preapproval` false an outbound 'subscribed' without a pending request is
// ignored instead of recorded as a pre-approval.
Transition transition(const SubState& s, Direction direction, SubType type, bool preapproval = true);

std::optional<SubType> parse_sub_type(std::string_view type);
std::string_view subscription_name(Subscription s);
std::optional<Subscription> parse_subscription(std::string_view s);

inline bool has_to(Subscription s) { return s == Subscription::to || s == Subscription::both; }
inline bool has_from(Subscription s) { return s == Subscription::from || s == Subscription::both; }

}  // namespace mod_roster
