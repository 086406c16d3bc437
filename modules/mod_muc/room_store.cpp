// mod_muc: persistent rooms in the map store, in maps named so that no room
// JID can take them (0x1f is never in a JID or in XML):
//   "\x1frooms"      the index: room JID -> "" (every persistent room, read at start)
//   "r\x1f" + room   the room: "config" -> muc::encode_config, "secret", "subject",
//                    "subject_nick"; "a\x1f" + bare JID -> affiliation "\n" nick "\n"
//                    reason; "h\x1f" + seq (20 digits) -> ms "\n" message XML
// One map per room keeps a start at one read for the index and one per room,
// and a save one put (the changed fields and affiliations: atomic) and at most
// one removal. A room is written to its map before the index names it, and
// leaves the index before its map is cleared: a room half written (a put that
// failed) is not loaded as a room without its configuration.
#include "room_store.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "room.hpp"

namespace muc {

namespace {

using store_codec::kSep;
const std::string kIndex = std::string(1, kSep) + "rooms";
constexpr std::size_t kLoadWindow = 64;  // room reads in flight at start (the store's queue is bounded)

}  // namespace

using namespace store_codec;

// The rooms read at start: the index's JIDs, read kLoadWindow at a time.
struct RoomStore::Loader {
  std::vector<std::string> jids;
  std::size_t next = 0, in_flight = 0;
  std::vector<StoredRoom> rooms;
  std::function<void(std::vector<StoredRoom>)> done;
};

parley::Host::MapFn RoomStore::log_error(std::string what) {
  return [this, what](parley::Result<parley::MapResult, std::string> r) {
    if (!r) host_->error("cannot " + what + ": " + r.error());
  };
}

void RoomStore::start(parley::Host& host, const std::string& domain) {
  host_ = &host;
  saved_.init(host);
  // The rows of this service's rooms (JIDs ending in @domain): each room's
  // fields before its index entry (a move cut short leaves no room indexed
  // without its fields).
  auto where = [](const std::string& column) { return "substr(" + column + ", -length(?1) - 1) = '@' || ?1"; };
  const std::string rooms = where("jid");
  const std::string room_of = where("room");
  std::string select;
  for (const char* field : {"config", "secret", "subject", "subject_nick"})
    select += std::string("SELECT 'r' || char(31) || jid, '") + field + "', " + field + " FROM mod_muc_rooms WHERE " +
              rooms + " UNION ALL ";
  select += "SELECT char(31) || 'rooms', jid, '' FROM mod_muc_rooms WHERE " + rooms;
  // Each table goes once no service's rows are left in it.
  constexpr auto map = parley::KeyvalMove::Target::map;
  moves_.start(host, {parley::OldTables::Move{"mod_muc_rooms", select, "DELETE FROM mod_muc_rooms WHERE " + rooms, map,
                                              domain},
                      parley::OldTables::Move{"mod_muc_affiliations",
                                              "SELECT 'r' || char(31) || room, 'a' || char(31) || jid, affiliation || "
                                              "char(10) || nick || char(10) || reason FROM mod_muc_affiliations WHERE " +
                                                  room_of,
                                              "DELETE FROM mod_muc_affiliations WHERE " + room_of, map, domain},
                      parley::OldTables::Move{"mod_muc_history",
                                              "SELECT 'r' || char(31) || room, 'h' || char(31) || printf('%020d', seq), "
                                              "stamp || char(10) || xml FROM mod_muc_history WHERE " + room_of +
                                                  " ORDER BY room, seq",
                                              "DELETE FROM mod_muc_history WHERE " + room_of, map, domain}});
}

void RoomStore::load(std::function<void(std::vector<StoredRoom>)> done) {
  if (!moves_.ready()) return moves_.when_ready(*host_, [this, done] { load(done); });
  auto loader = std::make_shared<Loader>();
  loader->done = std::move(done);
  const bool sent = host_->map_get(kIndex, [this, loader](parley::Result<parley::MapResult, std::string> index) {
    if (!index) {
      host_->error("cannot read the rooms: " + index.error());
      return loader->done({});
    }
    for (std::size_t i = 0; i < index->size(); ++i) loader->jids.emplace_back(index->at(i).key);
    loader->rooms.reserve(loader->jids.size());
    load_rooms(loader);
  });
  if (!sent) {
    host_->error("cannot read the rooms: the map store refused the call");
    loader->done({});
  }
}

void RoomStore::load_rooms(std::shared_ptr<Loader> loader) {
  while (loader->in_flight < kLoadWindow && loader->next < loader->jids.size()) {
    const std::string jid = loader->jids[loader->next++];
    ++loader->in_flight;
    auto landed = [this, loader, jid](parley::Result<parley::MapResult, std::string> map) {
      --loader->in_flight;
      if (!map) {
        // The other rooms rather than none; this one is not served in this run.
        host_->error("cannot read the room " + jid + ": " + map.error());
      } else {
        StoredRoom s;
        s.jid = jid;
        for (std::size_t i = 0; i < map->size(); ++i) store_codec::read_item(s, map->at(i).key, map->at(i).value);
        std::sort(s.history.begin(), s.history.end(),
                  [](const StoredRoom::Message& a, const StoredRoom::Message& b) { return a.seq < b.seq; });
        loader->rooms.push_back(std::move(s));
      }
      load_rooms(loader);
    };
    if (!host_->map_get(room_map(jid), landed)) {  // (not through landed: no recursion per room)
      --loader->in_flight;
      host_->error("cannot read the room " + jid + ": the map store refused the call");
    }
  }
  if (loader->in_flight == 0 && loader->next >= loader->jids.size() && loader->done) {
    auto done = std::move(loader->done);
    loader->done = nullptr;
    done(std::move(loader->rooms));
  }
}

RoomStore::Saved* RoomStore::saved(const std::string& room_jid) {
  auto& here = saved_.here();
  auto it = here.find(room_jid);
  return it == here.end() ? nullptr : &it->second;
}

void RoomStore::installed(const StoredRoom& s, const std::vector<uint64_t>& kept) {
  Saved& saved = saved_.here()[s.jid];
  saved.indexed = true;
  saved.complete = true;
  saved.config = s.config;
  saved.secret = s.secret;
  saved.subject = s.subject;
  saved.subject_nick = s.subject_nick;
  saved.affiliations = s.stored_affiliations;
  saved.history.assign(kept.begin(), kept.end());
  std::vector<std::string> dropped;
  for (const StoredRoom::Message& m : s.history)
    if (std::find(kept.begin(), kept.end(), m.seq) == kept.end()) dropped.push_back(history_key(m.seq));
  if (!dropped.empty()) host_->map_remove(room_map(s.jid), dropped, log_error("trim the history of " + s.jid));
}

void RoomStore::save(const Room& room) {
  Saved& s = saved_.here()[room.jid()];
  const bool all = !s.complete;
  s.complete = true;
  std::vector<std::pair<std::string, std::string>> puts;
  auto field = [&](const char* key, std::string& held, std::string now) {
    if (!all && held == now) return;
    held = now;
    puts.emplace_back(key, std::move(now));
  };
  field("config", s.config, encode_config(room.config()));
  field("secret", s.secret, room.secret());
  field("subject", s.subject, room.subject());
  field("subject_nick", s.subject_nick, room.subject_nick());
  std::map<std::string, std::string> now;
  for (const auto& [jid, aff] : room.affiliations()) {
    auto r = room.reasons().find(jid);
    auto n = room.reserved().find(jid);
    now.emplace(affiliation_key(jid),
                affiliation_value(to_string(aff), n == room.reserved().end() ? std::string_view() : n->second,
                                  r == room.reasons().end() ? std::string_view() : r->second));
  }
  std::vector<std::string> removed;
  for (const auto& [key, value] : s.affiliations)
    if (!now.count(key)) removed.push_back(key);
  for (const std::string& key : s.stale)
    if (!now.count(key) && !s.affiliations.count(key)) removed.push_back(key);
  s.stale.clear();
  for (const auto& [key, value] : now) {
    auto was = s.affiliations.find(key);
    if (all || was == s.affiliations.end() || was->second != value) puts.emplace_back(key, value);
  }
  s.affiliations = std::move(now);

  const std::string jid = room.jid();
  if (!puts.empty()) {
    std::vector<parley::KeyvalItem> items;
    items.reserve(puts.size());
    for (const auto& [key, value] : puts) items.push_back(parley::KeyvalItem{key, value});
    host_->map_put(room_map(jid), items, 0, [this, jid](parley::Result<parley::MapResult, std::string> r) {
      if (r) return;
      host_->error("cannot save the room " + jid + ": " + r.error());
      if (Saved* s = saved(jid)) s->complete = false;  // the next save writes it all again
    });
  }
  if (!removed.empty())
    host_->map_remove(room_map(jid), removed, [this, jid, removed](parley::Result<parley::MapResult, std::string> r) {
      if (r) return;
      host_->error("cannot remove affiliations of the room " + jid + ": " + r.error());
      if (Saved* s = saved(jid)) s->stale.insert(removed.begin(), removed.end());
    });
  if (!s.indexed) {
    s.indexed = true;
    host_->map_put(kIndex, {parley::KeyvalItem{jid, ""}}, 0, [this, jid](parley::Result<parley::MapResult, std::string> r) {
      if (r) return;
      host_->error("cannot index the room " + jid + ": " + r.error());
      if (Saved* s = saved(jid)) s->indexed = false;
    });
  }
}

void RoomStore::forget(const std::string& room_jid) {
  // A room is forgotten whenever a temporary room is configured or destroyed:
  // one never saved has nothing stored (and a clear would leave its map's
  // version behind in the store, for every temporary room).
  auto& here = saved_.here();
  auto it = here.find(room_jid);
  if (it == here.end()) return;
  here.erase(it);
  host_->map_remove(kIndex, {room_jid}, log_error("remove the room " + room_jid));
  host_->map_clear(room_map(room_jid), log_error("remove the room " + room_jid));
}

void RoomStore::save_history(const std::string& room_jid, const HistoryEntry& entry, uint64_t keep_from) {
  Saved& s = saved_.here()[room_jid];
  host_->map_put(room_map(room_jid),
                 {parley::KeyvalItem{history_key(entry.seq), history_value(entry.mark.ms, entry.message.serialize())}},
                 0, log_error("save the history of " + room_jid));
  if (s.history.empty() || s.history.back() < entry.seq) s.history.push_back(entry.seq);
  std::vector<std::string> old;
  while (!s.history.empty() && s.history.front() < keep_from) {
    old.push_back(history_key(s.history.front()));
    s.history.pop_front();
  }
  if (!old.empty()) host_->map_remove(room_map(room_jid), old, log_error("trim the history of " + room_jid));
}

}  // namespace muc
