// mod_pep: Personal Eventing Protocol (XEP-0163) on every account's bare JID,
// the subset of XEP-0060 that PEP uses, and entity capabilities (XEP-0115) for
// the +notify filtering of notifications.
//
// Threads: no lock. A user's nodes are owned by one loop (a hash of the bare
// JID): every operation on them is posted there (iq requests, the last items
// for a contact's presence). Each session's caps live in its slot, on its
// loop, and each loop has its own bounded cache of verified caps; so a
// notification built on the owner loop is posted to each target session,
// whose loop checks its +notify interests and sends it.
//
// Storage: the map store (issue 11's typed store, on the server's backend:
// SQLite or PostgreSQL), one map per account: "n<US>node" -> the node's
// configuration, "i<US>node<US>id" -> "seq\npayload" (US: 0x1f, never in
// XML). What the module's tables held before is moved there once at start
// (KeyvalMove; requests wait for it). A loaded user's nodes and items stay in
// memory on the owner loop, at most `max_cached_users` users per loop (the
// least recently used go first, never one with a write in flight).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "parley/module.hpp"
#include "parley/sdk/old_tables.hpp"
#include "pubsub_logic.hpp"
#include "pubsub_xml.hpp"

namespace parley::mod_pep {

using namespace parley::pubsub;  // the node logic shared with mod_pubsub (modules/pubsub_core)

struct Node {
  NodeConfig config;
  std::deque<Item> items;  // oldest first
};

struct UserPep {
  bool loaded = false;
  bool loading = false;
  std::vector<std::function<void(UserPep*)>> waiting;  // until loaded (bounded)
  std::map<std::string, Node> nodes;
  uint64_t last_use = 0;
  int pending_writes = 0;  // never evicted while a write is in flight
  int64_t bytes = 0;       // its items' payloads together (the per-account quota, the loop's budget)
};

struct OwnerLoop {
  std::unordered_map<std::string, UserPep> users;
  uint64_t tick = 0;
  int64_t last_seq = 0;
  int64_t bytes = 0;  // every cached user's bytes
};

using Features = std::shared_ptr<const std::set<std::string, std::less<>>>;

struct CapsLoop {
  std::unordered_map<std::string, Features> known;  // verified ver -> features
  std::unordered_set<std::string> untrusted;        // vers whose answer did not hash to them
  std::deque<std::string> order;                    // insertion order of both, for the bound
  std::unordered_map<std::string, std::vector<parley_session_id>> asking;  // ver -> sessions waiting
};

// The server's own XEP-0115 verification string (of what mod_disco answers
// for the host), per loop, for the <c/> in stream features.
struct ServerCaps {
  std::string ver;  // empty: not known yet
  std::chrono::steady_clock::time_point at{};
  bool asking = false;
};

// A session's entity capabilities, in its slot.
// One per bound session of a local user (issue 18, idle memory: the flags
// packed together, the bare JID derived from full_jid when needed).
struct SessionCaps {
  bool available = false;
  bool want_last = false;  // last items due (initial presence or new caps), caps still being verified
  // With want_last: the features whose last items the session had already
  // been sent (its caps before a change); null: none (an initial presence).
  Features last_sent_for;
  bool eligible = false;   // its last presence had a non-negative priority
  // When it last became available with a non-negative priority (steady clock, us): a
  // publish before that reaches it as the node's last item on that presence, so its
  // notification (fanned out after a roster read) is not sent as well.
  int64_t eligible_since_us = 0;
  bool photo_pep = false;  // the photo is from a PEP avatar (a vCard's photo does not replace it)
  std::string ver;
  std::string full_jid;
  Features features;  // null: unknown or not trusted (no notification)
  std::optional<std::string> photo;  // the avatar's SHA-1 for presence ("": none; nullopt: unknown)

  std::string bare() const { return full_jid.substr(0, full_jid.find('/')); }
};

// A requester's relation to an owner: its roster item in the owner's roster.
struct Relation {
  bool subscribed_from = false;
  std::vector<std::string> groups;
};

class ModPep : public parley::Module {
 public:
  parley::Result<void, std::string> start() override;

  // A session's caps survive a reload (its verified features with it: the new
  // code's caches start empty).
  using SessionData = SessionCaps;
  parley::Result<std::string, std::string> save_session_data(parley_session_id, const SessionCaps& caps);
  parley::Result<std::unique_ptr<SessionCaps>, std::string> restore_session_data(parley_session_id,
                                                                                 std::string_view bytes);

  void on_pubsub(const parley::IqRequest& request) { dispatch(request, false); }
  void on_pubsub_owner(const parley::IqRequest& request) { dispatch(request, true); }
  parley::Outcome on_presence(const parley::Event& event);
  parley::Outcome on_stanza_in(const parley::Event& event);
  parley::Outcome on_account_disco(const parley::Event& event);
  parley::Outcome on_account_items(const parley::Event& event);
  // disco#info and disco#items of one of the account's nodes (ABI 1.10, events 32-33).
  parley::Outcome on_account_node(const parley::Event& event);
  parley::Outcome on_stream_features(const parley::Event& event);
  void on_user_removed(const parley::Event& event);
  void on_session_bound(const parley::Event& event);
  void on_roster_answer(const parley::Event& event) { asks_.on_answer(event); }

