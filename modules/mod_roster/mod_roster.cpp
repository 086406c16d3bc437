// mod_roster: rosters (RFC 6121 section 2), presence subscriptions (section
// 3, the state machine of Appendix A with pre-approval, 3.4) and roster
// versioning (RFC 6121 2.6 / XEP-0237). See mod_roster.hpp for the tables.
//
// Options:
//   max_roster_size  items per roster (default 1000); a set or an outbound
//                    subscription that would add one more is not-allowed
//   versioning       roster versioning (default true)
//   max_name_length, max_group_length  bytes (default 1023): longer is
//                    not-acceptable (RFC 6121 2.3.3)
//   max_groups_per_item  groups per item (default 32): more is
//                    not-acceptable, like an over-long group name
//   max_roster_bytes bytes a roster may hold (default 524288, see item_cost):
//                    a set or an outbound subscription that would take it
//                    over is not-allowed, like a roster at max_roster_size;
//                    it also bounds the roster result, one iq
//   max_pending_requests  unanswered subscription requests a user may have
//                    (default 1000): one more is answered resource-constraint
//   max_pending_request_bytes  the stored (and delivered) form of a request
//                    (default 2048): a larger one is kept with its <status/>
//                    cut short and its extensions dropped
//   push_batch, push_batch_bytes  pending requests pushed at once at login
//                    (default 16 and 65536 bytes, at least one request): the
//                    next batch when the connection wrote the last one
//   max_removal_records  removals remembered for versioned gets (default
//                    200): past it the oldest are dropped, and a client whose
//                    cached version is older than the dropped ones gets the
//                    whole roster (RFC 6121 2.6.3 allows it at any time)
// See docs/modules/mod_roster.md for why these conditions.
#include "mod_roster.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace mod_roster {

namespace {

void free_slot(void* p) {
  auto* slot = static_cast<SessionSlot*>(p);
  slot->self->forget_session(slot->id);
  delete slot;
}

}  // namespace

Turn::~Turn() { self->leave_line(user); }

ModRoster::~ModRoster() {
  // Pending callbacks hold Turns, which reach back into the lines: drop them
  // while the members are still here (the base class would do it later).
  stopping_ = true;
  host().forget_all();
}

