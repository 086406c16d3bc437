// parley/sdk/keyval.hpp - the keyval store (module.h: keyval_get, keyval_put,
// keyval_remove, keyval_remove_user, 1.8 keyval_get_many): per user, per key, a value of bytes, on the
// server's storage backend. Host::keyval_* make the calls; this header has the types, and
// (included a second time by host.hpp after class Host, with PARLEY_SDK_KEYVAL_CALLS
// defined) their definitions.
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#ifndef PARLEY_SDK_KEYVAL_TYPES
#define PARLEY_SDK_KEYVAL_TYPES

#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "parley/module.h"
#include "parley/sdk/detail.hpp"

namespace parley {

// One item of a put (borrowed for the call).
struct KeyvalItem {
  std::string_view key;
  std::string_view value;
};

// The outcome of an operation, borrowed for the callback: copy what you keep.
class KeyvalResult {
 public:
  explicit KeyvalResult(const parley_keyval_result* r) noexcept : r_(r) {}
  bool found() const noexcept { return r_ && r_->found != 0; }        // get
  std::string_view value() const noexcept { return r_ ? detail::to_sv(r_->value) : std::string_view(); }  // get
  uint64_t count() const noexcept { return r_ ? r_->count : 0; }      // remove, remove_user

 private:
  const parley_keyval_result* r_;
};

// The outcome of a map operation (map_get, map_put, map_remove, map_clear), borrowed
// for the callback: copy what you keep.
class MapResult {
 public:
  explicit MapResult(const parley_map_result* r) noexcept : r_(r) {}
  uint64_t version() const noexcept { return r_ ? r_->version : 0; }  // after the change; 0: never changed
  std::size_t size() const noexcept { return r_ ? r_->count : 0; }     // map_get: the items
  KeyvalItem at(std::size_t i) const noexcept {
    return KeyvalItem{detail::to_sv(r_->items[i].key), detail::to_sv(r_->items[i].value)};
  }
  uint64_t changed() const noexcept { return r_ ? r_->changed : 0; }  // items put or removed

 private:
  const parley_map_result* r_;
};

}  // namespace parley

#endif  // PARLEY_SDK_KEYVAL_TYPES

#if defined(PARLEY_SDK_KEYVAL_CALLS) && !defined(PARLEY_SDK_KEYVAL_CALLS_DONE)
#define PARLEY_SDK_KEYVAL_CALLS_DONE

namespace parley {

inline uint64_t Host::keyval_keep(KeyvalFn done) const {
  auto p = std::make_unique<detail::Pending>(detail::PendingKind::store);
  p->on_store = [done = std::move(done)](const void* result, std::string_view error) {
    if (!done) return;
    if (!error.empty()) done(unexpected(std::string(error)));
    else done(KeyvalResult(static_cast<const parley_keyval_result*>(result)));
  };
  return keep(std::move(p));
}

inline bool Host::keyval_get(std::string_view user, std::string_view key, KeyvalFn done) const {
  const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(keyval_remove_user));
  uint64_t k = keyval_keep(std::move(done));
  if (api->keyval_get(m_, detail::to_c(user), detail::to_c(key), &Host::on_keyval, detail::key_arg(k)) == 1)
    return true;
  unkeep(k, detail::PendingKind::store);
  return false;
}

inline bool Host::keyval_put(std::string_view user, const std::vector<KeyvalItem>& items, uint64_t max_user_bytes,
                             uint32_t flags, KeyvalFn done) const {
  const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(keyval_remove_user));
  std::vector<parley_keyval_item> c;
  c.reserve(items.size());
  for (const KeyvalItem& item : items) c.push_back(parley_keyval_item{detail::to_c(item.key), detail::to_c(item.value)});
  uint64_t k = keyval_keep(std::move(done));
  if (api->keyval_put(m_, detail::to_c(user), c.data(), c.size(), max_user_bytes, flags, &Host::on_keyval,
                      detail::key_arg(k)) == 1)
    return true;
  unkeep(k, detail::PendingKind::store);
  return false;
}

inline bool Host::keyval_put(std::string_view user, std::string_view key, std::string_view value,
                             KeyvalFn done) const {
  return keyval_put(user, std::vector<KeyvalItem>{KeyvalItem{key, value}}, 0, 0, std::move(done));
}

inline bool Host::keyval_remove(std::string_view user, std::string_view key, KeyvalFn done) const {
  const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(keyval_remove_user));
  uint64_t k = keyval_keep(std::move(done));
  if (api->keyval_remove(m_, detail::to_c(user), detail::to_c(key), &Host::on_keyval, detail::key_arg(k)) == 1)
    return true;
  unkeep(k, detail::PendingKind::store);
  return false;
}

