// One room of mod_muc (XEP-0045). A Room lives on one worker loop (chosen by
// the hash of its JID, mod_muc.cpp) and is touched only there: no lock.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "muc_logic.hpp"
#include "parley/module.hpp"
#include "parley/sdk/archive_ids.hpp"
#include "parley/sdk/stamp.hpp"

namespace muc {

constexpr const char* ns_muc = "http://jabber.org/protocol/muc";
constexpr const char* ns_user = "http://jabber.org/protocol/muc#user";
constexpr const char* ns_admin = "http://jabber.org/protocol/muc#admin";
constexpr const char* ns_owner = "http://jabber.org/protocol/muc#owner";
constexpr const char* ns_client = "jabber:client";
constexpr const char* ns_stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
constexpr const char* ns_xdata = "jabber:x:data";
constexpr const char* ns_info = "http://jabber.org/protocol/disco#info";
constexpr const char* ns_items = "http://jabber.org/protocol/disco#items";
constexpr const char* ns_delay = "urn:xmpp:delay";
constexpr const char* ns_oid = "urn:xmpp:occupant-id:0";
constexpr const char* ns_ping = "urn:xmpp:ping";
constexpr const char* ns_register = "jabber:iq:register";
constexpr const char* ns_hats = "urn:xmpp:hats:0";

struct HistoryEntry;

// What every room of one service shares (set in start(), read-only after).
struct Service {
  parley::Host* host = nullptr;
  std::string domain;
  int64_t max_users = 200;         // the cap of muc#roomconfig_maxusers, and its default
  std::size_t history_size = 20;   // groupchat messages kept per room
  int64_t rate_per_minute = 600;   // groupchat/private messages per occupant (0: no limit)
  int64_t rate_burst = 30;
  std::size_t max_affiliations = 10000;  // affiliations kept per room (members, admins, owners, outcasts)
  std::size_t max_vcard_bytes = 65536;   // a room's vCard-temp (XEP-0486 avatar), serialized
  // The archive's ids as clients see them (XEP-0313 section 3: unpredictable), under a
  // key of this module's (ABI 1.9 derive_key; decimal on an older host).
  parley::ArchiveIds archive_ids;
  // Persistence (room_store.cpp, the map store): the room and its affiliations,
  // or its removal (with its history); one message of its history, and those
  // older than `keep_from` dropped.
  std::function<void(const class Room&)> save;
  std::function<void(const std::string& room_jid)> forget;
  std::function<void(const std::string& room_jid, const HistoryEntry& entry, uint64_t keep_from)> save_history;
};

// One occupant: a real full JID in the room under a nickname.
struct Occupant {
  std::string nick;
  std::string real;  // full JID
  std::string bare;
  Role role = Role::none;
  std::string oid;
  parley::Element presence;  // the last available presence, without MUC payloads
  RateBucket bucket;
};

struct HistoryEntry {
  parley::Element message;  // from room/nick, no 'to'
  HistoryMark mark;
  uint64_t seq = 0;  // its key in the room's stored history (persistent rooms)
};

class Room {
 public:
  // `created`: a new room (else loaded from storage).
  Room(Service& service, std::string jid, std::string secret);

  // The stanza arrived for this room; `nick` is the resource of 'to' ("" for the room itself).
  void on_presence(parley::ElementView stanza, const std::string& from, const std::string& nick);
  void on_message(parley::ElementView stanza, const std::string& from, const std::string& nick);
  void on_iq(parley::ElementView stanza, const std::string& from, const std::string& nick);
  // Sets up a new room with its first occupant (the owner), from a join presence.
  void create_by(parley::ElementView stanza, const std::string& from, const std::string& nick);

  // Empty and temporary (or destroyed): the caller drops it.
  bool should_vanish() const { return destroyed_ || (occupants_.empty() && !config_.persistent); }
  // The account that created it in this run (empty: loaded from storage), for max_rooms_per_user.
  const std::string& creator() const { return creator_; }
  bool is_public() const { return config_.public_room && !locked_; }
  std::size_t occupant_count() const { return occupants_.size(); }

