#include "subscription_state.hpp"

namespace mod_roster {

namespace {

Subscription with_to(Subscription s) {
  return s == Subscription::from || s == Subscription::both ? Subscription::both : Subscription::to;
}
Subscription without_to(Subscription s) {
  return s == Subscription::both || s == Subscription::from ? Subscription::from : Subscription::none;
}
Subscription with_from(Subscription s) {
  return s == Subscription::to || s == Subscription::both ? Subscription::both : Subscription::from;
}
Subscription without_from(Subscription s) {
  return s == Subscription::both || s == Subscription::to ? Subscription::to : Subscription::none;
}

// A.2: what the user's server does with the user's own subscription stanza.
Transition outbound(const SubState& s, SubType type, bool preapproval) {
  Transition t{s, false, false};
  SubState& n = t.next;
  switch (type) {
    case SubType::subscribe:
      // A.2.1: always routed (the contact's server answers a duplicate
      // itself, which heals a roster out of step); Pending Out where the
      // user has no subscription yet.
      t.forward = true;
      if (!has_to(s.sub)) n.pending_out = true;
      break;
    case SubType::unsubscribe:
      // A.2.2: always routed; cancels the subscription and a pending request.
      t.forward = true;
      n.pending_out = false;
      n.sub = without_to(s.sub);
      break;
    case SubType::subscribed:
      // A.2.3: an approval of a pending request is routed; with nothing
      // pending it is a pre-approval (3.4) unless the contact is already
      // subscribed, where it is ignored.
      if (s.pending_in) {
        t.forward = true;
        n.pending_in = false;
        n.sub = with_from(s.sub);
        n.approved = false;
      } else if (!has_from(s.sub) && preapproval) {
        n.approved = true;
      }
      break;
    case SubType::unsubscribed:
      // A.2.4: denies a pending request or cancels the contact's
      // subscription; otherwise not routed, and cancels a pre-approval (3.4).
      if (s.pending_in || has_from(s.sub)) {
        t.forward = true;
        n.pending_in = false;
        n.sub = without_from(s.sub);
      }
      n.approved = false;
      break;
  }
  return t;
}

// A.3: what the user's server does with a contact's subscription stanza to the user.
Transition inbound(const SubState& s, SubType type) {
  Transition t{s, false, false};
  SubState& n = t.next;
  switch (type) {
    case SubType::subscribe:
      // A.3.1, 3.1.3: already subscribed -> auto-reply; already pending ->
      // nothing; pre-approved -> approve now (3.4); else Pending In.
      if (has_from(s.sub)) {
        t.auto_reply_subscribed = true;
      } else if (s.pending_in) {
        // no state change, not delivered again
      } else if (s.approved) {
        t.auto_reply_subscribed = true;
        n.sub = with_from(s.sub);
        n.approved = false;
      } else {
        t.forward = true;
        n.pending_in = true;
      }
      break;
    case SubType::unsubscribe:
      // A.3.2
      if (s.pending_in || has_from(s.sub)) {
        t.forward = true;
        n.pending_in = false;
        n.sub = without_from(s.sub);
      }
      break;
    case SubType::subscribed:
      // A.3.3: only an answer to the user's own request counts.
      if (s.pending_out) {
        t.forward = true;
        n.pending_out = false;
        n.sub = with_to(s.sub);
      }
      break;
    case SubType::unsubscribed:
      // A.3.4
      if (s.pending_out || has_to(s.sub)) {
        t.forward = true;
        n.pending_out = false;
        n.sub = without_to(s.sub);
      }
      break;
  }
  return t;
}

}  // namespace

std::optional<std::string_view> state_name(const SubState& s) {
  switch (s.sub) {
    case Subscription::none:
      if (s.pending_out && s.pending_in) return "None + Pending Out+In";
      if (s.pending_out) return "None + Pending Out";
      if (s.pending_in) return "None + Pending In";
      return "None";
    case Subscription::to:
      if (s.pending_out) return std::nullopt;
      return s.pending_in ? "To + Pending In" : "To";
    case Subscription::from:
      if (s.pending_in) return std::nullopt;
      return s.pending_out ? "From + Pending Out" : "From";
    case Subscription::both:
      if (s.pending_in || s.pending_out) return std::nullopt;
      return "Both";
  }
  return std::nullopt;
}

Transition transition(const SubState& s, Direction direction, SubType type, bool preapproval) {
  return direction == Direction::outbound ? outbound(s, type, preapproval) : inbound(s, type);
}

std::optional<SubType> parse_sub_type(std::string_view type) {
  if (type == "subscribe") return SubType::subscribe;
  if (type == "subscribed") return SubType::subscribed;
  if (type == "unsubscribe") return SubType::unsubscribe;
  if (type == "unsubscribed") return SubType::unsubscribed;
  return std::nullopt;
}

std::string_view subscription_name(Subscription s) {
  switch (s) {
    case Subscription::none: return "none";
    case Subscription::to: return "to";
    case Subscription::from: return "from";
    case Subscription::both: return "both";
  }
  return "none";
}

std::optional<Subscription> parse_subscription(std::string_view s) {
  if (s == "none") return Subscription::none;
  if (s == "to") return Subscription::to;
  if (s == "from") return Subscription::from;
  if (s == "both") return Subscription::both;
  return std::nullopt;
}

}  // namespace mod_roster