parley::Result<void, std::string> ModRoster::start() {
  domain_ = host().module_host();
  max_roster_size_ = host().option_int("max_roster_size").value_or(1000);
  if (max_roster_size_ < 1) return parley::unexpected(std::string("max_roster_size must be at least 1"));
  versioning_ = host().option_bool("versioning").value_or(true);
  const int64_t name_max = host().option_int("max_name_length").value_or(1023);
  const int64_t group_max = host().option_int("max_group_length").value_or(1023);
  if (name_max < 1 || group_max < 1)
    return parley::unexpected(std::string("max_name_length and max_group_length must be at least 1"));
  limits_.max_name_bytes = static_cast<std::size_t>(name_max);
  limits_.max_group_bytes = static_cast<std::size_t>(group_max);
  const int64_t groups_max = host().option_int("max_groups_per_item").value_or(32);
  if (groups_max < 0) return parley::unexpected(std::string("max_groups_per_item must not be negative"));
  limits_.max_groups = static_cast<std::size_t>(groups_max);
  max_roster_bytes_ = host().option_int("max_roster_bytes").value_or(512 * 1024);
  if (max_roster_bytes_ < 1024) return parley::unexpected(std::string("max_roster_bytes must be at least 1024"));
  max_pending_requests_ = host().option_int("max_pending_requests").value_or(1000);
  if (max_pending_requests_ < 1) return parley::unexpected(std::string("max_pending_requests must be at least 1"));
  const int64_t request_max = host().option_int("max_pending_request_bytes").value_or(2048);
  if (request_max < 512) return parley::unexpected(std::string("max_pending_request_bytes must be at least 512"));
  max_pending_request_bytes_ = static_cast<std::size_t>(request_max);
  const int64_t batch = host().option_int("push_batch").value_or(16);
  if (batch < 1) return parley::unexpected(std::string("push_batch must be at least 1"));
  push_batch_ = static_cast<std::size_t>(batch);
  const int64_t batch_bytes = host().option_int("push_batch_bytes").value_or(64 * 1024);
  if (batch_bytes < 1) return parley::unexpected(std::string("push_batch_bytes must be at least 1"));
  push_batch_bytes_ = static_cast<std::size_t>(batch_bytes);
  max_removal_records_ = host().option_int("max_removal_records").value_or(200);
  if (max_removal_records_ < 1) return parley::unexpected(std::string("max_removal_records must be at least 1"));
  can_hold_ = host().supports_1_1();
  if (!host().supports_1_2()) return parley::unexpected(std::string("needs a host with module ABI 1.2 (post)"));
  if (!host().supports_map()) return parley::unexpected(std::string("this server has no map store"));
  loops_.init(host());
  // The rosters of a server that kept them in this module's SQLite tables
  // (before the map store): moved once, into the values roster_codec.hpp
  // describes (built by the SELECTs), the tables dropped once empty; roster work
  // waits until all three are. (The removal records' SELECT reads mod_roster_items:
  // both tables were created by one step, and each goes only when empty.)
  constexpr auto map = parley::KeyvalMove::Target::map;
  move_.start(host(), {parley::OldTables::Move{"mod_roster_items",
                                               "SELECT user, 'i/' || contact, CAST(ver AS TEXT) || ' ' || subscription || "
                                               "' ' || CAST(ask AS TEXT) || ' ' || CAST(approved AS TEXT) || ' ' || "
                                               "COALESCE(CAST(LENGTH(CAST(name AS BLOB)) AS TEXT) || ':' || name, '-') || "
                                               "groups FROM mod_roster_items WHERE host = ?1 ORDER BY user, ver, contact",
                                               "DELETE FROM mod_roster_items WHERE host = ?1", map},
                       parley::OldTables::Move{"mod_roster_pending",
                                               "SELECT user, 'p/' || contact, stanza FROM mod_roster_pending WHERE host = ?1",
                                               "DELETE FROM mod_roster_pending WHERE host = ?1", map},
                       parley::OldTables::Move{"mod_roster_removed",
                                               "SELECT user, 'i/' || contact, CAST(ver AS TEXT) || ' remove' FROM "
                                               "mod_roster_removed r WHERE host = ?1 AND NOT EXISTS (SELECT 1 FROM "
                                               "mod_roster_items i WHERE i.host = r.host AND i.user = r.user AND "
                                               "i.contact = r.contact)",
                                               "DELETE FROM mod_roster_removed WHERE host = ?1", map}});
  work_waited_ = parley::register_metric(host(), "work_waited", PARLEY_METRIC_COUNTER,
                                         "roster work queued behind earlier work of the same user");
  work_posted_ = parley::register_metric(host(), "work_posted", PARLEY_METRIC_COUNTER,
                                         "roster work posted to the user's owning loop");
  return {};
}

// Format: "mod_roster/1\n" then one interested session id per line. Saved
// while every entry point is paused (the loops' sets are read from here
// without a race); each restored id is posted to its session's loop, which
// gives it a slot of the new code again, so it is forgotten when it ends.
parley::Result<std::string, std::string> ModRoster::save_state() {
  std::string out = "mod_roster/1\n";
  for (uint32_t loop = 0; loop < loops_.size(); ++loop)
    for (parley_session_id id : loops_.at(loop).interested) out += std::to_string(id) + "\n";
  return out;
}