  const std::string& jid() const { return jid_; }
  const std::string& secret() const { return secret_; }
  const RoomConfig& config() const { return config_; }
  const std::string& subject() const { return subject_; }
  const std::string& subject_nick() const { return subject_nick_; }
  const std::map<std::string, Affiliation>& affiliations() const { return affiliations_; }
  const std::map<std::string, std::string>& reasons() const { return reasons_; }
  // Registered nicknames (§7.10): real bare JID -> nick.
  const std::map<std::string, std::string>& reserved() const { return reserved_; }

  // Loading from storage.
  RoomConfig& mutable_config() { return config_; }
  void load_subject(std::string subject, std::string nick) { subject_ = std::move(subject); subject_nick_ = std::move(nick); }
  void load_affiliation(const std::string& bare, Affiliation a, std::string reason, std::string nick = {});
  // A stored history message (oldest first), its send time and row.
  void load_history(parley::Element message, int64_t ms, uint64_t seq);
  // The module stops (unload, reload, shutdown): every occupant is told it
  // leaves because the service goes away (332). Called off the loops once no
  // stanza reaches the room any more.
  void shutdown();

 private:
  // Joins and leaves (room.cpp).
  void join(parley::ElementView stanza, const std::string& from, const std::string& nick, bool created);
  void change_nick(parley::ElementView stanza, Occupant& o, const std::string& nick);
  void leave(const std::string& real, std::vector<int> codes, const std::string& reason = {},
             const std::string& actor = {}, parley::ElementView destroy = {});
  void send_history(const Occupant& o, parley::ElementView join_x);
  void send_subject(const Occupant& o);
  void store_presence(Occupant& o, parley::ElementView stanza);
  // Every other occupant's presence to `viewer` as it may see them now.
  void show_occupants_to(const Occupant& viewer);

  // Presences (room.cpp).
  parley::Element presence_of(const Occupant& o, const Occupant* viewer, const std::string& to, bool unavailable,
                              const std::vector<int>& codes, const std::string& new_nick = {},
                              const std::string& reason = {}, const std::string& actor = {});
  void broadcast_presence(const Occupant& o, const std::vector<int>& self_codes, const std::vector<int>& all_codes = {});
  bool jid_visible_to(const Occupant* viewer) const;
  // make(viewer) to every occupant but `o`: one stanza for the viewers that
  // see real JIDs and one for the others, each serialized once by the host
  // (route_shared). `o`'s own copy (its own status codes) is the caller's.
  template <typename Make>
  void to_others(const Occupant& o, Make make) {
    std::vector<std::string> seeing, not_seeing;
    const Occupant* a_seeing = nullptr;
    const Occupant* a_not_seeing = nullptr;
    for (auto& [real, viewer] : occupants_) {
      if (&viewer == &o) continue;
      if (jid_visible_to(&viewer)) {
        seeing.push_back(real);
        a_seeing = &viewer;
      } else {
        not_seeing.push_back(real);
        a_not_seeing = &viewer;
      }
    }
    if (a_seeing) service_.host->route_shared(make(a_seeing), seeing);
    if (a_not_seeing) service_.host->route_shared(make(a_not_seeing), not_seeing);
  }

  // Messages (room_messages.cpp).
  void groupchat(parley::ElementView stanza, Occupant& sender);
  void private_message(parley::ElementView stanza, Occupant& sender, const std::string& nick);
  void status_message(const std::vector<int>& codes);
  void mediated_invite(parley::ElementView stanza, const std::string& from, parley::ElementView invite);
  void mediated_decline(parley::ElementView stanza, const std::string& from, parley::ElementView decline);
  void voice_request(parley::ElementView stanza, const std::string& from, parley::ElementView form);
  void remember(parley::Element&& message);  // a groupchat message into the history

  // Nickname registration (room_register.cpp: §7.10, §7.12).
  void register_iq(parley::ElementView iq, const std::string& from);
  void reserved_nick_info(parley::ElementView iq, const std::string& from);
  // The account that registered `nick`, or nullptr.
  const std::string* reserved_by(const std::string& nick) const;
  void save_history_from_start();  // a room made persistent keeps what it has

