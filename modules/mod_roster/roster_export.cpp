// The roster in XEP-0227 export and import (issue 11): the account's
// <query xmlns='jabber:iq:roster'/> with one <item/> per contact, as a roster result
// carries them (jid, name, subscription, ask, approved, groups). Pending inbound
// requests (mod_roster_pending) are not part of the format and stay behind.
#include <memory>
#include <unordered_set>

#include "mod_roster.hpp"

namespace mod_roster {

namespace {
std::string cell_text(const parley::Cell& cell) { return std::string(cell.bytes().value_or("")); }
bool cell_flag(const parley::Cell& cell) { return cell.integer().value_or(0) != 0; }
}  // namespace

void ModRoster::on_account_export(const parley::Event& event) {
  if (event.host() != domain_) return;
  parley::AccountData data(host(), event);
  if (!data.held()) return;
  std::string user(event.user());
  // In the user's line (exclusive): no change of this roster is half-written meanwhile.
  exclusive(bare_of(user), [this, data, user](TurnPtr turn) {
    host().query(
        "SELECT contact, subscription, ask, approved, name, groups FROM mod_roster_items "
        "WHERE host = ?1 AND user = ?2 ORDER BY ver, contact",
        {domain_, user}, [this, turn, data](parley::Result<parley::Rows, std::string> rows) {
          if (!rows) return data.fail("reading the roster failed: " + rows.error());
          if (rows->size() == 0) return data.done();
          parley::Element query = host().element("query", ns_roster);
          for (std::size_t r = 0; r < rows->size(); ++r) {
            RosterItem item;
            item.jid = cell_text(rows->at(r, 0));
            item.state.sub = parse_subscription(cell_text(rows->at(r, 1))).value_or(Subscription::none);
            item.state.pending_out = cell_flag(rows->at(r, 2));
            item.state.approved = cell_flag(rows->at(r, 3));
            if (!rows->at(r, 4).is_null()) item.name = cell_text(rows->at(r, 4));
            item.groups = decode_groups(cell_text(rows->at(r, 5)));
            query.add_child(item_element(item));
          }
          data.add(query);
          data.done(std::to_string(rows->size()) + " roster item" + (rows->size() == 1 ? "" : "s"));
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
    std::vector<Stmt> stmts;
    for (const RosterItem& item : *items) stmts.push_back(upsert_item(user, item));
    std::size_t n = items->size();
    write_all(std::move(stmts), [turn, data, n](bool ok) {
      if (!ok) return data.fail("storing the roster failed");
      data.done(std::to_string(n) + " roster item" + (n == 1 ? "" : "s"));
    });
  });
}

}  // namespace mod_roster