inline bool Host::keyval_remove_user(std::string_view user, KeyvalFn done) const {
  const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(keyval_remove_user));
  uint64_t k = keyval_keep(std::move(done));
  if (api->keyval_remove_user(m_, detail::to_c(user), &Host::on_keyval, detail::key_arg(k)) == 1) return true;
  unkeep(k, detail::PendingKind::store);
  return false;
}

inline uint64_t Host::map_keep(MapFn done) const {
  auto p = std::make_unique<detail::Pending>(detail::PendingKind::store);
  p->on_store = [done = std::move(done)](const void* result, std::string_view error) {
    if (!done) return;
    if (!error.empty()) done(unexpected(std::string(error)));
    else done(MapResult(static_cast<const parley_map_result*>(result)));
  };
  return keep(std::move(p));
}

inline bool Host::map_get(std::string_view user, MapFn done) const {
  const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(map_clear));
  uint64_t k = map_keep(std::move(done));
  if (api->map_get(m_, detail::to_c(user), &Host::on_map, detail::key_arg(k)) == 1) return true;
  unkeep(k, detail::PendingKind::store);
  return false;
}

inline bool Host::map_put(std::string_view user, const std::vector<KeyvalItem>& items, uint64_t max_items,
                          MapFn done) const {
  const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(map_clear));
  std::vector<parley_keyval_item> c;
  c.reserve(items.size());
  for (const KeyvalItem& item : items) c.push_back(parley_keyval_item{detail::to_c(item.key), detail::to_c(item.value)});
  uint64_t k = map_keep(std::move(done));
  if (api->map_put(m_, detail::to_c(user), c.data(), c.size(), max_items, &Host::on_map, detail::key_arg(k)) == 1)
    return true;
  unkeep(k, detail::PendingKind::store);
  return false;
}

inline bool Host::map_remove(std::string_view user, const std::vector<std::string>& keys, MapFn done) const {
  const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(map_clear));
  std::vector<parley_str> c;
  c.reserve(keys.size());
  for (const std::string& key : keys) c.push_back(detail::to_c(key));
  uint64_t k = map_keep(std::move(done));
  if (api->map_remove(m_, detail::to_c(user), c.data(), c.size(), &Host::on_map, detail::key_arg(k)) == 1)
    return true;
  unkeep(k, detail::PendingKind::store);
  return false;
}

inline bool Host::map_clear(std::string_view user, MapFn done) const {
  const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(map_clear));
  uint64_t k = map_keep(std::move(done));
  if (api->map_clear(m_, detail::to_c(user), &Host::on_map, detail::key_arg(k)) == 1) return true;
  unkeep(k, detail::PendingKind::store);
  return false;
}

// ABI 1.8: one key of many users, through the map completion (items keyed by user).
inline bool Host::keyval_get_many(const std::vector<std::string>& users, std::string_view key, MapFn done) const {
  const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(keyval_get_many));
  std::vector<parley_str> c;
  c.reserve(users.size());
  for (const std::string& user : users) c.push_back(detail::to_c(user));
  uint64_t k = map_keep(std::move(done));
  if (api->keyval_get_many(m_, c.data(), c.size(), detail::to_c(key), &Host::on_map, detail::key_arg(k)) == 1)
    return true;
  unkeep(k, detail::PendingKind::store);
  return false;
}

inline void Host::on_map(void*, void* arg, const parley_map_result* result, parley_str error) noexcept {
  std::unique_ptr<detail::Pending> p = take(arg, detail::PendingKind::store);
  if (!p || !p->on_store || !p->owner) return;
  try {
    p->on_store(result, detail::to_sv(error));
  } catch (...) {
    detail::log_exception(*p->owner, "map callback", std::current_exception());
  }
}

inline void Host::on_keyval(void*, void* arg, const parley_keyval_result* result, parley_str error) noexcept {
  std::unique_ptr<detail::Pending> p = take(arg, detail::PendingKind::store);
  if (!p || !p->on_store || !p->owner) return;  // its Host is gone, or it ran already
  try {
    p->on_store(result, detail::to_sv(error));
  } catch (...) {
    detail::log_exception(*p->owner, "keyval callback", std::current_exception());
  }
}

// Runs fn on the calling loop once is_ready() holds, looking again every 5 ms: the
// start-up moves of old tables (KeyvalMove, OldTables) finish on loop 0 while work on
// any loop may wait for them; only start-up work waits, never the stanza path.
template <class Ready, class F>
void run_when(Host& host, Ready is_ready, F&& fn) {
  if (is_ready()) return fn();
  host.start_timer(std::chrono::milliseconds(5), [&host, is_ready, fn = std::forward<F>(fn)]() mutable {
    run_when(host, is_ready, std::move(fn));
  });
}

