// mod_muc: registering with a room (XEP-0045 §7.10, XEP-0077 on the room
// JID): a registered account reserves a nickname and becomes a member; its
// reserved nick is its own at join and nick change (§7.12: conflict for
// anyone else) and is found with disco#info node x-roomuser-item.
#include "room.hpp"

namespace muc {

namespace {

constexpr const char* form_type_register = "http://jabber.org/protocol/muc#register";

void add_text_field(parley::ElementRef form, std::string_view var, std::string_view type, std::string_view label,
                    bool required, const std::string& value = {}) {
  auto f = form.add_child("field", ns_xdata);
  f.set_attr("var", var).set_attr("type", type).set_attr("label", label);
  if (required) f.add_child("required", ns_xdata);
  if (!value.empty()) f.add_child("value", ns_xdata).add_text(value);
}

}  // namespace

void Room::reserved_nick_info(parley::ElementView iq, const std::string& from) {
  // §7.12: the registered nick as the identity's name; an empty query if none
  // (also when asked from inside the room).
  parley::Element result = parley::make_iq_result(iq);
  auto q = result.add_child("query", ns_info);
  q.set_attr("node", "x-roomuser-item");
  auto it = reserved_.find(std::string(parley::bare_jid(from)));
  if (it != reserved_.end())
    q.add_child("identity", ns_info).set_attr("category", "conference").set_attr("name", it->second).set_attr(
        "type", "text");
  route(std::move(result));
}

void Room::register_iq(parley::ElementView iq, const std::string& from) {
  const std::string bare(parley::bare_jid(from));
  const Affiliation aff = affiliation_of(bare);
  auto query = iq.child("query", ns_register);
  if (!query) return error(iq, "bad-request", "modify");
  // Who may register: anyone not banned, and in a members-only room only
  // someone on its lists already (registering would otherwise let anyone in):
  // §7.10 not-allowed.
  if (aff == Affiliation::outcast || (config_.members_only && aff == Affiliation::none))
    return error(iq, "not-allowed", "cancel");
  auto mine = reserved_.find(bare);

  if (iq.attr("type") == "get") {
    // The registration form; a registered account gets <registered/> and its
    // nick in it (XEP-0077 §3.1), to change it.
    parley::Element result = parley::make_iq_result(iq);
    auto q = result.add_child("query", ns_register);
    if (mine != reserved_.end()) q.add_child("registered", ns_register);
    q.add_child("instructions", ns_register).add_text("Fill in the form to register a nickname with this room.");
    auto x = q.add_child("x", ns_xdata);
    x.set_attr("type", "form");
    x.add_child("title", ns_xdata).add_text("Registration with " + jid_);
    x.add_child("instructions", ns_xdata).add_text("Your nickname in this room is reserved for you.");
    auto type_field = x.add_child("field", ns_xdata);
    type_field.set_attr("var", "FORM_TYPE").set_attr("type", "hidden");
    type_field.add_child("value", ns_xdata).add_text(form_type_register);
    add_text_field(x, "muc#register_first", "text-single", "First Name", false);
    add_text_field(x, "muc#register_last", "text-single", "Last Name", false);
    add_text_field(x, "muc#register_roomnick", "text-single", "Desired Nickname", true,
                   mine != reserved_.end() ? mine->second : std::string());
    add_text_field(x, "muc#register_url", "text-single", "Your URL", false);
    add_text_field(x, "muc#register_email", "text-single", "Email Address", false);
    add_text_field(x, "muc#register_faqentry", "text-multi", "FAQ Entry", false);
    return route(std::move(result));
  }

  if (query->child("remove", ns_register)) {
    // Cancelling (XEP-0077 §3.2): the nick is free again, and the membership
    // registering gave is gone (an admin or owner keeps the affiliation).
    if (mine == reserved_.end()) return error(iq, "item-not-found", "cancel");
    reserved_nicks_.erase(mine->second);
    reserved_.erase(mine);
    route(parley::make_iq_result(iq));
    if (aff == Affiliation::member) apply_affiliation(bare, Affiliation::none, {}, {}, false);
    return persist();
  }

  auto x = query->child("x", ns_xdata);
  if (!x || x->attr("type") != "submit") return error(iq, "bad-request", "modify", "a muc#register form is expected");
  FormValues form = read_form(*x);
  auto type = form.find("FORM_TYPE");
  if (type == form.end() || type->second.empty() || type->second.front() != form_type_register)
    return error(iq, "bad-request", "modify", "not a muc#register form");
  auto nick_field = form.find("muc#register_roomnick");
  if (nick_field == form.end() || nick_field->second.empty() || nick_field->second.front().empty())
    return error(iq, "bad-request", "modify", "muc#register_roomnick is required");
  // The nick as the room JID's resource (resourceprep), as a join would use it.
  auto prepared = service_.host->prepare_jid(jid_ + "/" + nick_field->second.front());
  const std::size_t slash = prepared ? prepared->find('/') : std::string::npos;
  if (slash == std::string::npos || slash + 1 >= prepared->size())
    return error(iq, "bad-request", "modify", "not a valid nickname");
  const std::string nick = prepared->substr(slash + 1);
  // Reserved by another account, or in use by another account now: §7.10 conflict.
  if (nick_taken(nick, bare)) return error(iq, "conflict", "cancel");
  if (aff == Affiliation::none && affiliations_.size() >= service_.max_affiliations)
    return error(iq, "resource-constraint", "wait", "the room keeps no more affiliations");
  if (mine != reserved_.end()) reserved_nicks_.erase(mine->second);
  reserved_[bare] = nick;
  reserved_nicks_[nick] = bare;
  route(parley::make_iq_result(iq));
  // §7.10: registering makes a member (its presence in the room says so).
  if (aff == Affiliation::none) apply_affiliation(bare, Affiliation::member, {}, {}, false);
  persist();
}

}  // namespace muc