parley::Result<void, std::string> ModRoster::restore_state(std::string_view bytes) {
  if (bytes.empty()) return {};
  constexpr std::string_view header = "mod_roster/1\n";
  if (bytes.substr(0, header.size()) != header) return parley::unexpected(std::string("unknown mod_roster state"));
  bytes.remove_prefix(header.size());
  std::vector<parley_session_id> ids;
  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    std::string_view line = bytes.substr(0, nl);
    parley_session_id id = 0;
    for (char c : line) {
      if (c < '0' || c > '9') return parley::unexpected(std::string("damaged mod_roster state"));
      id = id * 10 + static_cast<parley_session_id>(c - '0');
    }
    if (id != 0) ids.push_back(id);
    if (nl == std::string_view::npos) break;
    bytes.remove_prefix(nl + 1);
  }
  // A session that closed meanwhile is not found: nothing to restore for it.
  for (parley_session_id id : ids) parley::post_to_session(host(), id, [this, id] { mark_interested(id); });
  return {};
}

// ---- the per-user line, on the owning loop ---------------------------------------

uint32_t ModRoster::owner_loop(const std::string& owner) const {
  return static_cast<uint32_t>(std::hash<std::string>{}(owner) % loops_.size());
}

void ModRoster::exclusive(const std::string& owner, Work work) {
  const uint32_t loop = owner_loop(owner);
  auto enter = [this, owner](Work w) {
    if (here().lines.enter(owner, std::move(w))) run_head(owner);
    else work_waited_.add();  // started by leave_line(), not by polling
  };
  // The same loop: at once, so that two stanzas of one session keep their
  // order (posted ones keep it too: a loop's posts to another run in order).
  if (parley::current_loop(host()) == static_cast<int32_t>(loop)) return enter(std::move(work));
  auto shared = std::make_shared<Work>(std::move(work));
  if (parley::post(host(), loop, [enter, shared] { enter(std::move(*shared)); })) work_posted_.add();
  else host().error("cannot post roster work for " + owner + " to loop " + std::to_string(loop));
}

void ModRoster::run_head(const std::string& owner) {
  // The head keeps its place while the old tables are being moved (only
  // after a start on a server that had them): the user's order holds.
  if (!moved()) return when_moved([this, owner] { run_head(owner); });
  Work work = here().lines.take_head(owner);
  if (work) work(std::make_shared<Turn>(this, owner));
}

// The last callback of the head's work let go (on the owning loop). The next
// piece runs on a later turn of the loop, not inside the callback that is
// unwinding.
void ModRoster::leave_line(const std::string& user) {
  // Off the loops only at shutdown: the loops have stopped and the host drops
  // the callbacks it will not run (their Turns let go on the stopping
  // thread). No line runs any more, and here() has no loop to name.
  if (stopping_ || parley::current_loop(host()) < 0) return;
  if (!here().lines.leave(user)) return;
  if (!parley::post(host(), static_cast<uint32_t>(parley::current_loop(host())), [this, user] { run_head(user); }))
    run_head(user);
}

// ---- storage ---------------------------------------------------------------------

void ModRoster::load_roster(const std::string& user, std::function<void(std::optional<StoredRoster>)> done) {
  auto shared = std::make_shared<std::function<void(std::optional<StoredRoster>)>>(std::move(done));
  const bool sent = host().map_get(user, [this, user, shared](parley::Result<parley::MapResult, std::string> map) {
    if (!map) {
      host().error("reading the roster of " + user + " failed: " + map.error());
      return (*shared)(std::nullopt);
    }
    StoredRoster roster;
    for (std::size_t i = 0; i < map->size(); ++i) {
      const parley::KeyvalItem item = map->at(i);
      if (!add_map_item(roster, item.key, item.value))
        host().warn("a damaged roster entry of " + user + " is ignored: " + std::string(item.key));
    }
    (*shared)(std::move(roster));
  });
  if (!sent) {
    host().error("reading the roster of " + user + " was refused by the map store");
    (*shared)(std::nullopt);
  }
}

