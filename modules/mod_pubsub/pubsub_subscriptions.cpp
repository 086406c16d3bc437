// mod_pubsub: a node's subscriptions, on the node's loop: subscribe and
// unsubscribe (XEP-0060 §6.1, §6.2), their options (§6.3, §6.4), the
// authorize model's approvals (§6.1.4, §8.6) and the owner's management of
// the subscriptions (§8.8).
#include <algorithm>

#include "mod_pubsub.hpp"

namespace parley::mod_pubsub {

// §6.1, with §6.1.4 (an authorize node: pending until an owner approves)
// and §6.3.7 (options with the request).
void ModPubsub::subscribe(const Request& r, Node& n, parley::ElementView req) {
  auto prepared = host().prepare_jid(attr(req, "jid"));
  if (!prepared || parley::bare_jid(*prepared) != r.bare) return fail(r, "bad-request", "invalid-jid");
  const std::string jid(*prepared);
  const Affiliation aff = affiliation(n, r);
  switch (may_subscribe(n.config, aff)) {
    case Verdict::forbidden: return fail(r, "forbidden");
    case Verdict::closed_node: return fail(r, "not-allowed", "closed-node");
    case Verdict::not_subscribed:
    case Verdict::allowed: break;
  }
  std::optional<SubOptions> options;
  if (auto o = r.iq->first_child()->child("options", ns_pubsub); o && o->child("x", ns_data)) {
    bool malformed = false;
    auto form = read_form(*o, subscribe_options_form_type, malformed);
    SubOptions next;
    if (malformed || !form || apply_sub_options(next, *form)) return fail(r, "bad-request", "invalid-options");
    options = next;
  }
  Subscription* existing = n.subscription_of(jid);
  if (existing && existing->pending) return fail(r, "not-authorized", "pending-subscription");  // §6.1.3.7
  if (!existing) {
    if (static_cast<int64_t>(n.subscriptions.size()) >= max_subscriptions_)
      return fail(r, "policy-violation", "too-many-subscriptions", {}, "wait");
    n.subscriptions.push_back(Subscription{jid, random_id(), needs_approval(n.config, aff), options.value_or(SubOptions{})});
    existing = &n.subscriptions.back();
    save_subscription(n, *existing, true);
  } else if (options) {
    existing->options = *options;
    save_subscription(n, *existing, true);
  }
  parley::Element p = host().element("pubsub", ns_pubsub);
  auto sub = p.add_child("subscription", ns_pubsub);
  sub.set_attr("node", n.name)
      .set_attr("jid", jid)
      .set_attr("subid", existing->subid)
      .set_attr("subscription", existing->pending ? "pending" : "subscribed");
  sub.add_child("subscribe-options", ns_pubsub);  // §6.1.5: options are offered, not required
  ok(r, std::move(p));
  if (existing->pending) return ask_owners(n, *existing);
  // §6.1.7: the last item on subscription (send_last_published_item on_sub).
  if (n.config.send_last == SendLast::on_sub && !n.items.empty() && n.config.deliver_notifications &&
      existing->options.deliver)
    send_event(jid, "<items xmlns='" + std::string(ns_event) + "' node='" + xml_attr(n.name) + "'>" +
                        item_xml(n.items.back(), n.config.deliver_payloads) + "</items>");
}

// §6.3: the options of one's own subscription (an owner may see and set any
// subscriber's), get (the form) or set (a submitted form).
void ModPubsub::options(const Request& r, Node& n, parley::ElementView req) {
  const std::string given = attr(req, "jid");
  if (given.empty()) return fail(r, "bad-request", "jid-required");
  auto prepared = host().prepare_jid(given);
  if (!prepared) return fail(r, "bad-request", "invalid-jid");
  const std::string jid(*prepared);
  if (parley::bare_jid(jid) != r.bare && affiliation(n, r) != Affiliation::owner) return fail(r, "forbidden");
  Subscription* s = n.subscription_of(jid);
  if (!s) return fail(r, "unexpected-request", "not-subscribed");
  if (auto subid = req.attr("subid"); subid && *subid != s->subid) return fail(r, "not-acceptable", "invalid-subid");
  if (r.iq->attr("type").value_or("") != "set") {
    parley::Element p = host().element("pubsub", ns_pubsub);
    auto o = p.add_child("options", ns_pubsub);
    o.set_attr("node", n.name).set_attr("jid", jid).set_attr("subid", s->subid);
    o.add_child(fields_form(host(), sub_option_fields(s->options), "form"));
    return ok(r, std::move(p));
  }
  bool malformed = false;
  auto form = read_form(req, subscribe_options_form_type, malformed);
  SubOptions next = s->options;
  if (malformed || !form || apply_sub_options(next, *form)) return fail(r, "bad-request", "invalid-options");
  s->options = next;
  save_subscription(n, *s, true);
  ok(r);
}

// §8.6: each owner gets the approval form in a message (kept offline for an
// owner who is not online, as any message).
void ModPubsub::ask_owners(const Node& n, const Subscription& s, const std::string& only) {
  std::vector<std::string> to;
  if (!only.empty()) to.push_back(only);
  else
    for (const auto& [jid, a] : n.affiliations)
      if (a == Affiliation::owner) to.push_back(jid);
  for (const auto& owner : to) {
    parley::Element m = host().element("message", "jabber:client");
    m.set_attr("from", domain_).set_attr("to", owner).set_attr("id", random_id());
    auto x = m.add_child("x", ns_data);
    x.set_attr("type", "form");
    x.add_child("title", ns_data).add_text("PubSub subscriber request");
    x.add_child("instructions", ns_data)
        .add_text("To approve this entity's subscription request, set pubsub#allow to true and submit the form.");
    auto field = [&](std::string_view var, std::string_view type, std::string_view label, std::string_view value) {
      auto f = x.add_child("field", ns_data);
      f.set_attr("var", var).set_attr("type", type);
      if (!label.empty()) f.set_attr("label", label);
      f.add_child("value", ns_data).add_text(value);
    };
    field("FORM_TYPE", "hidden", {}, subscribe_authorization_form_type);
    field("pubsub#subid", "hidden", {}, s.subid);
    field("pubsub#node", "text-single", "Node ID", n.name);
    field("pubsub#subscriber_jid", "jid-single", "Subscriber Address", s.jid);
    field("pubsub#allow", "boolean", "Allow this JID to subscribe to this pubsub node?", "false");
    host().route(std::move(m));
  }
}

// §8.6: an owner's submitted approval form. Allowed: the subscription is
// approved; denied: it is removed; either way the subscriber is told (§8.6,
// 'subscription-notifications'). A form from a non-owner, or for no pending
// request, is refused (forbidden, item-not-found); an answer to a request
// already settled is ignored.
void ModPubsub::authorization(const Request& r) {
  bool malformed = false;
  auto form = read_form(*r.iq, subscribe_authorization_form_type, malformed);
  if (!form || malformed) return;  // on_stanza routed only a well-formed one
  auto& nodes = loops_state_.here().nodes;
  auto it = nodes.find(form_value(*form, "pubsub#node").value_or(""));
  if (it == nodes.end()) return host().bounce(*r.iq, "item-not-found");
  Node& n = it->second;
  if (affiliation(n, r) != Affiliation::owner) return host().bounce(*r.iq, "forbidden");
  auto allow = parse_bool(form_value(*form, "pubsub#allow").value_or(""));
  auto who = host().prepare_jid(form_value(*form, "pubsub#subscriber_jid").value_or(""));
  if (!allow || !who) return host().bounce(*r.iq, "bad-request");
  Subscription* s = n.subscription_of(std::string(*who));
  if (!s || !s->pending) return;  // settled already (another owner, or the owner's subscriptions list)
  if (auto subid = form_value(*form, "pubsub#subid"); subid && !subid->empty() && *subid != s->subid)
    return host().bounce(*r.iq, "not-acceptable");
  const std::string jid = s->jid;
  if (*allow) {
    s->pending = false;
    save_subscription(n, *s, true);
  } else {
    save_subscription(n, *s, false);
    n.subscriptions.erase(n.subscriptions.begin() + (s - n.subscriptions.data()));
  }
  tell_subscriber(n, jid, *allow ? "subscribed" : "none");
}

void ModPubsub::tell_subscriber(const Node& n, const std::string& jid, std::string_view state) {
  send_event(jid, "<subscription node='" + xml_attr(n.name) + "' jid='" + xml_attr(jid) + "' subscription='" +
                      std::string(state) + "'/>");
}

// §8.7: loop `loop` adds the requester's nodes (as an owner) that have
// pending subscriptions to the list-single field; the last one answers (none
// at all: item-not-found).
void ModPubsub::list_pending(std::shared_ptr<parley::Element> result, Request r, uint32_t loop) {
  if (loop == loops_) {
    auto field = result->child("command", "http://jabber.org/protocol/commands")->child("x", ns_data);
    std::optional<parley::ElementRef> list;
    for (auto f : field->children())
      if (f.attr("var") == "pubsub#node") list = f;
    if (!list || list->child_count() == 0) return fail(r, "item-not-found");
    return host().route(std::move(*result));
  }
  parley::post(host(), loop, [this, result, r = std::move(r), loop]() mutable {
    auto x = result->child("command", "http://jabber.org/protocol/commands")->child("x", ns_data);
    std::optional<parley::ElementRef> list;
    for (auto f : x->children())
      if (f.attr("var") == "pubsub#node") list = f;
    for (const auto& [name, n] : loops_state_.here().nodes) {
      if (affiliation(n, r) != Affiliation::owner) continue;
      if (std::any_of(n.subscriptions.begin(), n.subscriptions.end(), [](const Subscription& s) { return s.pending; }))
        list->add_child("option", ns_data).add_child("value", ns_data).add_text(name);
    }
    list_pending(result, std::move(r), loop + 1);
  });
}

// §8.7: the picked node's pending subscriptions, each in an approval form to
// the requester (an owner), and the command completed.
void ModPubsub::send_pending(const Request& r, Node& n) {
  if (affiliation(n, r) != Affiliation::owner) return fail(r, "forbidden");
  parley::Element c = host().element("command", "http://jabber.org/protocol/commands");
  c.set_attr("node", "http://jabber.org/protocol/pubsub#get-pending").set_attr("status", "completed");
  if (auto sid = r.iq->first_child()->attr("sessionid")) c.set_attr("sessionid", *sid);
  ok(r, std::move(c));
  for (const auto& s : n.subscriptions)
    if (s.pending) ask_owners(n, s, r.bare);
}

// §6.2.
void ModPubsub::unsubscribe(const Request& r, Node& n, parley::ElementView req) {
  auto prepared = host().prepare_jid(attr(req, "jid"));
  if (!prepared) return fail(r, "bad-request", "invalid-jid");
  if (parley::bare_jid(*prepared) != r.bare) return fail(r, "forbidden");
  const std::string jid(*prepared);
  auto it = std::find_if(n.subscriptions.begin(), n.subscriptions.end(),
                         [&](const Subscription& s) { return s.jid == jid; });
  if (it == n.subscriptions.end()) return fail(r, "unexpected-request", "not-subscribed");
  if (auto subid = req.attr("subid"); subid && *subid != it->subid)
    return fail(r, "not-acceptable", "invalid-subid");
  save_subscription(n, *it, false);
  n.subscriptions.erase(it);
  ok(r);
}

// §8.8: the owner lists and changes the node's subscriptions ('subscribed'
// adds one, 'none' removes it; a whole request is applied or none of it).
void ModPubsub::owner_subscriptions(const Request& r, Node& n, parley::ElementView req) {
  if (r.iq->attr("type").value_or("") != "set") {
    parley::Element p = host().element("pubsub", ns_owner);
    auto list = p.add_child("subscriptions", ns_owner);
    list.set_attr("node", n.name);
    for (const auto& s : n.subscriptions)
      list.add_child("subscription", ns_owner)
          .set_attr("jid", s.jid)
          .set_attr("subscription", s.pending ? "pending" : "subscribed")
          .set_attr("subid", s.subid);
    return ok(r, std::move(p));
  }
  std::vector<std::pair<std::string, bool>> changes;
  for (auto s : req.children()) {
    if (s.name() != "subscription") continue;
    auto prepared = host().prepare_jid(attr(s, "jid"));
    const std::string state = attr(s, "subscription");
    if (!prepared) return fail(r, "bad-request", "invalid-jid");
    if (state != "subscribed" && state != "none") return fail(r, "not-acceptable");
    changes.emplace_back(std::string(*prepared), state == "subscribed");
  }
  for (const auto& [jid, on] : changes) {
    auto it = std::find_if(n.subscriptions.begin(), n.subscriptions.end(),
                           [&](const Subscription& s) { return s.jid == jid; });
    // Each change is told to its entity (§8.8.4, 'subscription-notifications'):
    // a pending request denied or approved as with the §8.6 form.
    if (!on && it != n.subscriptions.end()) {
      save_subscription(n, *it, false);
      n.subscriptions.erase(it);
      tell_subscriber(n, jid, "none");
    } else if (on && it != n.subscriptions.end() && it->pending) {
      it->pending = false;  // a pending request approved (§8.8.2 as §8.6)
      save_subscription(n, *it, true);
      tell_subscriber(n, jid, "subscribed");
    } else if (on && it == n.subscriptions.end()) {
      if (static_cast<int64_t>(n.subscriptions.size()) >= max_subscriptions_)
        return fail(r, "policy-violation", "too-many-subscriptions", {}, "wait");
      n.subscriptions.push_back(Subscription{jid, random_id(), false, SubOptions{}});
      save_subscription(n, n.subscriptions.back(), true);
      tell_subscriber(n, jid, "subscribed");
    }
  }
  ok(r);
}

}  // namespace parley::mod_pubsub
