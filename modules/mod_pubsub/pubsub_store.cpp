// mod_pubsub: the module's data in the map store (issue 11's typed store, on
// the server's backend: SQLite or PostgreSQL), in maps named so that no node
// name can take them (0x1f is never in XML):
//   "\x1fnodes"        node -> creator "\n" configuration
//   "m\x1f" + node     "a\x1f" + jid -> affiliation; "s\x1f" + jid -> subid "\n" state "\n" options
//   "i\x1f" + node     item id -> seq "\n" publisher "\n" payload
// The nodes with their affiliations and subscriptions are loaded at start and
// handed to each node's loop; a node's items when a request first needs them.
// Every change is written from the node's loop; the store keeps the order of
// the module's calls, so a read of items comes after the writes before it.
// What the module's tables held before the map store is moved there once.
#include <algorithm>

#include "mod_pubsub.hpp"

namespace parley::mod_pubsub {

namespace {
constexpr char kSep = '\x1f';
const std::string kIndex = std::string(1, kSep) + "nodes";
std::string members_map(const std::string& node) { return std::string("m") + kSep + node; }
std::string items_map(const std::string& node) { return std::string("i") + kSep + node; }
std::string aff_key(const std::string& jid) { return std::string("a") + kSep + jid; }
std::string sub_key(const std::string& jid) { return std::string("s") + kSep + jid; }

// "first\nrest" -> {first, rest}
std::pair<std::string_view, std::string_view> split_line(std::string_view v) {
  const auto nl = v.find('\n');
  if (nl == std::string_view::npos) return {v, {}};
  return {v.substr(0, nl), v.substr(nl + 1)};
}

int64_t number(std::string_view v) {
  int64_t n = 0;
  for (char c : v)
    if (c >= '0' && c <= '9') n = n * 10 + (c - '0');
  return n;
}
}  // namespace

parley::Host::MapFn ModPubsub::log_error(std::string what) {
  return [this, what](parley::Result<parley::MapResult, std::string> r) {
    if (!r) host().error("cannot " + what + ": " + r.error());
  };
}

void ModPubsub::start_moves() {
  const std::string s = domain_;
  constexpr auto map = parley::KeyvalMove::Target::map;
  using Move = parley::OldTables::Move;
  moves_.start(host(), {Move{"mod_pubsub_nodes",
                             "SELECT char(31) || 'nodes', node, creator || char(10) || config FROM mod_pubsub_nodes "
                             "WHERE service = ?1",
                             "DELETE FROM mod_pubsub_nodes WHERE service = ?1", map, s},
                        Move{"mod_pubsub_affiliations",
                             "SELECT 'm' || char(31) || node, 'a' || char(31) || jid, affiliation "
                             "FROM mod_pubsub_affiliations WHERE service = ?1",
                             "DELETE FROM mod_pubsub_affiliations WHERE service = ?1", map, s},
                        Move{"mod_pubsub_subscriptions",
                             "SELECT 'm' || char(31) || node, 's' || char(31) || jid, subid || char(10) || state || "
                             "char(10) || options FROM mod_pubsub_subscriptions WHERE service = ?1",
                             "DELETE FROM mod_pubsub_subscriptions WHERE service = ?1", map, s},
                        Move{"mod_pubsub_items",
                             "SELECT 'i' || char(31) || node, item_id, seq || char(10) || publisher || char(10) || "
                             "payload FROM mod_pubsub_items WHERE service = ?1 ORDER BY seq",
                             "DELETE FROM mod_pubsub_items WHERE service = ?1", map, s}});
}

// On loop 0, once the old tables are moved: the index, then each node's
// members (in parallel), then every loop gets its nodes.
void ModPubsub::load() {
  if (!moves_.ready()) return moves_.when_ready(host(), [this] { load(); });
  auto failed = [this](const std::string& what, const std::string& error) {
    host().error("cannot read the " + what + ": " + error);
    finish_load(std::make_shared<std::map<std::string, Node>>());
  };
  const bool sent = host().map_get(kIndex, [this, failed](parley::Result<parley::MapResult, std::string> index) {
    if (!index) return failed("nodes", index.error());
    auto stored = std::make_shared<std::map<std::string, Node>>();
    for (std::size_t i = 0; i < index->size(); ++i) {
      const auto item = index->at(i);
      const auto [creator, config] = split_line(item.value);
      Node n;
      n.name = std::string(item.key);
      n.creator = std::string(creator);
      n.config = parse_config(config);
      (*stored)[n.name] = std::move(n);
    }
    if (stored->empty()) return finish_load(stored);
    auto left = std::make_shared<std::size_t>(stored->size());
    for (auto& [name, node] : *stored) {
      auto landed = [this, stored, left, name = name](parley::Result<parley::MapResult, std::string> members) {
        Node& n = (*stored)[name];
        if (!members) {
          host().error("cannot read the affiliations and subscriptions of " + name + ": " + members.error());
        } else {
          for (std::size_t i = 0; i < members->size(); ++i) {
            const auto item = members->at(i);
            if (item.key.size() < 2 || item.key[1] != kSep) continue;
            const std::string jid(item.key.substr(2));
            if (item.key[0] == 'a') {
              auto a = parse_affiliation(item.value);
              if (a && *a != Affiliation::none) n.affiliations[jid] = *a;
            } else if (item.key[0] == 's') {
              const auto [subid, rest] = split_line(item.value);
              const auto [state, options] = split_line(rest);
              n.subscriptions.push_back(
                  Subscription{jid, std::string(subid), state == "pending", parse_sub_options(options)});
            }
          }
        }
        if (--*left == 0) finish_load(stored);
      };
      if (!host().map_get(members_map(name), landed)) landed(parley::unexpected(std::string("refused")));
    }
  });
  if (!sent) failed("nodes", "the map store refused the call");
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

// A node's items from its items map (the store's order after the writes
// already asked: its items as the last request left them).
void ModPubsub::load_items(Node& n) {
  n.loading = true;
  host().counter_add("item_loads");
  const bool sent = host().map_get(items_map(n.name), [this, name = n.name](parley::Result<parley::MapResult, std::string> map) {
    items_loaded(name, std::move(map));
  });
  if (!sent) items_loaded(n.name, parley::unexpected(std::string("the map store refused the call")));
}

void ModPubsub::items_loaded(const std::string& name, parley::Result<parley::MapResult, std::string> map) {
  LoopNodes& here = loops_state_.here();
  auto it = here.nodes.find(name);
  if (it == here.nodes.end()) return;  // deleted meanwhile (its requests were answered then)
  Node& n = it->second;
  n.loading = false;
  std::deque<Request> waiting;
  waiting.swap(n.waiting);
  if (!map) {
    host().error("cannot read the items of " + name + ": " + map.error());
    for (const Request& r : waiting)
      if (r.iq->name() == "iq") fail(r, "internal-server-error");
    return;  // not loaded: the next request tries again
  }
  std::vector<std::pair<int64_t, Item>> items;
  for (std::size_t i = 0; i < map->size(); ++i) {
    const auto item = map->at(i);
    const auto [seq, rest] = split_line(item.value);
    const auto [publisher, payload] = split_line(rest);
    // The sequence is the publication time (µs), as pubsub#item_expire reads it.
    items.emplace_back(number(seq),
                       Item{std::string(item.key), std::string(payload), std::string(publisher), number(seq)});
  }
  std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  n.items.clear();
  for (auto& [seq, item] : items) n.items.push_back(std::move(item));
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
  const std::string value = n.creator + "\n" + serialize_config(n.config);
  host().map_put(kIndex, {parley::KeyvalItem{n.name, value}}, 0, log_error("save a node"));
}

void ModPubsub::save_affiliation(const Node& n, const std::string& jid, Affiliation a) {
  if (a == Affiliation::none)
    host().map_remove(members_map(n.name), {aff_key(jid)}, log_error("remove an affiliation"));
  else
    host().map_put(members_map(n.name), {parley::KeyvalItem{aff_key(jid), to_string(a)}}, 0,
                   log_error("save an affiliation"));
}

void ModPubsub::save_subscription(const Node& n, const Subscription& s, bool present) {
  if (!present) {
    host().map_remove(members_map(n.name), {sub_key(s.jid)}, log_error("remove a subscription"));
    return;
  }
  const std::string value =
      s.subid + "\n" + (s.pending ? "pending" : "subscribed") + "\n" + serialize_sub_options(s.options);
  host().map_put(members_map(n.name), {parley::KeyvalItem{sub_key(s.jid), value}}, 0, log_error("save a subscription"));
}

void ModPubsub::save_item(const Node& n, const Item& item, int64_t seq) {
  const std::string value = std::to_string(seq) + "\n" + item.publisher + "\n" + item.payload;
  host().map_put(items_map(n.name), {parley::KeyvalItem{item.id, value}}, 0, log_error("save an item"));
}

void ModPubsub::forget_item(const Node& n, const std::string& id) {
  host().map_remove(items_map(n.name), {id}, log_error("remove an item"));
}

void ModPubsub::forget_items(const Node& n) { host().map_clear(items_map(n.name), log_error("purge a node")); }

void ModPubsub::forget_node(const Node& n) {
  forget_items(n);
  host().map_clear(members_map(n.name), log_error("delete a node"));
  host().map_remove(kIndex, {n.name}, log_error("delete a node"));
}

}  // namespace parley::mod_pubsub