// Moving a module's rows from its old SQLite table (storage_query) into the keyval store
// (or, with Target::map, the map store), once, at its first start on a server that has
// them: start() reads the old rows (`select` must return user, key, value, in the order
// wanted), puts each (into the keyval store with PARLEY_KEYVAL_IF_ABSENT: a value written
// meanwhile is never overwritten by an older one; into a map as map_put does, which suits
// maps of sets such as a blocklist), a bounded number at a time, then runs `clear`
// (deleting the rows moved) unless a put failed (they are then moved again at the next
// start: a move cut by a stop is simply done again). Until it is done, work that needs the store waits: when_ready(fn) runs fn at
// once once ready() (the common case: a relaxed load), else on a timer of the calling
// loop a few milliseconds later, again until ready. ready() is set on loop 0 and read on
// every loop: an atomic, no lock.
class KeyvalMove {
 public:
  static constexpr std::size_t window = 64;  // puts in flight at most
  enum class Target { keyval, map };

  explicit KeyvalMove(Target target = Target::keyval) : target_(target) {}

  // From the module's start(): params are borrowed (copied during the call).
  void start(Host& host, std::string_view select, std::initializer_list<Value> params, std::string clear,
             std::vector<std::string> clear_params) {
    host_ = &host;
    clear_ = std::move(clear);
    clear_params_ = std::move(clear_params);
    host.storage_call(select, params.begin(), params.size(), false, [this](Result<Rows, std::string> rows) {
      if (!rows) {
        host_->error("reading the rows to move into the keyval store failed: " + rows.error());
        return finish(false);
      }
      rows_.reserve(rows->size());
      for (std::size_t r = 0; r < rows->size(); ++r)
        rows_.push_back(Row{std::string(rows->at(r, 0).bytes().value_or("")),
                            std::string(rows->at(r, 1).bytes().value_or("")),
                            std::string(rows->at(r, 2).bytes().value_or(""))});
      if (!rows_.empty()) host_->info("moving " + std::to_string(rows_.size()) + " rows into the keyval store");
      next();
    });
  }

  bool ready() const noexcept { return ready_.load(std::memory_order_acquire); }
  std::size_t moved() const noexcept { return moved_; }

  template <class F>
  void when_ready(Host& host, F&& fn) {
    run_when(host, [this] { return ready(); }, std::forward<F>(fn));
  }

 private:
  struct Row {
    std::string user, key, value;
  };

  void next() {
    while (in_flight_ < window && next_ < rows_.size()) {
      const Row& row = rows_[next_++];
      ++in_flight_;
      auto landed = [this](bool ok) {
        --in_flight_;
        if (!ok) failed_ = true;
        else ++moved_;
        next();
      };
      const std::vector<KeyvalItem> item{KeyvalItem{row.key, row.value}};
      bool sent = target_ == Target::map
                      ? host_->map_put(row.user, item, 0, [landed](Result<MapResult, std::string> r) { landed(r.has_value()); })
                      : host_->keyval_put(row.user, item, 0, PARLEY_KEYVAL_IF_ABSENT,
                                          [landed](Result<KeyvalResult, std::string> r) { landed(r.has_value()); });
      if (!sent) {
        --in_flight_;
        failed_ = true;
      }
    }
    if (in_flight_ == 0 && next_ >= rows_.size()) finish(!failed_);
  }

  void finish(bool ok) {
    rows_.clear();
    rows_.shrink_to_fit();
    if (ok && moved_ > 0) {
      std::vector<Value> params(clear_params_.begin(), clear_params_.end());
      host_->storage_call(clear_, params.data(), params.size(), true, [this](Result<Rows, std::string> rows) {
        if (!rows) host_->error("clearing the rows moved into the keyval store failed: " + rows.error());
      });
    } else if (!ok) {
      host_->error("moving rows into the keyval store failed: they stay where they were and are moved at the next start");
    }
    ready_.store(true, std::memory_order_release);
  }

  Target target_;
  Host* host_ = nullptr;
  std::string clear_;
  std::vector<std::string> clear_params_;
  std::vector<Row> rows_;  // loop 0's (the completions of start()'s calls run there)
  std::size_t next_ = 0;
  std::size_t in_flight_ = 0;
  std::size_t moved_ = 0;
  bool failed_ = false;
  std::atomic<bool> ready_{false};
};

}  // namespace parley

#endif  // PARLEY_SDK_KEYVAL_CALLS