void ModRoster::load_contact(const std::string& user, const std::string& contact,
                             std::function<void(std::optional<ContactState>)> done) {
  // One read of the map: the item, the pending request and the version come
  // from the same snapshot (the user's line keeps writes out meanwhile).
  load_roster(user, [contact, done = std::move(done)](std::optional<StoredRoster> roster) {
    if (!roster) return done(std::nullopt);
    ContactState cs;
    cs.current_ver = roster->version();
    cs.roster_size = static_cast<int64_t>(roster->items.size());
    cs.roster_bytes = roster->bytes();
    cs.pending_count = static_cast<int64_t>(roster->pending.size());
    cs.item.jid = contact;
    if (const RosterItem* item = roster->find(contact)) {
      cs.in_roster = true;
      cs.item = *item;
    }
    cs.item.state.pending_in = roster->has_pending(contact);
    done(std::move(cs));
  });
}

void ModRoster::apply(const std::string& user, Change change, std::function<void(bool)> done) {
  if (change.empty()) return done(true);
  struct Progress {
    int left = 0;
    bool ok = true;
    std::function<void(bool)> done;
  };
  auto progress = std::make_shared<Progress>();
  progress->done = std::move(done);
  auto landed = [this, progress, user](parley::Result<parley::MapResult, std::string> r) {
    if (!r) {
      host().error("writing the roster of " + user + " failed: " + r.error());
      progress->ok = false;
    }
    if (--progress->left == 0) progress->done(progress->ok);
  };
  // The store runs a module's operations in the order they were made.
  if (!change.put.empty()) {
    std::vector<parley::KeyvalItem> items;
    items.reserve(change.put.size());
    for (const auto& [k, v] : change.put) items.push_back(parley::KeyvalItem{k, v});
    ++progress->left;
    if (!host().map_put(user, items, 0, landed)) {
      --progress->left;
      progress->ok = false;
    }
  }
  if (!change.remove.empty()) {
    ++progress->left;
    if (!host().map_remove(user, change.remove, landed)) {
      --progress->left;
      progress->ok = false;
    }
  }
  if (progress->left == 0) progress->done(false);
}

parley::Element ModRoster::roster_query(const StoredRoster& roster, std::string_view only_contact) const {
  parley::Element query = host().element("query", ns_roster);
  std::vector<const RosterItem*> items;
  for (const RosterItem& i : roster.items)
    if (only_contact.empty() || i.jid == only_contact) items.push_back(&i);
  std::sort(items.begin(), items.end(), [](const RosterItem* a, const RosterItem* b) { return a->jid < b->jid; });
  for (const RosterItem* i : items) query.add_child(item_element(*i));
  return query;
}

// ---- items and pushes -------------------------------------------------------------

parley::Element ModRoster::item_element(const RosterItem& item) const {
  parley::Element e = host().element("item", ns_roster);
  e.set_attr("jid", item.jid);
  if (item.name) e.set_attr("name", *item.name);
  e.set_attr("subscription", subscription_name(item.state.sub));
  if (item.state.pending_out) e.set_attr("ask", "subscribe");
  if (item.state.approved) e.set_attr("approved", "true");
  for (const std::string& g : item.groups) e.add_child("group", ns_roster).add_text(g);
  return e;
}

parley::Element ModRoster::removed_item_element(const std::string& contact) const {
  parley::Element e = host().element("item", ns_roster);
  e.set_attr("jid", contact);
  e.set_attr("subscription", "remove");
  return e;
}

parley::Element ModRoster::push_iq(const std::string& user, const std::string& to, const parley::Element& item,
                                   int64_t ver) {
  LoopState& state = here();
  parley::Element iq = host().element("iq", "jabber:client");
  iq.set_attr("type", "set");
  // Unique per loop, so the loops need not share a counter.
  iq.set_attr("id", "roster-push-" + std::to_string(parley::current_loop(host())) + "-" +
                        std::to_string(++state.push_ids));
  iq.set_attr("from", bare_of(user));
  iq.set_attr("to", to);
  parley::ElementRef query = iq.add_child("query", ns_roster);
  if (versioning_) query.set_attr("ver", std::to_string(ver));
  query.add_child(item.clone());
  return iq;
}

