// mod_pep: the loop that owns each user's nodes, loading them from the
// map store, the bounded cache of loaded users, writes, and the roster
// relation that the access models need (mod_roster's table, read as a
// dependency may).
#include <algorithm>
#include <chrono>

#include "mod_pep.hpp"

namespace parley::mod_pep {

uint32_t ModPep::owner_loop(const std::string& bare) const {
  return static_cast<uint32_t>(std::hash<std::string>{}(bare) % owners_.size());
}

// Runs fn(user) on the owner loop once the user's nodes are loaded; fn(nullptr)
// if they cannot be (a storage error, or too many requests waiting for them).
void ModPep::with_user(const std::string& bare, std::function<void(UserPep*)> fn) {
  auto run = [this, bare, fn = std::move(fn)]() mutable {
    OwnerLoop& loop = owners_.here();
    UserPep& u = loop.users[bare];
    u.last_use = ++loop.tick;
    if (u.loaded) {
      // What fn changes in the user's items is counted in the loop's budget.
      const int64_t before = u.bytes;
      fn(&u);
      auto it = loop.users.find(bare);
      if (it == loop.users.end()) return;
      it->second.bytes = count_bytes(it->second);
      loop.bytes += it->second.bytes - before;
      return evict(loop);
    }
    if (static_cast<int64_t>(u.waiting.size()) >= max_waiting_) return fn(nullptr);
    u.waiting.push_back(std::move(fn));
    if (!u.loading) {
      u.loading = true;
      load(bare);
    }
  };
  const uint32_t owner = owner_loop(bare);
  if (parley::current_loop(host()) == static_cast<int32_t>(owner)) return run();
  if (!parley::post(host(), owner, std::move(run))) host().error("cannot post to loop " + std::to_string(owner));
}

namespace {
constexpr char kSep = '\x1f';
}  // namespace

std::string ModPep::node_key(std::string_view node) {
  std::string k = "n";
  k += kSep;
  return k.append(node);
}

std::string ModPep::item_key(std::string_view node, std::string_view id) {
  std::string k = "i";
  k += kSep;
  k.append(node) += kSep;
  return k.append(id);
}

std::string ModPep::item_value(const Item& item) { return std::to_string(item.stamp_us) + "\n" + item.payload; }

// The account's map, once the old tables are moved: the nodes' configurations,
// then their items in the order they were published.
void ModPep::load(const std::string& bare) {
  const std::string user = parley::Jid::prepared(bare).local();
  host().counter_add("loads");
  move_.when_ready(host(), [this, bare, user] {
    const bool sent = host().map_get(user, [this, bare](parley::Result<parley::MapResult, std::string> map) {
      if (!map) {
        host().error("loading the PEP nodes of " + bare + " failed: " + map.error());
        return loaded(bare, false);
      }
      UserPep& u = owners_.here().users[bare];
      u.nodes.clear();
      std::vector<std::pair<std::string, Item>> items;
      for (std::size_t i = 0; i < map->size(); ++i) {
        const auto [key, value] = map->at(i);
        if (key.size() < 2 || key[1] != kSep) continue;
        const std::string_view rest = key.substr(2);
        if (key[0] == 'n') {
          u.nodes[std::string(rest)].config = parse_config(value);
        } else if (key[0] == 'i') {
          const auto sep = rest.find(kSep);
          const auto nl = value.find('\n');
          if (sep == std::string_view::npos || nl == std::string_view::npos) continue;
          int64_t seq = 0;
          for (char c : value.substr(0, nl)) seq = c >= '0' && c <= '9' ? seq * 10 + (c - '0') : seq;
          items.emplace_back(std::string(rest.substr(0, sep)),
                             Item{std::string(rest.substr(sep + 1)), std::string(value.substr(nl + 1)), {}, seq});
        }
      }
      std::stable_sort(items.begin(), items.end(),
                       [](const auto& a, const auto& b) { return a.second.stamp_us < b.second.stamp_us; });
      for (auto& [node, item] : items) {
        auto it = u.nodes.find(node);
        if (it != u.nodes.end()) it->second.items.push_back(std::move(item));
      }
      loaded(bare, true);
    });
    if (!sent) loaded(bare, false);
  });
}

void ModPep::loaded(const std::string& bare, bool ok) {
  OwnerLoop& loop = owners_.here();
  UserPep& u = loop.users[bare];
  u.loading = false;
  u.loaded = ok;
  loop.bytes -= u.bytes;
  u.bytes = ok ? count_bytes(u) : 0;
  loop.bytes += u.bytes;
  auto waiting = std::move(u.waiting);
  u.waiting.clear();
  for (auto& fn : waiting) {
    auto found = loop.users.find(bare);
    fn(ok && found != loop.users.end() ? &found->second : nullptr);
  }
  if (auto found = loop.users.find(bare); found != loop.users.end()) {
    if (!ok && found->second.waiting.empty() && !found->second.loading) {
      erase_user(loop, bare);
    } else {
      loop.bytes -= found->second.bytes;
      found->second.bytes = count_bytes(found->second);
      loop.bytes += found->second.bytes;
    }
  }
  evict(loop);
}

// Keeps at most max_cached_users_ users and max_cache_bytes_ of items per
// loop: drops idle users, least recently used first (at least an eighth of
// them when over the count, so that the scan is rare).
void ModPep::evict(OwnerLoop& loop) {
  auto over = [&] {
    return static_cast<int64_t>(loop.users.size()) > max_cached_users_ || loop.bytes > max_cache_bytes_;
  };
  if (!over()) return;
  std::vector<std::pair<uint64_t, std::string>> idle;
  for (const auto& [bare, u] : loop.users)
    if (u.loaded && u.waiting.empty() && u.pending_writes == 0) idle.emplace_back(u.last_use, bare);
  std::sort(idle.begin(), idle.end());
  const std::size_t at_least = static_cast<int64_t>(loop.users.size()) > max_cached_users_
                                   ? std::max<std::size_t>(1, loop.users.size() / 8)
                                   : 0;
  for (std::size_t i = 0; i < idle.size() && (i < at_least || over()); ++i) erase_user(loop, idle[i].second);
}

void ModPep::erase_user(OwnerLoop& loop, const std::string& bare) {
  auto it = loop.users.find(bare);
  if (it == loop.users.end()) return;
  loop.bytes -= it->second.bytes;
  loop.users.erase(it);
}

int64_t ModPep::count_bytes(const UserPep& u) {
  int64_t total = 0;
  for (const auto& [name, node] : u.nodes)
    for (const auto& item : node.items) total += static_cast<int64_t>(item.payload.size());
  return total;
}

// A change of `owner`'s map, from the owner loop; the user stays cached
// until it is done (the store keeps the order anyway: a reload comes after).
void ModPep::store(const std::string& owner, Puts puts, std::vector<std::string> removes) {
  const std::string user = parley::Jid::prepared(owner).local();
  auto done = [this, owner](parley::Result<parley::MapResult, std::string> r) {
    if (!r) host().error("storing the PEP nodes of " + owner + " failed: " + r.error());
    auto& users = owners_.here().users;
    auto it = users.find(owner);
    if (it != users.end() && it->second.pending_writes > 0) --it->second.pending_writes;
  };
  auto& users = owners_.here().users;
  auto it = users.find(owner);
  if (!puts.empty()) {
    std::vector<parley::KeyvalItem> items;
    for (const auto& [k, v] : puts) items.push_back(parley::KeyvalItem{k, v});
    if (host().map_put(user, items, 0, done) && it != users.end()) ++it->second.pending_writes;
  }
  if (!removes.empty() && host().map_remove(user, removes, done) && it != users.end()) ++it->second.pending_writes;
}

void ModPep::relation(const std::string& owner_user, const std::string& contact,
                      std::function<void(std::optional<Relation>)> fn) {
  // The roster module's answer (events 27-28): never its storage.
  asks_.ask_roster(owner_user, contact, [fn = std::move(fn)](auto roster) {
    if (!roster) return fn(std::nullopt);
    Relation rel;
    for (const auto& item : *roster) {
      rel.subscribed_from = item.has_from();
      rel.groups = item.groups;
    }
    fn(std::move(rel));
  });
}

int64_t ModPep::next_seq() {
  OwnerLoop& loop = owners_.here();
  const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  loop.last_seq = std::max(loop.last_seq + 1, now);
  return loop.last_seq;
}

void ModPep::on_user_removed(const parley::Event& event) {
  if (event.user().empty()) return;
  const std::string user(event.user());
  const std::string bare = user + "@" + std::string(event.host());
  const uint32_t owner = owner_loop(bare);
  auto run = [this, bare, user] {
    // The rows go now, after any write queued before from this loop. A user
    // being loaded keeps its entry (requests wait on it) without nodes.
    auto& users = owners_.here().users;
    if (auto it = users.find(bare); it != users.end()) {
      if (it->second.loading) it->second.nodes.clear();
      else erase_user(owners_.here(), bare);
    }
    host().map_clear(user, [this, bare](parley::Result<parley::MapResult, std::string> r) {
      if (!r) host().error("removing the PEP nodes of " + bare + " failed: " + r.error());
    });
  };
  if (parley::current_loop(host()) == static_cast<int32_t>(owner)) return run();
  parley::post(host(), owner, std::move(run));
}

}  // namespace parley::mod_pep
