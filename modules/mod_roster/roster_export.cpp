// The roster in XEP-0227 export and import (issue 11): the account's
// <query xmlns='jabber:iq:roster'/> with one <item/> per contact, as a roster result
// carries them (jid, name, subscription, ask, approved, groups). Pending inbound
// requests are not part of the format and stay behind.
#include <algorithm>
#include <memory>
#include <unordered_set>

#include "mod_roster.hpp"

namespace mod_roster {

void ModRoster::on_account_export(const parley::Event& event) {
  if (event.host() != domain_) return;
  parley::AccountData data(host(), event);
  if (!data.held()) return;
  std::string user(event.user());
  // In the user's line (exclusive): no change of this roster is half-written meanwhile.
  exclusive(bare_of(user), [this, data, user](TurnPtr turn) {
    load_roster(user, [this, turn, data](std::optional<StoredRoster> roster) {
      if (!roster) return data.fail("reading the roster failed");
      if (roster->items.empty()) return data.done();
      std::sort(roster->items.begin(), roster->items.end(),
                [](const RosterItem& a, const RosterItem& b) { return a.ver != b.ver ? a.ver < b.ver : a.jid < b.jid; });
      parley::Element query = host().element("query", ns_roster);
      for (const RosterItem& item : roster->items) query.add_child(item_element(item));
      data.add(query);
      const std::size_t n = roster->items.size();
      data.done(std::to_string(n) + " roster item" + (n == 1 ? "" : "s"));
    });
  });
}

void ModRoster::on_account_import(const parley::Event& event) {
  if (event.host() != domain_) return;
  auto user_el = event.acc();
  auto query = user_el ? user_el->child("query", ns_roster) : std::nullopt;
  if (!query || query->child_count() == 0) return;
  parley::AccountData data(host(), event);
  if (!data.held()) return;
  std::string user(event.user());
  // Each item checked as a roster set checks it (the limits of this server), with the
  // subscription state of the file (RFC 6121: none, to, from, both; ask; approved).
  auto items = std::make_shared<std::vector<RosterItem>>();
  std::unordered_set<std::string> seen;
  std::size_t bytes = 0;
  for (parley::ElementView child : query->children()) {
    if (child.name() != "item" || child.xmlns() != ns_roster) continue;
    RosterSetRequest request;
    request.item_count = 1;
    if (auto jid = child.attr("jid")) request.jid = prepare(*jid);
    if (auto name = child.attr("name")) request.name = std::string(*name);
    for (parley::ElementView g : child.children())
      if (g.name() == "group" && g.xmlns() == ns_roster) request.groups.push_back(g.text());
    SetCheck check = check_roster_set(request, bare_of(user), limits_);
    if (check.error)
      return data.fail("roster item '" + std::string(child.attr("jid").value_or("")) + "': " + check.error->text);
    if (!seen.insert(check.set->contact).second) continue;
    RosterItem item;
    item.jid = check.set->contact;
    item.name = check.set->name;
    item.groups = check.set->groups;
    std::string sub(child.attr("subscription").value_or("none"));
    auto parsed = parse_subscription(sub);
    if (!parsed) return data.fail("roster item '" + item.jid + "': subscription '" + sub + "'");
    item.state.sub = *parsed;
    item.state.pending_out = child.attr("ask") == std::optional<std::string_view>("subscribe");
    auto approved = child.attr("approved");
    item.state.approved = approved && (*approved == "true" || *approved == "1");
    item.ver = static_cast<int64_t>(items->size()) + 1;
    bytes += item_cost(item.jid, item.name, encode_groups(item.groups));
    items->push_back(std::move(item));
  }
  if (static_cast<int64_t>(items->size()) > max_roster_size_)
    return data.fail("the roster exceeds max_roster_size (" + std::to_string(max_roster_size_) + ")");
  if (static_cast<int64_t>(bytes) > max_roster_bytes_)
    return data.fail("the roster exceeds max_roster_bytes (" + std::to_string(max_roster_bytes_) + ")");
  // In the user's line: after USER_REGISTERED's clearing of rows left under the name.
  exclusive(bare_of(user), [this, data, user, items](TurnPtr turn) {
    Change change;
    for (const RosterItem& item : *items) put_item(change, item);
    std::size_t n = items->size();
    apply(user, std::move(change), [turn, data, n](bool ok) {
      if (!ok) return data.fail("storing the roster failed");
      data.done(std::to_string(n) + " roster item" + (n == 1 ? "" : "s"));
    });
  });
}

}  // namespace mod_roster
