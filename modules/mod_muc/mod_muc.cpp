// mod_muc: multi-user chat (XEP-0045) on a service domain (option `host`,
// default conference.HOST), with XEP-0421 occupant ids and XEP-0410 self-ping.
//
// Threads: each room lives on one worker loop, the one its JID hashes to, and
// its state is touched only there (no lock). A stanza for a room that the
// router handed to another loop is copied and posted to the room's loop. The
// service's own disco#items walks the loops one after the other (a post
// chain), each listing its public rooms.
//
// Persistence: persistent rooms (their configuration, subject, occupant-id
// secret, affiliations with registered nicks, history) are kept in the map
// store (room_store.cpp: on the server's backend) and loaded at start;
// temporary rooms vanish when their last occupant leaves.
//
// Options (docs/modules/mod_muc.md): host, max_users, history_size,
// rate_per_minute, rate_burst, max_rooms, max_rooms_per_user, max_affiliations,
// max_avatar_size.
#include <atomic>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "muc_logic.hpp"
#include "parley/module.hpp"
#include "room.hpp"
#include "room_store.hpp"

namespace {

using muc::Room;
using muc::StoredRoom;

// A stanza for a room that came before this loop had its stored rooms.
struct Waiting {
  parley::Element stanza;
  std::string from, to;
};

struct LoopRooms {
  std::unordered_map<std::string, std::unique_ptr<Room>> rooms;
  // Until the stored rooms are installed here, stanzas for rooms wait (in
  // order, bounded): answered before, a stored room would look absent
  // (item-not-found) or be created afresh by a join.
  bool loaded = false;
  std::deque<Waiting> waiting;
  // A room's stanza may come back into this loop's rooms during a call into
  // one: a route() is synchronous, and a message to an occupant whose session
  // is gone is bounced at once, to the room. Handled then, it would change the
  // room under the loop that routed it (an occupant removed while its room
  // walks its occupants): it waits until the outer stanza is done.
  bool dispatching = false;
  std::deque<Waiting> reentered;
};

// Stanzas that may wait per loop for the stored rooms (then resource-constraint).
constexpr std::size_t kMaxWaitingForLoad = 10000;

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

std::string new_secret() {
  std::random_device rd;
  std::string bytes;
  for (int i = 0; i < 8; ++i) {
    uint32_t v = rd();
    bytes.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  return muc::base64(bytes);
}

class ModMuc : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    if (!host().supports_1_2()) return parley::unexpected(std::string("mod_muc needs a host with module ABI 1.2"));
    if (!host().supports_map()) return parley::unexpected(std::string("this server has no map store"));
    service_.host = &host();
    service_.domain = host().option_string("host").value_or("conference." + host().module_host());
    service_.archive_ids =
        parley::ArchiveIds(host().derive_key("room archive ids", parley::ArchiveIds::kKeyBytes).value_or(""));
    auto int_option = [&](const char* name, int64_t def, int64_t lo, int64_t hi) -> std::optional<int64_t> {
      int64_t v = host().option_int(name).value_or(def);
      if (v < lo || v > hi) return std::nullopt;
      return v;
    };
    auto max_users = int_option("max_users", 200, 1, 100000);
    auto history = int_option("history_size", 20, 0, 1000);
    auto rate = int_option("rate_per_minute", 600, 0, 100000);
    auto burst = int_option("rate_burst", 30, 1, 10000);
    auto max_rooms = int_option("max_rooms", 10000, 1, 10000000);
    auto max_affiliations = int_option("max_affiliations", 10000, 1, 1000000);
    auto per_user = int_option("max_rooms_per_user", 100, 0, 1000000);
    auto max_avatar = int_option("max_avatar_size", 65536, 0, 1048576);
    if (!max_avatar) return parley::unexpected(std::string("max_avatar_size must be 0..1048576"));
    service_.max_vcard_bytes = static_cast<std::size_t>(*max_avatar);
    if (!per_user) return parley::unexpected(std::string("max_rooms_per_user must be 0..1000000"));
    max_rooms_per_user_ = static_cast<uint32_t>(*per_user);
    if (!max_affiliations) return parley::unexpected(std::string("max_affiliations must be 1..1000000"));
    service_.max_affiliations = static_cast<std::size_t>(*max_affiliations);
    if (!max_users) return parley::unexpected(std::string("max_users must be 1..100000"));
    if (!history) return parley::unexpected(std::string("history_size must be 0..1000"));
    if (!rate) return parley::unexpected(std::string("rate_per_minute must be 0..100000"));
    if (!burst) return parley::unexpected(std::string("rate_burst must be 1..10000"));
    if (!max_rooms) return parley::unexpected(std::string("max_rooms must be 1..10000000"));
    service_.max_users = *max_users;
    service_.history_size = static_cast<std::size_t>(*history);
    service_.rate_per_minute = *rate;
    service_.rate_burst = *burst;
    loops_ = parley::loop_count(host());
    if (loops_ == 0) return parley::unexpected(std::string("no worker loops"));
    // max_rooms is per service; each loop holds its share.
    max_rooms_per_loop_ = static_cast<std::size_t>(std::max<int64_t>(1, *max_rooms / loops_));
    service_.save = [this](const Room& room) { store_.save(room); };
    service_.forget = [this](const std::string& jid) { store_.forget(jid); };
    service_.save_history = [this](const std::string& jid, const muc::HistoryEntry& e, uint64_t keep_from) {
      store_.save_history(jid, e, keep_from);
    };
    rooms_.init(host());
    if (!parley::register_service<&ModMuc::on_stanza>(*this, service_.domain, "Chatrooms"))
      return parley::unexpected("cannot serve " + service_.domain);
    store_.start(host(), service_.domain);
    if (!parley::post(host(), 0, [this] { store_.load([this](std::vector<StoredRoom> rooms) { finish_load(std::move(rooms)); }); }))
      return parley::unexpected(std::string("cannot post to loop 0"));
    return {};
  }

