// mod_roster: jabber:iq:roster get and set (RFC 6121 section 2) and
// versioned gets (RFC 6121 2.6, XEP-0237).
#include <algorithm>
#include <utility>

#include "mod_roster.hpp"

namespace mod_roster {

namespace {

RosterItem item_from_row(const parley::Rows& rows, std::size_t r) {
  // Columns: kind, contact, subscription, ask, approved, name, groups, ver.
  RosterItem item;
  item.jid = std::string(rows.at(r, 1).bytes().value_or(""));
  item.state.sub = parse_subscription(rows.at(r, 2).bytes().value_or("")).value_or(Subscription::none);
  item.state.pending_out = rows.at(r, 3).integer().value_or(0) != 0;
  item.state.approved = rows.at(r, 4).integer().value_or(0) != 0;
  if (!rows.at(r, 5).is_null()) item.name = std::string(rows.at(r, 5).bytes().value_or(""));
  item.groups = decode_groups(rows.at(r, 6).bytes().value_or(""));
  item.ver = rows.at(r, 7).integer().value_or(0);
  return item;
}

}  // namespace

void ModRoster::on_roster_iq(const parley::IqRequest& request) {
  auto query = request.payload();
  if (!query || query->name() != "query" || query->xmlns() != ns_roster)
    return host().bounce(request.iq(), "bad-request");
  // 2.1.3 / 2.3.3: a roster is its owner's business only.
  // 'from' and 'to' are prepared by the server.
  const parley::Jid to = parley::Jid::prepared(request.to());
  if (parley::bare_jid(request.from()) != request.to()) return host().bounce(request.iq(), "forbidden");
  if (!to.has_local() || !to.is_bare() || to.domain() != domain_) return host().bounce(request.iq(), "forbidden");
  std::string user = to.local();
  const std::string owner = bare_of(user);
  auto iq = std::make_shared<parley::Element>(request.iq().clone());

  if (request.type() == "get") {
    // 2.2: a resource that asked for the roster is "interested" (pushes).
    const parley_session_id session = request.session();
    mark_interested(session);
    std::optional<std::string> ver;
    if (auto v = query->attr("ver")) ver = std::string(*v);
    exclusive(owner, [this, user, iq, session, ver](TurnPtr turn) {
      roster_get(std::move(turn), user, iq, session, ver);
    });
    return;
  }

  RosterSetRequest req;
  for (parley::ElementView child : query->children()) {
    if (child.name() != "item" || child.xmlns() != ns_roster) continue;
    if (++req.item_count > 1) continue;
    // Keyed by the server's preparation of the address, so that two
    // spellings of one JID are one item.
    if (auto jid = child.attr("jid")) req.jid = prepare(*jid);
    if (auto name = child.attr("name")) req.name = std::string(*name);
    if (auto sub = child.attr("subscription")) req.subscription = std::string(*sub);
    for (parley::ElementView group : child.children())
      if (group.name() == "group" && group.xmlns() == ns_roster) req.groups.push_back(group.text());
  }
  SetCheck check = check_roster_set(req, owner, limits_);
  if (check.error) return host().bounce(request.iq(), check.error->condition, check.error->text);
  RosterSet set = std::move(*check.set);
  exclusive(owner, [this, user, iq, set](TurnPtr turn) {
    if (set.remove) roster_remove(std::move(turn), user, iq, set);
    else roster_set(std::move(turn), user, iq, set);
  });
}

void ModRoster::roster_get(TurnPtr turn, std::string user, ElementPtr iq, parley_session_id session,
                           std::optional<std::string> client_ver) {
  // One query for the items and the removals, in version order, and the
  // answer built from the rows directly: a roster fetch used to hold the
  // rows, a vector of items, a copy of that vector captured for a second
  // query, the element tree and its serialization at once (~7x the
  // roster's size). Now the rows and the tree, then the tree and its
  // serialization; max_roster_bytes bounds all of it.
  host().query(
      "SELECT 0, contact, subscription, ask, approved, name, groups, ver FROM mod_roster_items "
      "WHERE host = ?1 AND user = ?2 "
      "UNION ALL SELECT 1, contact, NULL, 0, 0, NULL, '', ver FROM mod_roster_removed WHERE host = ?1 AND user = ?2 "
      "ORDER BY 8, 2",
      {domain_, user}, [this, turn, user, iq, session, client_ver](parley::Result<parley::Rows, std::string> rows) {
        if (!rows) {
          host().error("reading a roster failed: " + rows.error());
          return host().bounce(*iq, "internal-server-error");
        }
        const std::size_t n = rows->size();
        auto removed = [&](std::size_t r) { return rows->at(r, 0).integer().value_or(0) != 0; };
        auto ver_of = [&](std::size_t r) { return rows->at(r, 7).integer().value_or(0); };
        int64_t current = 0;
        std::size_t item_count = 0;
        for (std::size_t r = 0; r < n; ++r) {
          current = std::max(current, ver_of(r));
          item_count += removed(r) ? 0 : 1;
        }
        // A delta is pushed to the requesting session: without one, the roster.
        VersionPlan plan = versioning_ && session != 0 ? plan_versioned_get(client_ver, current) : VersionPlan{};
        if (!plan.full) {
          std::size_t changes = 0;
          for (std::size_t r = 0; r < n; ++r) changes += ver_of(r) > plan.since ? 1 : 0;
          // A delta longer than the roster is worth less than the roster.
          if (changes > item_count && changes > 1) plan.full = true;
        }
        parley::Element reply = parley::make_iq_result(*iq);
        if (plan.full) {
          parley::ElementRef query = reply.add_child("query", ns_roster);
          if (versioning_) query.set_attr("ver", std::to_string(current));
          for (std::size_t r = 0; r < n; ++r)
            if (!removed(r)) query.add_child(item_element(item_from_row(*rows, r)));
          host().route(std::move(reply));
          return;
        }
        // 2.6.3: an empty result, then the changes as pushes, oldest first,
        // each carrying the version it brought the roster to.
        host().route(std::move(reply));
        for (std::size_t r = 0; r < n; ++r) {
          const int64_t v = ver_of(r);
          if (v <= plan.since) continue;
          if (removed(r)) push(user, removed_item_element(std::string(rows->at(r, 1).bytes().value_or(""))), v, session);
          else push(user, item_element(item_from_row(*rows, r)), v, session);
        }
      });
}

void ModRoster::roster_set(TurnPtr turn, std::string user, ElementPtr iq, RosterSet set) {
  load_contact(user, set.contact, [this, turn, user, iq, set](std::optional<ContactState> cs) {
    if (!cs) return host().bounce(*iq, "internal-server-error");
    if (!cs->in_roster && cs->roster_size >= max_roster_size_)
      return host().bounce(*iq, "not-allowed",
                           "the roster is full (" + std::to_string(max_roster_size_) + " items)");
    // 2.3 / 2.4: name and groups are the client's; the subscription state
    // (and ask, approved) stays the server's.
    RosterItem item = cs->item;
    item.name = set.name;
    item.groups = set.groups;
    item.ver = cs->current_ver + 1;
    // The roster's byte budget bounds the roster result (one iq) and the
    // storage of one account; a change that shrinks the roster is always fine.
    const int64_t before =
        cs->in_roster
            ? static_cast<int64_t>(item_cost(cs->item.jid, cs->item.name, encode_groups(cs->item.groups)))
            : 0;
    const int64_t after = static_cast<int64_t>(item_cost(item.jid, item.name, encode_groups(item.groups)));
    if (!roster_bytes_fit(cs->roster_bytes, after - before))
      return host().bounce(*iq, "not-allowed",
                           "the roster is full (" + std::to_string(max_roster_bytes_) + " bytes)");
    std::vector<Stmt> stmts{upsert_item(user, item)};
    if (!cs->in_roster) stmts.push_back(delete_tombstone(user, set.contact));
    write_all(std::move(stmts), [this, turn, user, iq, item](bool ok) {
      if (!ok) return host().bounce(*iq, "internal-server-error");
      host().route(parley::make_iq_result(*iq));
      push(user, item_element(item), item.ver);
    });
  });
}

void ModRoster::roster_remove(TurnPtr turn, std::string user, ElementPtr iq, RosterSet set) {
  load_contact(user, set.contact, [this, turn, user, iq, set](std::optional<ContactState> cs) {
    if (!cs) return host().bounce(*iq, "internal-server-error");
    // 2.5.3
    if (!cs->in_roster) return host().bounce(*iq, "item-not-found");
    const SubState before = cs->item.state;
    const int64_t ver = cs->current_ver + 1;
    std::vector<Stmt> stmts{
        Stmt{"DELETE FROM mod_roster_items WHERE host = ? AND user = ? AND contact = ?", {domain_, user, set.contact}},
        Stmt{"INSERT OR REPLACE INTO mod_roster_removed (host, user, contact, ver) VALUES (?, ?, ?, ?)",
             {domain_, user, set.contact, ver}}};
    if (before.pending_in) stmts.push_back(delete_pending(user, set.contact));
    write_all(std::move(stmts), [this, turn, user, iq, contact = set.contact, before, ver](bool ok) {
      if (!ok) return host().bounce(*iq, "internal-server-error");
      const std::string owner = bare_of(user);
      // 2.5.2: the subscriptions go with the item, both ways, and a pending
      // request either way is withdrawn or denied.
      if (has_to(before.sub) || before.pending_out) route_presence("unsubscribe", owner, contact);
      if (has_from(before.sub)) {
        unavailable_from_each(user, contact);
        route_presence("unsubscribed", owner, contact);
      } else if (before.pending_in) {
        route_presence("unsubscribed", owner, contact);
      }
      host().route(parley::make_iq_result(*iq));
      push(user, removed_item_element(contact), ver);
    });
  });
}

parley::Outcome ModRoster::on_admin_query(const parley::Event& event) {
  auto acc = event.acc();
  if (!acc || acc->attr("want").value_or("") != "roster" || event.user().empty()) return parley::Outcome::pass;
  // Counted in (module.h, event 27): one answer follows, from this loop.
  int64_t answers = 0;
  for (char c : acc->attr("answers").value_or("0")) answers = c >= '0' && c <= '9' ? answers * 10 + (c - '0') : answers;
  acc->set_attr("answers", std::to_string(answers + 1));
  std::string token(acc->attr("token").value_or(""));
  std::string user(event.user());
  // A read of the committed roster, outside the user's line: nothing changes.
  host().query("SELECT 0, contact, subscription, ask, approved, name, groups, ver FROM mod_roster_items "
               "WHERE host = ? AND user = ? ORDER BY contact",
               {domain_, user}, [this, token, user](parley::Result<parley::Rows, std::string> rows) {
                 parley::Element answer = host().element("answer", parley::ns_admin_user);
                 answer.set_attr("token", token);
                 if (!rows) {
                   host().error("reading the roster of " + user + " for an administrator failed: " + rows.error());
                 } else {
                   parley::ElementRef query = answer.add_child("query", ns_roster);
                   for (std::size_t r = 0; r < rows->size(); ++r) query.add_child(item_element(item_from_row(*rows, r)));
                 }
                 host().run_fold(PARLEY_EVENT_ADMIN_USER_ANSWER, answer);
               });
  return parley::Outcome::pass;
}

}  // namespace mod_roster
