#include "core/modules/host_api_stores.hpp"

#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/modules/module_instance.hpp"
#include "core/server/server_context.hpp"
#include "storage/keyval_store.hpp"
#include "storage/map_store.hpp"

namespace parley::host_stores {

namespace {

std::string str(parley_str s) { return s.ptr ? std::string(s.ptr, s.len) : std::string(); }

// Each module instance has keys of its own: the scope is the module and its host.
const std::string& scope_of(parley_module* m) { return m->store_scope; }

storage::KeyvalOwner owner_of(parley_module* m, parley_str user) { return storage::KeyvalOwner{scope_of(m), str(user)}; }

// The loop the completion runs on: the calling one, or (a call from start(), off the
// loops) loop 0, as for storage_query.
LoopContext* completion_loop(parley_module* m) {
  if (LoopContext* current = LoopContext::current()) return current;
  if (m->ctx->loops.empty()) return nullptr;
  return m->ctx->loops.front().get();
}

// What the module's completion gets, kept until it runs on the loop.
struct Outcome {
  std::string error;  // a condition; empty: success
  bool found = false;
  std::string value;
  uint64_t count = 0;
};

// Runs the module's completion on `loop` through the instance's gate (not once it was
// stopped: its state is being or has been freed; a call made in start() that completes
// before start() returned comes back a turn later), and ends the in-flight count.
void complete(parley_module* m, LoopContext* loop, parley_keyval_fn done, void* arg, std::shared_ptr<Outcome> out) {
  loop->loop.post([m, loop, done, arg, out = std::move(out)]() mutable {
    if (m->gate.starting()) {
      complete(m, loop, done, arg, std::move(out));
      return;
    }
    if (done != nullptr) {
      m->gate.run([&] {
        parley_keyval_result result{sizeof(parley_keyval_result), out->found ? 1 : 0,
                                    parley_str{out->value.data(), out->value.size()}, out->count};
        try {
          done(m->state, arg, out->error.empty() ? &result : nullptr, parley_str{out->error.data(), out->error.size()});
        } catch (...) {
          spdlog::error("module {}: exception escaped a keyval callback", m->library->name);
        }
      });
    }
    m->storage_in_flight.fetch_sub(1);
  });
}

// The common checks; the loop to complete on, or null (refused).
LoopContext* admit(parley_module* m, parley_str user) {
  if (m->ctx->keyval == nullptr || user.len == 0) return nullptr;
  LoopContext* loop = completion_loop(m);
  if (loop == nullptr) return nullptr;
  m->storage_in_flight.fetch_add(1);
  return loop;
}

template <class T>
std::shared_ptr<Outcome> failed(const Result<T, storage::KeyvalError>& r) {
  auto out = std::make_shared<Outcome>();
  out->error = r.error().condition;
  if (out->error.empty()) out->error = "internal-server-error";
  return out;
}

}  // namespace

int keyval_get(parley_module* m, parley_str user, parley_str key, parley_keyval_fn done, void* arg) {
  LoopContext* loop = admit(m, user);
  if (loop == nullptr) return 0;
  m->ctx->keyval->get(owner_of(m, user), str(key),
                      [m, loop, done, arg](Result<std::optional<std::string>, storage::KeyvalError> r) {
                        if (!r) return complete(m, loop, done, arg, failed(r));
                        auto out = std::make_shared<Outcome>();
                        if (*r) {
                          out->found = true;
                          out->value = std::move(**r);
                        }
                        complete(m, loop, done, arg, std::move(out));
                      });
  return 1;
}

int keyval_put(parley_module* m, parley_str user, const parley_keyval_item* items, size_t count,
               uint64_t max_user_bytes, uint32_t flags, parley_keyval_fn done, void* arg) {
  if (items == nullptr && count > 0) return 0;
  LoopContext* loop = admit(m, user);
  if (loop == nullptr) return 0;
  std::vector<storage::KeyvalItem> copied;
  copied.reserve(count);
  for (size_t i = 0; i < count; ++i) copied.push_back(storage::KeyvalItem{str(items[i].key), str(items[i].value)});
  auto mode = (flags & PARLEY_KEYVAL_IF_ABSENT) != 0 ? storage::KeyvalPut::if_absent : storage::KeyvalPut::replace;
  m->ctx->keyval->put(owner_of(m, user), std::move(copied), max_user_bytes, mode,
                      [m, loop, done, arg](Result<void, storage::KeyvalError> r) {
                        if (!r) return complete(m, loop, done, arg, failed(r));
                        complete(m, loop, done, arg, std::make_shared<Outcome>());
                      });
  return 1;
}

namespace {

storage::KeyvalStore::RemoveDone removed(parley_module* m, LoopContext* loop, parley_keyval_fn done, void* arg) {
  return [m, loop, done, arg](Result<uint64_t, storage::KeyvalError> r) {
    if (!r) return complete(m, loop, done, arg, failed(r));
    auto out = std::make_shared<Outcome>();
    out->count = *r;
    complete(m, loop, done, arg, std::move(out));
  };
}

}  // namespace

int keyval_remove(parley_module* m, parley_str user, parley_str key, parley_keyval_fn done, void* arg) {
  LoopContext* loop = admit(m, user);
  if (loop == nullptr) return 0;
  m->ctx->keyval->remove(owner_of(m, user), str(key), removed(m, loop, done, arg));
  return 1;
}

int keyval_remove_user(parley_module* m, parley_str user, parley_keyval_fn done, void* arg) {
  LoopContext* loop = admit(m, user);
  if (loop == nullptr) return 0;
  m->ctx->keyval->remove_user(owner_of(m, user), removed(m, loop, done, arg));
  return 1;
}

namespace {

// A map operation's outcome, kept until its completion runs on the loop.
struct MapOutcome {
  std::string error;
  storage::MapSnapshot snapshot;
  uint64_t changed = 0;
};

void complete_map(parley_module* m, LoopContext* loop, parley_map_fn done, void* arg, std::shared_ptr<MapOutcome> out) {
  loop->loop.post([m, loop, done, arg, out = std::move(out)]() mutable {
    if (m->gate.starting()) {
      complete_map(m, loop, done, arg, std::move(out));
      return;
    }
    if (done != nullptr) {
      m->gate.run([&] {
        std::vector<parley_keyval_item> items;
        items.reserve(out->snapshot.items.size());
        for (const auto& item : out->snapshot.items)
          items.push_back(parley_keyval_item{parley_str{item.key.data(), item.key.size()},
                                             parley_str{item.value.data(), item.value.size()}});
        parley_map_result result{sizeof(parley_map_result), out->snapshot.version, items.data(), items.size(),
                                 out->changed};
        try {
          done(m->state, arg, out->error.empty() ? &result : nullptr, parley_str{out->error.data(), out->error.size()});
        } catch (...) {
          spdlog::error("module {}: exception escaped a map callback", m->library->name);
        }
      });
    }
    m->storage_in_flight.fetch_sub(1);
  });
}

LoopContext* admit_map(parley_module* m, parley_str user) {
  if (m->ctx->map == nullptr || user.len == 0) return nullptr;
  LoopContext* loop = completion_loop(m);
  if (loop == nullptr) return nullptr;
  m->storage_in_flight.fetch_add(1);
  return loop;
}

storage::MapStore::ChangeDone changed(parley_module* m, LoopContext* loop, parley_map_fn done, void* arg) {
  return [m, loop, done, arg](Result<storage::MapChange, storage::KeyvalError> r) {
    auto out = std::make_shared<MapOutcome>();
    if (!r) {
      out->error = r.error().condition.empty() ? "internal-server-error" : r.error().condition;
    } else {
      out->snapshot.version = r->version;
      out->changed = r->changed;
    }
    complete_map(m, loop, done, arg, std::move(out));
  };
}

}  // namespace

int map_get(parley_module* m, parley_str user, parley_map_fn done, void* arg) {
  LoopContext* loop = admit_map(m, user);
  if (loop == nullptr) return 0;
  m->ctx->map->map_get(owner_of(m, user),
                       [m, loop, done, arg](Result<storage::MapSnapshot, storage::KeyvalError> r) {
                         auto out = std::make_shared<MapOutcome>();
                         if (!r) out->error = r.error().condition.empty() ? "internal-server-error" : r.error().condition;
                         else out->snapshot = std::move(*r);
                         complete_map(m, loop, done, arg, std::move(out));
                       });
  return 1;
}

int map_put(parley_module* m, parley_str user, const parley_keyval_item* items, size_t count, uint64_t max_items,
            parley_map_fn done, void* arg) {
  if (items == nullptr && count > 0) return 0;
  LoopContext* loop = admit_map(m, user);
  if (loop == nullptr) return 0;
  std::vector<storage::MapItem> copied;
  copied.reserve(count);
  for (size_t i = 0; i < count; ++i) copied.push_back(storage::MapItem{str(items[i].key), str(items[i].value)});
  m->ctx->map->map_put(owner_of(m, user), std::move(copied), max_items, changed(m, loop, done, arg));
  return 1;
}

int map_remove(parley_module* m, parley_str user, const parley_str* keys, size_t count, parley_map_fn done,
               void* arg) {
  if (keys == nullptr && count > 0) return 0;
  LoopContext* loop = admit_map(m, user);
  if (loop == nullptr) return 0;
  std::vector<std::string> copied;
  copied.reserve(count);
  for (size_t i = 0; i < count; ++i) copied.push_back(str(keys[i]));
  m->ctx->map->map_remove(owner_of(m, user), std::move(copied), changed(m, loop, done, arg));
  return 1;
}

int map_clear(parley_module* m, parley_str user, parley_map_fn done, void* arg) {
  LoopContext* loop = admit_map(m, user);
  if (loop == nullptr) return 0;
  m->ctx->map->map_clear(owner_of(m, user), changed(m, loop, done, arg));
  return 1;
}

namespace {

// Keyval items (a user's keys, or many users' values of one key) answered through the
// map completion (version 0).
auto listed(parley_module* m, LoopContext* loop, parley_map_fn done, void* arg) {
  return [m, loop, done, arg](Result<std::vector<storage::KeyvalItem>, storage::KeyvalError> r) {
    auto out = std::make_shared<MapOutcome>();
    if (!r) out->error = r.error().condition.empty() ? "internal-server-error" : r.error().condition;
    else out->snapshot.items = std::move(*r);
    complete_map(m, loop, done, arg, std::move(out));
  };
}

}  // namespace

// issue 11 (XEP-0227 export): every key of a user.
int keyval_list(parley_module* m, parley_str user, parley_map_fn done, void* arg) {
  LoopContext* loop = admit(m, user);
  if (loop == nullptr) return 0;
  m->ctx->keyval->list(owner_of(m, user), listed(m, loop, done, arg));
  return 1;
}

// ABI 1.8: one key of many users, as one operation; the items are (user, value).
int keyval_get_many(parley_module* m, const parley_str* users, size_t count, parley_str key, parley_map_fn done,
                    void* arg) {
  if (m->ctx->keyval == nullptr || (users == nullptr && count > 0)) return 0;
  std::vector<std::string> copied;
  copied.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    if (users[i].len == 0 || users[i].ptr == nullptr) return 0;  // as keyval_get: no empty user
    copied.push_back(str(users[i]));
  }
  LoopContext* loop = completion_loop(m);
  if (loop == nullptr) return 0;
  m->storage_in_flight.fetch_add(1);
  m->ctx->keyval->get_many(scope_of(m), std::move(copied), str(key), listed(m, loop, done, arg));
  return 1;
}

}  // namespace parley::host_stores
