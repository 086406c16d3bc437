// mod_roster: jabber:iq:roster get and set (RFC 6121 section 2) and
// versioned gets (RFC 6121 2.6, XEP-0237).
#include <algorithm>
#include <utility>

#include "mod_roster.hpp"

namespace mod_roster {

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
    // 2.2: a resource that asked for the roster is "interested" (pushes). Marked in the
    // user's line, when the get's turn comes, by a post to the session's loop: that post
    // follows those of the changes before the get (their pushes are decided on that loop
    // too, see to_sessions), whose result the roster this get answers already holds, and
    // comes before those of every change after it. Marked at once, a change made just
    // before the get was pushed to it as well, or not, by the race of the two loops.
    const parley_session_id session = request.session();
    std::optional<std::string> ver;
    if (auto v = query->attr("ver")) ver = std::string(*v);
    exclusive(owner, [this, user, iq, session, ver](TurnPtr turn) {
      if (session != 0) parley::post_to_session(host(), session, [this, session] { mark_interested(session); });
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
  load_roster(user, [this, turn, user, iq, session, client_ver](std::optional<StoredRoster> roster) {
    if (!roster) return host().bounce(*iq, "internal-server-error");
    // Items and removals in version order (a delta is pushed oldest first).
    std::sort(roster->items.begin(), roster->items.end(),
              [](const RosterItem& a, const RosterItem& b) { return a.ver != b.ver ? a.ver < b.ver : a.jid < b.jid; });
    std::sort(roster->removed.begin(), roster->removed.end(),
              [](const auto& a, const auto& b) { return a.second != b.second ? a.second < b.second : a.first < b.first; });
    const int64_t current = roster->version();
    // A delta is pushed to the requesting session: without one, the roster.
    VersionPlan plan = versioning_ && session != 0 ? plan_versioned_get(client_ver, current) : VersionPlan{};
    // Removals older than the dropped records are unknown: the whole roster.
    if (!plan.full && plan.since < roster->floor) plan.full = true;
    if (!plan.full) {
      std::size_t changes = 0;
      for (const RosterItem& i : roster->items) changes += i.ver > plan.since ? 1 : 0;
      for (const auto& r : roster->removed) changes += r.second > plan.since ? 1 : 0;
      // A delta longer than the roster is worth less than the roster.
      if (changes > roster->items.size() && changes > 1) plan.full = true;
    }
    parley::Element reply = parley::make_iq_result(*iq);
    if (plan.full) {
      parley::ElementRef query = reply.add_child("query", ns_roster);
      if (versioning_) query.set_attr("ver", std::to_string(current));
      for (const RosterItem& i : roster->items) query.add_child(item_element(i));
      host().route(std::move(reply));
      return;
    }
    // 2.6.3: an empty result, then the changes as pushes, oldest first,
    // each carrying the version it brought the roster to.
    host().route(std::move(reply));
    std::size_t i = 0, r = 0;
    const auto& items = roster->items;
    const auto& removed = roster->removed;
    while (i < items.size() || r < removed.size()) {
      const bool take_item = r >= removed.size() || (i < items.size() && items[i].ver <= removed[r].second);
      const int64_t v = take_item ? items[i].ver : removed[r].second;
      if (v > plan.since) {
        if (take_item) push(user, item_element(items[i]), v, session);
        else push(user, removed_item_element(removed[r].first), v, session);
      }
      if (take_item) ++i;
      else ++r;
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
    Change change;
    put_item(change, item);  // replaces a removal record of the contact, if any
    apply(user, std::move(change), [this, turn, user, iq, item](bool ok) {
      if (!ok) return host().bounce(*iq, "internal-server-error");
      host().route(parley::make_iq_result(*iq));
      push(user, item_element(item), item.ver);
    });
  });
}

void ModRoster::roster_remove(TurnPtr turn, std::string user, ElementPtr iq, RosterSet set) {
  load_roster(user, [this, turn, user, iq, set](std::optional<StoredRoster> roster) {
    if (!roster) return host().bounce(*iq, "internal-server-error");
    // 2.5.3
    const RosterItem* found = roster->find(set.contact);
    if (found == nullptr) return host().bounce(*iq, "item-not-found");
    SubState before = found->state;
    before.pending_in = roster->has_pending(set.contact);
    const int64_t ver = roster->version() + 1;
    Change change;
    // The item becomes the record of its removal, for versioned gets.
    change.put.emplace_back(std::string(item_prefix) + set.contact, encode_tombstone(ver));
    // Bounded: past max_removal_records the oldest go, and the floor says
    // that a client older than them needs the whole roster.
    auto& removed = roster->removed;
    if (static_cast<int64_t>(removed.size()) + 1 > max_removal_records_) {
      std::sort(removed.begin(), removed.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
      const std::size_t drop = removed.size() + 1 - static_cast<std::size_t>(max_removal_records_);
      int64_t floor = roster->floor;
      for (std::size_t k = 0; k < drop; ++k) {
        floor = std::max(floor, removed[k].second);
        change.remove.push_back(std::string(item_prefix) + removed[k].first);
      }
      change.put.emplace_back(std::string(floor_key), std::to_string(floor));
    }
    if (before.pending_in) delete_pending(change, set.contact);
    apply(user, std::move(change), [this, turn, user, iq, contact = set.contact, before, ver](bool ok) {
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
  // 'contact' (optional, a prepared bare JID): only that item, if any.
  std::string contact(acc->attr("contact").value_or(""));
  // A read of the committed roster, outside the user's line: nothing changes.
  // The answer comes from this loop (event 27's contract), after the move.
  // format='lines' (parley::AccountQuery::ask_roster): one text payload, not an
  // element per item: a large roster is answered in milliseconds.
  const bool lines = acc->attr("format").value_or("") == "lines";
  when_moved([this, token, user, contact, lines] {
    load_roster(user, [this, token, contact, lines](std::optional<StoredRoster> roster) {
      parley::Element answer = host().element("answer", parley::ns_admin_user);
      answer.set_attr("token", token);
      if (roster && lines) {
        std::string text;
        for (const RosterItem& i : roster->items) {
          if (!contact.empty() && i.jid != contact) continue;
          text += i.jid;
          text += ' ';
          text += subscription_name(i.state.sub);
          text += ' ';
          text += encode_groups(i.groups);
          text += '\n';
        }
        answer.add_child("roster", parley::AccountQuery::ns_roster_lines).add_text(text);
      } else if (roster) {
        answer.add_child(roster_query(*roster, contact));
      }
      host().run_fold(PARLEY_EVENT_ADMIN_USER_ANSWER, answer);
    });
  });
  return parley::Outcome::pass;
}

}  // namespace mod_roster