  parley::Outcome on_stanza(const parley::ServiceStanza& in) {
    const std::string to(in.to());
    const std::string from(in.from());
    const std::string room_jid(parley::bare_jid(to));
    if (room_jid.find('@') == std::string::npos) return on_service(in);
    // The core sets both; the room's replies and errors are built from them.
    in.stanza().set_attr("from", from).set_attr("to", to);
    const uint32_t owner = static_cast<uint32_t>(fnv1a(room_jid) % loops_);
    if (parley::current_loop(host()) == static_cast<int32_t>(owner)) {
      dispatch(in.stanza(), from, to);
      return parley::Outcome::handled;
    }
    auto copy = std::make_shared<parley::Element>(in.stanza().clone());
    parley::post(host(), owner, [this, copy, from, to] { dispatch(*copy, from, to); });
    return parley::Outcome::handled;
  }

  // A server shutdown: the rooms of this loop tell their occupants they go
  // away (332) while the occupants' sessions are still open (the core runs
  // this on every loop before it closes any stream).
  parley::Outcome on_server_stopping(const parley::Event&) {
    for (auto& [jid, room] : rooms_.here().rooms) room->shutdown();
    return parley::Outcome::pass;
  }

  // Occupants are told the service goes away (332). The loops run no code of
  // this module any more (the core closed its gate first), so the rooms are
  // read here; the presences are routed through loop 0. At a server shutdown
  // the rooms were emptied already (on_server_stopping): an unload or a
  // reload is what finds occupants here.
  void stop() override {
    for (uint32_t l = 0; l < rooms_.size(); ++l) {
      for (auto& [jid, room] : rooms_.at(l).rooms) room->shutdown();
      rooms_.at(l).waiting.clear();
    }
  }

 private:
  void dispatch(parley::ElementView stanza, const std::string& from, const std::string& to) {
    LoopRooms& here = rooms_.here();
    if (!here.loaded) {
      if (here.waiting.size() >= kMaxWaitingForLoad) return error(stanza, "resource-constraint", "wait");
      here.waiting.push_back(Waiting{stanza.clone(), from, to});
      return;
    }
    if (here.dispatching) {
      // Bounded by what one stanza makes a room route (one bounce per stanza routed).
      here.reentered.push_back(Waiting{stanza.clone(), from, to});
      return;
    }
    struct Guard {  // an exception (caught by the SDK's trampoline) must not leave the loop stuck
      LoopRooms& here;
      ~Guard() {
        here.dispatching = false;
        here.reentered.clear();
      }
    } guard{here};
    here.dispatching = true;
    dispatch_now(stanza, from, to);
    while (!here.reentered.empty()) {
      Waiting w = std::move(here.reentered.front());
      here.reentered.pop_front();
      dispatch_now(w.stanza, w.from, w.to);
    }
  }

