// mod_pep: the module's definition, its iq requests (XEP-0060 as XEP-0163
// uses it: publish with auto-create and publish-options, items, retract,
// create, configure, default, purge, delete, affiliations) and their errors
// (XEP-0060's error tables). Storage and the owner loop: pep_store.cpp;
// notifications and entity capabilities: pep_notify.cpp.
#include "mod_pep.hpp"

#include <algorithm>

namespace parley::mod_pep {

parley::Result<void, std::string> ModPep::start() {
  if (!host().supports_1_2()) return parley::unexpected(std::string("needs a host with module ABI 1.2"));
  auto positive = [&](const char* name, int64_t& out) -> bool {
    if (auto v = host().option_int(name)) {
      if (*v < 1) return false;
      out = *v;
    }
    return true;
  };
  for (auto [name, out] : {std::pair{"max_nodes", &limits_.max_nodes}, std::pair{"max_items", &limits_.max_items},
                           std::pair{"max_item_bytes", &limits_.max_item_bytes},
                           std::pair{"max_affiliations", &limits_.max_affiliations},
                           std::pair{"max_cached_users", &max_cached_users_},
                           std::pair{"max_cache_bytes", &max_cache_bytes_},
                           std::pair{"max_user_bytes", &limits_.max_user_bytes},
                           std::pair{"caps_cache_size", &caps_cache_size_}})
    if (!positive(name, *out)) return parley::unexpected(std::string(name) + " must be at least 1");
  if (auto v = host().option_bool("avatar_presence")) avatar_presence_ = *v;
  if (!host().supports_map()) return parley::unexpected(std::string("this server has no map store"));
  // The nodes and items of the module's tables (before the map store), moved once,
  // the tables dropped once empty.
  move_.start(host(), {parley::OldTables::Move{"mod_pep_nodes",
                                               "SELECT user, 'n' || char(31) || node, config FROM mod_pep_nodes "
                                               "WHERE host = ?1",
                                               "DELETE FROM mod_pep_nodes WHERE host = ?1", parley::KeyvalMove::Target::map},
                       parley::OldTables::Move{"mod_pep_items",
                                               "SELECT user, 'i' || char(31) || node || char(31) || item_id, seq || "
                                               "char(10) || payload FROM mod_pep_items WHERE host = ?1 ORDER BY seq",
                                               "DELETE FROM mod_pep_items WHERE host = ?1", parley::KeyvalMove::Target::map}});
  owners_.init(host());
  asks_.init(host(), "mod_pep");
  caps_.init(host());
  server_caps_.init(host());
  // Each loop learns the server's caps now, for the first streams' features.
  for (uint32_t l = 0; l < server_caps_.size(); ++l) parley::post(host(), l, [this] { refresh_server_caps(); });
  return {};
}

void ModPep::dispatch(const parley::IqRequest& request, bool owner_ns) {
  Request r;
  r.iq = std::make_shared<parley::Element>(request.iq().clone());
  r.owner = std::string(parley::bare_jid(request.to()));
  r.owner_user = parley::Jid::prepared(r.owner).local();
  r.requester = std::string(parley::bare_jid(request.from()));
  with_user(r.owner, [this, r, owner_ns](UserPep* u) {
    if (!u) return fail(r, "resource-constraint");
    handle(r, *u, owner_ns);
  });
}

void ModPep::handle(const Request& r, UserPep& u, bool owner_ns) {
  auto pubsub = r.iq->first_child();
  const bool set = r.iq->attr("type").value_or("") == "set";
  if (!pubsub || pubsub->name() != "pubsub") return fail(r, "bad-request", {}, {});
  // The action: the first child (publish-options and configure come after
  // publish and create, in the same <pubsub/>).
  std::optional<parley::ElementView> action;
  for (auto child : pubsub->children()) {
    action = child;
    break;
  }
  if (!action) return fail(r, "bad-request");
  const std::string_view name = action->name();
  if (!owner_ns) {
    if (name == "publish" && set) return publish(r, u, *pubsub, *action);
    if (name == "items" && !set) return items(r, u, *action);
    if (name == "retract" && set) return retract(r, u, *action);
    if (name == "create" && set) return create(r, u, *pubsub, *action);
    if (name == "subscriptions" && !set) {  // implicit subscriptions only (XEP-0163 §4.3)
      parley::Element p = host().element("pubsub", ns_pubsub);
      p.add_child("subscriptions", ns_pubsub);
      return ok(r, std::move(p));
    }
    if (name == "affiliations" && !set) {
      parley::Element p = host().element("pubsub", ns_pubsub);
      auto list = p.add_child("affiliations", ns_pubsub);
      if (r.is_owner())
        for (const auto& [node, n] : u.nodes)
          list.add_child("affiliation", ns_pubsub).set_attr("node", node).set_attr("affiliation", "owner");
      return ok(r, std::move(p));
    }
    if (name == "subscribe" || name == "unsubscribe" || name == "options")
      return fail(r, "feature-not-implemented", "unsupported", name == "options" ? "subscription-options" : "subscribe");
    if (name == "publish" || name == "items" || name == "retract" || name == "create" || name == "subscriptions" ||
        name == "affiliations")
      return fail(r, "bad-request");
    return fail(r, "feature-not-implemented");
  }
  if (name == "configure") return configure(r, u, *action);
  if (name == "default" && !set) {
    parley::Element p = host().element("pubsub", ns_owner);
    p.add_child("default", ns_owner).add_child(config_form(host(), NodeConfig{}, "form"));
    return ok(r, std::move(p));
  }
  if (name == "purge" && set) return purge(r, u, *action);
  if (name == "delete" && set) return remove_node(r, u, *action);
  if (name == "affiliations") return affiliations(r, u, *action);
  if (name == "subscriptions")
    return fail(r, "feature-not-implemented", "unsupported", "manage-subscriptions");
  return fail(r, "feature-not-implemented");
}

// XEP-0060 §7.1: only the owner publishes on a personal node.
void ModPep::publish(const Request& r, UserPep& u, parley::ElementView pubsub, parley::ElementView pub) {
  const std::string node(pub.attr("node").value_or(""));
  if (node.empty()) return fail(r, "bad-request", "nodeid-required");
  if (!r.is_owner()) return fail(r, "forbidden");
  std::optional<parley::ElementView> item;
  std::size_t count = 0;
  for (auto child : pub.children())
    if (child.name() == "item" && child.xmlns() == ns_pubsub) {
      if (!item) item = child;
      ++count;
    }
  if (count == 0) return fail(r, "bad-request", "item-required");
  if (count > 1) return fail(r, "bad-request", "invalid-payload");  // one item per publish on a PEP node
  std::optional<parley::ElementView> payload;
  std::size_t payloads = 0;
  for (auto child : item->children()) {
    if (!payload) payload = child;
    ++payloads;
  }
  if (payloads == 0) return fail(r, "bad-request", "payload-required");
  if (payloads > 1) return fail(r, "bad-request", "invalid-payload");
  bool malformed = false;
  std::optional<Form> options;
  if (auto po = pubsub.child("publish-options", ns_pubsub)) {
    options = read_form(*po, publish_options_form_type, malformed);
    if (malformed) return fail(r, "bad-request", "invalid-options");
  }
  std::string serialized = payload->serialize();
  if (static_cast<int64_t>(serialized.size()) > limits_.max_item_bytes)
    return fail(r, "not-acceptable", "payload-too-big");
  auto it = u.nodes.find(node);
  // The account's quota: its items together, the one this id replaces aside.
  int64_t replaced = 0;
  if (it != u.nodes.end() && item->attr("id"))
    for (const Item& i : it->second.items)
      if (i.id == *item->attr("id")) replaced = static_cast<int64_t>(i.payload.size());
  if (u.bytes - replaced + static_cast<int64_t>(serialized.size()) > limits_.max_user_bytes)
    return fail(r, "policy-violation");
  bool created = false;
  if (it == u.nodes.end()) {
    // §7.1.5: the options become the new node's configuration.
    if (static_cast<int64_t>(u.nodes.size()) >= limits_.max_nodes)
      return fail(r, "not-allowed", "max-nodes-exceeded");
    NodeConfig config;
    if (options && apply_config(config, *options, limits_)) return fail(r, "conflict", "precondition-not-met");
    it = u.nodes.emplace(node, Node{std::move(config), {}}).first;
    created = true;
  } else if (options) {
    if (precondition_mismatch(it->second.config, *options, limits_))
      return fail(r, "conflict", "precondition-not-met");
  }
  Node& n = it->second;
  std::string id(item->attr("id").value_or(""));
  const int64_t seq = next_seq();
  if (id.empty()) id = std::to_string(seq);
  // A republished id replaces the item and becomes the newest.
  n.items.erase(std::remove_if(n.items.begin(), n.items.end(), [&](const Item& i) { return i.id == id; }),
                n.items.end());
  n.items.push_back(Item{id, serialized, {}, seq});
  const auto max = static_cast<std::size_t>(n.config.effective_max_items(limits_));
  std::vector<std::string> dropped;
  while (n.items.size() > max) {
    dropped.push_back(n.items.front().id);
    n.items.pop_front();
  }
  Puts puts;
  std::vector<std::string> removes;
  if (created) puts.emplace_back(node_key(node), serialize_config(n.config));
  if (n.config.persist_items) {
    puts.emplace_back(item_key(node, id), item_value(n.items.back()));
    for (const auto& gone : dropped) removes.push_back(item_key(node, gone));
  }
  store(r.owner, std::move(puts), std::move(removes));
  parley::Element p = host().element("pubsub", ns_pubsub);
  p.add_child("publish", ns_pubsub).set_attr("node", node).add_child("item", ns_pubsub).set_attr("id", id);
  if (node == "urn:xmpp:avatar:metadata") avatar_from_node(r.owner, u);  // XEP-0153, before the answer
  ok(r, std::move(p));
  host().counter_add("published");
  if (is_bookmarks(node)) bookmarks_to_private(r.owner, u);  // XEP-0411
  if (n.config.deliver_notifications)
    notify(r.owner, node, n.config,
           "<items xmlns='" + std::string(ns_event) + "' node='" + xml_attr(node) + "'>" +
               item_xml(n.items.back(), n.config.deliver_payloads) + "</items>",
           true);
}

// XEP-0060 §6.5, with the access checks of §6.5.9.
void ModPep::items(const Request& r, UserPep& u, parley::ElementView req) {
  const std::string node(req.attr("node").value_or(""));
  if (node.empty()) return fail(r, "bad-request", "nodeid-required");
  auto query = parse_items_query(*r.iq->first_child(), req);
  if (!query) return fail(r, "bad-request");
  auto answer = [this, r, node, q = *query](UserPep& u) {
    auto it = u.nodes.find(node);
    if (it == u.nodes.end()) return fail(r, "item-not-found");
    auto a = items_answer(host(), node, it->second.items, q);
    if (!a.pubsub) return fail(r, a.condition);
    ok(r, std::move(*a.pubsub));
  };
  auto it = u.nodes.find(node);
  if (it == u.nodes.end()) return fail(r, "item-not-found");
  if (r.is_owner()) return answer(u);
  relation(r.owner_user, r.requester, [this, r, node, answer](std::optional<Relation> rel) {
    if (!rel) return fail(r, "internal-server-error");
    with_user(r.owner, [this, r, node, answer, rel](UserPep* u) {
      if (!u) return fail(r, "resource-constraint");
      auto it = u->nodes.find(node);
      if (it == u->nodes.end()) return fail(r, "item-not-found");
      switch (check_access(it->second.config, false, r.requester, rel->subscribed_from, rel->groups)) {
        case Access::allowed: return answer(*u);
        case Access::presence_required: return fail(r, "not-authorized", "presence-subscription-required");
        case Access::not_in_group: return fail(r, "not-authorized", "not-in-roster-group");
        case Access::not_whitelisted: return fail(r, "not-allowed", "closed-node");
        case Access::outcast: return fail(r, "forbidden");
      }
    });
  });
}

// XEP-0060 §7.2.
void ModPep::retract(const Request& r, UserPep& u, parley::ElementView req) {
  const std::string node(req.attr("node").value_or(""));
  if (node.empty()) return fail(r, "bad-request", "nodeid-required");
  if (!r.is_owner()) return fail(r, "forbidden");
  auto item = req.child("item", ns_pubsub);
  const std::string id(item ? item->attr("id").value_or("") : "");
  if (id.empty()) return fail(r, "bad-request", "item-required");
  auto it = u.nodes.find(node);
  if (it == u.nodes.end()) return fail(r, "item-not-found");
  Node& n = it->second;
  auto found = std::find_if(n.items.begin(), n.items.end(), [&](const Item& i) { return i.id == id; });
  if (found == n.items.end()) return fail(r, "item-not-found");
  n.items.erase(found);
  store(r.owner, {}, {item_key(node, id)});
  if (node == "urn:xmpp:avatar:metadata") avatar_from_node(r.owner, u);  // XEP-0153, before the answer
  ok(r);
  if (is_bookmarks(node)) bookmarks_to_private(r.owner, u);  // XEP-0411
  // §7.2.2.1: the publisher's notify attribute, else the node's notify_retract.
  auto notify_attr = req.attr("notify");
  const bool send = notify_attr ? parse_bool(*notify_attr).value_or(false) : n.config.notify_retract;
  if (send)
    notify(r.owner, node, n.config,
           "<items xmlns='" + std::string(ns_event) + "' node='" + xml_attr(node) + "'><retract id='" +
               xml_attr(id) + "'/></items>");
}

// XEP-0060 §8.1 (instant nodes are not offered: a personal node has a name).
void ModPep::create(const Request& r, UserPep& u, parley::ElementView pubsub, parley::ElementView req) {
  const std::string node(req.attr("node").value_or(""));
  if (!r.is_owner()) return fail(r, "forbidden");
  if (node.empty()) return fail(r, "not-acceptable", "nodeid-required");
  if (u.nodes.count(node)) return fail(r, "conflict");
  if (static_cast<int64_t>(u.nodes.size()) >= limits_.max_nodes) return fail(r, "not-allowed", "max-nodes-exceeded");
  NodeConfig config;
  if (auto conf = pubsub.child("configure", ns_pubsub)) {
    bool malformed = false;
    auto form = read_form(*conf, node_config_form_type, malformed);
    if (malformed) return fail(r, "bad-request");
    if (form && apply_config(config, *form, limits_)) return fail(r, "not-acceptable");
  }
  store(r.owner, {{node_key(node), serialize_config(config)}}, {});
  u.nodes.emplace(node, Node{std::move(config), {}});
  ok(r);
}

// XEP-0060 §8.2 (get the form, submit it, or cancel).
void ModPep::configure(const Request& r, UserPep& u, parley::ElementView req) {
  const bool set = r.iq->attr("type").value_or("") == "set";
  const std::string node(req.attr("node").value_or(""));
  if (node.empty()) return fail(r, "bad-request", "nodeid-required");
  if (!r.is_owner()) return fail(r, "forbidden");
  auto it = u.nodes.find(node);
  if (it == u.nodes.end()) return fail(r, "item-not-found");
  Node& n = it->second;
  if (!set) {
    parley::Element p = host().element("pubsub", ns_owner);
    auto c = p.add_child("configure", ns_owner);
    c.set_attr("node", node);
    c.add_child(config_form(host(), n.config, "form"));
    return ok(r, std::move(p));
  }
  auto x = req.child("x", ns_data);
  if (!x) return fail(r, "bad-request");
  if (x->attr("type").value_or("") == "cancel") return ok(r);
  bool malformed = false;
  auto form = read_form(req, node_config_form_type, malformed);
  if (malformed || !form) return fail(r, "bad-request");
  if (auto error = apply_config(n.config, *form, limits_)) return fail(r, "not-acceptable");
  const auto max = static_cast<std::size_t>(n.config.effective_max_items(limits_));
  std::vector<std::string> removes;
  while (n.items.size() > max) {
    removes.push_back(item_key(node, n.items.front().id));
    n.items.pop_front();
  }
  if (!n.config.persist_items)  // in memory only from now on
    for (const Item& i : n.items) removes.push_back(item_key(node, i.id));
  store(r.owner, {{node_key(node), serialize_config(n.config)}}, std::move(removes));
  ok(r);
  if (n.config.notify_config)
    notify(r.owner, node, n.config,
           "<configuration xmlns='" + std::string(ns_event) + "' node='" + xml_attr(node) + "'/>");
}

// XEP-0060 §8.5.
void ModPep::purge(const Request& r, UserPep& u, parley::ElementView req) {
  const std::string node(req.attr("node").value_or(""));
  if (node.empty()) return fail(r, "bad-request", "nodeid-required");
  if (!r.is_owner()) return fail(r, "forbidden");
  auto it = u.nodes.find(node);
  if (it == u.nodes.end()) return fail(r, "item-not-found");
  std::vector<std::string> removes;
  for (const Item& i : it->second.items) removes.push_back(item_key(node, i.id));
  it->second.items.clear();
  store(r.owner, {}, std::move(removes));
  if (node == "urn:xmpp:avatar:metadata") avatar_from_node(r.owner, u);  // XEP-0153, before the answer
  ok(r);
  if (is_bookmarks(node)) bookmarks_to_private(r.owner, u);  // XEP-0411
  if (it->second.config.notify_retract)
    notify(r.owner, node, it->second.config,
           "<purge xmlns='" + std::string(ns_event) + "' node='" + xml_attr(node) + "'/>");
}

// XEP-0060 §8.4.
void ModPep::remove_node(const Request& r, UserPep& u, parley::ElementView req) {
  const std::string node(req.attr("node").value_or(""));
  if (node.empty()) return fail(r, "bad-request", "nodeid-required");
  if (!r.is_owner()) return fail(r, "forbidden");
  auto it = u.nodes.find(node);
  if (it == u.nodes.end()) return fail(r, "item-not-found");
  NodeConfig config = it->second.config;
  std::vector<std::string> removes{node_key(node)};
  for (const Item& i : it->second.items) removes.push_back(item_key(node, i.id));
  u.nodes.erase(it);
  store(r.owner, {}, std::move(removes));
  if (node == "urn:xmpp:avatar:metadata") avatar_from_node(r.owner, u);  // XEP-0153, before the answer
  ok(r);
  if (is_bookmarks(node)) bookmarks_to_private(r.owner, u);  // XEP-0411
  if (config.notify_delete)
    notify(r.owner, node, config, "<delete xmlns='" + std::string(ns_event) + "' node='" + xml_attr(node) + "'/>");
}

// XEP-0060 §8.9: the whitelist is the members; outcasts are refused.
void ModPep::affiliations(const Request& r, UserPep& u, parley::ElementView req) {
  const bool set = r.iq->attr("type").value_or("") == "set";
  const std::string node(req.attr("node").value_or(""));
  if (node.empty()) return fail(r, "bad-request", "nodeid-required");
  if (!r.is_owner()) return fail(r, "forbidden");
  auto it = u.nodes.find(node);
  if (it == u.nodes.end()) return fail(r, "item-not-found");
  NodeConfig& c = it->second.config;
  if (!set) {
    parley::Element p = host().element("pubsub", ns_owner);
    auto list = p.add_child("affiliations", ns_owner);
    list.set_attr("node", node);
    list.add_child("affiliation", ns_owner).set_attr("jid", r.owner).set_attr("affiliation", "owner");
    for (const auto& j : c.whitelist)
      list.add_child("affiliation", ns_owner).set_attr("jid", j).set_attr("affiliation", "member");
    for (const auto& j : c.outcasts)
      list.add_child("affiliation", ns_owner).set_attr("jid", j).set_attr("affiliation", "outcast");
    return ok(r, std::move(p));
  }
  NodeConfig next = c;
  for (auto a : req.children()) {
    if (a.name() != "affiliation") continue;
    auto prepared = host().prepare_jid(a.attr("jid").value_or(""));
    if (!prepared) return fail(r, "bad-request", "invalid-jid");
    const std::string jid(parley::bare_jid(*prepared));
    if (jid == r.owner) return fail(r, "not-acceptable");  // the owner stays the owner
    const std::string_view aff = a.attr("affiliation").value_or("");
    auto drop = [&](std::vector<std::string>& list) { list.erase(std::remove(list.begin(), list.end(), jid), list.end()); };
    drop(next.whitelist);
    drop(next.outcasts);
    if (aff == "member") next.whitelist.push_back(jid);
    else if (aff == "outcast") next.outcasts.push_back(jid);
    else if (aff != "none") return fail(r, "not-acceptable");  // publisher, publish-only: not on a personal node
    if (static_cast<int64_t>(next.whitelist.size() + next.outcasts.size()) > limits_.max_affiliations)
      return fail(r, "policy-violation");
  }
  c = std::move(next);
  store(r.owner, {{node_key(node), serialize_config(c)}}, {});
  ok(r);
}

void ModPep::fail(const Request& r, std::string_view condition, std::string_view app, std::string_view feature) {
  host().route(error_reply(host(), *r.iq, condition, app, feature));
}

void ModPep::ok(const Request& r, std::optional<parley::Element> payload) {
  parley::Element reply = parley::make_iq_result(*r.iq);
  if (payload) reply.add_child(std::move(*payload));
  host().route(std::move(reply));
}

}  // namespace parley::mod_pep

