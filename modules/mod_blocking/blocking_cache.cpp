// The cache of blocklists the hooks read. Shared by every loop: one mutex,
// held only for map lookups and list updates, never across a host call that
// could call back into the module.
#include <utility>

#include "mod_blocking.hpp"

namespace mod_blocking {

using Clock = std::chrono::steady_clock;

void ModBlocking::with_list(const std::string& user, Ready fn) {
  bool loaded = false;
  bool first = false;
  {
    std::lock_guard lock(mu_);
    Entry& entry = lists_[user];
    entry.last_use = Clock::now();
    if (entry.loaded) {
      loaded = true;
    } else {
      auto& here = entry.waiting[std::this_thread::get_id()];
      first = here.empty();
      here.push_back(std::move(fn));
    }
  }
  if (loaded) return fn(true);
  // Another loop may be loading the same list; its answer comes back there,
  // so this loop asks too (continuations must run on their own loop).
  if (first) start_load(user);
}

void ModBlocking::start_load(const std::string& user) {
  host().query("SELECT jid FROM mod_blocking_items WHERE host = ? AND user = ? ORDER BY id", {domain_, user},
               [this, user](parley::Result<parley::Rows, std::string> rows) {
                 std::vector<std::string> items;
                 if (rows) {
                   items.reserve(rows->size());
                   for (std::size_t i = 0; i < rows->size(); ++i)
                     if (auto jid = rows->at(i, 0).bytes()) items.emplace_back(*jid);
                 } else {
                   host().error("loading the blocklist of " + user + " failed: " + rows.error());
                 }
                 std::vector<Ready> ready;
                 bool loaded = false;
                 {
                   std::lock_guard lock(mu_);
                   auto it = lists_.find(user);
                   if (it == lists_.end()) return;
                   Entry& entry = it->second;
                   // The first answer wins: changes are made to a loaded list
                   // only, so a later answer could only be older.
                   if (rows && !entry.loaded) {
                     entry.list.assign(items);
                     entry.loaded = true;
                     host().counter_add("lists_loaded");
                   }
                   loaded = entry.loaded;
                   auto here = entry.waiting.find(std::this_thread::get_id());
                   if (here != entry.waiting.end()) {
                     ready = std::move(here->second);
                     entry.waiting.erase(here);
                   }
                   if (!entry.loaded && entry.waiting.empty()) lists_.erase(it);
                 }
                 for (Ready& fn : ready) fn(loaded);
                 arm_eviction_if_offline(user);
               });
}

std::optional<bool> ModBlocking::cached_blocks(const std::string& user, const BlockJid& address) {
  std::lock_guard lock(mu_);
  auto it = lists_.find(user);
  if (it == lists_.end() || !it->second.loaded) return std::nullopt;
  it->second.last_use = Clock::now();
  return it->second.list.blocks(address);
}

bool ModBlocking::is_cached(const std::string& user) {
  std::lock_guard lock(mu_);
  auto it = lists_.find(user);
  return it != lists_.end() && it->second.loaded;
}

void ModBlocking::forget_list(const std::string& user) {
  std::lock_guard lock(mu_);
  auto it = lists_.find(user);
  if (it == lists_.end()) return;
  if (it->second.waiting.empty() && it->second.pending_writes == 0) {
    lists_.erase(it);
  } else {
    // Loads in flight will fill it again from storage.
    it->second.loaded = false;
    it->second.list.clear();
  }
}

// One-shot timers, armed only while lists of users without sessions may be
// cached: a module whose cache holds only online users has no timer, so it
// can be reloaded (a reload waits for timers).
void ModBlocking::arm_eviction_if_offline(const std::string& user, parley_session_id closing) {
  for (const auto& session : host().user_sessions(user + "@" + domain_))
    if (session.id != closing) return;
  arm_eviction();
}

void ModBlocking::arm_eviction() {
  if (eviction_armed_.exchange(true)) return;
  try {
    host().start_timer(idle_, [this] { sweep(); });
  } catch (...) {
    eviction_armed_ = false;
    host().warn("could not start the cache eviction timer");
  }
}

void ModBlocking::sweep() {
  eviction_armed_ = false;
  std::vector<std::string> settled;  // loaded, nothing in flight
  {
    std::lock_guard lock(mu_);
    for (const auto& [user, entry] : lists_)
      if (entry.loaded && entry.waiting.empty() && entry.pending_writes == 0) settled.push_back(user);
  }
  // Outside the lock: user_sessions is a host call.
  std::vector<std::string> offline;
  for (const std::string& user : settled)
    if (host().user_sessions(user + "@" + domain_).empty()) offline.push_back(user);
  bool offline_left = false;
  {
    std::lock_guard lock(mu_);
    const bool over = lists_.size() > max_cached_;
    const auto limit = Clock::now() - idle_;
    for (const std::string& user : offline) {
      auto it = lists_.find(user);
      if (it == lists_.end()) continue;
      const Entry& entry = it->second;
      if (entry.loaded && entry.waiting.empty() && entry.pending_writes == 0 && (over || entry.last_use <= limit))
      {
        lists_.erase(it);
        host().counter_add("lists_evicted");
      } else {
        offline_left = true;
      }
    }
  }
  // Lists of online users wait for their last session to close (which arms
  // the timer again).
  if (offline_left) arm_eviction();
}

}  // namespace mod_blocking
