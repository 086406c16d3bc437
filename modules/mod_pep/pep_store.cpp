// mod_pep: the loop that owns each user's nodes, loading them from the
// module's tables, the bounded cache of loaded users, writes, and the roster
// relation that the access models need (mod_roster's table, read as a
// dependency may).
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

void ModPep::load(const std::string& bare) {
  const std::string user = parley::Jid::prepared(bare).local();
  host().counter_add("loads");
  host().query("SELECT node, config FROM mod_pep_nodes WHERE host = ? AND user = ?", {host().module_host(), user},
               [this, bare, user](parley::Result<parley::Rows, std::string> rows) {
                 if (!rows) {
                   host().error("loading the PEP nodes of " + bare + " failed: " + rows.error());
                   return loaded(bare, false);
                 }
                 UserPep& u = owners_.here().users[bare];
                 u.nodes.clear();
                 for (std::size_t i = 0; i < rows->size(); ++i)
                   u.nodes[std::string(rows->at(i, 0).bytes().value_or(""))].config =
                       parse_config(rows->at(i, 1).bytes().value_or(""));
                 host().query("SELECT node, item_id, payload, seq FROM mod_pep_items WHERE host = ? AND user = ? "
                              "ORDER BY seq",
                              {host().module_host(), user},
                              [this, bare](parley::Result<parley::Rows, std::string> items) {
                                if (!items) {
                                  host().error("loading the PEP items of " + bare + " failed: " + items.error());
                                  return loaded(bare, false);
                                }
                                UserPep& u = owners_.here().users[bare];
                                for (std::size_t i = 0; i < items->size(); ++i) {
                                  auto it = u.nodes.find(std::string(items->at(i, 0).bytes().value_or("")));
                                  if (it == u.nodes.end()) continue;
                                  it->second.items.push_back(Item{std::string(items->at(i, 1).bytes().value_or("")),
                                                                  std::string(items->at(i, 2).bytes().value_or("")),
                                                                  {}, items->at(i, 3).integer().value_or(0)});
                                }
                                loaded(bare, true);
                              });
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

// A write for `owner`'s nodes, from the owner loop (the storage writer keeps
// their order); the user stays cached until it is done, so that a reload from
// storage never misses it.
void ModPep::write(const std::string& owner, std::string_view sql, std::initializer_list<parley::Value> params) {
  auto& users = owners_.here().users;
  auto it = users.find(owner);
  if (it != users.end()) ++it->second.pending_writes;
  host().execute(sql, params, [this, owner](parley::Result<parley::Rows, std::string> rows) {
    if (!rows) host().error("storing the PEP nodes of " + owner + " failed: " + rows.error());
    auto& users = owners_.here().users;
    auto it = users.find(owner);
    if (it != users.end() && it->second.pending_writes > 0) --it->second.pending_writes;
  });
}

void ModPep::relation(const std::string& owner_user, const std::string& contact,
                      std::function<void(std::optional<Relation>)> fn) {
  host().query("SELECT subscription, groups FROM mod_roster_items WHERE host = ? AND user = ? AND contact = ?",
               {host().module_host(), owner_user, contact},
               [fn = std::move(fn)](parley::Result<parley::Rows, std::string> rows) {
                 if (!rows) return fn(std::nullopt);
                 Relation rel;
                 if (rows->size() > 0) {
                   std::string sub(rows->at(0, 0).bytes().value_or(""));
                   rel.subscribed_from = sub == "from" || sub == "both";
                   rel.groups = decode_roster_groups(rows->at(0, 1).bytes().value_or(""));
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
    host().execute("DELETE FROM mod_pep_items WHERE host = ? AND user = ?", {host().module_host(), user});
    host().execute("DELETE FROM mod_pep_nodes WHERE host = ? AND user = ?", {host().module_host(), user});
  };
  if (parley::current_loop(host()) == static_cast<int32_t>(owner)) return run();
  parley::post(host(), owner, std::move(run));
}

}  // namespace parley::mod_pep
