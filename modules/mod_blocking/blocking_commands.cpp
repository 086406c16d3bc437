// The urn:xmpp:blocking commands (XEP-0191 §3.2-§3.5): get the blocklist,
// block, unblock, unblock all; and the pushes to the user's interested
// resources.
#include <memory>
#include <utility>

#include "mod_blocking.hpp"

namespace mod_blocking {

namespace {

struct ParsedItems {
  std::vector<std::string> items;  // normalized, without duplicates, in request order
  std::string condition;           // empty: fine
  std::string text;
};

// The <item jid='...'/> children of a <block/> or <unblock/>.
ParsedItems parse_items(const parley::Host& host, parley::ElementView command) {
  ParsedItems out;
  std::unordered_set<std::string> seen;
  for (parley::ElementView child : command.children()) {
    if (child.name() != "item" || child.xmlns() != ns_blocking) {
      out.condition = "bad-request";
      out.text = "only <item/> elements may appear here";
      return out;
    }
    auto jid_attr = child.attr("jid");
    if (!jid_attr) {
      out.condition = "bad-request";
      out.text = "an <item/> needs a 'jid' attribute";
      return out;
    }
    auto jid = parley::Jid::parse(host, *jid_attr);
    if (!jid) {
      out.condition = "jid-malformed";
      out.text = std::string(parley::jid_error_text(jid.error())) + ": " + std::string(*jid_attr);
      return out;
    }
    std::string item = jid->full();
    if (seen.insert(item).second) out.items.push_back(std::move(item));
  }
  return out;
}

}  // namespace

void ModBlocking::on_iq(const parley::IqRequest& request) {
  parley::ElementView iq = request.iq();
  // The blocklist is its owner's business only ('to' and 'from' are prepared by the server).
  const parley::Jid to = parley::Jid::prepared(request.to());
  if (parley::bare_jid(request.from()) != request.to() || !to.has_local() || !to.is_bare())
    return host().bounce(iq, "forbidden", "a blocklist belongs to its owner only");
  const std::string user = to.local();
  auto payload = request.payload();
  if (!payload) return host().bounce(iq, "bad-request");
  const std::string_view name = payload->name();
  const std::string_view type = request.type();

  if (type == "get" && name == "blocklist") {
    // XEP-0191 §3.3: pushes go to the resources that asked for the list.
    // Kept by the session's loop, which is where this runs.
    if (request.session() != 0) here().interested.insert(request.session());
    auto held = std::make_shared<parley::Element>(iq.clone());
    return with_list(user, [this, held, user](bool loaded) {
      if (!loaded) return host().bounce(*held, "internal-server-error");
      send_blocklist(*held, user);
    });
  }
  if (type == "set" && (name == "block" || name == "unblock")) {
    ParsedItems parsed = parse_items(host(), *payload);
    if (!parsed.condition.empty()) return host().bounce(iq, parsed.condition, parsed.text);
    // XEP-0191 §3.3: a block names at least one item; an empty unblock is
    // "unblock all" (§3.5).
    if (name == "block" && parsed.items.empty())
      return host().bounce(iq, "bad-request", "a block needs at least one <item/>");
    auto held = std::make_shared<parley::Element>(iq.clone());
    const bool is_block = name == "block";
    // The user's commands run on its owning loop, one list and one order of
    // changes for every loop (see mod_blocking.hpp).
    auto run = [this, held, user, is_block, items = std::move(parsed.items)]() mutable {
      with_list(user, [this, held, user, is_block, items = std::move(items)](bool loaded) mutable {
        if (!loaded) return host().bounce(*held, "internal-server-error");
        if (is_block) block(std::move(*held), user, std::move(items));
        else unblock(std::move(*held), user, std::move(items));
      });
    };
    const uint32_t owner = owner_of(user);
    if (parley::current_loop(host()) == static_cast<int32_t>(owner)) return run();
    if (!parley::post(host(), owner, std::move(run))) host().bounce(iq, "internal-server-error");
    return;
  }
  host().bounce(iq, "bad-request", "expected get <blocklist/>, set <block/> or set <unblock/>");
}

void ModBlocking::send_blocklist(const parley::ElementView& iq, const std::string& user) {
  std::vector<std::string> items;
  auto it = here().lists.find(user);
  if (it != here().lists.end()) items = it->second.list.items();
  parley::Element reply = parley::make_iq_result(iq);
  parley::ElementRef list = reply.add_child("blocklist", ns_blocking);
  for (const std::string& item : items) list.add_child("item", ns_blocking).set_attr("jid", item);
  host().route(std::move(reply));
}

void ModBlocking::block(parley::Element iq, const std::string& user, std::vector<std::string> items) {
  auto held = std::make_shared<parley::Element>(std::move(iq));
  auto it = here().lists.find(user);
  if (it == here().lists.end() || !it->second.loaded) {
    // Forgotten between the load and now (after a failed write): rare.
    return host().bounce(*held, "internal-server-error");
  }
  Entry& entry = it->second;
  std::size_t fresh = 0;
  for (const std::string& item : items) fresh += !entry.list.contains(item);
  if (entry.list.size() + fresh > max_items_)
    return host().bounce(*held, "policy-violation",
                         "a blocklist holds at most " + std::to_string(max_items_) + " items");
  // This loop's copy changes first, in the order commands arrive, and the
  // storage writes are queued in that same order; the other loops get the
  // change once it is committed.
  std::vector<std::string> added = entry.list.add(items);
  filter_sessions(user);
  ++entry.pending_writes;
  // One put of the items (empty values: the map holds a set), checked against the limit
  // again by the store with the write.
  std::vector<parley::KeyvalItem> put;
  put.reserve(added.size());
  for (const std::string& jid : added) put.push_back(parley::KeyvalItem{jid, {}});
  auto on_written = [this, held, user, items, added](std::string error) {
    finish_write(user);
    if (!error.empty()) {
      host().error("storing the blocklist of " + user + " failed: " + error);
      forget_everywhere(user);
      return host().bounce(*held, "internal-server-error");
    }
    publish(user, Change{Change::Kind::add, added}, [this, held, user, items, added] {
      // The unavailable presences before the answer: routed from this loop,
      // each is on its way (queued to the recipient's loop, or handled) before
      // the answer is, so what the client sends once answered comes after it
      // (a join of a room whose occupant was blocked was taken out by a
      // presence routed after the answer).
      send_unavailable(user, added, [this, held, user, items] {
        host().route(parley::make_iq_result(*held));
        push(user, "block", items);
      });
    });
  };
  // Nothing new (all blocked already): a removal of nothing, answered later on this loop
  // as any write, without a version bump.
  bool sent = added.empty() ? host().map_remove(user, {}, written(std::move(on_written)))
                            : host().map_put(user, put, max_items_, written(std::move(on_written)));
  if (!sent) written_refused(user, held);
}

void ModBlocking::unblock(parley::Element iq, const std::string& user, std::vector<std::string> items) {
  auto held = std::make_shared<parley::Element>(std::move(iq));
  auto it = here().lists.find(user);
  if (it == here().lists.end() || !it->second.loaded) return host().bounce(*held, "internal-server-error");
  Entry& entry = it->second;
  ++entry.pending_writes;
  // What is unblocked in fact (all of it, for an empty <unblock/>).
  std::vector<std::string> removed = items.empty() ? entry.list.items() : entry.list.remove(items);
  Change change = items.empty() ? Change{Change::Kind::clear, {}} : Change{Change::Kind::remove, removed};
  auto done = [this, held, user, items, removed, change](std::string error) {
    finish_write(user);
    if (!error.empty()) {
      host().error("storing the blocklist of " + user + " failed: " + error);
      forget_everywhere(user);
      return host().bounce(*held, "internal-server-error");
    }
    publish(user, change, [this, held, user, items, removed] {
      host().route(parley::make_iq_result(*held));
      push(user, "unblock", items);
      probe_for(user, removed);
    });
  };
  bool sent;
  if (items.empty()) {
    entry.list.clear();
    sent = host().map_clear(user, written(std::move(done)));
  } else {
    // Unblocking what is not blocked is no error: the end state is asked for.
    sent = host().map_remove(user, removed, written(std::move(done)));
  }
  if (!sent) written_refused(user, held);
}

// On the owning loop, so that writes reach the store in the order its copy changed (the
// store keeps the order it is given).
parley::Host::MapFn ModBlocking::written(std::function<void(std::string)> done) {
  return [done = std::move(done)](parley::Result<parley::MapResult, std::string> r) {
    done(r ? std::string() : r.error());
  };
}

// The map store refused the write (none on this server): the copy says what storage
// does not, so every loop forgets it, and the command fails.
void ModBlocking::written_refused(const std::string& user, const std::shared_ptr<parley::Element>& held) {
  finish_write(user);
  host().error("storing the blocklist of " + user + " failed: the map store refused");
  forget_everywhere(user);
  host().bounce(*held, "internal-server-error");
}

void ModBlocking::finish_write(const std::string& user) {
  auto it = here().lists.find(user);
  if (it != here().lists.end() && it->second.pending_writes > 0) --it->second.pending_writes;
  arm_eviction_if_offline(user);
}

// XEP-0191 §3.3-§3.5: an iq set to every resource of the user that asked for
// the blocklist, with the items of the command (none: unblock all). Who asked
// is known on each session's loop: the push is decided and sent there.
void ModBlocking::push(const std::string& user, const char* command, const std::vector<std::string>& items) {
  auto shared = std::make_shared<const std::vector<std::string>>(items);
  const std::string name(command);
  for (const auto& session : host().user_sessions(user + "@" + domain_)) {
    parley::post_to_session(host(), session.id, [this, id = session.id, full = session.full_jid, name, shared] {
      LoopState& state = here();
      if (state.interested.count(id) == 0) return;
      parley::Element iq = host().element("iq", ns_client);
      iq.set_attr("type", "set");
      iq.set_attr("id", "block-push-" + std::to_string(parley::current_loop(host())) + "-" +
                            std::to_string(++state.push_ids));
      iq.set_attr("to", full);
      parley::ElementRef payload = iq.add_child(name, ns_blocking);
      for (const std::string& item : *shared) payload.add_child("item", ns_blocking).set_attr("jid", item);
      host().send_to_session(id, std::move(iq));
    });
  }
}

// XEP-0191 §3.3: the blocked contact gets unavailable presence from each of the
// user's available resources, "but only if the contact is allowed to receive
// presence notifications from the user" (RFC 6121: a 'from' or 'both'
// subscription; unavailable_targets() says who). The subscriptions are asked of
// whichever module keeps rosters (events 27-28), so mod_blocking does not depend
// on mod_roster: with no such module nobody is subscribed and nobody gets it. A
// roster that could not be read (its module logged why) sends it to every
// blocked user address, as before session 15: a subscribed contact must not go on
// seeing the user online. Directed presence is not followed (the presence
// module's state): a room the user is in stays joined when an occupant is blocked.
void ModBlocking::send_unavailable(const std::string& user, const std::vector<std::string>& added,
                                   std::function<void()> then) {
  bool available = false;
  for (const auto& session : host().user_sessions(user + "@" + domain_)) available = available || session.available;
  if (!available) return then();  // no presence to take back: no roster to read
  asks_.ask(user, "roster", {{"format", "lines"}}, [this, user, added, then](parley::AccountQuery::Answers answers) {
    std::vector<std::string> targets;
    if (answers.empty()) {
      // No module keeps rosters: nobody is subscribed.
    } else if (auto roster = parley::AccountQuery::roster_of(answers)) {
      std::vector<std::string> subscribed;
      for (const auto& item : *roster)
        if (item.has_from()) subscribed.push_back(item.jid);
      targets = unavailable_targets(added, subscribed);
    } else {
      host().warn("the roster of " + user + " could not be read: unavailable presence goes to every blocked user");
      for (const std::string& item : added)
        if (parley::Jid::prepared(item).has_local()) targets.push_back(item);
    }
    // The sessions as they are now: one that went away meanwhile has sent its own.
    for (const auto& session : host().user_sessions(user + "@" + domain_)) {
      if (!session.available) continue;
      for (const std::string& target : targets) {
        parley::Element presence = host().element("presence", ns_client);
        presence.set_attr("type", "unavailable");
        presence.set_attr("from", session.full_jid);
        presence.set_attr("to", target);
        host().route(std::move(presence));
      }
    }
    then();
  });
}

// XEP-0191 §3.4: on unblock the contact gets the user's current presence,
// "but only if the contact is allowed to receive presence notifications from
// the user" (RFC 6121). Who is allowed is the roster's business, and answering
// exactly that question is what a presence module does for a probe (RFC 6121
// §4.3.2): so the module routes a probe from the contact's bare JID to the
// user, and the presence module (mod_presence) answers it with the user's
// presence if, and only if, the contact's subscription allows it. Without a
// presence module the core drops the probe and nothing is revealed.
void ModBlocking::probe_for(const std::string& user, const std::vector<std::string>& removed) {
  const std::string bare = user + "@" + domain_;
  bool available = false;
  for (const auto& session : host().user_sessions(bare)) available = available || session.available;
  if (!available) return;  // the contact sees the user offline, which is true
  std::unordered_set<std::string> done;
  for (const std::string& item : removed) {
    const parley::Jid jid = parley::Jid::prepared(item);
    if (!jid.has_local() || jid.bare_str() == bare || !done.insert(jid.bare_str()).second) continue;
    parley::Element probe = host().element("presence", ns_client);
    probe.set_attr("type", "probe");
    probe.set_attr("from", jid.bare_str());
    probe.set_attr("to", bare);
    host().route(std::move(probe));
  }
}

}  // namespace mod_blocking
