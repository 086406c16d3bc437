// mod_muc's persistent rooms in the map store (issue 11's typed store, on the
// server's backend: SQLite or PostgreSQL), room_store.cpp says how they are
// laid out. Before the map store they were in the module's own SQLite tables
// (mod_muc_rooms, mod_muc_affiliations, mod_muc_history), which stay in SQLite
// whatever the backend: their rows are moved into the map store once, at the
// first start, and deleted from the tables.
//
// Threads: load() runs on loop 0 (its completions too); a room's writes are
// made on the room's loop, and what the store holds of each room (to write
// only what changed) is kept per loop: no lock.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "parley/module.hpp"
#include "parley/sdk/old_tables.hpp"
#include "room_store_codec.hpp"

namespace muc {

class Room;
struct HistoryEntry;

class RoomStore {
 public:
  // In start(): the map store's per-loop state, and the move of the old
  // tables' rows of service `domain` (rooms named ...@domain) started.
  void start(parley::Host& host, const std::string& domain);
  // On loop 0, once the old rows are moved: every stored room (none after a
  // read error, logged). `done` runs on loop 0.
  void load(std::function<void(std::vector<StoredRoom>)> done);

  // On the room's loop. A loaded room was installed, keeping the history
  // messages `kept` (seqs): the store's others (over a lowered history_size)
  // are removed.
  void installed(const StoredRoom& s, const std::vector<uint64_t>& kept);
  // The room's configuration, secret, subject and affiliations (with their
  // reasons and registered nicks): what changed since the last save is written.
  void save(const Room& room);
  // The room is no longer persistent, or destroyed: its items are removed (if
  // it has any: a room never saved, or loaded, costs no write).
  void forget(const std::string& room_jid);
  // One message of a persistent room's history, and those before `keep_from` removed.
  void save_history(const std::string& room_jid, const HistoryEntry& entry, uint64_t keep_from);

 private:
  // What the store holds of one persistent room (as far as this loop asked:
  // a write that failed makes the next save write everything again).
  struct Saved {
    bool indexed = false;  // in the rooms' index
    bool complete = false;  // the fields and affiliations below are what the store holds
    std::string config, secret, subject, subject_nick;
    std::map<std::string, std::string> affiliations;  // key -> value
    std::set<std::string> stale;                      // keys whose removal failed
    std::deque<uint64_t> history;                     // seqs, oldest first
  };
  struct Loader;

  void load_rooms(std::shared_ptr<Loader> loader);
  Saved* saved(const std::string& room_jid);
  parley::Host::MapFn log_error(std::string what);

  parley::Host* host_ = nullptr;
  parley::PerLoop<std::unordered_map<std::string, Saved>> saved_;
  parley::OldTables moves_;
};

}  // namespace muc