  // Iqs (room_admin.cpp).
  void disco_info(parley::ElementView iq);
  void owner_iq(parley::ElementView iq, const std::string& from);
  void admin_iq(parley::ElementView iq, const std::string& from);
  parley::Element config_form() const;
  // `notify_absent`: an account with no session in the room gets a message (101).
  void apply_affiliation(const std::string& bare, Affiliation to, const std::string& reason, const std::string& actor,
                         bool notify_absent = true);
  void apply_role(Occupant& o, Role to, const std::string& reason, const std::string& actor);
  void destroy(parley::ElementView destroy_el);
  // The room's vCard-temp and avatar (room_avatar.cpp, XEP-0486).
  void vcard_iq(parley::ElementView iq, const std::string& from);
  std::vector<std::string> avatar_hashes() const;
  // Hats (room_hats.cpp, XEP-0317): the ad-hoc commands, the commands node's
  // items, and an account's hats added to a presence.
  void hats_command(parley::ElementView iq, const std::string& from);
  void command_items(parley::ElementRef query) const;
  void add_hats(parley::ElementRef presence, const std::string& bare) const;
  // The room's archive (room_archive.cpp): the new entry's id, 0 if not archived.
  uint64_t archive(const parley::Element& message, const std::string& nick);
  void archive_iq(parley::ElementView iq, const std::string& from);
  void proxy_iq(parley::ElementView iq, const Occupant& sender, const Occupant& target);
  void proxied_answer(parley::ElementView iq, const std::string& from);
  void after_config(const ConfigChange& change, bool was_locked);

  // Helpers.
  Affiliation affiliation_of(const std::string& bare) const;
  Occupant* by_real(const std::string& real);
  Occupant* by_nick(const std::string& nick);
  std::vector<Occupant*> sessions_of(const std::string& nick);
  // Whether `nick` is held by another account than `bare` (409).
  bool nick_taken(const std::string& nick, const std::string& bare);
  void drop_nick(const Occupant& o);
  std::size_t owner_count() const;
  void error(parley::ElementView stanza, std::string_view condition, std::string_view type, std::string_view text = {});
  void route(parley::Element&& stanza) { service_.host->route(std::move(stanza)); }
  // To every occupant (its real full JID as 'to'), serialized once (room_messages.cpp).
  void route_to_all(parley::Element&& stanza);
  std::string occupant_jid(const std::string& nick) const { return jid_ + "/" + nick; }
  parley::Element element(std::string_view name, std::string_view xmlns = ns_client) const {
    return service_.host->element(name, xmlns);
  }
  void persist() {
    if (config_.persistent && service_.save) service_.save(*this);
  }

  Service& service_;
  std::string jid_;
  std::string secret_;
  RoomConfig config_;
  bool locked_ = false;  // created with the MUC protocol, not configured yet (§10.1.1)
  bool destroyed_ = false;
  std::string creator_;
  std::map<std::string, Affiliation> affiliations_;  // real bare JID -> affiliation (none: absent)
  std::map<std::string, std::string> reasons_;       // real bare JID -> reason (outcasts, members)
  std::map<std::string, Occupant> occupants_;        // real full JID -> occupant
  // nick -> its sessions' real full JIDs: several only for one account's
  // sessions sharing the nick (multi-session).
  std::map<std::string, std::set<std::string>> nicks_;
  std::string subject_, subject_nick_;
  std::deque<HistoryEntry> history_;
  uint64_t history_seq_ = 0;  // the last history row written (persistent rooms)
  std::map<std::string, std::string> reserved_;       // real bare JID -> registered nick (§7.10)
  std::map<std::string, std::string> reserved_nicks_;  // and back: nick -> bare JID
  std::map<std::string, std::string> invitations_;  // invitee bare JID -> inviter real JID (for declines)
  struct ProxiedIq {
    std::string requester, original_id, target_real, target_nick;
  };
  std::map<std::string, ProxiedIq> proxied_;  // the room's iq id -> the request it stands for
  std::deque<std::string> proxy_order_;       // ids, oldest first (at most 1000)
  uint64_t proxy_counter_ = 0;
};

// The fields of a submitted data form (room_admin.cpp).
FormValues read_form(parley::ElementView x);

// A stanza error element (RFC 6120 8.3) to add to a reply.
parley::Element error_element(const parley::Host& host, std::string_view condition, std::string_view type,
                              std::string_view by, std::string_view text = {});
int64_t now_ms();

}  // namespace muc
