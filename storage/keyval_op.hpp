// storage/keyval_op.hpp - one queued operation of a keyval store (which serves the map
// store too), the same for every backend (sqlite_keyval_store, postgres_keyval_store),
// and its completion.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "storage/keyval_store.hpp"
#include "storage/map_store.hpp"

namespace parley::storage {

struct KeyvalOp {
  enum class Kind { get, put, remove, remove_user, map_get, map_put, map_remove, map_clear, list,
                    get_many } kind;
  KeyvalOwner owner;
  std::string key;                 // get, remove
  std::vector<KeyvalItem> items;   // put, map_put
  std::vector<std::string> keys;   // map_remove; get_many: the users (sorted, once each)
  uint64_t limit = 0;              // put: max_user_bytes; map_put: max_items
  KeyvalPut mode = KeyvalPut::replace;
  KeyvalStore::GetDone on_get;
  KeyvalStore::PutDone on_put;
  KeyvalStore::RemoveDone on_remove;
  MapStore::SnapshotDone on_map_get;
  MapStore::ChangeDone on_map_change;
  KeyvalStore::ListDone on_list;
  KeyvalStore::GetManyDone on_get_many;

  bool is_read() const {
    return kind == Kind::get || kind == Kind::map_get || kind == Kind::list || kind == Kind::get_many;
  }

  // The outcome of running it, kept until the batch commits.
  struct Outcome {
    std::optional<KeyvalError> error;
    std::optional<std::string> value;  // get
    uint64_t removed = 0;              // remove, remove_user
    MapSnapshot snapshot;              // map_get; list, get_many (its items)
    MapChange change;                  // map_put, map_remove, map_clear
  };

  // Calls the completion once (a completion that throws loses only itself).
  void complete(Outcome out) noexcept {
    try {
      switch (kind) {
        case Kind::get:
          if (!on_get) break;
          if (out.error) on_get(unexpected(std::move(*out.error)));
          else on_get(std::move(out.value));
          break;
        case Kind::put:
          if (!on_put) break;
          if (out.error) on_put(unexpected(std::move(*out.error)));
          else on_put({});
          break;
        case Kind::remove:
        case Kind::remove_user:
          if (!on_remove) break;
          if (out.error) on_remove(unexpected(std::move(*out.error)));
          else on_remove(out.removed);
          break;
        case Kind::list:
          if (!on_list) break;
          if (out.error) on_list(unexpected(std::move(*out.error)));
          else on_list(std::move(out.snapshot.items));
          break;
        case Kind::get_many:
          if (!on_get_many) break;
          if (out.error) on_get_many(unexpected(std::move(*out.error)));
          else on_get_many(std::move(out.snapshot.items));
          break;
        case Kind::map_get:
          if (!on_map_get) break;
          if (out.error) on_map_get(unexpected(std::move(*out.error)));
          else on_map_get(std::move(out.snapshot));
          break;
        case Kind::map_put:
        case Kind::map_remove:
        case Kind::map_clear:
          if (!on_map_change) break;
          if (out.error) on_map_change(unexpected(std::move(*out.error)));
          else on_map_change(out.change);
          break;
      }
    } catch (...) {
    }
  }
  void fail(KeyvalError error) noexcept {
    Outcome out;
    out.error = std::move(error);
    complete(std::move(out));
  }

  static KeyvalOp of(Kind kind, KeyvalOwner owner) {
    KeyvalOp op{kind, std::move(owner), {}, {}, {}, 0, KeyvalPut::replace, {}, {}, {}, {}, {}, {}, {}};
    return op;
  }
  static KeyvalOp make_get(KeyvalOwner owner, std::string key, KeyvalStore::GetDone done) {
    KeyvalOp op = of(Kind::get, std::move(owner));
    op.key = std::move(key);
    op.on_get = std::move(done);
    return op;
  }
  static KeyvalOp make_put(KeyvalOwner owner, std::vector<KeyvalItem> items, uint64_t max, KeyvalPut mode,
                           KeyvalStore::PutDone done) {
    KeyvalOp op = of(Kind::put, std::move(owner));
    op.items = std::move(items);
    op.limit = max;
    op.mode = mode;
    op.on_put = std::move(done);
    return op;
  }
  static KeyvalOp make_remove(KeyvalOwner owner, std::string key, KeyvalStore::RemoveDone done) {
    KeyvalOp op = of(Kind::remove, std::move(owner));
    op.key = std::move(key);
    op.on_remove = std::move(done);
    return op;
  }
  static KeyvalOp make_remove_user(KeyvalOwner owner, KeyvalStore::RemoveDone done) {
    KeyvalOp op = of(Kind::remove_user, std::move(owner));
    op.on_remove = std::move(done);
    return op;
  }
  static KeyvalOp make_list(KeyvalOwner owner, KeyvalStore::ListDone done) {
    KeyvalOp op = of(Kind::list, std::move(owner));
    op.on_list = std::move(done);
    return op;
  }
  // The users sorted and each once: a user given twice is read (and reported) once, and
  // the reads go along the primary key's order.
  static KeyvalOp make_get_many(std::string scope, std::vector<std::string> users, std::string key,
                                KeyvalStore::GetManyDone done) {
    KeyvalOp op = of(Kind::get_many, KeyvalOwner{std::move(scope), {}});
    std::sort(users.begin(), users.end());
    users.erase(std::unique(users.begin(), users.end()), users.end());
    op.keys = std::move(users);
    op.key = std::move(key);
    op.on_get_many = std::move(done);
    return op;
  }
  static KeyvalOp make_map_get(MapOwner owner, MapStore::SnapshotDone done) {
    KeyvalOp op = of(Kind::map_get, std::move(owner));
    op.on_map_get = std::move(done);
    return op;
  }
  static KeyvalOp make_map_put(MapOwner owner, std::vector<MapItem> items, uint64_t max_items,
                               MapStore::ChangeDone done) {
    KeyvalOp op = of(Kind::map_put, std::move(owner));
    op.items = std::move(items);
    op.limit = max_items;
    op.on_map_change = std::move(done);
    return op;
  }
  static KeyvalOp make_map_remove(MapOwner owner, std::vector<std::string> keys, MapStore::ChangeDone done) {
    KeyvalOp op = of(Kind::map_remove, std::move(owner));
    op.keys = std::move(keys);
    op.on_map_change = std::move(done);
    return op;
  }
  static KeyvalOp make_map_clear(MapOwner owner, MapStore::ChangeDone done) {
    KeyvalOp op = of(Kind::map_clear, std::move(owner));
    op.on_map_change = std::move(done);
    return op;
  }
};

inline KeyvalError keyval_over_quota(uint64_t max) {
  return KeyvalError{"policy-violation", "the user's values would exceed " + std::to_string(max) + " bytes"};
}
inline KeyvalError map_over_limit(uint64_t max) {
  return KeyvalError{"policy-violation", "the map would hold more than " + std::to_string(max) + " items"};
}

}  // namespace parley::storage
