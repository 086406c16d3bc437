// The roster in XEP-0227 export and import (issue 11): the account's
// <query xmlns='jabber:iq:roster'/> with one <item/> per contact, as a roster result
// carries them (jid, name, subscription, ask, approved, groups), and the inbound
// subscription requests still unanswered as <presence type='subscribe'/> children of the
// <user/> (jabber:client), as Prosody's mod_storage_xep0227 writes and reads them (the
// format itself has no place for them): imported, they reach the user at its next
// initial presence as they would have on the old server (RFC 6121 3.1.3).
#include <algorithm>
#include <memory>
#include <unordered_set>

#include "mod_roster.hpp"

namespace mod_roster {

namespace {

std::string count_of(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// The line an import or export reports: "3 roster items, 1 pending subscription request".
std::string summary(std::size_t items, std::size_t pending) {
  std::string out;
  if (items > 0) out = count_of(items, "roster item", "roster items");
  if (pending > 0) {
    if (!out.empty()) out += ", ";
    out += count_of(pending, "pending subscription request", "pending subscription requests");
  }
  return out;
}

// A <presence type='subscribe'/> child of the <user/> (Prosody's form of a pending request).
bool is_pending_request(parley::ElementView child) {
  return child.name() == "presence" && child.xmlns() == "jabber:client" && child.attr("type") == "subscribe";
}

}  // namespace

void ModRoster::on_account_export(const parley::Event& event) {
  if (event.host() != domain_) return;
  parley::AccountData data(host(), event);
  if (!data.held()) return;
  std::string user(event.user());
  // In the user's line (exclusive): no change of this roster is half-written meanwhile.
  exclusive(bare_of(user), [this, data, user](TurnPtr turn) {
    load_roster(user, [this, turn, data, user](std::optional<StoredRoster> roster) {
      if (!roster) return data.fail("reading the roster failed");
      if (roster->items.empty() && roster->pending.empty()) return data.done();
      if (!roster->items.empty()) {
        std::sort(roster->items.begin(), roster->items.end(), [](const RosterItem& a, const RosterItem& b) {
          return a.ver != b.ver ? a.ver < b.ver : a.jid < b.jid;
        });
        parley::Element query = host().element("query", ns_roster);
        for (const RosterItem& item : roster->items) query.add_child(item_element(item));
        data.add(query);
      }
      // Each request as it is stored (its status and extensions, within
      // max_pending_request_bytes), from the contact to the user.
      std::sort(roster->pending.begin(), roster->pending.end());
      std::size_t pending = 0;
      for (const auto& [contact, stanza] : roster->pending) {
        auto request = host().parse(stanza);
        if (!request) {
          host().warn("a damaged pending subscription request of " + user + " is not exported: " + contact);
          continue;
        }
        request->set_attr("from", contact);
        request->set_attr("to", bare_of(user));
        data.add(*request);
        ++pending;
      }
      data.done(summary(roster->items.size(), pending));
    });
  });
}

void ModRoster::on_account_import(const parley::Event& event) {
  if (event.host() != domain_) return;
  auto user_el = event.acc();
  if (!user_el) return;
  auto query = user_el->child("query", ns_roster);
  bool any_request = false;
  for (parley::ElementView child : user_el->children()) any_request = any_request || is_pending_request(child);
  if ((!query || query->child_count() == 0) && !any_request) return;
  parley::AccountData data(host(), event);
  if (!data.held()) return;
  std::string user(event.user());
  // Each item checked as a roster set checks it (the limits of this server), with the
  // subscription state of the file (RFC 6121: none, to, from, both; ask; approved).
  auto items = std::make_shared<std::vector<RosterItem>>();
  std::unordered_set<std::string> seen;
  std::size_t bytes = 0;
  if (query) {
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
  }
  if (static_cast<int64_t>(items->size()) > max_roster_size_)
    return data.fail("the roster exceeds max_roster_size (" + std::to_string(max_roster_size_) + ")");
  if (static_cast<int64_t>(bytes) > max_roster_bytes_)
    return data.fail("the roster exceeds max_roster_bytes (" + std::to_string(max_roster_bytes_) + ")");
  auto requests = imported_requests(*user_el, *items, user);
  if (!requests) return data.fail(requests.error());
  // In the user's line: after USER_REGISTERED's clearing of rows left under the name.
  exclusive(bare_of(user), [this, data, user, items, requests = std::move(*requests)](TurnPtr turn) {
    Change change;
    for (const RosterItem& item : *items) put_item(change, item);
    for (const auto& [contact, stanza] : requests) change.put.emplace_back(std::string(pending_prefix) + contact, stanza);
    const std::string line = summary(items->size(), requests.size());
    apply(user, std::move(change), [turn, data, line](bool ok) {
      if (!ok) return data.fail("storing the roster failed");
      data.done(line);
    });
  });
}

// The pending requests of a <user/>: one per contact, from a valid JID other than the
// user's; not from a contact the file gives a subscription from the user already (a
// request then is answered at once, never pending: RFC 6121 3.1.3); within
// max_pending_requests, each as stored for a live request (bounded_request).
parley::Result<std::vector<std::pair<std::string, std::string>>, std::string> ModRoster::imported_requests(
    parley::ElementView user_el, const std::vector<RosterItem>& items, const std::string& user) const {
  std::vector<std::pair<std::string, std::string>> requests;
  std::unordered_set<std::string> requesters;
  for (parley::ElementView child : user_el.children()) {
    if (!is_pending_request(child)) continue;
    const std::string from(child.attr("from").value_or(""));
    auto jid = prepare(from);
    if (!jid) return parley::unexpected("pending subscription request from '" + from + "': not a valid JID");
    const std::string contact = jid->bare_str();
    if (contact == bare_of(user) || !requesters.insert(contact).second) continue;
    auto item = std::find_if(items.begin(), items.end(), [&](const RosterItem& i) { return i.jid == contact; });
    if (item != items.end() && has_from(item->state.sub)) continue;
    parley::Element request = child.clone();
    request.set_attr("from", contact);
    request.set_attr("to", bare_of(user));
    requests.emplace_back(contact, bounded_request(request).serialize());
  }
  if (static_cast<int64_t>(requests.size()) > max_pending_requests_)
    return parley::unexpected("the pending subscription requests exceed max_pending_requests (" +
                              std::to_string(max_pending_requests_) + ")");
  return requests;
}

}  // namespace mod_roster