void ModRoster::push(const std::string& user, parley::Element item, int64_t ver, parley_session_id only) {
  if (only != 0) {
    // The resource that asked (a versioned get's delta): no interest to check.
    for (const auto& s : host().user_sessions(bare_of(user)))
      if (s.id == only) host().send_to_session(s.id, push_iq(user, s.full_jid, item, ver));
    return;
  }
  // Whether a resource is interested is known on its loop: decided there.
  auto shared = std::make_shared<const parley::Element>(std::move(item));
  for (const auto& s : host().user_sessions(bare_of(user))) {
    parley::post_to_session(host(), s.id, [this, user, id = s.id, full = s.full_jid, shared, ver] {
      if (interested_here(id)) host().send_to_session(id, push_iq(user, full, *shared, ver));
    });
  }
}

void ModRoster::to_sessions(const std::string& user, std::shared_ptr<const parley::Element> stanza,
                            bool (*wants)(bool available, bool interested)) {
  for (const auto& s : host().user_sessions(bare_of(user))) {
    parley::post_to_session(host(), s.id, [this, id = s.id, available = s.available, stanza, wants] {
      if (wants(available, interested_here(id))) host().send_to_session(id, stanza->clone());
    });
  }
}

// ---- sessions (on their own loops) -------------------------------------------------

SessionSlot* ModRoster::slot(parley_session_id session) {
  if (session == 0) return nullptr;
  if (auto* existing = host().session_slot<SessionSlot>(session)) return existing;
  auto* fresh = new SessionSlot{this, session, false};
  if (!host().session_set_data(session, fresh, &free_slot)) {
    delete fresh;
    return nullptr;
  }
  return fresh;
}

void ModRoster::mark_interested(parley_session_id session) {
  if (session == 0) return;
  if (slot(session) == nullptr) return;  // not on this loop, or gone; its destructor forgets the session
  here().interested.insert(session);
}

bool ModRoster::interested_here(parley_session_id session) { return here().interested.count(session) != 0; }

void ModRoster::forget_session(parley_session_id id) {
  // The host frees slots on the session's loop; at unload it may do so off
  // the loops, when nothing is left to forget.
  const int32_t loop = parley::current_loop(host());
  if (loop < 0 || static_cast<uint32_t>(loop) >= loops_.size()) return;
  loops_.at(static_cast<uint32_t>(loop)).interested.erase(id);
}

// ---- accounts ---------------------------------------------------------------------

void ModRoster::on_user_removed(const parley::Event& event) {
  if (event.host() != domain_) return;
  std::string user(event.user());
  exclusive(bare_of(user), [this, user](TurnPtr turn) {
    // ejabberd's courtesy, which keeps the contacts' rosters true: whoever
    // the account was subscribed to is told it unsubscribed, whoever was
    // subscribed to it (or asked to be) that the subscription is cancelled.
    load_roster(user, [this, turn, user](std::optional<StoredRoster> roster) {
      std::vector<std::pair<std::string, std::string>> notices;  // (type, contact)
      if (roster) {
        for (const RosterItem& i : roster->items) {
          if (has_to(i.state.sub) || i.state.pending_out) notices.emplace_back("unsubscribe", i.jid);
          if (has_from(i.state.sub)) notices.emplace_back("unsubscribed", i.jid);
        }
        for (const auto& p : roster->pending)
          if (!roster->find(p.first)) notices.emplace_back("unsubscribed", p.first);
      }
      const bool sent = host().map_clear(user, [this, turn, user, notices](parley::Result<parley::MapResult, std::string> r) {
        if (!r) host().error("removing the roster of " + user + " failed: " + r.error());
        const std::string bare = bare_of(user);
        for (const auto& [type, contact] : notices) route_presence(type, bare, contact);
      });
      if (!sent) host().error("removing the roster of " + user + " was refused by the map store");
    });
  });
}