 private:
  parley::AccountQuery asks_;  // roster reads, answered by the roster module (events 27-28)
  using IqPtr = std::shared_ptr<parley::Element>;
  struct Request {
    IqPtr iq;
    std::string owner;      // bare JID of the PEP service
    std::string owner_user; // its localpart
    std::string requester;  // bare JID of the sender
    bool is_owner() const { return owner == requester; }
  };

  void dispatch(const parley::IqRequest& request, bool owner_ns);
  void handle(const Request& r, UserPep& u, bool owner_ns);
  // pubsub namespace
  void publish(const Request& r, UserPep& u, parley::ElementView pubsub, parley::ElementView publish);
  void items(const Request& r, UserPep& u, parley::ElementView items);
  void retract(const Request& r, UserPep& u, parley::ElementView retract);
  void create(const Request& r, UserPep& u, parley::ElementView pubsub, parley::ElementView create);
  // pubsub#owner namespace
  void configure(const Request& r, UserPep& u, parley::ElementView configure);
  void purge(const Request& r, UserPep& u, parley::ElementView purge);
  void remove_node(const Request& r, UserPep& u, parley::ElementView del);
  void affiliations(const Request& r, UserPep& u, parley::ElementView affs);

  // Answers
  void fail(const Request& r, std::string_view condition, std::string_view app = {},
            std::string_view feature = {});
  void ok(const Request& r, std::optional<parley::Element> payload = std::nullopt);

  // Owner loop and storage (pep_store.cpp)
  uint32_t owner_loop(const std::string& bare) const;
  void with_user(const std::string& bare, std::function<void(UserPep*)> fn);
  void load(const std::string& bare);
  void loaded(const std::string& bare, bool ok);
  void evict(OwnerLoop& loop);
  void erase_user(OwnerLoop& loop, const std::string& bare);
  static int64_t count_bytes(const UserPep& u);
  using Puts = std::vector<std::pair<std::string, std::string>>;
  static std::string node_key(std::string_view node);
  static std::string item_key(std::string_view node, std::string_view id);
  static std::string item_value(const Item& item);  // its seq (stamp_us) and payload
  // Puts then removes keys of `owner`'s map, from the owner loop (the store
  // keeps their order with every other call of the module, loads included).
  void store(const std::string& owner, Puts puts, std::vector<std::string> removes);
  void relation(const std::string& owner_user, const std::string& contact, std::function<void(std::optional<Relation>)> fn);
  int64_t next_seq();

  // Notifications and caps (pep_notify.cpp)
  // new_last_item: the event is a publish, now the node's last item.
  void notify(const std::string& owner, const std::string& node, const NodeConfig& config, const std::string& event_xml,
              bool new_last_item = false);
  // published_us (0: none): skipped for a session that became eligible after it.
  void deliver(parley_session_id session, const std::string& full_jid, const std::string& node,
               const std::string& message_xml, int64_t published_us = 0);
  // stamp_us > 0: a XEP-0203 <delay/> (a last item sent later than it was published).
  std::string event_message(const std::string& owner, const std::string& event_xml, int64_t stamp_us = 0) const;
  void resolve_caps(parley_session_id session, const std::string& full_jid, const std::string& caps_node,
                    const std::string& ver, const std::string& hash);
  void caps_answer(const std::string& ver, std::optional<parley::ElementView> answer);
  void remember(CapsLoop& caps, const std::string& ver, Features features);
  void refresh_server_caps();

  // XEP-0402 <-> XEP-0048 bookmarks (pep_bookmarks.cpp)
  void bookmarks_to_private(const std::string& owner, const UserPep& u);
  void bookmarks_from_private(const std::string& owner, UserPep& u, const std::string& storage_xml);
  bool private_bookmarks_set(const parley::Event& event, parley::ElementView stanza);
  static bool is_bookmarks(const std::string& node);
  // `wanted`: the caps' features the last items are chosen by (those of the presence or
  // approval that sends them, never the session's caps of later, when the roster and
  // relation reads are answered). `except`: skip the nodes whose +notify it lists (their
  // last items were sent already).
  void send_last(parley_session_id session, const std::string& full_jid, const std::string& bare, Features wanted,
                 Features except = nullptr);
  void send_last_of(parley_session_id session, const std::string& full_jid, const std::string& bare,
                    const std::string& owner, Features wanted, bool approved = false, Features except = nullptr);

  // The avatar's hash in presence (pep_avatar.cpp)
  static std::string metadata_hash(parley::ElementView metadata);
  static std::string vcard_hash(parley::ElementView vcard);
  void avatar_changed(const std::string& bare, const std::string& hash, bool pep);
  void avatar_from_node(const std::string& bare, const UserPep& u);  // after a change of the metadata node
  void avatar_to_vcard(const std::string& bare, const std::string& type, const std::string& base64_data);
  void vcard_set(const parley::Event& event, parley::ElementView iq);
  void add_photo(parley_session_id session, parley::ElementRef presence);

  Limits limits_;
  bool avatar_presence_ = true;
  int64_t max_cached_users_ = 10000;
  int64_t max_cache_bytes_ = 64 << 20;  // per loop
  int64_t caps_cache_size_ = 1024;
  int64_t max_waiting_ = 256;
  parley::PerLoop<OwnerLoop> owners_;
  parley::PerLoop<CapsLoop> caps_;
  parley::PerLoop<ServerCaps> server_caps_;
  // The module's tables before the map store, moved once (nodes, then items).
  parley::OldTables move_;
};

}  // namespace parley::mod_pep
