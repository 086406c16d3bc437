// mod_muc: a room's messages: groupchat broadcast and history (§7.4), subject
// (§8.1), private messages (§7.5), status messages (§10.2.1).
#include "room.hpp"
#include "room_push.hpp"

namespace muc {

void Room::on_message(parley::ElementView stanza, const std::string& from, const std::string& nick) {
  const std::string type(stanza.attr("type").value_or("normal"));
  if (type == "error") {
    // An occupant's client refused what the room sent (a groupchat message
    // from room/nick, or a private one): it is gone, removed by the service as
    // a kick (307) because of an error reply (333).
    if (by_real(from)) leave(from, {307, 333});
    return;
  }
  Occupant* o = by_real(from);
  if (!nick.empty()) {
    if (type == "groupchat") return error(stanza, "bad-request", "modify");  // §7.5: MUST
    if (!o) return error(stanza, "not-acceptable", "cancel");
    return private_message(stanza, *o, nick);
  }
  if (type != "groupchat") {
    // A normal message to the room: a mediated invitation or decline
    // (§7.8.2), a voice request or its approval (§7.13); nothing else.
    if (auto x = stanza.child("x", ns_user)) {
      if (auto invite = x->child("invite", ns_user)) return mediated_invite(stanza, from, *invite);
      if (auto decline = x->child("decline", ns_user)) return mediated_decline(stanza, from, *decline);
    }
    if (auto form = stanza.child("x", ns_xdata)) return voice_request(stanza, from, *form);
    return error(stanza, "bad-request", "modify", "only groupchat messages are sent to the room");
  }
  if (!o) return error(stanza, "not-acceptable", "cancel", "only occupants may send messages to the room");
  groupchat(stanza, *o);
}

void Room::groupchat(parley::ElementView stanza, Occupant& sender) {
  if (sender.role == Role::visitor || sender.role == Role::none) return error(stanza, "forbidden", "auth");
  if (!sender.bucket.take(now_ms(), service_.rate_per_minute, service_.rate_burst))
    return error(stanza, "resource-constraint", "wait", "too many messages");
  const bool has_body = stanza.child("body").has_value();
  auto subject = stanza.child("subject");
  if (subject && !has_body) {
    // §8.1: a subject change, by anyone when the room allows it, else by moderators.
    if (!config_.change_subject && sender.role != Role::moderator) return error(stanza, "forbidden", "auth");
    subject_ = subject->text();
    subject_nick_ = sender.nick;
    persist();
  }
  parley::Element out = stanza.clone();
  out.set_attr("from", occupant_jid(sender.nick));
  // XEP-0421: an occupant-id the sender put there is not the room's.
  out.remove_children("occupant-id", ns_oid);
  out.add_child("occupant-id", ns_oid).set_attr("id", sender.oid);
  // XEP-0359: the room's id of the message (a client's own claim removed),
  // the id of its archive entry when the room is logged.
  {
    std::vector<parley::Element> others;  // stanza ids of other entities stay
    for (auto c : out.children())
      if (c.name() == "stanza-id" && c.xmlns() == "urn:xmpp:sid:0" && c.attr("by") != jid_) others.push_back(c.clone());
    out.remove_children("stanza-id", "urn:xmpp:sid:0");
    for (auto& c : others) out.add_child(std::move(c));
  }
  if (has_body) {
    if (uint64_t id = archive(out, sender.nick))
      out.add_child("stanza-id", "urn:xmpp:sid:0").set_attr("id", service_.archive_ids.encode(id)).set_attr("by", jid_);
  }
  // Serialized once by the host and shared by every occupant's delivery,
  // only 'to' differing (route_shared).
  route_to_all(out.clone());
  wake_absent_members(service_, affiliations_, occupants_, out);  // room_push.hpp (issue 14)
  if (has_body) remember(std::move(out));
}

void Room::route_to_all(parley::Element&& stanza) {
  std::vector<std::string> to;
  to.reserve(occupants_.size());
  for (const auto& [real, o] : occupants_) to.push_back(real);
  service_.host->route_shared(std::move(stanza), to);
}

void Room::remember(parley::Element&& message) {
  if (service_.history_size == 0) return;
  message.remove_attr("to");
  HistoryMark mark{now_ms(), message.serialize().size()};
  history_.push_back(HistoryEntry{std::move(message), mark, ++history_seq_});
  while (history_.size() > service_.history_size) history_.pop_front();
  // A persistent room's history survives a restart (the map store).
  if (config_.persistent && service_.save_history)
    service_.save_history(jid_, history_.back(), history_.front().seq);
}

void Room::save_history_from_start() {
  if (!service_.save_history || history_.empty()) return;
  for (const HistoryEntry& e : history_) service_.save_history(jid_, e, history_.front().seq);
}

void Room::private_message(parley::ElementView stanza, Occupant& sender, const std::string& nick) {
  Occupant* target = by_nick(nick);
  if (!target) return error(stanza, "item-not-found", "cancel");
  if (!may_send_pm(config_.allow_pm, sender.role)) return error(stanza, "forbidden", "auth");
  if (!sender.bucket.take(now_ms(), service_.rate_per_minute, service_.rate_burst))
    return error(stanza, "resource-constraint", "wait", "too many messages");
  parley::Element out = stanza.clone();
  out.set_attr("from", occupant_jid(sender.nick));
  out.remove_children("occupant-id", ns_oid);
  if (!out.child("x", ns_user)) out.add_child("x", ns_user);
  out.add_child("occupant-id", ns_oid).set_attr("id", sender.oid);
  std::vector<std::string> to;  // every session of the occupant
  for (Occupant* session : sessions_of(nick)) to.push_back(session->real);
  service_.host->route_shared(std::move(out), to);
}

void Room::mediated_invite(parley::ElementView stanza, const std::string& from, parley::ElementView invite) {
  Occupant* sender = by_real(from);
  if (!sender) return error(stanza, "not-acceptable", "cancel", "only occupants may invite");
  const Affiliation aff = affiliation_of(sender->bare);
  const bool privileged = aff == Affiliation::owner || aff == Affiliation::admin;
  // §7.8.2: without muc#roomconfig_allowinvites only admins and owners invite
  // (and moderators, in a room that is not members-only).
  if (!config_.allow_invites && !privileged && (config_.members_only || sender->role != Role::moderator))
    return error(stanza, "forbidden", "auth");
  auto to = invite.attr("to");
  std::optional<std::string> invitee = to ? service_.host->prepare_jid(*to) : std::nullopt;
  if (!invitee) return error(stanza, "jid-malformed", "modify");
  const std::string invitee_bare(parley::bare_jid(*invitee));
  if (affiliation_of(invitee_bare) == Affiliation::outcast) return error(stanza, "forbidden", "auth");
  if (config_.members_only && affiliation_of(invitee_bare) == Affiliation::none &&
      affiliations_.size() < service_.max_affiliations) {
    // The service adds the invitee to the member list (§7.8.2, a MAY).
    affiliations_[invitee_bare] = Affiliation::member;
    persist();
  }
  // Kept so that a decline goes back to the inviter (and only then): bounded.
  invitations_[invitee_bare] = sender->real;
  while (invitations_.size() > 100) invitations_.erase(invitations_.begin());
  parley::Element m = element("message");
  m.set_attr("from", jid_).set_attr("to", *invitee);
  if (auto id = stanza.attr("id")) m.set_attr("id", *id);
  auto x = m.add_child("x", ns_user);
  auto out = x.add_child("invite", ns_user);
  out.set_attr("from", config_.non_anonymous ? sender->real : occupant_jid(sender->nick));
  std::string reason = invite.child_text("reason");
  if (!reason.empty()) out.add_child("reason", ns_user).add_text(reason);
  if (config_.password_protected) x.add_child("password", ns_user).add_text(config_.secret);
  m.add_child("body", ns_client).add_text("You are invited to " + jid_ + (reason.empty() ? "" : ": " + reason));
  route(std::move(m));
}

void Room::mediated_decline(parley::ElementView stanza, const std::string& from, parley::ElementView decline) {
  const std::string bare(parley::bare_jid(from));
  auto it = invitations_.find(bare);
  if (it == invitations_.end()) return error(stanza, "not-acceptable", "cancel", "no invitation to decline");
  const std::string inviter = it->second;
  invitations_.erase(it);
  parley::Element m = element("message");
  m.set_attr("from", jid_).set_attr("to", inviter);
  auto out = m.add_child("x", ns_user).add_child("decline", ns_user);
  out.set_attr("from", bare);
  std::string reason = decline.child_text("reason");
  if (!reason.empty()) out.add_child("reason", ns_user).add_text(reason);
  route(std::move(m));
}

void Room::voice_request(parley::ElementView stanza, const std::string& from, parley::ElementView form) {
  std::string form_type, role, nick, allow;
  for (auto f : form.children()) {
    if (f.name() != "field") continue;
    auto var = f.attr("var").value_or("");
    std::string value = f.child_text("value");
    if (var == "FORM_TYPE") form_type = value;
    else if (var == "muc#role") role = value;
    else if (var == "muc#roomnick") nick = value;
    else if (var == "muc#request_allow") allow = value;
  }
  if (form_type != "http://jabber.org/protocol/muc#request" || form.attr("type") != "submit")
    return error(stanza, "bad-request", "modify");
  Occupant* sender = by_real(from);
  if (!sender) return error(stanza, "not-acceptable", "cancel");
  if (sender->role == Role::moderator && !nick.empty()) {
    // §8.6: a moderator's answer to a request.
    if (allow != "1" && allow != "true") return;
    Occupant* target = by_nick(nick);
    if (!target || target->role != Role::visitor) return;
    std::string why = check_role_change(affiliation_of(sender->bare), sender->role, affiliation_of(target->bare),
                                        target->role, Role::participant);
    if (!why.empty()) return error(stanza, why, why == "forbidden" ? "auth" : "cancel");
    for (Occupant* session : sessions_of(nick)) apply_role(*session, Role::participant, {}, sender->nick);
    return;
  }
  // §7.13: a visitor asks; every moderator gets the approval form.
  if (sender->role != Role::visitor || role != "participant") return error(stanza, "bad-request", "modify");
  for (const auto& [real, o] : occupants_) {
    if (o.role != Role::moderator) continue;
    parley::Element m = element("message");
    m.set_attr("from", jid_).set_attr("to", real);
    auto x = m.add_child("x", ns_xdata);
    x.set_attr("type", "form");
    x.add_child("title", ns_xdata).add_text("Voice request");
    auto field = [&](const char* var, const char* type, const char* label, const std::string& value) {
      auto f = x.add_child("field", ns_xdata);
      f.set_attr("var", var).set_attr("type", type);
      if (label[0]) f.set_attr("label", label);
      f.add_child("value", ns_xdata).add_text(value);
    };
    field("FORM_TYPE", "hidden", "", "http://jabber.org/protocol/muc#request");
    field("muc#role", "list-single", "Requested role", "participant");
    field("muc#jid", "jid-single", "User ID", sender->real);
    field("muc#roomnick", "text-single", "Room Nickname", sender->nick);
    field("muc#request_allow", "boolean", "Grant voice to this person?", "false");
    route(std::move(m));
  }
}

void Room::status_message(const std::vector<int>& codes) {
  parley::Element m = element("message");
  m.set_attr("from", jid_).set_attr("type", "groupchat");
  auto x = m.add_child("x", ns_user);
  for (int code : codes) x.add_child("status", ns_user).set_attr("code", std::to_string(code));
  route_to_all(std::move(m));
}

}  // namespace muc
