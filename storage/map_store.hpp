// storage/map_store.hpp - the map store (issue 11): per scope (a module instance), per
// user, keyed items with a version: a blocklist, a roster, an offline queue. The version
// of a user's map goes up with every change, atomically with it (a client that saw
// version N and asks again sees N or a later state, never a change without its version:
// XEP-0237 roster versioning builds on it). Items come back in the order their keys were
// first put (arrival order: an offline queue), a replaced item keeping its place.
//
// Backend-neutral. The keyval stores (sqlite_keyval_store, postgres_keyval_store) serve
// it too: one thread, one queue and one connection for both, so a module's keyval and
// map operations keep their order with each other as well.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "parley/result.hpp"
#include "storage/keyval_store.hpp"

namespace parley::storage {

using MapOwner = KeyvalOwner;
using MapItem = KeyvalItem;

struct MapSnapshot {
  uint64_t version = 0;         // 0: the user's map was never changed
  std::vector<MapItem> items;   // in the order their keys were first put
};

struct MapChange {
  uint64_t version = 0;  // the map's version after the change
  uint64_t changed = 0;  // items put or removed
};

class MapStore {
 public:
  using SnapshotDone = std::function<void(Result<MapSnapshot, KeyvalError>)>;
  using ChangeDone = std::function<void(Result<MapChange, KeyvalError>)>;

  virtual ~MapStore() = default;

  // Completions as KeyvalStore's: on a thread of the store, exactly once each.
  virtual void map_get(MapOwner owner, SnapshotDone done) = 0;
  // Puts every item or none, and bumps the version once. max_items > 0: refused with
  // policy-violation, storing nothing, if the map would hold more items than that.
  virtual void map_put(MapOwner owner, std::vector<MapItem> items, uint64_t max_items, ChangeDone done) = 0;
  // Removes the keys (those present; changed: how many), and bumps the version if any.
  virtual void map_remove(MapOwner owner, std::vector<std::string> keys, ChangeDone done) = 0;
  // Every item of the user's map; the version goes on (a client's old version never
  // matches a later map by accident).
  virtual void map_clear(MapOwner owner, ChangeDone done) = 0;
};

}  // namespace parley::storage