void ModRoster::on_user_registered(const parley::Event& event) {
  if (event.host() != domain_) return;
  // Requests (and anything else) addressed to the name before the account
  // existed are not the new account's: the router does not know which local
  // users exist (see the module's report), so they may have been kept.
  std::string user(event.user());
  exclusive(bare_of(user), [this, user](TurnPtr turn) {
    host().map_clear(user, [this, turn, user](parley::Result<parley::MapResult, std::string> r) {
      if (!r) host().error("clearing old roster entries of new account " + user + " failed: " + r.error());
    });
  });
}

}  // namespace mod_roster

using mod_roster::ModRoster;

PARLEY_MODULE(
    ModRoster, "mod_roster", "1.0.0",
    parley::option("max_roster_size", PARLEY_OPT_INT), parley::option("versioning", PARLEY_OPT_BOOL),
    parley::option("max_name_length", PARLEY_OPT_INT), parley::option("max_group_length", PARLEY_OPT_INT),
    parley::option("max_groups_per_item", PARLEY_OPT_INT), parley::option("max_roster_bytes", PARLEY_OPT_INT),
    parley::option("max_pending_requests", PARLEY_OPT_INT),
    parley::option("max_pending_request_bytes", PARLEY_OPT_INT), parley::option("push_batch", PARLEY_OPT_INT),
    parley::option("push_batch_bytes", PARLEY_OPT_INT), parley::option("max_removal_records", PARLEY_OPT_INT),
    parley::iq_handler<&ModRoster::on_roster_iq>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET | PARLEY_IQ_SET,
                                                 mod_roster::ns_roster),
    parley::hook<&ModRoster::on_stanza_in>(PARLEY_EVENT_STANZA_IN, 40),
    parley::hook<&ModRoster::on_presence_to_local>(PARLEY_EVENT_PRESENCE_TO_LOCAL, 40),
    parley::hook<&ModRoster::on_presence_broadcast>(PARLEY_EVENT_PRESENCE_BROADCAST, 40),
    parley::hook<&ModRoster::on_user_removed>(PARLEY_EVENT_USER_REMOVED),
    parley::hook<&ModRoster::on_user_registered>(PARLEY_EVENT_USER_REGISTERED),
    parley::hook<&ModRoster::on_account_export>(PARLEY_EVENT_ACCOUNT_EXPORT),
    parley::hook<&ModRoster::on_account_import>(PARLEY_EVENT_ACCOUNT_IMPORT),
    parley::hook<&ModRoster::on_admin_query>(PARLEY_EVENT_ADMIN_USER_QUERY),
    parley::disco_feature(mod_roster::ns_rosterver),
    // RFC 6121 §2.6.1 and §3.4: advertised after authentication. With
    // `versioning: false` a get simply answers the whole roster, which
    // XEP-0237 allows a server to do at any time.
    parley::session_feature("<ver xmlns='urn:xmpp:features:rosterver'/>"),
    parley::session_feature("<sub xmlns='urn:xmpp:features:pre-approval'/>"),
    // The rosters before the map store: kept so that a server that has rows in
    // them gets them moved (OldTables in start()), then dropped.
    parley::schema("CREATE TABLE mod_roster_items (host TEXT NOT NULL, user TEXT NOT NULL, contact TEXT NOT NULL, "
                   "subscription TEXT NOT NULL DEFAULT 'none', ask INTEGER NOT NULL DEFAULT 0, "
                   "approved INTEGER NOT NULL DEFAULT 0, name TEXT, groups TEXT NOT NULL DEFAULT '', "
                   "ver INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (host, user, contact))"),
    parley::schema("CREATE INDEX mod_roster_items_contact ON mod_roster_items (host, contact)"),
    parley::schema("CREATE TABLE mod_roster_pending (host TEXT NOT NULL, user TEXT NOT NULL, contact TEXT NOT NULL, "
                   "stanza TEXT NOT NULL, PRIMARY KEY (host, user, contact))"),
    parley::schema("CREATE TABLE mod_roster_removed (host TEXT NOT NULL, user TEXT NOT NULL, contact TEXT NOT NULL, "
                   "ver INTEGER NOT NULL, PRIMARY KEY (host, user, contact))"))