  void dispatch_now(parley::ElementView stanza, const std::string& from, const std::string& to) {
    const std::string room_jid(parley::bare_jid(to));
    const std::size_t slash = to.find('/');
    const std::string nick = slash == std::string::npos ? std::string() : to.substr(slash + 1);
    auto& rooms = rooms_.here().rooms;
    auto it = rooms.find(room_jid);
    const std::string_view name = stanza.name();
    if (it == rooms.end()) {
      const std::string type(stanza.attr("type").value_or(""));
      if (name == "presence" && type.empty() && !nick.empty()) {
        if (rooms.size() >= max_rooms_per_loop_) return error(stanza, "resource-constraint", "wait");
        const std::string creator(parley::bare_jid(from));
        if (!count_created(creator)) return error(stanza, "not-allowed", "cancel");
        auto room = std::make_unique<Room>(service_, room_jid, new_secret());
        Room& r = *room;
        rooms.emplace(room_jid, std::move(room));
        r.create_by(stanza, from, nick);
        if (r.should_vanish()) drop(rooms, rooms.find(room_jid));
        return;
      }
      // A join without a nickname (§7.2.1).
      if (name == "presence" && type.empty()) return error(stanza, "jid-malformed", "modify");
      if (name == "presence" || type == "error" || type == "result") return;
      return error(stanza, "item-not-found", "cancel");
    }
    Room& room = *it->second;
    if (name == "presence") room.on_presence(stanza, from, nick);
    else if (name == "message") room.on_message(stanza, from, nick);
    else if (name == "iq") room.on_iq(stanza, from, nick);
    if (room.should_vanish()) drop(rooms, it);
  }

  void drop(std::unordered_map<std::string, std::unique_ptr<Room>>& rooms,
            std::unordered_map<std::string, std::unique_ptr<Room>>::iterator it) {
    if (it == rooms.end()) return;
    if (!it->second->creator().empty() && max_rooms_per_user_ > 0)
      created_[fnv1a(it->second->creator()) % created_buckets].fetch_sub(1, std::memory_order_relaxed);
    rooms.erase(it);
  }

  // max_rooms_per_user: the rooms an account created that still exist. The
  // rooms live on every loop, so the count is kept in relaxed atomics (no
  // lock), in buckets by the hash of the account: two accounts sharing a
  // bucket share its count (rare with 65536 buckets; never more lenient).
  bool count_created(const std::string& bare) {
    if (max_rooms_per_user_ == 0) return true;
    auto& bucket = created_[fnv1a(bare) % created_buckets];
    if (bucket.fetch_add(1, std::memory_order_relaxed) >= max_rooms_per_user_) {
      bucket.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }

  void error(parley::ElementView stanza, std::string_view condition, std::string_view type) {
    auto from = stanza.attr("from");
    auto to = stanza.attr("to");
    if (!from || !to || stanza.attr("type") == "error") return;
    parley::Element reply = stanza.clone();
    reply.set_attr("from", *to).set_attr("to", *from).set_attr("type", "error");
    reply.add_child(muc::error_element(host(), condition, type, parley::bare_jid(*to)));
    host().route(std::move(reply));
  }

  // Stanzas to the service domain itself.
  parley::Outcome on_service(const parley::ServiceStanza& in) {
    if (in.name() != "iq") return parley::Outcome::handled;  // messages/presence to the service: dropped
    auto iq = in.stanza();
    auto payload = iq.first_child();
    if (in.type() != "get" || !payload) return parley::Outcome::pass;
    if (payload->xmlns() == muc::ns_info && !payload->has_attr("node")) {
      parley::Element result = parley::make_iq_result(iq);
      result.set_attr("from", in.to()).set_attr("to", in.from());
      auto q = result.add_child("query", muc::ns_info);
      q.add_child("identity", muc::ns_info)
          .set_attr("category", "conference")
          .set_attr("type", "text")
          .set_attr("name", "Chatrooms");
      for (const char* f :
           {muc::ns_muc, muc::ns_info, muc::ns_items, muc::ns_oid, muc::ns_ping, "vcard-temp", muc::ns_hats})
        q.add_child("feature", muc::ns_info).set_attr("var", f);
      host().route(std::move(result));
      return parley::Outcome::handled;
    }
    if (payload->xmlns() == muc::ns_items && !payload->has_attr("node")) {
      auto result = std::make_shared<parley::Element>(parley::make_iq_result(iq));
      result->set_attr("from", in.to()).set_attr("to", in.from());
      result->add_child("query", muc::ns_items);
      list_rooms(result, 0);
      return parley::Outcome::handled;
    }
    if (payload->xmlns() == muc::ns_ping) {
      parley::Element result = parley::make_iq_result(iq);
      result.set_attr("from", in.to()).set_attr("to", in.from());
      host().route(std::move(result));
      return parley::Outcome::handled;
    }
    return parley::Outcome::pass;
  }

  // Loop `loop` adds its public rooms, then hands the answer to the next loop.
  void list_rooms(std::shared_ptr<parley::Element> result, uint32_t loop) {
    if (loop == loops_) {
      host().route(std::move(*result));
      return;
    }
    parley::post(host(), loop, [this, result, loop] {
      auto q = result->child("query", muc::ns_items);
      for (const auto& [jid, room] : rooms_.here().rooms) {
        if (!room->is_public()) continue;
        auto item = q->add_child("item", muc::ns_items);
        item.set_attr("jid", jid);
        const std::string& name = room->config().name;
        item.set_attr("name", name.empty() ? jid.substr(0, jid.find('@')) : name);
      }
      list_rooms(result, loop + 1);
    });
  }

  // ---- persistence (room_store.cpp) ----

  // Every loop gets its stored rooms (none after a read error: served without
  // them, logged), then handles what waited for them, in order.
  void finish_load(std::vector<StoredRoom> stored) {
    auto per_loop = std::make_shared<std::vector<std::vector<StoredRoom>>>(loops_);
    for (StoredRoom& s : stored) (*per_loop)[fnv1a(s.jid) % loops_].push_back(std::move(s));
    for (uint32_t l = 0; l < loops_; ++l)
      parley::post(host(), l, [this, per_loop, l] {
        for (const StoredRoom& s : (*per_loop)[l]) install(s);
        LoopRooms& here = rooms_.here();
        here.loaded = true;
        std::deque<Waiting> waiting;
        waiting.swap(here.waiting);
        for (Waiting& w : waiting) dispatch(w.stanza, w.from, w.to);
      });
  }

  void install(const StoredRoom& s) {
    auto& rooms = rooms_.here().rooms;
    if (rooms.count(s.jid)) return;  // defensive: stanzas for rooms wait for the load (dispatch)
    auto room = std::make_unique<Room>(service_, s.jid, s.secret.empty() ? new_secret() : s.secret);
    room->mutable_config() = muc::decode_config(s.config, service_.max_users);
    room->mutable_config().persistent = true;
    room->load_subject(s.subject, s.subject_nick);
    for (const StoredRoom::Affiliation& a : s.affiliations)
      if (auto aff = muc::parse_affiliation(a.affiliation)) room->load_affiliation(a.jid, *aff, a.reason, a.nick);
    std::vector<uint64_t> kept;  // the room keeps the last history_size messages that parse
    for (const StoredRoom::Message& m : s.history)
      if (auto message = host().parse(m.xml)) {
        room->load_history(std::move(*message), m.ms, m.seq);
        kept.push_back(m.seq);
      }
    if (kept.size() > service_.history_size) kept.erase(kept.begin(), kept.end() - static_cast<std::ptrdiff_t>(service_.history_size));
    store_.installed(s, kept);
    rooms.emplace(s.jid, std::move(room));
  }

  static constexpr std::size_t created_buckets = 65536;
  muc::Service service_;
  uint32_t max_rooms_per_user_ = 100;
  std::unique_ptr<std::atomic<uint32_t>[]> created_{new std::atomic<uint32_t>[created_buckets]()};
  uint32_t loops_ = 0;
  std::size_t max_rooms_per_loop_ = 10000;
  parley::PerLoop<LoopRooms> rooms_;
  muc::RoomStore store_;
};

}  // namespace

