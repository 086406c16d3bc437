// mod_muc: muc#admin (§8, §9, §10): the lists of roles and affiliations and
// their changes, with the permission rules of muc_logic.
#include "room.hpp"

namespace muc {

void Room::admin_iq(parley::ElementView iq, const std::string& from) {
  const std::string bare(parley::bare_jid(from));
  const Affiliation actor_aff = affiliation_of(bare);
  Occupant* actor = by_real(from);
  const Role actor_role = actor ? actor->role : Role::none;
  auto query = iq.child("query", ns_admin);
  if (!query) return error(iq, "bad-request", "modify");
  std::vector<parley::ElementView> items;
  for (auto item : query->children())
    if (item.name() == "item") items.push_back(item);
  if (items.empty()) return error(iq, "bad-request", "modify");

  if (iq.attr("type") == "get") {
    auto item = items.front();
    parley::Element result = parley::make_iq_result(iq);
    auto out = result.add_child("query", ns_admin);
    if (auto r = item.attr("role")) {
      auto role = parse_role(*r);
      if (!role || *role == Role::none) return error(iq, "bad-request", "modify");
      if (!may_list_role(actor_aff, actor_role, *role)) return error(iq, "forbidden", "auth");
      for (const auto& [real, o] : occupants_) {
        if (o.role != *role) continue;
        auto i = out.add_child("item", ns_admin);
        i.set_attr("role", to_string(o.role)).set_attr("affiliation", to_string(affiliation_of(o.bare)));
        i.set_attr("nick", o.nick).set_attr("jid", o.real);
      }
    } else if (auto a = item.attr("affiliation")) {
      auto aff = parse_affiliation(*a);
      if (!aff || *aff == Affiliation::none) return error(iq, "bad-request", "modify");
      if (!may_list_affiliation(actor_aff, actor_role, *aff, config_.get_member_list))
        return error(iq, "forbidden", "auth");
      for (const auto& [j, got] : affiliations_) {
        if (got != *aff) continue;
        auto i = out.add_child("item", ns_admin);
        i.set_attr("affiliation", to_string(got)).set_attr("jid", j);
        if (auto n = reserved_.find(j); n != reserved_.end()) i.set_attr("nick", n->second);
        if (auto r = reasons_.find(j); r != reasons_.end() && !r->second.empty())
          i.add_child("reason", ns_admin).add_text(r->second);
      }
    } else {
      return error(iq, "bad-request", "modify");
    }
    return route(std::move(result));
  }

  // A set: every item checked before any is applied (all or nothing).
  struct Change {
    bool is_role;
    std::string target;  // nick (role) or bare JID (affiliation)
    Role role;
    Affiliation aff;
    std::string reason;
    std::string nick;  // an affiliation's nick to reserve (§9.3)
  };
  std::vector<Change> changes;
  std::size_t owners = owner_count();
  for (auto item : items) {
    Change c{};
    c.reason = item.child_text("reason");
    if (auto r = item.attr("role")) {
      auto role = parse_role(*r);
      auto nick = item.attr("nick");
      auto jid = item.attr("jid");
      if (!role || (!nick && !jid)) return error(iq, "bad-request", "modify");
      // By nick, or by the occupant's real JID (§9.8 names moderators by JID):
      // the full JID, else any session of that bare JID.
      Occupant* target = nullptr;
      if (nick) {
        target = by_nick(std::string(*nick));
      } else if (auto prepared = service_.host->prepare_jid(*jid)) {
        target = by_real(*prepared);
        for (auto it = occupants_.begin(); !target && it != occupants_.end(); ++it)
          if (it->second.bare == *prepared) target = &it->second;
      }
      if (!target) return error(iq, "item-not-found", "cancel");
      std::string why = check_role_change(actor_aff, actor_role, affiliation_of(target->bare), target->role, *role,
                                          target->bare == bare);
      if (!why.empty()) return error(iq, why, why == "forbidden" ? "auth" : "cancel");
      c.is_role = true;
      c.target = target->nick;
      c.role = *role;
    } else if (auto a = item.attr("affiliation")) {
      auto aff = parse_affiliation(*a);
      auto j = item.attr("jid");
      auto nick = item.attr("nick");
      if (!aff || (!j && !nick)) return error(iq, "bad-request", "modify");
      std::string target;
      if (j) {
        auto prepared = service_.host->prepare_jid(*j);
        if (!prepared) return error(iq, "jid-malformed", "modify");
        target = std::string(parley::bare_jid(*prepared));
        // §9.3: with a JID, a nick given becomes the account's reserved nick.
        if (nick && *aff != Affiliation::none && *aff != Affiliation::outcast) {
          auto room_jid = service_.host->prepare_jid(jid_ + "/" + std::string(*nick));
          const std::size_t slash = room_jid ? room_jid->find('/') : std::string::npos;
          if (slash == std::string::npos || slash + 1 >= room_jid->size()) return error(iq, "jid-malformed", "modify");
          c.nick = room_jid->substr(slash + 1);
          if (nick_taken(c.nick, target)) return error(iq, "conflict", "cancel");
        }
      } else {
        // §9.3: by nick, for an occupant.
        Occupant* o = by_nick(std::string(*nick));
        if (!o) return error(iq, "item-not-found", "cancel");
        target = o->bare;
      }
      Affiliation current = affiliation_of(target);
      std::string why = check_affiliation_change(actor_aff, current, *aff, owners, target == bare);
      if (!why.empty()) return error(iq, why, why == "forbidden" ? "auth" : "cancel");
      if (current == Affiliation::owner && *aff != Affiliation::owner) --owners;
      if (current != Affiliation::owner && *aff == Affiliation::owner) ++owners;
      c.is_role = false;
      c.target = target;
      c.aff = *aff;
    } else {
      return error(iq, "bad-request", "modify");
    }
    changes.push_back(std::move(c));
  }
  std::size_t added = 0;
  for (const Change& c : changes)
    if (!c.is_role && c.aff != Affiliation::none && !affiliations_.count(c.target)) ++added;
  if (affiliations_.size() + added > service_.max_affiliations)
    return error(iq, "resource-constraint", "wait", "the room keeps no more affiliations");
  route(parley::make_iq_result(iq));
  const std::string actor_nick = actor ? actor->nick : std::string();
  for (const Change& c : changes) {
    if (c.is_role) {
      for (Occupant* o : sessions_of(c.target)) apply_role(*o, c.role, c.reason, actor_nick);
    } else {
      apply_affiliation(c.target, c.aff, c.reason, actor_nick);
      if (!c.nick.empty() && affiliation_of(c.target) == c.aff && !nick_taken(c.nick, c.target)) {
        if (auto old = reserved_.find(c.target); old != reserved_.end()) reserved_nicks_.erase(old->second);
        reserved_[c.target] = c.nick;
        reserved_nicks_[c.nick] = c.target;
      }
    }
  }
  if (config_.persistent) persist();
}

void Room::apply_role(Occupant& o, Role to, const std::string& reason, const std::string& actor) {
  if (to == Role::none) return leave(o.real, {307}, reason, actor);  // kick (§8.2)
  if (o.role == to) return;
  const bool saw_jids = jid_visible_to(&o);
  o.role = to;
  // Every occupant sees the new role (§8.3, §8.4, §9.6, §9.7).
  if (config_.presence_broadcast.count(o.role) > 0)
    to_others(o, [&](const Occupant* viewer) { return presence_of(o, viewer, {}, false, {}, {}, reason, actor); });
  route(presence_of(o, &o, o.real, false, {110}, {}, reason, actor));
  if (!saw_jids && jid_visible_to(&o)) show_occupants_to(o);
}

void Room::apply_affiliation(const std::string& bare, Affiliation to, const std::string& reason,
                             const std::string& actor, bool notify_absent) {
  const Affiliation before = affiliation_of(bare);
  if (to == Affiliation::none || to == Affiliation::outcast) {
    // A registered nick goes with the membership (§7.10).
    if (auto r = reserved_.find(bare); r != reserved_.end()) {
      reserved_nicks_.erase(r->second);
      reserved_.erase(r);
    }
  }
  if (to == Affiliation::none) {
    affiliations_.erase(bare);
    reasons_.erase(bare);
  } else {
    affiliations_[bare] = to;
    if (!reason.empty()) reasons_[bare] = reason;
    else reasons_.erase(bare);
  }
  std::vector<std::string> present;
  for (const auto& [real, o] : occupants_)
    if (o.bare == bare) present.push_back(real);
  if (present.empty() && notify_absent && before != to) {
    // Status 101: the account is not in the room; it learns of the change out
    // of band, in a message to its bare JID (registering, its own doing, not).
    parley::Element m = element("message");
    m.set_attr("from", jid_).set_attr("to", bare);
    auto x = m.add_child("x", ns_user);
    x.add_child("item", ns_user).set_attr("affiliation", to_string(to)).set_attr("jid", bare);
    x.add_child("status", ns_user).set_attr("code", "101");
    m.add_child("body", ns_client)
        .add_text("Your affiliation with " + jid_ + " is now " + std::string(to_string(to)) + ".");
    route(std::move(m));
  }
  for (const std::string& real : present) {
    Occupant* o = by_real(real);
    if (!o) continue;
    if (to == Affiliation::outcast) {
      leave(real, {301}, reason, actor);  // ban (§9.1)
      continue;
    }
    if (to == Affiliation::none && config_.members_only) {
      leave(real, {321}, reason, actor);  // no longer a member (§9.4)
      continue;
    }
    const bool saw_jids = jid_visible_to(o);
    o->role = default_role(to, config_.moderated);
    if (config_.presence_broadcast.count(o->role) > 0)
      to_others(*o, [&](const Occupant* viewer) { return presence_of(*o, viewer, {}, false, {}, {}, reason, actor); });
    route(presence_of(*o, o, o->real, false, {110}, {}, reason, actor));
    if (!saw_jids && jid_visible_to(o)) show_occupants_to(*o);
  }
}

}  // namespace muc
