// mod_pubsub: the module's definition, the service's own requests (its
// disco#info and #items, an entity's subscriptions and affiliations across
// nodes, the default configuration) and the routing of a node's requests to
// the loop that owns the node. A node's requests: pubsub_node.cpp; the
// tables: pubsub_store.cpp.
#include "mod_pubsub.hpp"

#include <random>

namespace parley::mod_pubsub {

namespace {

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// Requests that may wait per loop for the stored nodes (then resource-constraint).
constexpr std::size_t kMaxWaitingForLoad = 10000;
constexpr const char* ns_commands = "http://jabber.org/protocol/commands";
constexpr const char* kGetPending = "http://jabber.org/protocol/pubsub#get-pending";

// Requests that may wait for one node's items (then resource-constraint).
constexpr std::size_t kMaxWaitingForItems = 256;

// Exactly the features the service implements (XEP-0060 §10).
constexpr const char* kFeatures[] = {
    "access-authorize", "access-open", "access-whitelist", "auto-create", "config-node", "create-and-configure", "create-nodes",
    "delete-nodes", "instant-nodes", "item-ids", "manage-subscriptions", "member-affiliation", "meta-data",
    "modify-affiliations", "outcast-affiliation", "persistent-items", "publish", "publish-only-affiliation",
    "publish-options", "publisher-affiliation", "purge-nodes", "retract-items", "retrieve-affiliations",
    "retrieve-default", "retrieve-default-sub", "retrieve-items", "retrieve-subscriptions", "rsm", "subscribe",
    "subscription-notifications", "subscription-options", "get-pending"};

}  // namespace

Affiliation Node::affiliation_of(const std::string& bare) const {
  auto it = affiliations.find(bare);
  return it == affiliations.end() ? Affiliation::none : it->second;
}

const Subscription* Node::subscription_of(const std::string& jid) const {
  for (const auto& s : subscriptions)
    if (s.jid == jid) return &s;
  return nullptr;
}

Subscription* Node::subscription_of(const std::string& jid) {
  for (auto& s : subscriptions)
    if (s.jid == jid) return &s;
  return nullptr;
}

bool Node::subscribed(const std::string& bare) const {
  for (const auto& s : subscriptions)
    if (s.active() && parley::bare_jid(s.jid) == bare) return true;
  return false;
}

Affiliation ModPubsub::affiliation(const Node& n, const Request& r) const {
  const Affiliation a = n.affiliation_of(r.bare);
  if (a != Affiliation::owner && admins_own_nodes_ && parley::is_admin(host(), r.bare)) return Affiliation::owner;
  return a;
}

parley::Result<void, std::string> ModPubsub::start() {
  if (!host().supports_1_2()) return parley::unexpected(std::string("mod_pubsub needs a host with module ABI 1.2"));
  domain_ = host().option_string("host").value_or("pubsub." + host().module_host());
  auto bounded = [&](const char* name, int64_t& out, int64_t lo, int64_t hi) -> bool {
    if (auto v = host().option_int(name)) {
      if (*v < lo || *v > hi) return false;
      out = *v;
    }
    return true;
  };
  limits_.service = true;
  limits_.max_items = 100;
  struct Opt {
    const char* name;
    int64_t* out;
    int64_t lo, hi;
  };
  for (const Opt& o : {Opt{"max_nodes", &max_nodes_, 1, 10000000}, Opt{"max_nodes_per_user", &max_nodes_per_user_, 0, 1000000},
                       Opt{"max_items", &limits_.max_items, 1, 100000},
                       Opt{"max_item_bytes", &limits_.max_item_bytes, 1, 16 << 20},
                       Opt{"max_affiliations", &limits_.max_affiliations, 1, 1000000},
                       Opt{"max_subscriptions", &max_subscriptions_, 1, 1000000},
                       Opt{"max_cache_bytes", &max_cache_bytes_, 1, INT64_MAX}})
    if (!bounded(o.name, *o.out, o.lo, o.hi))
      return parley::unexpected(std::string(o.name) + " must be " + std::to_string(o.lo) + ".." + std::to_string(o.hi));
  limits_.max_nodes = max_nodes_;
  if (auto v = host().option_bool("admins_own_nodes")) admins_own_nodes_ = *v;
  if (admins_own_nodes_ && !parley::supports_admin(host())) {
    host().warn("this host cannot tell its administrators: admins_own_nodes is off");
    admins_own_nodes_ = false;
  }
  limits_.max_user_bytes = INT64_MAX;  // no per-account quota on the service: items per node and their size bound it
  loops_ = parley::loop_count(host());
  if (loops_ == 0) return parley::unexpected(std::string("no worker loops"));
  max_nodes_per_loop_ = static_cast<std::size_t>(std::max<int64_t>(1, max_nodes_ / loops_));
  loops_state_.init(host());
  if (!parley::register_service<&ModPubsub::on_stanza>(*this, domain_, "Publish-Subscribe"))
    return parley::unexpected("cannot serve " + domain_);
  if (!host().supports_map()) return parley::unexpected(std::string("this server has no map store"));
  start_moves();
  if (!parley::post(host(), 0, [this] { load(); })) return parley::unexpected(std::string("cannot post to loop 0"));
  return {};
}

uint32_t ModPubsub::loop_of(const std::string& node) const { return static_cast<uint32_t>(fnv1a(node) % loops_); }

parley::Outcome ModPubsub::on_stanza(const parley::ServiceStanza& in) {
  if (in.name() == "message" && in.to() == in.domain() && in.type() != "error") {
    // §8.6: an owner's answer to a subscription approval form, to the node's loop.
    auto x = in.stanza().child("x", ns_data);
    bool malformed = false;
    auto form = x ? read_form(in.stanza(), subscribe_authorization_form_type, malformed) : std::nullopt;
    auto node = form ? form_value(*form, "pubsub#node") : std::nullopt;
    if (malformed || !node || node->empty()) return parley::Outcome::handled;  // no other message is served
    Request r;
    r.iq = std::make_shared<parley::Element>(in.stanza().clone());
    r.iq->set_attr("from", in.from()).set_attr("to", in.to());
    r.from = std::string(in.from());
    r.bare = std::string(parley::bare_jid(r.from));
    r.service = std::string(in.domain());
    to_node_loop(*node, std::move(r));
    return parley::Outcome::handled;
  }
  if (in.name() != "iq") return parley::Outcome::handled;  // other messages and presence to the service: dropped
  const std::string type(in.type());
  if (type != "get" && type != "set") return parley::Outcome::handled;  // answers: the service asks nothing
  if (in.to() != in.domain()) return parley::Outcome::pass;  // no entity at the service's JIDs
  Request r;
  r.iq = std::make_shared<parley::Element>(in.stanza().clone());
  r.iq->set_attr("from", in.from()).set_attr("to", in.to());
  r.from = std::string(in.from());
  r.bare = std::string(parley::bare_jid(r.from));
  r.service = std::string(in.domain());
  auto payload = r.iq->first_child();
  if (!payload) return parley::Outcome::pass;
  const std::string_view ns = payload->xmlns();
  const std::string_view name = payload->name();
  const std::string node(payload->attr("node").value_or(""));
  if (ns == ns_commands && name == "command" && type == "set" && payload->attr("node") == kGetPending) {
    // §8.7: execute lists the requester's nodes with pending subscriptions;
    // the submitted node gets the approval forms again (on its loop); cancel.
    const std::string action(payload->attr("action").value_or("execute"));
    auto x = payload->child("x", ns_data);
    if (action == "cancel") {
      parley::Element c = host().element("command", ns_commands);
      c.set_attr("node", kGetPending).set_attr("status", "canceled");
      if (auto sid = payload->attr("sessionid")) c.set_attr("sessionid", *sid);
      ok(r, std::move(c));
      return parley::Outcome::handled;
    }
    if (x && x->attr("type").value_or("") == "submit") {
      bool malformed = false;
      auto form = read_form(*payload, subscribe_authorization_form_type, malformed);
      auto picked = form ? form_value(*form, "pubsub#node") : std::nullopt;
      if (malformed || !picked || picked->empty()) {
        fail(r, "bad-request");
        return parley::Outcome::handled;
      }
      to_node_loop(*picked, std::move(r));
      return parley::Outcome::handled;
    }
    auto result = std::make_shared<parley::Element>(parley::make_iq_result(*r.iq));
    auto c = result->add_child("command", ns_commands);
    c.set_attr("node", kGetPending).set_attr("status", "executing").set_attr("sessionid", random_id());
    auto form = c.add_child("x", ns_data);
    form.set_attr("type", "form");
    auto type = form.add_child("field", ns_data);
    type.set_attr("var", "FORM_TYPE").set_attr("type", "hidden");
    type.add_child("value", ns_data).add_text(subscribe_authorization_form_type);
    form.add_child("field", ns_data).set_attr("var", "pubsub#node").set_attr("type", "list-single");
    list_pending(result, std::move(r), 0);
    return parley::Outcome::handled;
  }
  if (ns == ns_disco_info && name == "query" && type == "get") {
    if (node.empty()) service_info(r);
    else to_node_loop(node, std::move(r));
    return parley::Outcome::handled;
  }
  if (ns == ns_disco_items && name == "query" && type == "get") {
    if (!node.empty()) {
      to_node_loop(node, std::move(r));
      return parley::Outcome::handled;
    }
    auto result = std::make_shared<parley::Element>(parley::make_iq_result(*r.iq));
    result->add_child("query", ns_disco_items);
    list_nodes(result, r.bare, 0);
    return parley::Outcome::handled;
  }
  if (ns == "urn:xmpp:ping" && type == "get") {
    ok(r);
    return parley::Outcome::handled;
  }
  if ((ns != ns_pubsub && ns != ns_owner) || name != "pubsub") return parley::Outcome::pass;
  std::optional<parley::ElementView> action;
  for (auto child : payload->children()) {
    action = child;
    break;
  }
  if (!action) {
    fail(r, "bad-request");
    return parley::Outcome::handled;
  }
  const std::string_view verb = action->name();
  std::string target(action->attr("node").value_or(""));
  const bool get = type == "get";
  if (ns == ns_pubsub && get && target.empty() && (verb == "subscriptions" || verb == "affiliations")) {
    // §5.6, §5.7: the requester's subscriptions or affiliations on every node.
    auto result = std::make_shared<parley::Element>(parley::make_iq_result(*r.iq));
    result->add_child("pubsub", ns_pubsub).add_child(verb, ns_pubsub);
    list_entity(result, r.bare, verb == "affiliations", 0);
    return parley::Outcome::handled;
  }
  if (ns == ns_pubsub && verb == "default" && get && target.empty()) {
    // §6.4: the default subscription options (of any node: they are the same).
    parley::Element p = host().element("pubsub", ns_pubsub);
    p.add_child("default", ns_pubsub).add_child(fields_form(host(), sub_option_fields(SubOptions{}), "form"));
    ok(r, std::move(p));
    return parley::Outcome::handled;
  }
  if (ns == ns_owner && verb == "default" && get) {
    // §8.3: the default configuration of a new node.
    parley::Element p = host().element("pubsub", ns_owner);
    p.add_child("default", ns_owner).add_child(config_form(host(), service_defaults(), "form", true));
    ok(r, std::move(p));
    return parley::Outcome::handled;
  }
  if (ns == ns_pubsub && verb == "create" && !get && target.empty()) {
    // §8.1.2: an instant node; its name is the service's.
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
    target = buf;
    r.iq->first_child()->first_child()->set_attr("node", target);
  }
  if (target.empty()) {
    fail(r, "bad-request", "nodeid-required");
    return parley::Outcome::handled;
  }
  to_node_loop(target, std::move(r));
  return parley::Outcome::handled;
}

void ModPubsub::to_node_loop(const std::string& node, Request r) {
  const uint32_t owner = loop_of(node);
  r.node = node;
  if (parley::current_loop(host()) == static_cast<int32_t>(owner)) return run(std::move(r));
  if (!parley::post(host(), owner, [this, r = std::move(r)]() mutable { run(std::move(r)); }))
    host().error("cannot post to loop " + std::to_string(owner));
}

void ModPubsub::run(Request r) {
  LoopNodes& here = loops_state_.here();
  if (!here.loaded) {
    if (here.waiting.size() >= kMaxWaitingForLoad) return fail(r, "resource-constraint");
    here.waiting.push_back(std::move(r));
    return;
  }
  // A node whose items are not in memory reads them first; its requests wait, in order.
  if (auto it = here.nodes.find(r.node); it != here.nodes.end()) {
    Node& n = it->second;
    n.last_use = ++here.tick;
    if (!n.items_loaded) {
      if (n.waiting.size() >= kMaxWaitingForItems) {
        if (r.iq->name() == "iq") fail(r, "resource-constraint");
        return;
      }
      n.waiting.push_back(std::move(r));
      if (!n.loading) load_items(n);
      return;
    }
  }
  if (auto it = here.nodes.find(r.node); it != here.nodes.end()) expire_items(it->second);
  if (r.iq->name() == "message") {
    authorization(r);
  } else if (r.iq->first_child()->name() == "command") {
    if (auto it = here.nodes.find(r.node); it != here.nodes.end()) send_pending(r, it->second);
    else fail(r, "item-not-found");
  } else {
    auto payload = r.iq->first_child();
    if (payload->xmlns() == ns_disco_info || payload->xmlns() == ns_disco_items) {
      node_disco(r, *payload);
    } else {
      std::optional<parley::ElementView> action;
      for (auto child : payload->children()) {
        action = child;
        break;
      }
      node_request(r, *payload, *action, payload->xmlns() == ns_owner);
    }
  }
  if (auto it = here.nodes.find(r.node); it != here.nodes.end()) account(it->second);
  trim_cache(r.node);
}

void ModPubsub::service_info(const Request& r) {
  parley::Element result = parley::make_iq_result(*r.iq);
  auto q = result.add_child("query", ns_disco_info);
  q.add_child("identity", ns_disco_info)
      .set_attr("category", "pubsub")
      .set_attr("type", "service")
      .set_attr("name", "Publish-Subscribe");
  q.add_child("feature", ns_disco_info).set_attr("var", ns_disco_info);
  q.add_child("feature", ns_disco_info).set_attr("var", ns_disco_items);
  q.add_child("feature", ns_disco_info).set_attr("var", ns_pubsub);
  std::string var;
  for (const char* f : kFeatures) {
    var.assign(ns_pubsub).append("#").append(f);
    q.add_child("feature", ns_disco_info).set_attr("var", var);
  }
  host().route(std::move(result));
}

// Loop `loop` adds its nodes that the requester may see (§5.2: a whitelist
// node only to those on its list), then hands the answer to the next loop.
void ModPubsub::list_nodes(std::shared_ptr<parley::Element> result, std::string requester, uint32_t loop) {
  if (loop == loops_) {
    host().route(std::move(*result));
    return;
  }
  parley::post(host(), loop, [this, result, requester, loop] {
    auto q = result->child("query", ns_disco_items);
    for (const auto& [name, n] : loops_state_.here().nodes) {
      // An authorize node is listed to all (one finds it to ask to subscribe).
      const Verdict v = may_retrieve(n.config, n.affiliation_of(requester));
      if (v != Verdict::allowed && v != Verdict::not_subscribed) continue;
      auto item = q->add_child("item", ns_disco_items);
      item.set_attr("jid", domain_).set_attr("node", name);
      if (!n.config.title.empty()) item.set_attr("name", n.config.title);
    }
    list_nodes(result, requester, loop + 1);
  });
}

void ModPubsub::list_entity(std::shared_ptr<parley::Element> result, std::string bare, bool affiliations,
                            uint32_t loop) {
  if (loop == loops_) {
    host().route(std::move(*result));
    return;
  }
  parley::post(host(), loop, [this, result, bare, affiliations, loop] {
    auto list = result->child("pubsub", ns_pubsub)->first_child();
    for (const auto& [name, n] : loops_state_.here().nodes) {
      if (affiliations) {
        const Affiliation a = n.affiliation_of(bare);
        if (a != Affiliation::none)
          list->add_child("affiliation", ns_pubsub).set_attr("node", name).set_attr("affiliation", to_string(a));
        continue;
      }
      for (const auto& s : n.subscriptions)
        if (parley::bare_jid(s.jid) == bare)
          list->add_child("subscription", ns_pubsub)
              .set_attr("node", name)
              .set_attr("jid", s.jid)
              .set_attr("subscription", s.pending ? "pending" : "subscribed")
              .set_attr("subid", s.subid);
    }
    list_entity(result, bare, affiliations, loop + 1);
  });
}

void ModPubsub::fail(const Request& r, std::string_view condition, std::string_view app, std::string_view feature,
                     std::string_view type) {
  host().route(error_reply(host(), *r.iq, condition, app, feature, type));
}

void ModPubsub::ok(const Request& r, std::optional<parley::Element> payload) {
  parley::Element reply = parley::make_iq_result(*r.iq);
  if (payload) reply.add_child(std::move(*payload));
  host().route(std::move(reply));
}

// max_nodes_per_user: the nodes an entity created that still exist, in
// relaxed atomics by buckets of its hash (the nodes live on every loop; two
// entities sharing a bucket share its count: never more lenient).
bool ModPubsub::count_created(const std::string& bare) {
  if (max_nodes_per_user_ == 0) return true;
  auto& bucket = created_[fnv1a(bare) % created_buckets];
  if (bucket.fetch_add(1, std::memory_order_relaxed) >= static_cast<uint32_t>(max_nodes_per_user_)) {
    bucket.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void ModPubsub::uncount_created(const std::string& bare) {
  if (max_nodes_per_user_ == 0 || bare.empty()) return;
  // Never below 0 (a node loaded over a lowered limit was not counted).
  auto& bucket = created_[fnv1a(bare) % created_buckets];
  uint32_t v = bucket.load(std::memory_order_relaxed);
  while (v > 0 && !bucket.compare_exchange_weak(v, v - 1, std::memory_order_relaxed)) {
  }
}

}  // namespace parley::mod_pubsub

using parley::mod_pubsub::ModPubsub;

PARLEY_MODULE(ModPubsub, "mod_pubsub", "1.0.0",
              parley::option("host", PARLEY_OPT_STRING),
              parley::option("max_nodes", PARLEY_OPT_INT),
              parley::option("max_nodes_per_user", PARLEY_OPT_INT),
              parley::option("max_items", PARLEY_OPT_INT),
              parley::option("max_item_bytes", PARLEY_OPT_INT),
              parley::option("max_affiliations", PARLEY_OPT_INT),
              parley::option("max_subscriptions", PARLEY_OPT_INT),
              parley::option("admins_own_nodes", PARLEY_OPT_BOOL),
              parley::option("max_cache_bytes", PARLEY_OPT_INT),
              // The tables before the map store: kept so that a server that has rows in them
              // gets them moved (OldTables in start()), then dropped.
              parley::schema("CREATE TABLE mod_pubsub_nodes (service TEXT NOT NULL, node TEXT NOT NULL, "
                             "creator TEXT NOT NULL, config TEXT NOT NULL, PRIMARY KEY (service, node))"),
              parley::schema("CREATE TABLE mod_pubsub_affiliations (service TEXT NOT NULL, node TEXT NOT NULL, "
                             "jid TEXT NOT NULL, affiliation TEXT NOT NULL, PRIMARY KEY (service, node, jid))"),
              parley::schema("CREATE TABLE mod_pubsub_subscriptions (service TEXT NOT NULL, node TEXT NOT NULL, "
                             "jid TEXT NOT NULL, subid TEXT NOT NULL, PRIMARY KEY (service, node, jid))"),
              parley::schema("CREATE TABLE mod_pubsub_items (service TEXT NOT NULL, node TEXT NOT NULL, "
                             "item_id TEXT NOT NULL, seq INTEGER NOT NULL, publisher TEXT NOT NULL, "
                             "payload TEXT NOT NULL, PRIMARY KEY (service, node, item_id))"),
              // Subscription states (an authorize node's pending requests) and options (§6.3).
              parley::schema("ALTER TABLE mod_pubsub_subscriptions ADD COLUMN state TEXT NOT NULL DEFAULT 'subscribed'"),
              parley::schema("ALTER TABLE mod_pubsub_subscriptions ADD COLUMN options TEXT NOT NULL DEFAULT ''"))