PARLEY_MODULE(ModMuc, "mod_muc", "0.1.0",
              parley::option("host", PARLEY_OPT_STRING),
              parley::option("max_users", PARLEY_OPT_INT),
              parley::option("history_size", PARLEY_OPT_INT),
              parley::option("rate_per_minute", PARLEY_OPT_INT),
              parley::option("rate_burst", PARLEY_OPT_INT),
              parley::option("max_rooms", PARLEY_OPT_INT),
              parley::option("max_affiliations", PARLEY_OPT_INT),
              parley::option("max_rooms_per_user", PARLEY_OPT_INT),
              parley::option("max_avatar_size", PARLEY_OPT_INT),
              parley::hook<&ModMuc::on_server_stopping>(PARLEY_EVENT_SERVER_STOPPING),
              // The tables before the map store (issue 11): a server that has rows in them gets
              // them moved (RoomStore::start), then dropped; kept declared (the schema's
              // versions never go back).
              parley::schema("CREATE TABLE mod_muc_rooms (jid TEXT PRIMARY KEY, secret TEXT NOT NULL, "
                             "config TEXT NOT NULL, subject TEXT NOT NULL, subject_nick TEXT NOT NULL)"),
              parley::schema("CREATE TABLE mod_muc_affiliations (room TEXT NOT NULL, jid TEXT NOT NULL, "
                             "affiliation TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (room, jid))"),
              // Registered nicknames (XEP-0045 §7.10) and the history of persistent rooms.
              parley::schema("ALTER TABLE mod_muc_affiliations ADD COLUMN nick TEXT NOT NULL DEFAULT ''"),
              parley::schema("CREATE TABLE mod_muc_history (room TEXT NOT NULL, seq INTEGER NOT NULL, "
                             "stamp INTEGER NOT NULL, xml TEXT NOT NULL, PRIMARY KEY (room, seq))"))
