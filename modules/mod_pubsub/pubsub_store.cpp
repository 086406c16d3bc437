// mod_pubsub: the module's tables. Everything is loaded at start (the nodes,
// their affiliations, subscriptions and items) and handed to each node's
// loop; then every change is written from the node's loop, in order.
#include "mod_pubsub.hpp"

namespace parley::mod_pubsub {

parley::Host::RowsFn ModPubsub::log_error(std::string what) {
  return [this, what](parley::Result<parley::Rows, std::string> rows) {
    if (!rows) host().error("cannot " + what + ": " + rows.error());
  };
}

namespace {
std::string text(const parley::Rows& rows, std::size_t row, std::size_t col) {
  return std::string(rows.at(row, col).text().value_or(""));
}
}  // namespace

void ModPubsub::load() {
  auto stored = std::make_shared<std::map<std::string, Node>>();
  auto failed = [this](const std::string& what, const std::string& error) {
    host().error("cannot read the " + what + ": " + error);
    finish_load(std::make_shared<std::map<std::string, Node>>());
  };
  host().query(
      "SELECT node, creator, config FROM mod_pubsub_nodes WHERE service = ?", {domain_},
      [this, stored, failed](parley::Result<parley::Rows, std::string> rows) {
        if (!rows) return failed("nodes", rows.error());
        for (std::size_t i = 0; i < rows->size(); ++i) {
          Node n;
          n.name = text(*rows, i, 0);
          n.creator = text(*rows, i, 1);
          n.config = parse_config(text(*rows, i, 2));
          (*stored)[n.name] = std::move(n);
        }
        host().query(
            "SELECT node, jid, affiliation FROM mod_pubsub_affiliations WHERE service = ?", {domain_},
            [this, stored, failed](parley::Result<parley::Rows, std::string> rows) {
              if (!rows) return failed("affiliations", rows.error());
              for (std::size_t i = 0; i < rows->size(); ++i) {
                auto it = stored->find(text(*rows, i, 0));
                auto a = parse_affiliation(text(*rows, i, 2));
                if (it != stored->end() && a && *a != Affiliation::none) it->second.affiliations[text(*rows, i, 1)] = *a;
              }
              host().query(
                  "SELECT node, jid, subid, state, options FROM mod_pubsub_subscriptions WHERE service = ?",
                  {domain_}, [this, stored, failed](parley::Result<parley::Rows, std::string> rows) {
                    if (!rows) return failed("subscriptions", rows.error());
                    for (std::size_t i = 0; i < rows->size(); ++i) {
                      auto it = stored->find(text(*rows, i, 0));
                      if (it != stored->end())
                        it->second.subscriptions.push_back(Subscription{text(*rows, i, 1), text(*rows, i, 2),
                                                                        text(*rows, i, 3) == "pending",
                                                                        parse_sub_options(text(*rows, i, 4))});
                    }
                    finish_load(stored);  // items: read per node when needed (load_items)
                  });
            });
      });
}

// Every loop gets its stored nodes (none after a read error: served without
// them, logged), then handles what waited for them, in order.
void ModPubsub::finish_load(std::shared_ptr<std::map<std::string, Node>> stored) {
  auto per_loop = std::make_shared<std::vector<std::vector<Node>>>(loops_);
  for (auto& [name, n] : *stored) (*per_loop)[loop_of(name)].push_back(std::move(n));
  for (uint32_t l = 0; l < loops_; ++l)
    parley::post(host(), l, [this, per_loop, l] {
      LoopNodes& here = loops_state_.here();
      for (Node& n : (*per_loop)[l]) {
        // Over a lowered limit the node stays (count_created refuses to count it).
        if (!n.creator.empty()) count_created(n.creator);
        std::string name = n.name;
        here.nodes.emplace(std::move(name), std::move(n));
      }
      here.loaded = true;
      std::deque<Request> waiting;
      waiting.swap(here.waiting);
      for (Request& r : waiting) run(std::move(r));
    });
}

// Read on the writer (a write = 1 query), after every write already queued
// for the node: its items as the last request left them.
void ModPubsub::load_items(Node& n) {
  n.loading = true;
  host().counter_add("item_loads");
  host().execute("SELECT item_id, publisher, payload FROM mod_pubsub_items WHERE service = ? AND node = ? ORDER BY seq",
                 {domain_, n.name},
                 [this, name = n.name](parley::Result<parley::Rows, std::string> rows) {
                   items_loaded(name, std::move(rows));
                 });
}

void ModPubsub::items_loaded(const std::string& name, parley::Result<parley::Rows, std::string> rows) {
  LoopNodes& here = loops_state_.here();
  auto it = here.nodes.find(name);
  if (it == here.nodes.end()) return;  // deleted meanwhile (its requests were answered then)
  Node& n = it->second;
  n.loading = false;
  std::deque<Request> waiting;
  waiting.swap(n.waiting);
  if (!rows) {
    host().error("cannot read the items of " + name + ": " + rows.error());
    for (const Request& r : waiting)
      if (r.iq->name() == "iq") fail(r, "internal-server-error");
    return;  // not loaded: the next request tries again
  }
  n.items.clear();
  for (std::size_t i = 0; i < rows->size(); ++i)
    n.items.push_back(Item{text(*rows, i, 0), text(*rows, i, 2), text(*rows, i, 1), 0});
  // A node keeps at most max_items (the limit may have been lowered).
  const auto max = static_cast<std::size_t>(n.config.effective_max_items(limits_));
  while (n.items.size() > max) n.items.pop_front();
  n.items_loaded = true;
  account(n);
  for (Request& r : waiting) run(std::move(r));
}

void ModPubsub::account(Node& n) {
  int64_t bytes = 0;
  for (const Item& i : n.items) bytes += static_cast<int64_t>(i.id.size() + i.payload.size() + i.publisher.size());
  if (bytes == n.bytes) return;
  loops_state_.here().bytes += bytes - n.bytes;
  host().counter_add("cached_item_bytes", bytes - n.bytes);
  n.bytes = bytes;
}

// The least recently used nodes' items leave memory until the loop holds at
// most max_cache_bytes (the node just used stays, whatever its size; a node
// whose items are being read is not in memory yet). Items of a node that does
// not persist them are gone with it (persist_items false: never stored).
void ModPubsub::trim_cache(const std::string& keep) {
  LoopNodes& here = loops_state_.here();
  while (here.bytes > max_cache_bytes_) {
    Node* coldest = nullptr;
    for (auto& [name, n] : here.nodes)
      if (n.items_loaded && n.bytes > 0 && name != keep && (!coldest || n.last_use < coldest->last_use)) coldest = &n;
    if (!coldest) return;
    coldest->items.clear();
    account(*coldest);
    coldest->items_loaded = false;
    host().counter_add("item_evictions");
  }
}

void ModPubsub::save_node(const Node& n) {
  host().execute("INSERT OR REPLACE INTO mod_pubsub_nodes (service, node, creator, config) VALUES (?, ?, ?, ?)",
                 {domain_, n.name, n.creator, serialize_config(n.config)}, log_error("save a node"));
}

void ModPubsub::save_affiliation(const Node& n, const std::string& jid, Affiliation a) {
  if (a == Affiliation::none)
    host().execute("DELETE FROM mod_pubsub_affiliations WHERE service = ? AND node = ? AND jid = ?",
                   {domain_, n.name, jid}, log_error("remove an affiliation"));
  else
    host().execute(
        "INSERT OR REPLACE INTO mod_pubsub_affiliations (service, node, jid, affiliation) VALUES (?, ?, ?, ?)",
        {domain_, n.name, jid, std::string(to_string(a))}, log_error("save an affiliation"));
}

void ModPubsub::save_subscription(const Node& n, const Subscription& s, bool present) {
  if (!present)
    host().execute("DELETE FROM mod_pubsub_subscriptions WHERE service = ? AND node = ? AND jid = ?",
                   {domain_, n.name, s.jid}, log_error("remove a subscription"));
  else
    host().execute(
        "INSERT OR REPLACE INTO mod_pubsub_subscriptions (service, node, jid, subid, state, options) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        {domain_, n.name, s.jid, s.subid, std::string(s.pending ? "pending" : "subscribed"),
         serialize_sub_options(s.options)},
        log_error("save a subscription"));
}

void ModPubsub::save_item(const Node& n, const Item& item, int64_t seq) {
  host().execute(
      "INSERT OR REPLACE INTO mod_pubsub_items (service, node, item_id, seq, publisher, payload) "
      "VALUES (?, ?, ?, ?, ?, ?)",
      {domain_, n.name, item.id, seq, item.publisher, item.payload}, log_error("save an item"));
}

void ModPubsub::forget_item(const Node& n, const std::string& id) {
  host().execute("DELETE FROM mod_pubsub_items WHERE service = ? AND node = ? AND item_id = ?", {domain_, n.name, id},
                 log_error("remove an item"));
}

void ModPubsub::forget_items(const Node& n) {
  host().execute("DELETE FROM mod_pubsub_items WHERE service = ? AND node = ?", {domain_, n.name},
                 log_error("purge a node"));
}

void ModPubsub::forget_node(const Node& n) {
  forget_items(n);
  for (const char* table : {"mod_pubsub_subscriptions", "mod_pubsub_affiliations", "mod_pubsub_nodes"})
    host().execute(std::string("DELETE FROM ") + table + " WHERE service = ? AND node = ?", {domain_, n.name},
                   log_error("delete a node"));
}

}  // namespace parley::mod_pubsub