using parley::mod_pep::ModPep;

PARLEY_MODULE(ModPep, "mod_pep", "1.0.0",
              parley::depends("mod_roster"),
              parley::option("max_nodes", PARLEY_OPT_INT),
              parley::option("max_items", PARLEY_OPT_INT),
              parley::option("max_item_bytes", PARLEY_OPT_INT),
              parley::option("max_affiliations", PARLEY_OPT_INT),
              parley::option("max_cached_users", PARLEY_OPT_INT),
              parley::option("max_cache_bytes", PARLEY_OPT_INT),
              parley::option("max_user_bytes", PARLEY_OPT_INT),
              parley::option("caps_cache_size", PARLEY_OPT_INT),
              parley::option("avatar_presence", PARLEY_OPT_BOOL),
              parley::iq_handler<&ModPep::on_pubsub>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET | PARLEY_IQ_SET,
                                                     parley::mod_pep::ns_pubsub),
              parley::iq_handler<&ModPep::on_pubsub_owner>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET | PARLEY_IQ_SET,
                                                           parley::mod_pep::ns_owner),
              parley::hook<&ModPep::on_presence>(PARLEY_EVENT_PRESENCE_BROADCAST, 40),
              parley::hook<&ModPep::on_stanza_in>(PARLEY_EVENT_STANZA_IN, 30),  // before mod_roster takes it (40)
              parley::hook<&ModPep::on_account_disco>(PARLEY_EVENT_ACCOUNT_DISCO_INFO),
              parley::hook<&ModPep::on_account_items>(PARLEY_EVENT_ACCOUNT_DISCO_ITEMS),
              parley::hook<&ModPep::on_account_node>(PARLEY_EVENT_ACCOUNT_NODE_INFO),
              parley::hook<&ModPep::on_account_node>(PARLEY_EVENT_ACCOUNT_NODE_ITEMS),
              parley::hook<&ModPep::on_stream_features>(PARLEY_EVENT_STREAM_FEATURES),
              parley::hook<&ModPep::on_user_removed>(PARLEY_EVENT_USER_REMOVED),
              parley::hook<&ModPep::on_session_bound>(PARLEY_EVENT_SESSION_BOUND),
              parley::hook<&ModPep::on_roster_answer>(PARLEY_EVENT_ADMIN_USER_ANSWER),
              // The tables before the map store: kept so that a server that has rows in them
              // gets them moved (OldTables in start()), then dropped.
              parley::schema("CREATE TABLE mod_pep_nodes (host TEXT NOT NULL, user TEXT NOT NULL, node TEXT NOT NULL, "
                             "config TEXT NOT NULL, PRIMARY KEY (host, user, node))"),
              parley::schema("CREATE TABLE mod_pep_items (host TEXT NOT NULL, user TEXT NOT NULL, node TEXT NOT NULL, "
                             "item_id TEXT NOT NULL, seq INTEGER NOT NULL, payload TEXT NOT NULL, "
                             "PRIMARY KEY (host, user, node, item_id))"))
