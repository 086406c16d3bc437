// mod_muc: a room's iqs: disco (§6.4), self-ping (XEP-0410), the owner's
// configuration and destruction (§10), the admin and moderator lists and
// changes of role and affiliation (§8, §9).
#include "room.hpp"

namespace muc {

FormValues read_form(parley::ElementView x) {
  FormValues out;
  for (auto field : x.children()) {
    if (field.name() != "field") continue;
    auto var = field.attr("var");
    if (!var) continue;
    std::vector<std::string>& values = out[std::string(*var)];
    for (auto v : field.children())
      if (v.name() == "value") values.push_back(v.text());
  }
  return out;
}

namespace {

void add_field(parley::ElementRef form, std::string_view var, std::string_view type, std::string_view label,
               const std::vector<std::string>& values) {
  auto f = form.add_child("field", ns_xdata);
  f.set_attr("var", var);
  if (!type.empty()) f.set_attr("type", type);
  if (!label.empty()) f.set_attr("label", label);
  for (const std::string& v : values) f.add_child("value", ns_xdata).add_text(v);
}

void add_options(parley::ElementRef form, std::string_view var, const std::vector<std::string>& options) {
  for (auto f : form.children()) {
    if (f.name() != "field" || f.attr("var") != var) continue;
    for (const std::string& o : options) f.add_child("option", ns_xdata).add_child("value", ns_xdata).add_text(o);
  }
}

std::vector<std::string> role_values(const std::set<Role>& roles) {
  std::vector<std::string> out;
  for (Role r : roles) out.emplace_back(to_string(r));
  return out;
}

std::string b(bool v) { return v ? "1" : "0"; }

}  // namespace

void Room::on_iq(parley::ElementView iq, const std::string& from, const std::string& nick) {
  const std::string type(iq.attr("type").value_or(""));
  if (type == "result" || type == "error") {
    if (!nick.empty()) proxied_answer(iq, from);
    return;
  }
  auto payload = iq.first_child();
  if (!payload) return error(iq, "bad-request", "modify");
  if (!nick.empty()) {
    // XEP-0410: a ping to one's own occupant JID is answered by the room.
    Occupant* self = by_real(from);
    if (!self) {
      // XEP-0045 #disco-occupant: a disco query to an occupant JID from a non-occupant is
      // returned with bad-request; any other iq gets not-acceptable (§7.5's
      // rule for private messages).
      const bool disco = payload->xmlns() == ns_info || payload->xmlns() == ns_items;
      return error(iq, disco ? "bad-request" : "not-acceptable", disco ? "modify" : "cancel");
    }
    if (type == "get" && payload->name() == "ping" && payload->xmlns() == ns_ping) {
      if (self->nick == nick) return route(parley::make_iq_result(iq));
    }
    Occupant* target = by_nick(nick);
    if (!target) return error(iq, "item-not-found", "cancel");
    return proxy_iq(iq, *self, *target);
  }
  const std::string_view xmlns = payload->xmlns();
  if (type == "get" && xmlns == ns_info && payload->attr("node") == "x-roomuser-item")
    return reserved_nick_info(iq, from);
  if (xmlns == ns_register) return register_iq(iq, from);
  if (type == "get" && xmlns == ns_info) return disco_info(iq);
  if (type == "get" && xmlns == ns_items) {
    parley::Element result = parley::make_iq_result(iq);
    auto q = result.add_child("query", ns_items);
    // XEP-0050 §2.2: the room's commands (XEP-0317 hats).
    if (auto node = payload->attr("node"); node == "http://jabber.org/protocol/commands") {
      q.set_attr("node", *node);
      command_items(q);
    }
    return route(std::move(result));
  }
  if (xmlns == "http://jabber.org/protocol/commands") return hats_command(iq, from);
  if (type == "get" && xmlns == ns_ping) return route(parley::make_iq_result(iq));
  if (xmlns == ns_owner) return owner_iq(iq, from);
  if (xmlns == ns_admin) return admin_iq(iq, from);
  if (xmlns == "urn:xmpp:mam:2") return archive_iq(iq, from);
  if (xmlns == "vcard-temp" && (type == "get" || type == "set")) return vcard_iq(iq, from);
  error(iq, "service-unavailable", "cancel");
}

// An iq between occupants (e.g. a vCard or a
// version request) goes to the target's real JID from the sender's occupant
// JID under an id of the room's; its answer goes back the same way. Pending
// requests are bounded: the oldest is forgotten (its answer then dropped).
void Room::proxy_iq(parley::ElementView iq, const Occupant& sender, const Occupant& target) {
  const std::string id = "muc" + std::to_string(++proxy_counter_);
  proxied_[id] = ProxiedIq{sender.real, std::string(iq.attr("id").value_or("")), target.real, target.nick};
  proxy_order_.push_back(id);
  while (proxy_order_.size() > 1000) {
    proxied_.erase(proxy_order_.front());
    proxy_order_.pop_front();
  }
  parley::Element out = iq.clone();
  out.set_attr("from", occupant_jid(sender.nick)).set_attr("to", target.real).set_attr("id", id);
  route(std::move(out));
}

void Room::proxied_answer(parley::ElementView iq, const std::string& from) {
  auto it = proxied_.find(std::string(iq.attr("id").value_or("")));
  // Only the asked occupant's answer is taken.
  if (it == proxied_.end() || it->second.target_real != from) return;
  ProxiedIq p = std::move(it->second);
  proxied_.erase(it);
  parley::Element out = iq.clone();
  out.set_attr("from", occupant_jid(p.target_nick)).set_attr("to", p.requester).set_attr("id", p.original_id);
  route(std::move(out));
}

void Room::disco_info(parley::ElementView iq) {
  parley::Element result = parley::make_iq_result(iq);
  auto q = result.add_child("query", ns_info);
  q.add_child("identity", ns_info)
      .set_attr("category", "conference")
      .set_attr("type", "text")
      .set_attr("name", config_.name.empty() ? jid_.substr(0, jid_.find('@')) : config_.name);
  std::vector<std::string> features{ns_muc,
                                    config_.public_room ? "muc_public" : "muc_hidden",
                                    config_.persistent ? "muc_persistent" : "muc_temporary",
                                    config_.members_only ? "muc_membersonly" : "muc_open",
                                    config_.moderated ? "muc_moderated" : "muc_unmoderated",
                                    config_.non_anonymous ? "muc_nonanonymous" : "muc_semianonymous",
                                    config_.password_protected ? "muc_passwordprotected" : "muc_unsecured",
                                    ns_oid,
                                    "urn:xmpp:ping",
                                    "urn:xmpp:sid:0",
                                    ns_register,
                                    "vcard-temp",
                                    ns_hats,
                                    "http://jabber.org/protocol/commands",
                                    ns_info};
  if (config_.logging && service_.host->supports_archive()) features.push_back("urn:xmpp:mam:2");
  for (const std::string& f : features) q.add_child("feature", ns_info).set_attr("var", f);
  auto form = q.add_child("x", ns_xdata);
  form.set_attr("type", "result");
  add_field(form, "FORM_TYPE", "hidden", "", {"http://jabber.org/protocol/muc#roominfo"});
  add_field(form, "muc#roomconfig_roomname", "", "Name", {config_.name});
  add_field(form, "muc#roominfo_description", "", "Description", {config_.description});
  add_field(form, "muc#roominfo_occupants", "", "Number of occupants", {std::to_string(occupants_.size())});
  add_field(form, "muc#roominfo_subject", "", "Subject", {subject_});
  add_field(form, "muc#roominfo_subjectmod", "boolean", "Occupants may change the subject", {b(config_.change_subject)});
  if (!config_.lang.empty()) add_field(form, "muc#roominfo_lang", "", "Language", {config_.lang});
  add_field(form, "muc#maxhistoryfetch", "", "Maximum history", {std::to_string(service_.history_size)});
  add_field(form, "muc#roomconfig_allowinvites", "boolean", "Occupants may invite", {b(config_.allow_invites)});
  add_field(form, "muc#roomconfig_allowpm", "list-single", "Who may send private messages",
            {std::string(to_string(config_.allow_pm))});
  add_field(form, "muc#roomconfig_changesubject", "boolean", "Occupants may change the subject",
            {b(config_.change_subject)});
  // XEP-0486: absent when the room has no avatar.
  if (auto hashes = avatar_hashes(); !hashes.empty())
    add_field(form, "muc#roominfo_avatarhash", "text-multi", "Avatar hash", hashes);
  route(std::move(result));
}

parley::Element Room::config_form() const {
  parley::Element x = element("x", ns_xdata);
  x.set_attr("type", "form");
  x.add_child("title", ns_xdata).add_text("Configuration of " + jid_);
  add_field(x, "FORM_TYPE", "hidden", "", {"http://jabber.org/protocol/muc#roomconfig"});
  add_field(x, "muc#roomconfig_roomname", "text-single", "Name", {config_.name});
  add_field(x, "muc#roomconfig_roomdesc", "text-single", "Description", {config_.description});
  add_field(x, "muc#roomconfig_lang", "text-single", "Language", {config_.lang});
  add_field(x, "muc#roomconfig_persistentroom", "boolean", "Persistent", {b(config_.persistent)});
  add_field(x, "muc#roomconfig_publicroom", "boolean", "Listed in the directory", {b(config_.public_room)});
  add_field(x, "muc#roomconfig_membersonly", "boolean", "Members only", {b(config_.members_only)});
  add_field(x, "muc#roomconfig_moderatedroom", "boolean", "Moderated", {b(config_.moderated)});
  add_field(x, "muc#roomconfig_passwordprotectedroom", "boolean", "Password protected",
            {b(config_.password_protected)});
  add_field(x, "muc#roomconfig_roomsecret", "text-private", "Password", {config_.secret});
  add_field(x, "muc#roomconfig_maxusers", "list-single", "Maximum occupants", {std::to_string(config_.max_users)});
  add_field(x, "muc#roomconfig_whois", "list-single", "Who may see real JIDs",
            {config_.non_anonymous ? "anyone" : "moderators"});
  add_options(x, "muc#roomconfig_whois", {"moderators", "anyone"});
  add_field(x, "muc#roomconfig_allowinvites", "boolean", "Occupants may invite", {b(config_.allow_invites)});
  add_field(x, "muc#roomconfig_changesubject", "boolean", "Occupants may change the subject",
            {b(config_.change_subject)});
  add_field(x, "muc#roomconfig_enablelogging", "boolean", "Logged", {b(config_.logging)});
  add_field(x, "muc#roomconfig_presencebroadcast", "list-multi", "Roles whose presence is broadcast",
            role_values(config_.presence_broadcast));
  add_options(x, "muc#roomconfig_presencebroadcast", {"moderator", "participant", "visitor"});
  add_field(x, "muc#roomconfig_getmemberlist", "list-multi", "Roles that may see the member list",
            role_values(config_.get_member_list));
  add_options(x, "muc#roomconfig_getmemberlist", {"moderator", "participant", "visitor"});
  add_field(x, "muc#roomconfig_allowpm", "list-single", "Who may send private messages",
            {std::string(to_string(config_.allow_pm))});
  add_options(x, "muc#roomconfig_allowpm", {"anyone", "participants", "moderators", "none"});
  std::vector<std::string> admins, owners;
  for (const auto& [bare, a] : affiliations_) {
    if (a == Affiliation::admin) admins.push_back(bare);
    if (a == Affiliation::owner) owners.push_back(bare);
  }
  add_field(x, "muc#roomconfig_roomadmins", "jid-multi", "Admins", admins);
  add_field(x, "muc#roomconfig_roomowners", "jid-multi", "Owners", owners);
  return x;
}

void Room::owner_iq(parley::ElementView iq, const std::string& from) {
  const std::string bare(parley::bare_jid(from));
  if (affiliation_of(bare) != Affiliation::owner) return error(iq, "forbidden", "auth");
  auto query = iq.child("query", ns_owner);
  if (!query) return error(iq, "bad-request", "modify");
  if (iq.attr("type") == "get") {
    parley::Element result = parley::make_iq_result(iq);
    result.add_child("query", ns_owner).add_child(config_form());
    return route(std::move(result));
  }
  if (auto d = query->child("destroy", ns_owner)) {
    route(parley::make_iq_result(iq));
    return destroy(*d);
  }
  auto x = query->child("x", ns_xdata);
  if (!x) return error(iq, "bad-request", "modify");
  const std::string form_type(x->attr("type").value_or(""));
  if (form_type == "cancel") {
    route(parley::make_iq_result(iq));
    // §10.1.3: cancelling the first configuration destroys the new room.
    if (locked_) destroy({});
    return;
  }
  if (form_type != "submit") return error(iq, "bad-request", "modify");
  FormValues form = read_form(*x);
  if (auto t = form.find("FORM_TYPE");
      t != form.end() && (t->second.empty() || t->second.front() != "http://jabber.org/protocol/muc#roomconfig"))
    return error(iq, "bad-request", "modify", "not a muc#roomconfig form");
  ConfigChange change;
  const bool was_persistent = config_.persistent;
  if (auto err = apply_config(config_, form, service_.max_users, change))
    return error(iq, "not-acceptable", "modify", *err);
  if (change.has_owners && change.owners.empty()) return error(iq, "conflict", "cancel", "a room keeps an owner");
  if (change.admins.size() + change.owners.size() + affiliations_.size() > service_.max_affiliations)
    return error(iq, "resource-constraint", "wait", "the room keeps no more affiliations");
  const bool was_locked = locked_;
  locked_ = false;
  route(parley::make_iq_result(iq));
  if (change.has_owners || change.has_admins) {
    // The listed owners/admins replace the present ones (admins and owners no
    // longer listed become members, as ejabberd does).
    auto replace = [&](bool present, const std::vector<std::string>& list, Affiliation a) {
      if (!present) return;
      std::set<std::string> wanted;
      for (const std::string& j : list) {
        auto p = service_.host->prepare_jid(j);
        if (p) wanted.insert(std::string(parley::bare_jid(*p)));
      }
      std::vector<std::string> drop;
      for (const auto& [bare_jid, aff] : affiliations_)
        if (aff == a && !wanted.count(bare_jid)) drop.push_back(bare_jid);
      for (const std::string& j : wanted)
        if (affiliation_of(j) != a) apply_affiliation(j, a, {}, {});
      for (const std::string& j : drop) apply_affiliation(j, Affiliation::member, {}, {});
    };
    replace(change.has_owners, change.owners, Affiliation::owner);
    replace(change.has_admins, change.admins, Affiliation::admin);
  }
  after_config(change, was_locked);
  if (config_.persistent && !was_persistent) save_history_from_start();
}

void Room::after_config(const ConfigChange& change, bool was_locked) {
  if (config_.persistent) persist();
  else if (service_.forget) service_.forget(jid_);
  if (was_locked) return;
  // §10.2.1: the occupants learn of the change.
  std::vector<int> codes;
  // 104 for a change that is not about privacy; 170-173 for one that is
  // (a change of whois or logging alone is not a 104).
  if (change.not_privacy) codes.push_back(104);
  if (change.whois_changed) codes.push_back(config_.non_anonymous ? 172 : 173);
  if (change.logging_changed) codes.push_back(config_.logging ? 170 : 171);
  if (!codes.empty()) status_message(codes);
  if (change.whois_changed && config_.non_anonymous) {
    // Made non-anonymous (172): who could not see real JIDs sees them now.
    for (auto& [real, o] : occupants_)
      if (o.role != Role::moderator) show_occupants_to(o);
  }
  if (change.became_members_only) {
    // §9.4 / §10.2: who is not a member leaves (322).
    std::vector<std::string> out;
    for (const auto& [real, o] : occupants_)
      if (affiliation_of(o.bare) == Affiliation::none) out.push_back(real);
    for (const std::string& real : out) leave(real, {322});
  }
}

void Room::destroy(parley::ElementView destroy_el) {
  parley::Element d = element("destroy", ns_user);
  if (destroy_el) {
    if (auto j = destroy_el.attr("jid")) d.set_attr("jid", *j);
    std::string reason = destroy_el.child_text("reason");
    if (!reason.empty()) d.add_child("reason", ns_user).add_text(reason);
    std::string password = destroy_el.child_text("password");
    if (!password.empty()) d.add_child("password", ns_user).add_text(password);
  }
  // §10.9: each occupant gets its own unavailable presence with the destroy.
  for (auto& [real, o] : occupants_) {
    parley::Element p = presence_of(o, &o, real, true, {110});
    if (auto x = p.child("x", ns_user)) {
      if (auto i = x->child("item", ns_user)) i->set_attr("affiliation", "none");  // §10.9
      x->add_child(d.clone());
    }
    route(std::move(p));
  }
  occupants_.clear();
  nicks_.clear();
  destroyed_ = true;
  if (service_.forget) service_.forget(jid_);
}

}  // namespace muc
