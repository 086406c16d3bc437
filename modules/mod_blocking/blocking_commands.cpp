// The urn:xmpp:blocking commands (XEP-0191 §3.2-§3.5): get the blocklist,
// block, unblock, unblock all; and the pushes to the user's interested
// resources.
#include <memory>
#include <utility>

#include "mod_blocking.hpp"

namespace mod_blocking {

namespace {

// SQLite allows 999 parameters in older builds: 3 per inserted row.
constexpr std::size_t chunk_items = 200;

struct ParsedItems {
  std::vector<std::string> items;  // normalized, without duplicates, in request order
  std::string condition;           // empty: fine
  std::string text;
};

// The server's own preparation of a JID (stringprep, IDNA) when the host has
// it; the module's ASCII rules then only split it.
std::optional<std::string> canonical_jid(const parley::Host& host, std::string_view text) {
  if (!host.supports(PARLEY_HOST_ENTRY_END(jid_prepare))) return std::string(text);
  return host.prepare_jid(text);
}

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
    auto canonical = canonical_jid(host, *jid_attr);
    auto jid = canonical ? parse_jid(*canonical) : std::nullopt;
    if (!jid) {
      out.condition = "jid-malformed";
      out.text = "not a valid JID: " + std::string(*jid_attr);
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
  std::string_view to = request.to();
  // The blocklist is its owner's business only.
  if (parley::bare_jid(request.from()) != to || to.find('@') == std::string_view::npos)
    return host().bounce(iq, "forbidden", "a blocklist belongs to its owner only");
  const std::string user(to.substr(0, to.find('@')));
  auto payload = request.payload();
  if (!payload) return host().bounce(iq, "bad-request");
  const std::string_view name = payload->name();
  const std::string_view type = request.type();

  if (type == "get" && name == "blocklist") {
    // XEP-0191 §3.3: pushes go to the resources that asked for the list.
    if (request.session() != 0) {
      std::lock_guard lock(mu_);
      interested_.insert(request.session());
    }
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
    return with_list(user, [this, held, user, is_block, items = std::move(parsed.items)](bool loaded) mutable {
      if (!loaded) return host().bounce(*held, "internal-server-error");
      if (is_block) block(std::move(*held), user, std::move(items));
      else unblock(std::move(*held), user, std::move(items));
    });
  }
  host().bounce(iq, "bad-request", "expected get <blocklist/>, set <block/> or set <unblock/>");
}

void ModBlocking::send_blocklist(const parley::ElementView& iq, const std::string& user) {
  std::vector<std::string> items;
  {
    std::lock_guard lock(mu_);
    auto it = lists_.find(user);
    if (it != lists_.end()) items = it->second.list.items();
  }
  parley::Element reply = parley::make_iq_result(iq);
  parley::ElementRef list = reply.add_child("blocklist", ns_blocking);
  for (const std::string& item : items) list.add_child("item", ns_blocking).set_attr("jid", item);
  host().route(std::move(reply));
}

void ModBlocking::block(parley::Element iq, const std::string& user, std::vector<std::string> items) {
  auto held = std::make_shared<parley::Element>(std::move(iq));
  bool too_many = false;
  {
    // No host call that routes may run under mu_: the hooks it reaches take it.
    std::lock_guard lock(mu_);
    auto it = lists_.find(user);
    if (it != lists_.end() && it->second.loaded) {
      Entry& entry = it->second;
      std::size_t fresh = 0;
      for (const std::string& item : items) fresh += !entry.list.contains(item);
      too_many = entry.list.size() + fresh > max_items_;
      if (!too_many) {
        // The cache changes first, in the order commands arrive; the storage
        // writes are queued in that same order while the lock is held.
        std::vector<std::string> added = entry.list.add(items);
        ++entry.pending_writes;
        write_items("INSERT OR IGNORE INTO mod_blocking_items (host, user, jid) VALUES ", user, added,
                    [this, held, user, items, added](std::string error) {
                      finish_write(user);
                      if (!error.empty()) {
                        host().error("storing the blocklist of " + user + " failed: " + error);
                        forget_list(user);
                        return host().bounce(*held, "internal-server-error");
                      }
                      host().route(parley::make_iq_result(*held));
                      push(user, "block", items);
                      send_unavailable(user, added);
                    });
        return;
      }
    }
  }
  if (too_many)
    return host().bounce(*held, "policy-violation",
                         "a blocklist holds at most " + std::to_string(max_items_) + " items");
  // Forgotten between the load and now (after a failed write): rare.
  host().bounce(*held, "internal-server-error");
}

void ModBlocking::unblock(parley::Element iq, const std::string& user, std::vector<std::string> items) {
  auto held = std::make_shared<parley::Element>(std::move(iq));
  {
    std::lock_guard lock(mu_);
    auto it = lists_.find(user);
    if (it != lists_.end() && it->second.loaded) {
      Entry& entry = it->second;
      ++entry.pending_writes;
      // What is unblocked in fact (all of it, for an empty <unblock/>).
      std::vector<std::string> removed = items.empty() ? entry.list.items() : entry.list.remove(items);
      auto done = [this, held, user, items, removed](std::string error) {
        finish_write(user);
        if (!error.empty()) {
          host().error("storing the blocklist of " + user + " failed: " + error);
          forget_list(user);
          return host().bounce(*held, "internal-server-error");
        }
        host().route(parley::make_iq_result(*held));
        push(user, "unblock", items);
        probe_for(user, removed);
      };
      if (items.empty()) {
        entry.list.clear();
        host().execute("DELETE FROM mod_blocking_items WHERE host = ? AND user = ?", {domain_, user},
                       [done](parley::Result<parley::Rows, std::string> rows) {
                         done(rows ? std::string() : rows.error());
                       });
      } else {
        // Unblocking what is not blocked is no error: the end state is asked for.
        write_items("DELETE FROM mod_blocking_items WHERE host = ? AND user = ? AND jid IN ", user, removed,
                    std::move(done));
      }
      return;
    }
  }
  host().bounce(*held, "internal-server-error");
}

// Called with mu_ held, so that writes reach the single writer in the order
// the cache changed. An empty `items` writes nothing and answers at once
// (the continuation runs later, on this loop, through a no-op statement).
void ModBlocking::write_items(const std::string& sql_head, const std::string& user,
                              const std::vector<std::string>& items, std::function<void(std::string)> done) {
  struct Progress {
    std::size_t outstanding = 0;
    std::string error;
    std::function<void(std::string)> done;
  };
  auto progress = std::make_shared<Progress>();
  progress->done = std::move(done);
  auto on_rows = [progress](parley::Result<parley::Rows, std::string> rows) {
    if (!rows && progress->error.empty()) progress->error = rows.error();
    if (--progress->outstanding == 0) progress->done(progress->error);
  };
  if (items.empty()) {
    progress->outstanding = 1;
    host().query("SELECT 1 FROM mod_blocking_items WHERE 0", {}, on_rows);
    return;
  }
  const bool insert = sql_head.rfind("INSERT", 0) == 0;
  progress->outstanding = (items.size() + chunk_items - 1) / chunk_items;
  for (std::size_t begin = 0; begin < items.size(); begin += chunk_items) {
    const std::size_t end = std::min(items.size(), begin + chunk_items);
    std::string sql = sql_head;
    std::vector<parley::Value> params;
    if (insert) {
      for (std::size_t i = begin; i < end; ++i) {
        sql += i == begin ? "(?, ?, ?)" : ", (?, ?, ?)";
        params.emplace_back(domain_);
        params.emplace_back(user);
        params.emplace_back(items[i]);
      }
    } else {
      params.emplace_back(domain_);
      params.emplace_back(user);
      sql += "(";
      for (std::size_t i = begin; i < end; ++i) {
        sql += i == begin ? "?" : ", ?";
        params.emplace_back(items[i]);
      }
      sql += ")";
    }
    host().storage_call(sql, params.data(), params.size(), true, on_rows);
  }
}

void ModBlocking::finish_write(const std::string& user) {
  {
    std::lock_guard lock(mu_);
    auto it = lists_.find(user);
    if (it != lists_.end() && it->second.pending_writes > 0) --it->second.pending_writes;
  }
  arm_eviction_if_offline(user);
}

// XEP-0191 §3.3-§3.5: an iq set to every resource of the user that asked for
// the blocklist, with the items of the command (none: unblock all).
void ModBlocking::push(const std::string& user, const char* command, const std::vector<std::string>& items) {
  std::vector<parley::Host::UserSession> sessions = host().user_sessions(user + "@" + domain_);
  {
    std::lock_guard lock(mu_);
    std::erase_if(sessions, [this](const parley::Host::UserSession& s) { return interested_.count(s.id) == 0; });
  }
  for (const auto& session : sessions) {
    parley::Element iq = host().element("iq", ns_client);
    iq.set_attr("type", "set");
    iq.set_attr("id", "block-push-" + std::to_string(++push_ids_));
    iq.set_attr("to", session.full_jid);
    parley::ElementRef payload = iq.add_child(command, ns_blocking);
    for (const std::string& item : items) payload.add_child("item", ns_blocking).set_attr("jid", item);
    host().send_to_session(session.id, std::move(iq));
  }
}

// XEP-0191 §3.3: the blocked contact gets unavailable presence from each of
// the user's available resources. Without the roster (mod_blocking does not
// depend on mod_roster) the subscription is unknown; unavailable presence
// tells a contact that is not subscribed nothing it could not see already.
// Only addresses of a user (with a localpart) get it: a domain item names no
// one to send it to.
void ModBlocking::send_unavailable(const std::string& user, const std::vector<std::string>& added) {
  std::vector<std::string> targets;
  for (const std::string& item : added)
    if (auto jid = parse_jid(item); jid && jid->has_local()) targets.push_back(item);
  if (targets.empty()) return;
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
    auto jid = parse_jid(item);
    if (!jid || !jid->has_local() || jid->bare() == bare || !done.insert(jid->bare()).second) continue;
    parley::Element probe = host().element("presence", ns_client);
    probe.set_attr("type", "probe");
    probe.set_attr("from", jid->bare());
    probe.set_attr("to", bare);
    host().route(std::move(probe));
  }
}

}  // namespace mod_blocking
