// mod_muc: a room's messages: groupchat broadcast and history (§7.4), subject
// (§8.1), private messages (§7.5), status messages (§10.2.1).
#include "room.hpp"

namespace muc {

void Room::on_message(parley::ElementView stanza, const std::string& from, const std::string& nick) {
  const std::string type(stanza.attr("type").value_or("normal"));
  if (type == "error") {
    // An occupant's client refused what the room sent: it is gone (§7.4 note,
    // as ejabberd and Prosody do for a delivery error of a groupchat message).
    if (nick.empty() && by_real(from)) leave(from, {});
    return;
  }
  Occupant* o = by_real(from);
  if (!nick.empty()) {
    if (type == "groupchat") return error(stanza, "bad-request", "modify");  // §7.5: MUST
    if (!o) return error(stanza, "not-acceptable", "cancel");
    return private_message(stanza, *o, nick);
  }
  if (type != "groupchat") {
    // A normal message to the room: an invitation or a decline would be
    // mediated (§7.8.2, not done yet); anything else is refused.
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
  // One serialization per occupant: the SDK has no shared-buffer send (route
  // takes an element each), so each occupant gets its own copy.
  for (const auto& [real, viewer] : occupants_) {
    parley::Element copy = out.clone();
    copy.set_attr("to", real);
    route(std::move(copy));
  }
  if (has_body && service_.history_size > 0) {
    out.remove_attr("to");
    HistoryMark mark{now_ms(), out.serialize().size()};
    history_.push_back(HistoryEntry{std::move(out), mark});
    while (history_.size() > service_.history_size) history_.pop_front();
  }
}

void Room::private_message(parley::ElementView stanza, Occupant& sender, const std::string& nick) {
  Occupant* target = by_nick(nick);
  if (!target) return error(stanza, "item-not-found", "cancel");
  if (!may_send_pm(config_.allow_pm, sender.role)) return error(stanza, "forbidden", "auth");
  if (!sender.bucket.take(now_ms(), service_.rate_per_minute, service_.rate_burst))
    return error(stanza, "resource-constraint", "wait", "too many messages");
  parley::Element out = stanza.clone();
  out.set_attr("from", occupant_jid(sender.nick)).set_attr("to", target->real);
  out.remove_children("occupant-id", ns_oid);
  if (!out.child("x", ns_user)) out.add_child("x", ns_user);
  out.add_child("occupant-id", ns_oid).set_attr("id", sender.oid);
  route(std::move(out));
}

void Room::status_message(const std::vector<int>& codes) {
  for (const auto& [real, viewer] : occupants_) {
    parley::Element m = element("message");
    m.set_attr("from", jid_).set_attr("to", real).set_attr("type", "groupchat");
    auto x = m.add_child("x", ns_user);
    for (int code : codes) x.add_child("status", ns_user).set_attr("code", std::to_string(code));
    route(std::move(m));
  }
}

}  // namespace muc
