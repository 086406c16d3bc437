// The per-loop caches of blocklists the hooks read (see mod_blocking.hpp,
// "Threads"): each loop loads, changes and evicts its own copies; a change
// made by a user's owning loop reaches the others by posts.
#include <memory>
#include <utility>

#include "mod_blocking.hpp"

namespace mod_blocking {

using Clock = std::chrono::steady_clock;

uint32_t ModBlocking::owner_of(const std::string& user) const {
  return static_cast<uint32_t>(std::hash<std::string>{}(user) % loops_.size());
}

void ModBlocking::with_list(const std::string& user, Ready fn) {
  Entry& entry = here().lists[user];
  entry.last_use = Clock::now();
  if (entry.loaded) return fn(true);
  entry.loading_state().waiting.push_back(std::move(fn));
  if (!entry.loading) start_load(user);
}

void ModBlocking::start_load(const std::string& user) {
  Entry& entry = here().lists[user];
  entry.loading = true;
  entry.reload = false;
  if (entry.load) entry.load->missed.clear();
  // After the move of the old table's rows (at the first start on a server that has
  // them): a list loaded before would miss them.
  move_.when_ready(host(), [this, user] { load(user); });
}

void ModBlocking::load(const std::string& user) {
  bool sent = host().map_get(user, [this, user](parley::Result<parley::MapResult, std::string> rows) {
    // Storage completions come back on the loop that asked: this entry's.
    auto it = here().lists.find(user);
    if (it == here().lists.end()) return;
    Entry& entry = it->second;
    entry.loading = false;
    if (entry.reload) {  // forgotten meanwhile: these rows may predate that
      start_load(user);
      return;
    }
    if (rows) {
      std::vector<std::string> items;
      items.reserve(rows->size());
      for (std::size_t i = 0; i < rows->size(); ++i) items.emplace_back(rows->at(i).key);
      entry.list.assign(items);
      // Loaded first: apply() replays a change only on a loaded copy.
      entry.loaded = true;
      if (entry.load)
        for (const Change& change : entry.load->missed) apply(user, change);
      filter_sessions(user);
      host().counter_add("lists_loaded");
    } else {
      host().error("loading the blocklist of " + user + " failed: " + rows.error());
    }
    const bool loaded = entry.loaded;
    std::vector<Ready> ready = entry.take_waiting();
    if (!loaded && entry.pending_writes == 0) here().lists.erase(it);
    for (Ready& fn : ready) fn(loaded);
    arm_eviction_if_offline(user);
  });
  if (!sent) {
    // Refused (no map store): as a failed load.
    host().error("loading the blocklist of " + user + " failed: the map store refused");
    auto it = here().lists.find(user);
    if (it == here().lists.end()) return;
    it->second.loading = false;
    std::vector<Ready> ready = it->second.take_waiting();
    if (it->second.pending_writes == 0) here().lists.erase(it);
    for (Ready& fn : ready) fn(false);
  }
}

bool ModBlocking::blocks_nothing(std::string_view user) {
  auto& lists = here().lists;
  auto it = lists.find(user);
  if (it == lists.end() || !it->second.loaded || it->second.list.size() != 0) return false;
  it->second.last_use = Clock::now();
  return true;
}

std::optional<bool> ModBlocking::cached_blocks(const std::string& user, const parley::Jid& address) {
  auto& lists = here().lists;
  auto it = lists.find(user);
  if (it == lists.end() || !it->second.loaded) return std::nullopt;
  it->second.last_use = Clock::now();
  return it->second.list.blocks(address);
}

void ModBlocking::filter_sessions(const std::string& user) {
  auto it = here().lists.find(user);
  if (it == here().lists.end() || !it->second.loaded || it->second.list.size() == 0) return;
  // Sessions on other loops refuse (their loops run this for their own copies).
  for (const auto& session : host().user_sessions(user + "@" + domain_)) host().filter_out(session.id, true);
}

bool ModBlocking::is_cached(const std::string& user) {
  auto& lists = here().lists;
  auto it = lists.find(user);
  return it != lists.end() && it->second.loaded;
}

void ModBlocking::apply(const std::string& user, const Change& change) {
  auto& lists = here().lists;
  auto it = lists.find(user);
  if (it == lists.end()) return;  // not cached here: a later load reads storage, which has it
  Entry& entry = it->second;
  if (change.kind == Change::Kind::forget) {
    if (entry.loading) {
      entry.reload = true;  // the answer in flight may be older than what was forgotten
    } else if (entry.nothing_waits() && entry.pending_writes == 0) {
      lists.erase(it);
    } else {
      entry.loaded = false;
      entry.list.clear();
    }
    return;
  }
  if (entry.loading && !entry.loaded) {
    entry.loading_state().missed.push_back(change);
    return;
  }
  if (!entry.loaded) return;
  switch (change.kind) {
    case Change::Kind::add:
      entry.list.add(change.items);
      filter_sessions(user);
      break;
    case Change::Kind::remove: entry.list.remove(change.items); break;
    case Change::Kind::clear: entry.list.clear(); break;
    case Change::Kind::forget: break;
  }
}

void ModBlocking::publish(const std::string& user, Change change, std::function<void()> done) {
  const uint32_t self = static_cast<uint32_t>(parley::current_loop(host()));
  struct Acks {
    uint32_t left;
    std::function<void()> done;
  };
  // Touched only on this loop: the acknowledgements are posted back here.
  auto acks = std::make_shared<Acks>(Acks{static_cast<uint32_t>(loops_.size()), std::move(done)});
  auto ack = [acks] {
    if (--acks->left == 0 && acks->done) acks->done();
  };
  auto shared = std::make_shared<const Change>(std::move(change));
  for (uint32_t loop = 0; loop < loops_.size(); ++loop) {
    if (loop == self) continue;
    const bool posted = parley::post(host(), loop, [this, user, shared, self, ack] {
      apply(user, *shared);
      if (!parley::post(host(), self, ack)) ack();  // cannot happen while the module runs
    });
    if (!posted) ack();
  }
  ack();  // this loop's own share: it applied the change already
}

void ModBlocking::forget_everywhere(const std::string& user) {
  const int32_t self = parley::current_loop(host());
  for (uint32_t loop = 0; loop < loops_.size(); ++loop) {
    if (static_cast<int32_t>(loop) == self) {
      apply(user, Change{Change::Kind::forget, {}});
      continue;
    }
    parley::post(host(), loop, [this, user] { apply(user, Change{Change::Kind::forget, {}}); });
  }
}

// One-shot timers, armed only while lists of users without sessions may be
// cached on this loop: a module whose caches hold only online users has no
// timer, so it can be reloaded (a reload waits for timers).
void ModBlocking::arm_eviction_if_offline(const std::string& user, parley_session_id closing) {
  for (const auto& session : host().user_sessions(user + "@" + domain_))
    if (session.id != closing) return;
  arm_eviction();
}

void ModBlocking::arm_eviction() {
  LoopState& state = here();
  if (state.eviction_armed) return;
  state.eviction_armed = true;
  try {
    host().start_timer(idle_, [this] { sweep(); });
  } catch (...) {  // the module is stopping
    state.eviction_armed = false;
    host().warn("could not start the cache eviction timer");
  }
}

// This loop's copies of lists of users with no session left go once idle
// (or at once past max_cached_lists).
void ModBlocking::sweep() {
  LoopState& state = here();
  state.eviction_armed = false;
  const bool over = state.lists.size() > max_cached_;
  const auto limit = Clock::now() - idle_;
  bool offline_left = false;
  for (auto it = state.lists.begin(); it != state.lists.end();) {
    const Entry& entry = it->second;
    const bool settled = entry.loaded && !entry.loading && entry.nothing_waits() && entry.pending_writes == 0;
    if (!settled || !host().user_sessions(it->first + "@" + domain_).empty()) {
      ++it;
      continue;
    }
    if (over || entry.last_use <= limit) {
      it = state.lists.erase(it);
      host().counter_add("lists_evicted");
    } else {
      offline_left = true;
      ++it;
    }
  }
  // Lists of online users wait for their last session to close (which arms
  // the timer again, on every loop).
  if (offline_left) arm_eviction();
}

}  // namespace mod_blocking
