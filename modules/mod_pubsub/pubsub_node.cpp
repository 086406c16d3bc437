// mod_pubsub: one node's requests (XEP-0060 §5-§8), on the node's loop, with
// the affiliation rules of §4.1 and the error pairs of each section. The
// subscriptions' requests (§6.1-§6.4, §8.6, §8.8): pubsub_subscriptions.cpp.
#include <algorithm>
#include <chrono>
#include <random>

#include "mod_pubsub.hpp"

namespace parley::mod_pubsub {

std::string random_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

std::string attr(parley::ElementView e, std::string_view name) { return std::string(e.attr(name).value_or("")); }

int64_t ModPubsub::next_seq() {
  LoopNodes& here = loops_state_.here();
  const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  here.last_seq = std::max(here.last_seq + 1, now);
  return here.last_seq;
}

// Items expire lazily: a request to the node first drops those published more
// than item_expire seconds ago (oldest first: republished ids are the newest).
void ModPubsub::expire_items(Node& n) {
  if (n.config.item_expire <= 0 || !n.items_loaded) return;
  const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t cutoff = now - n.config.item_expire * 1000000;
  while (!n.items.empty() && n.items.front().stamp_us > 0 && n.items.front().stamp_us < cutoff) {
    if (n.config.persist_items) forget_item(n, n.items.front().id);
    n.items.pop_front();
    host().counter_add("items_expired");
  }
}

void ModPubsub::node_request(const Request& r, parley::ElementView pubsub, parley::ElementView action, bool owner_ns) {
  LoopNodes& here = loops_state_.here();
  const bool set = r.iq->attr("type").value_or("") == "set";
  const std::string node = attr(action, "node");
  const std::string_view verb = action.name();
  if (!owner_ns && verb == "create") return set ? create(r, pubsub, action) : fail(r, "bad-request");
  auto it = here.nodes.find(node);
  if (!owner_ns && verb == "publish" && set && it == here.nodes.end()) {
    // §7.1.4: auto-create, the publish-options as its configuration.
    NodeConfig config = service_defaults();
    if (auto po = pubsub.child("publish-options", ns_pubsub)) {
      bool malformed = false;
      auto options = read_form(*po, publish_options_form_type, malformed);
      if (malformed) return fail(r, "bad-request", "invalid-options");
      if (options && apply_config(config, *options, limits_)) return fail(r, "conflict", "precondition-not-met");
    }
    if (here.nodes.size() >= max_nodes_per_loop_ || !count_created(r.bare))
      return fail(r, "not-allowed", "max-nodes-exceeded");
    Node n;
    n.name = node;
    n.creator = r.bare;
    n.config = std::move(config);
    n.affiliations[r.bare] = Affiliation::owner;
    n.items_loaded = true;  // a new node has none
    save_node(n);
    save_affiliation(n, r.bare, Affiliation::owner);
    it = here.nodes.emplace(node, std::move(n)).first;
  }
  if (it == here.nodes.end()) return fail(r, "item-not-found");
  Node& n = it->second;
  if (!owner_ns) {
    if (verb == "publish" && set) return publish(r, n, pubsub, action);
    if (verb == "retract" && set) return retract(r, n, action);
    if (verb == "items" && !set) return items(r, n, pubsub, action);
    if (verb == "subscribe" && set) return subscribe(r, n, action);
    if (verb == "unsubscribe" && set) return unsubscribe(r, n, action);
    if (verb == "subscriptions" && !set) {  // §5.6 for one node
      parley::Element p = host().element("pubsub", ns_pubsub);
      auto list = p.add_child("subscriptions", ns_pubsub);
      for (const auto& s : n.subscriptions)
        if (parley::bare_jid(s.jid) == r.bare)
          list.add_child("subscription", ns_pubsub)
              .set_attr("node", n.name)
              .set_attr("jid", s.jid)
              .set_attr("subscription", s.pending ? "pending" : "subscribed")
              .set_attr("subid", s.subid);
      return ok(r, std::move(p));
    }
    if (verb == "affiliations" && !set) {  // §5.7 for one node
      parley::Element p = host().element("pubsub", ns_pubsub);
      auto list = p.add_child("affiliations", ns_pubsub);
      const Affiliation a = affiliation(n, r);
      if (a != Affiliation::none)
        list.add_child("affiliation", ns_pubsub).set_attr("node", n.name).set_attr("affiliation", to_string(a));
      return ok(r, std::move(p));
    }
    if (verb == "options") return options(r, n, action);
    if (verb == "default" && !set) {  // §6.4 for one node
      parley::Element p = host().element("pubsub", ns_pubsub);
      auto d = p.add_child("default", ns_pubsub);
      d.set_attr("node", n.name);
      d.add_child(fields_form(host(), sub_option_fields(SubOptions{}), "form"));
      return ok(r, std::move(p));
    }
    if (verb == "publish" || verb == "retract" || verb == "items" || verb == "subscribe" || verb == "unsubscribe" ||
        verb == "subscriptions" || verb == "affiliations" || verb == "default")
      return fail(r, "bad-request");
    return fail(r, "feature-not-implemented");
  }
  // pubsub#owner: the node's owners only (§4.1).
  if (affiliation(n, r) != Affiliation::owner) return fail(r, "forbidden");
  if (verb == "configure") return configure(r, n, action);
  if (verb == "delete" && set) return remove_node(r, n, action);
  if (verb == "purge" && set) return purge(r, n);
  if (verb == "subscriptions") return owner_subscriptions(r, n, action);
  if (verb == "affiliations") return owner_affiliations(r, n, action);
  if (verb == "delete" || verb == "purge") return fail(r, "bad-request");
  return fail(r, "feature-not-implemented");
}

// §5.3/§5.4 (a node's disco#info with its meta-data form), §5.5 (its items).
void ModPubsub::node_disco(const Request& r, parley::ElementView query) {
  const std::string node = attr(query, "node");
  auto& nodes = loops_state_.here().nodes;
  auto it = nodes.find(node);
  if (it == nodes.end()) return fail(r, "item-not-found");
  const Node& n = it->second;
  parley::Element result = parley::make_iq_result(*r.iq);
  if (query.xmlns() == ns_disco_items) {
    switch (may_retrieve(n.config, affiliation(n, r), n.subscribed(r.bare))) {
      case Verdict::forbidden: return fail(r, "forbidden");
      case Verdict::closed_node: return fail(r, "not-allowed", "closed-node");
      case Verdict::not_subscribed: return fail(r, "not-authorized", "not-subscribed");
      case Verdict::allowed: break;
    }
    auto q = result.add_child("query", ns_disco_items);
    q.set_attr("node", node);
    for (const Item& i : n.items) q.add_child("item", ns_disco_items).set_attr("jid", domain_).set_attr("name", i.id);
    return host().route(std::move(result));
  }
  auto q = result.add_child("query", ns_disco_info);
  q.set_attr("node", node);
  MetaData meta;
  meta.config = &n.config;
  meta.creator = n.creator;
  for (const auto& [jid, a] : n.affiliations) {
    if (a == Affiliation::owner) meta.owners.push_back(jid);
    if (a == Affiliation::publisher) meta.publishers.push_back(jid);
  }
  meta.max_items = n.config.effective_max_items(limits_);
  meta.subscribers = static_cast<std::size_t>(std::count_if(
      n.subscriptions.begin(), n.subscriptions.end(), [](const Subscription& s) { return s.active(); }));
  add_node_info(q, meta);
  host().route(std::move(result));
}

// §8.1 (named and instant nodes, §8.1.3 create-and-configure).
void ModPubsub::create(const Request& r, parley::ElementView pubsub, parley::ElementView req) {
  LoopNodes& here = loops_state_.here();
  const std::string node = attr(req, "node");
  if (here.nodes.count(node)) return fail(r, "conflict");
  NodeConfig config = service_defaults();
  if (auto conf = pubsub.child("configure", ns_pubsub)) {
    bool malformed = false;
    auto form = read_form(*conf, node_config_form_type, malformed);
    if (malformed) return fail(r, "bad-request");
    if (form && apply_config(config, *form, limits_)) return fail(r, "not-acceptable");
  }
  if (here.nodes.size() >= max_nodes_per_loop_ || !count_created(r.bare))
    return fail(r, "not-allowed", "max-nodes-exceeded");
  Node n;
  n.name = node;
  n.creator = r.bare;
  n.config = std::move(config);
  n.affiliations[r.bare] = Affiliation::owner;
  n.items_loaded = true;  // a new node has none
  save_node(n);
  save_affiliation(n, r.bare, Affiliation::owner);
  here.nodes.emplace(node, std::move(n));
  parley::Element p = host().element("pubsub", ns_pubsub);
  p.add_child("create", ns_pubsub).set_attr("node", node);
  ok(r, std::move(p));
  host().counter_add("nodes_created");
}

// §7.1, with the table of §4.3 (items and payloads by persistence and
// deliver_payloads) and §7.1.5's preconditions.
void ModPubsub::publish(const Request& r, Node& n, parley::ElementView pubsub, parley::ElementView pub) {
  if (!may_publish(n.config, affiliation(n, r), n.subscribed(r.bare))) return fail(r, "forbidden");
  std::optional<parley::ElementView> item;
  std::size_t count = 0;
  for (auto child : pub.children())
    if (child.name() == "item" && child.xmlns() == ns_pubsub) {
      if (!item) item = child;
      ++count;
    }
  const bool wants_item = n.config.persist_items || n.config.deliver_payloads;
  if (count == 0 && wants_item) return fail(r, "bad-request", "item-required");
  if (count > 0 && !wants_item) return fail(r, "bad-request", "item-forbidden");
  if (count > 1) return fail(r, "bad-request", "invalid-payload");  // one item per publish
  std::string serialized, body;
  if (item) {
    std::optional<parley::ElementView> payload;
    std::size_t payloads = 0;
    for (auto child : item->children()) {
      if (!payload) payload = child;
      ++payloads;
    }
    if (payloads > 1) return fail(r, "bad-request", "invalid-payload");
    if (payloads == 0 && n.config.deliver_payloads) return fail(r, "bad-request", "payload-required");
    if (payload) serialized = payload->serialize();
    // include_body (§6.3): an Atom entry's title and summary as a <body/>.
    if (payload && payload->name() == "entry" && payload->xmlns() == "http://www.w3.org/2005/Atom") {
      auto title = payload->child("title", "http://www.w3.org/2005/Atom");
      auto summary = payload->child("summary", "http://www.w3.org/2005/Atom");
      body = atom_summary(title ? title->text() : std::string(), summary ? summary->text() : std::string());
    }
  }
  if (static_cast<int64_t>(serialized.size()) > limits_.max_item_bytes)
    return fail(r, "not-acceptable", "payload-too-big");
  if (auto po = pubsub.child("publish-options", ns_pubsub)) {
    bool malformed = false;
    auto options = read_form(*po, publish_options_form_type, malformed);
    if (malformed) return fail(r, "bad-request", "invalid-options");
    if (options && precondition_mismatch(n.config, *options, limits_))
      return fail(r, "conflict", "precondition-not-met");
  }
  const std::string event_head = "<items xmlns='" + std::string(ns_event) + "' node='" + xml_attr(n.name) + "'>";
  if (!item) {  // a transient notification-only node: an empty <items/> (§4.3)
    ok(r);
    notify(n, event_head + "</items>");
    return;
  }
  const int64_t seq = next_seq();
  std::string id = attr(*item, "id");
  if (id.empty()) id = random_id();
  // A republished id replaces the item and becomes the newest.
  n.items.erase(std::remove_if(n.items.begin(), n.items.end(), [&](const Item& i) { return i.id == id; }),
                n.items.end());
  n.items.push_back(Item{id, serialized, r.bare, seq});
  const auto max = static_cast<std::size_t>(n.config.effective_max_items(limits_));
  while (n.items.size() > max) {
    if (n.config.persist_items) forget_item(n, n.items.front().id);
    n.items.pop_front();
  }
  if (n.config.persist_items) save_item(n, n.items.back(), seq);
  parley::Element p = host().element("pubsub", ns_pubsub);
  p.add_child("publish", ns_pubsub).set_attr("node", n.name).add_child("item", ns_pubsub).set_attr("id", id);
  ok(r, std::move(p));
  host().counter_add("published");
  if (n.config.deliver_notifications)
    notify(n, event_head + item_xml(n.items.back(), n.config.deliver_payloads) + "</items>", nullptr, body);
}

// §7.2.
void ModPubsub::retract(const Request& r, Node& n, parley::ElementView req) {
  const Affiliation aff = affiliation(n, r);
  if (aff != Affiliation::owner && aff != Affiliation::publisher && aff != Affiliation::publish_only)
    return fail(r, "forbidden");
  auto item = req.child("item", ns_pubsub);
  const std::string id = item ? attr(*item, "id") : std::string();
  if (id.empty()) return fail(r, "bad-request", "item-required");
  auto found = std::find_if(n.items.begin(), n.items.end(), [&](const Item& i) { return i.id == id; });
  if (found == n.items.end()) return fail(r, "item-not-found");
  if (!may_retract(aff, found->publisher == r.bare)) return fail(r, "forbidden");
  n.items.erase(found);
  if (n.config.persist_items) forget_item(n, id);
  ok(r);
  // §7.2.2.1: the publisher's notify attribute, else the node's notify_retract.
  auto notify_attr = req.attr("notify");
  const bool send = notify_attr ? parse_bool(*notify_attr).value_or(false) : n.config.notify_retract;
  if (send)
    notify(n, "<items xmlns='" + std::string(ns_event) + "' node='" + xml_attr(n.name) + "'><retract id='" +
                  xml_attr(id) + "'/></items>");
}

// §6.5, with §6.5.9's access errors.
void ModPubsub::items(const Request& r, Node& n, parley::ElementView pubsub, parley::ElementView req) {
  switch (may_retrieve(n.config, affiliation(n, r), n.subscribed(r.bare))) {
    case Verdict::forbidden: return fail(r, "forbidden");
    case Verdict::closed_node: return fail(r, "not-allowed", "closed-node");
    case Verdict::not_subscribed: return fail(r, "not-authorized", "not-subscribed");  // §6.5.9.5
    case Verdict::allowed: break;
  }
  auto query = parse_items_query(pubsub, req);
  if (!query) return fail(r, "bad-request");
  auto a = items_answer(host(), n.name, n.items, *query);
  if (!a.pubsub) return fail(r, a.condition);
  ok(r, std::move(*a.pubsub));
}

// §8.2 (get the form, submit it, or cancel).
void ModPubsub::configure(const Request& r, Node& n, parley::ElementView req) {
  if (r.iq->attr("type").value_or("") != "set") {
    parley::Element p = host().element("pubsub", ns_owner);
    auto c = p.add_child("configure", ns_owner);
    c.set_attr("node", n.name);
    c.add_child(config_form(host(), n.config, "form", true));
    return ok(r, std::move(p));
  }
  auto x = req.child("x", ns_data);
  if (!x) return fail(r, "bad-request");
  if (x->attr("type").value_or("") == "cancel") return ok(r);
  bool malformed = false;
  auto form = read_form(req, node_config_form_type, malformed);
  if (malformed || !form) return fail(r, "bad-request");
  if (apply_config(n.config, *form, limits_)) return fail(r, "not-acceptable");
  const auto max = static_cast<std::size_t>(n.config.effective_max_items(limits_));
  while (n.items.size() > max) {
    forget_item(n, n.items.front().id);
    n.items.pop_front();
  }
  if (!n.config.persist_items) forget_items(n);  // in memory only from now on
  save_node(n);
  ok(r);
  if (n.config.notify_config)
    notify(n, "<configuration xmlns='" + std::string(ns_event) + "' node='" + xml_attr(n.name) + "'/>");
}

// §8.4, with a redirect (§8.4.1) if given.
void ModPubsub::remove_node(const Request& r, Node& n, parley::ElementView req) {
  std::string event = "<delete xmlns='" + std::string(ns_event) + "' node='" + xml_attr(n.name) + "'";
  if (auto redirect = req.child("redirect", ns_owner))
    event += "><redirect uri='" + xml_attr(attr(*redirect, "uri")) + "'/></delete>";
  else
    event += "/>";
  if (n.config.notify_delete) notify(n, event);
  forget_node(n);
  // The creator's place is free before the answer says the node is gone: the owner may
  // create another at once, from a loop that reads the count the next moment (TSan's
  // slow server once answered that create max-nodes-exceeded).
  uncount_created(n.creator);
  const std::string name = n.name;  // n goes with the erase
  n.items.clear();
  account(n);
  loops_state_.here().nodes.erase(name);
  ok(r);
}

// §8.5.
void ModPubsub::purge(const Request& r, Node& n) {
  if (!n.config.persist_items) return fail(r, "feature-not-implemented", "unsupported", "persistent-items");
  n.items.clear();
  forget_items(n);
  ok(r);
  if (n.config.notify_retract)
    notify(n, "<purge xmlns='" + std::string(ns_event) + "' node='" + xml_attr(n.name) + "'/>");
}

// §8.9: the owner lists and changes affiliations. An outcast loses its
// subscriptions; the node never loses its last owner (not-acceptable).
void ModPubsub::owner_affiliations(const Request& r, Node& n, parley::ElementView req) {
  if (r.iq->attr("type").value_or("") != "set") {
    parley::Element p = host().element("pubsub", ns_owner);
    auto list = p.add_child("affiliations", ns_owner);
    list.set_attr("node", n.name);
    for (const auto& [jid, a] : n.affiliations)
      list.add_child("affiliation", ns_owner).set_attr("jid", jid).set_attr("affiliation", to_string(a));
    return ok(r, std::move(p));
  }
  auto next = n.affiliations;
  for (auto a : req.children()) {
    if (a.name() != "affiliation") continue;
    auto prepared = host().prepare_jid(attr(a, "jid"));
    if (!prepared) return fail(r, "bad-request", "invalid-jid");
    auto aff = parse_affiliation(attr(a, "affiliation"));
    if (!aff) return fail(r, "bad-request");
    const std::string jid(parley::bare_jid(*prepared));
    if (*aff == Affiliation::none) next.erase(jid);
    else next[jid] = *aff;
  }
  if (std::none_of(next.begin(), next.end(), [](const auto& p) { return p.second == Affiliation::owner; }))
    return fail(r, "not-acceptable");
  if (static_cast<int64_t>(next.size()) > limits_.max_affiliations) return fail(r, "policy-violation");
  for (const auto& [jid, a] : n.affiliations)
    if (!next.count(jid)) save_affiliation(n, jid, Affiliation::none);
  for (const auto& [jid, a] : next) {
    auto old = n.affiliations.find(jid);
    if (old == n.affiliations.end() || old->second != a) save_affiliation(n, jid, a);
  }
  n.affiliations = std::move(next);
  // Subscriptions the new affiliations refuse end (an outcast; not on a whitelist).
  for (auto it = n.subscriptions.begin(); it != n.subscriptions.end();) {
    if (may_subscribe(n.config, n.affiliation_of(std::string(parley::bare_jid(it->jid)))) != Verdict::allowed) {
      save_subscription(n, *it, false);
      it = n.subscriptions.erase(it);
    } else {
      ++it;
    }
  }
  ok(r);
}

// Each subscription that the node's access model still admits gets the event.
// Each approved subscription that the node's access model still admits, and
// whose options ask for deliveries, gets the event (with a <body/> if it asked
// for one and there is one).
void ModPubsub::notify(const Node& n, const std::string& event_xml, const std::vector<Subscription>* to,
                       const std::string& body) {
  const auto& subs = to ? *to : n.subscriptions;
  for (const auto& s : subs) {
    if (s.pending || !s.options.deliver) continue;
    if (may_subscribe(n.config, n.affiliation_of(std::string(parley::bare_jid(s.jid)))) != Verdict::allowed) continue;
    send_event(s.jid, event_xml, s.options.include_body ? body : std::string());
  }
}

void ModPubsub::send_event(const std::string& to, const std::string& event_xml, const std::string& body) {
  const std::string body_xml = body.empty() ? std::string() : "<body>" + xml_attr(body) + "</body>";
  auto message = host().parse("<message xmlns='jabber:client' type='headline' from='" + xml_attr(domain_) + "' to='" +
                              xml_attr(to) + "'>" + body_xml + "<event xmlns='" + std::string(ns_event) + "'>" +
                              event_xml + "</event></message>");
  if (!message) return;
  host().route(std::move(*message));
  host().counter_add("notifications");
}

}  // namespace parley::mod_pubsub
