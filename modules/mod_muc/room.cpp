// mod_muc: a room's occupants: joins (§7.2), nickname changes (§7.6), leaves
// (§7.14), presence broadcast, history and subject on join.
#include "room.hpp"

#include <algorithm>
#include <chrono>

namespace muc {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

parley::Element error_element(const parley::Host& host, std::string_view condition, std::string_view type,
                              std::string_view by, std::string_view text) {
  parley::Element e = host.element("error", ns_client);
  e.set_attr("type", type);
  if (!by.empty()) e.set_attr("by", by);
  e.add_child(condition, ns_stanzas);
  if (!text.empty()) e.add_child("text", ns_stanzas).add_text(text);
  return e;
}

Room::Room(Service& service, std::string jid, std::string secret)
    : service_(service), jid_(std::move(jid)), secret_(std::move(secret)) {
  config_.max_users = service_.max_users;
}

void Room::load_affiliation(const std::string& bare, Affiliation a, std::string reason, std::string nick) {
  if (a == Affiliation::none) return;
  affiliations_[bare] = a;
  if (!reason.empty()) reasons_[bare] = std::move(reason);
  if (!nick.empty() && a != Affiliation::outcast && !reserved_nicks_.count(nick)) {
    reserved_nicks_[nick] = bare;
    reserved_[bare] = std::move(nick);
  }
}

void Room::load_history(parley::Element message, int64_t ms, uint64_t seq) {
  HistoryMark mark{ms, message.serialize().size()};
  history_.push_back(HistoryEntry{std::move(message), mark, seq});
  history_seq_ = std::max(history_seq_, seq);
  while (history_.size() > service_.history_size) history_.pop_front();
}

void Room::shutdown() {
  // Status 332 (XEP-0045's status code registry): each occupant learns it is
  // removed because the service goes away, in its own presence (the others
  // learn it the same way).
  for (auto& [real, o] : occupants_) route(presence_of(o, &o, real, true, {110, 332}));
  occupants_.clear();
  nicks_.clear();
}

const std::string* Room::reserved_by(const std::string& nick) const {
  auto it = reserved_nicks_.find(nick);
  return it == reserved_nicks_.end() ? nullptr : &it->second;
}

Affiliation Room::affiliation_of(const std::string& bare) const {
  auto it = affiliations_.find(bare);
  return it == affiliations_.end() ? Affiliation::none : it->second;
}

Occupant* Room::by_real(const std::string& real) {
  auto it = occupants_.find(real);
  return it == occupants_.end() ? nullptr : &it->second;
}

Occupant* Room::by_nick(const std::string& nick) {
  auto it = nicks_.find(nick);
  return it == nicks_.end() || it->second.empty() ? nullptr : by_real(*it->second.begin());
}

std::vector<Occupant*> Room::sessions_of(const std::string& nick) {
  std::vector<Occupant*> out;
  if (auto it = nicks_.find(nick); it != nicks_.end())
    for (const std::string& real : it->second)
      if (Occupant* o = by_real(real)) out.push_back(o);
  return out;
}

bool Room::nick_taken(const std::string& nick, const std::string& bare) {
  // Registered by another account (§7.12: its owner only may use it).
  if (const std::string* owner = reserved_by(nick); owner && *owner != bare) return true;
  for (Occupant* o : sessions_of(nick))
    if (o->bare != bare) return true;
  return false;
}

void Room::drop_nick(const Occupant& o) {
  auto it = nicks_.find(o.nick);
  if (it == nicks_.end()) return;
  it->second.erase(o.real);
  if (it->second.empty()) nicks_.erase(it);
}

std::size_t Room::owner_count() const {
  return static_cast<std::size_t>(std::count_if(affiliations_.begin(), affiliations_.end(),
                                                [](const auto& a) { return a.second == Affiliation::owner; }));
}

void Room::error(parley::ElementView stanza, std::string_view condition, std::string_view type,
                 std::string_view text) {
  if (stanza.attr("type") == "error") return;  // never an error to an error (RFC 6120 8.3.1)
  parley::Element reply = stanza.clone();
  auto from = stanza.attr("from");
  auto to = stanza.attr("to");
  if (!from) return;
  reply.set_attr("from", to ? *to : std::string_view(jid_)).set_attr("to", *from).set_attr("type", "error");
  reply.add_child(error_element(*service_.host, condition, type, jid_, text));
  route(std::move(reply));
}

bool Room::jid_visible_to(const Occupant* viewer) const {
  return config_.non_anonymous || (viewer && viewer->role == Role::moderator);
}

parley::Element Room::presence_of(const Occupant& o, const Occupant* viewer, const std::string& to, bool unavailable,
                                  const std::vector<int>& codes, const std::string& new_nick,
                                  const std::string& reason, const std::string& actor) {
  parley::Element p = (o.presence && !unavailable) ? o.presence.clone() : element("presence");
  p.remove_attr("id");
  p.set_attr("from", occupant_jid(o.nick)).set_attr("to", to);
  if (unavailable) p.set_attr("type", "unavailable");
  else p.remove_attr("type");
  auto x = p.add_child("x", ns_user);
  auto item = x.add_child("item", ns_user);
  item.set_attr("affiliation", to_string(affiliation_of(o.bare))).set_attr("role", to_string(unavailable ? Role::none : o.role));
  if (jid_visible_to(viewer)) item.set_attr("jid", o.real);
  if (!new_nick.empty()) item.set_attr("nick", new_nick);
  if (!actor.empty()) item.add_child("actor", ns_user).set_attr("nick", actor);
  if (!reason.empty()) item.add_child("reason", ns_user).add_text(reason);
  for (int code : codes) x.add_child("status", ns_user).set_attr("code", std::to_string(code));
  p.add_child("occupant-id", ns_oid).set_attr("id", o.oid);
  add_hats(p, o.bare);
  return p;
}

// The occupant's presence to every occupant whose role may see it (and always
// to itself, with `self_codes`).
void Room::broadcast_presence(const Occupant& o, const std::vector<int>& self_codes,
                              const std::vector<int>& all_codes) {
  const bool shown = config_.presence_broadcast.count(o.role) > 0;
  // The others' copies differ only in whether they show the real JID: one
  // stanza for each kind of viewer, serialized once (route_shared).
  std::vector<std::string> seeing, not_seeing;
  const Occupant* a_seeing = nullptr;
  const Occupant* a_not_seeing = nullptr;
  for (auto& [real, viewer] : occupants_) {
    if (&viewer == &o) continue;
    if (viewer.nick == o.nick) {
      route(presence_of(o, &viewer, real, false, {110}));  // another session of the same occupant
      continue;
    }
    if (!shown) continue;
    if (jid_visible_to(&viewer)) {
      seeing.push_back(real);
      a_seeing = &viewer;
    } else {
      not_seeing.push_back(real);
      a_not_seeing = &viewer;
    }
  }
  if (a_seeing) service_.host->route_shared(presence_of(o, a_seeing, {}, false, all_codes), seeing);
  if (a_not_seeing) service_.host->route_shared(presence_of(o, a_not_seeing, {}, false, all_codes), not_seeing);
  route(presence_of(o, &o, o.real, false, self_codes));
}

void Room::show_occupants_to(const Occupant& viewer) {
  // The viewer's view of the others changed (it became a moderator of a
  // semi-anonymous room, or the room became non-anonymous): their presences
  // again, now with their real JIDs (§8: a moderator discovers them).
  for (auto& [real, other] : occupants_) {
    if (&other == &viewer || other.nick == viewer.nick || config_.presence_broadcast.count(other.role) == 0) continue;
    route(presence_of(other, &viewer, viewer.real, false, {}));
  }
}

void Room::store_presence(Occupant& o, parley::ElementView stanza) {
  o.presence = stanza.clone();
  o.presence.remove_children("x", ns_muc);
  o.presence.remove_children("x", ns_user);
  o.presence.remove_children("occupant-id", ns_oid);
  o.presence.remove_children("hats", ns_hats);  // only the room's hats are shown
}

void Room::create_by(parley::ElementView stanza, const std::string& from, const std::string& nick) {
  const std::string bare(parley::bare_jid(from));
  affiliations_[bare] = Affiliation::owner;
  creator_ = bare;
  // A client speaking the MUC protocol gets a locked room to configure or
  // accept (§10.1.1); one that does not (gc-1.0) an instant room.
  locked_ = stanza.child("x", ns_muc).has_value();
  join(stanza, from, nick, true);
}

void Room::on_presence(parley::ElementView stanza, const std::string& from, const std::string& nick) {
  const std::string type(stanza.attr("type").value_or(""));
  Occupant* o = by_real(from);
  if (type == "unavailable" || type == "error") {
    if (!o) return;
    // §10.1.3: the owner gone before it configured the room it created (lost
    // connection, or left): the room is destroyed, with <destroy/> (MUST).
    if (locked_) return destroy({});
    leave(from, {});
    return;
  }
  if (!type.empty()) return;  // subscriptions to a room: ignored
  if (nick.empty()) {
    // A presence to the room itself: no nickname (§7.2.1: jid-malformed).
    if (!o) error(stanza, "jid-malformed", "modify");
    return;
  }
  if (!o) return join(stanza, from, nick, false);
  // Each update or nick change is broadcast to every occupant: it counts
  // against the occupant's message rate. A nick change over it is refused
  // (the occupant stays under its nick); an update is not broadcast.
  if (!o->bucket.take(now_ms(), service_.rate_per_minute, service_.rate_burst)) {
    if (o->nick != nick) error(stanza, "resource-constraint", "wait", "too many changes");
    return;
  }
  if (o->nick != nick) return change_nick(stanza, *o, nick);
  if (auto x = stanza.child("x", ns_muc)) {
    // A join from a JID already in the room (a client that lost track, e.g.
    // after a reconnect with the same resource): it gets the whole join again.
    store_presence(*o, stanza);
    for (auto& [real, other] : occupants_) {
      if (&other == o || config_.presence_broadcast.count(other.role) == 0) continue;
      route(presence_of(other, o, from, false, {}));
    }
    std::vector<int> self_codes{110};
    if (config_.non_anonymous) self_codes.push_back(100);
    if (config_.logging) self_codes.push_back(170);
    broadcast_presence(*o, self_codes);
    send_history(*o, *x);
    send_subject(*o);
    return;
  }
  // A presence update (§7.7): broadcast as it is now.
  store_presence(*o, stanza);
  broadcast_presence(*o, {110});
}

void Room::join(parley::ElementView stanza, const std::string& from, const std::string& nick, bool created) {
  const std::string bare(parley::bare_jid(from));
  const Affiliation aff = affiliation_of(bare);
  auto x = stanza.child("x", ns_muc);
  if (aff == Affiliation::outcast) return error(stanza, "forbidden", "auth");
  if (locked_ && aff != Affiliation::owner) return error(stanza, "item-not-found", "cancel");
  if (config_.members_only && aff == Affiliation::none) return error(stanza, "registration-required", "auth");
  if (config_.password_protected && aff != Affiliation::owner) {
    std::string given = x ? x->child_text("password", ns_muc) : std::string();
    if (given != config_.secret) return error(stanza, "not-authorized", "auth");
  }
  if (nick_taken(nick, bare)) return error(stanza, "conflict", "cancel");
  const bool privileged = aff == Affiliation::owner || aff == Affiliation::admin;
  if (!privileged && static_cast<int64_t>(occupants_.size()) >= config_.max_users)
    return error(stanza, "service-unavailable", "wait");

  // Another session of the same account under this nick: this one joins it
  // (multi-session), with the role the nick has now.
  Occupant* sibling = by_nick(nick);
  Occupant& o = occupants_[from];
  o.nick = nick;
  o.real = from;
  o.bare = bare;
  o.role = sibling ? sibling->role : default_role(aff, config_.moderated);
  o.oid = occupant_id(secret_, bare);
  store_presence(o, stanza);
  nicks_[nick].insert(from);

  // §7.2.3: the present occupants to the newcomer, then the newcomer to them,
  // then its own presence last of the presences, with its status codes.
  for (auto& [real, other] : occupants_) {
    if (&other == &o || other.nick == nick || config_.presence_broadcast.count(other.role) == 0) continue;
    route(presence_of(other, &o, from, false, {}));
  }
  std::vector<int> self_codes{110};
  if (config_.non_anonymous) self_codes.push_back(100);
  if (config_.logging) self_codes.push_back(170);
  if (created) self_codes.push_back(201);
  broadcast_presence(o, self_codes);
  if (!created) send_history(o, x ? *x : parley::ElementView());
  send_subject(o);
}

void Room::send_history(const Occupant& o, parley::ElementView join_x) {
  HistoryRequest request;
  if (join_x) {
    if (auto h = join_x.child("history", ns_muc)) {
      auto number = [&](const char* name) -> std::optional<int64_t> {
        auto v = h->attr(name);
        if (!v) return std::nullopt;
        try {
          return std::max<int64_t>(0, std::stoll(std::string(*v)));
        } catch (...) {
          return std::nullopt;
        }
      };
      request.maxchars = number("maxchars");
      request.maxstanzas = number("maxstanzas");
      request.seconds = number("seconds");
      if (auto since = h->attr("since")) request.since_ms = parse_datetime_ms(*since);
    }
  }
  std::vector<HistoryMark> marks;
  marks.reserve(history_.size());
  for (const HistoryEntry& e : history_) marks.push_back(e.mark);
  for (std::size_t i = select_history(marks, request, now_ms(), service_.history_size); i < history_.size(); ++i) {
    parley::Element m = history_[i].message.clone();
    m.set_attr("to", o.real);
    m.add_child("delay", ns_delay).set_attr("from", jid_).set_attr(
        "stamp", parley::xep0082_stamp(history_[i].mark.ms));
    route(std::move(m));
  }
}

void Room::send_subject(const Occupant& o) {
  // §7.2.15: the subject last, an empty one if none was set.
  parley::Element m = element("message");
  m.set_attr("from", subject_nick_.empty() ? jid_ : occupant_jid(subject_nick_)).set_attr("to", o.real).set_attr(
      "type", "groupchat");
  auto s = m.add_child("subject", ns_client);
  if (!subject_.empty()) s.add_text(subject_);
  route(std::move(m));
}

void Room::change_nick(parley::ElementView stanza, Occupant& o, const std::string& nick) {
  if (nicks_.count(nick) || nick_taken(nick, o.bare)) return error(stanza, "conflict", "cancel");
  // A nick shared by several sessions moves only as a whole: not from one of them.
  if (sessions_of(o.nick).size() > 1)
    return error(stanza, "not-acceptable", "cancel", "the nickname is shared by other sessions of the account");
  // §7.6.3: unavailable with the new nick (303), then available under it.
  const bool shown = config_.presence_broadcast.count(o.role) > 0;
  if (shown) to_others(o, [&](const Occupant* viewer) { return presence_of(o, viewer, {}, true, {303}, nick); });
  route(presence_of(o, &o, o.real, true, {303, 110}, nick));
  drop_nick(o);
  o.nick = nick;
  nicks_[nick].insert(o.real);
  store_presence(o, stanza);
  broadcast_presence(o, {110});
}

void Room::leave(const std::string& real, std::vector<int> codes, const std::string& reason,
                 const std::string& actor, parley::ElementView destroy_el) {
  auto it = occupants_.find(real);
  if (it == occupants_.end()) return;
  Occupant& o = it->second;
  // One of several sessions under the nick: only it learns it left; the nick stays.
  const bool last = sessions_of(o.nick).size() <= 1;
  const bool shown = last && config_.presence_broadcast.count(o.role) > 0;
  auto make = [&](const Occupant* viewer, const std::vector<int>& c, const std::string& to) {
    parley::Element p = presence_of(o, viewer, to, true, c, {}, reason, actor);
    if (destroy_el)
      if (auto x = p.child("x", ns_user)) x->add_child(destroy_el.clone());
    return p;
  };
  if (shown) to_others(o, [&](const Occupant* viewer) { return make(viewer, codes, {}); });
  std::vector<int> self_codes = codes;
  self_codes.push_back(110);
  route(make(&o, self_codes, o.real));
  drop_nick(o);
  occupants_.erase(it);
}

}  // namespace muc
