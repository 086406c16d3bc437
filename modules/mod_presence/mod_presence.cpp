// mod_presence: RFC 6121 §4, exchanging presence information, on top of the
// subscriptions mod_roster keeps (its table mod_roster_items, read only).
//
//   initial presence (§4.2, §4.3.1)   broadcast to subscribers (from/both), probe
//                                     the contacts the user is subscribed to
//                                     (to/both; local ones are answered from
//                                     this module's own knowledge), and show
//                                     the new resource the user's other ones
//   presence updates (§4.4)           broadcast to subscribers only: directed
//                                     presence does not put its recipient on
//                                     later broadcasts of available presence;
//                                     it gets the final unavailable (§4.6)
//   unavailable (§4.5)                to subscribers and to every entity that got
//                                     directed presence (§4.6), also when a
//                                     session ends without one (§4.5.4)
//   probes (§4.3.2)                   answered for a local user: each available
//                                     resource's last presence, else the last
//                                     unavailable one (XEP-0203 <delay/>), or
//                                     'unsubscribed' to a prober with no
//                                     subscription
//   unknown presence types (§4.7.1)   <bad-request/>
//
// The core reflects a session's own presence to the user's resources, delivers
// presence to a bare JID to its available resources, and drops probes unless a
// module takes them; this module does the rest.
//
// Options:
//   max_directed_presences  recipients of directed presence tracked per
//                           session (default 1000). Each one is owed an
//                           unavailable at logout (§4.6), so past the cap a
//                           directed available presence to a new recipient
//                           is not routed: the sender gets <policy-violation/>
//                           (a local limit the client can act on: sending
//                           unavailable to a recipient frees its place).
//   fanout_batch            presences routed per loop turn in a broadcast, the
//                           unavailable at logout or the probes at login
//                           (default 256); the rest follows on the next turns
//                           (a 1 ms timer), so the other sessions of the loop
//                           are served meanwhile. Order per session is kept
//                           (the Sequencer waits for the whole fan-out).
//   fanout_batch_bytes      the presences of local contacts answered to a new
//                           resource at login, per batch (default 262144):
//                           with ABI 1.2 the next batch waits until the
//                           connection wrote them
//
// Threads: a probe for a user may be handled on any loop, so each session's
// presence lives in one mutex-protected map, not in session slots. The work a
// presence stanza causes after a roster read runs per session in order (a
// Sequencer), so that an update can never overtake the initial presence.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/module.hpp"
#include "presence_logic.hpp"

namespace {

namespace mp = mod_presence;

constexpr const char* ns_client = "jabber:client";
constexpr const char* ns_delay = "urn:xmpp:delay";

// What the module knows of one bound session.
struct SessionPresence {
  std::string bare;
  std::string full;
  bool available = false;
  std::optional<parley::Element> last;  // the last broadcast presence while available
  mp::DirectedSet directed;
};

// The last unavailable presence of an account (§4.3.2), as stored.
struct LastUnavailable {
  std::string xml;
  std::string stamp;
};

// One roster item with what a probe answer for that contact needs.
struct Contact {
  mp::RosterRow row;
  std::optional<LastUnavailable> last;
};

using Shared = std::shared_ptr<parley::Element>;

std::optional<uint64_t> number(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::optional<std::string> text_cell(const parley::Rows& rows, std::size_t r, std::size_t c) {
  auto bytes = rows.at(r, c).bytes();
  return bytes ? std::optional<std::string>(std::string(*bytes)) : std::nullopt;
}

class ModPresence : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    const int64_t cap = host().option_int("max_directed_presences").value_or(1000);
    const int64_t batch = host().option_int("fanout_batch").value_or(256);
    const int64_t batch_bytes = host().option_int("fanout_batch_bytes").value_or(256 * 1024);
    if (cap < 1 || batch < 1 || batch_bytes < 1)
      return parley::unexpected(
          std::string("max_directed_presences, fanout_batch and fanout_batch_bytes must be at least 1"));
    batch_bytes_ = static_cast<std::size_t>(batch_bytes);
    max_directed_ = static_cast<std::size_t>(cap);
    batch_ = static_cast<std::size_t>(batch);
    return {};
  }

  // Directed presence (§4.6): routed by the core as usual; remembered here so
  // that the recipient learns when the session goes away.
  parley::Outcome on_stanza_in(const parley::Event& ev) {
    auto stanza = ev.stanza();
    if (!stanza || stanza->name() != "presence") return parley::Outcome::pass;
    std::string_view type = stanza->attr("type").value_or("");
    if (!mp::known_presence_type(type)) {
      // RFC 6121 §4.7.1: an unknown type deserves <bad-request/>.
      // No 'to' means the sender's own account (RFC 6120 §10.3): the error
      // comes from there (a bounce of a stanza with no 'to' has no 'from').
      parley::Element copy = stanza->clone();
      if (!copy.attr("to") || copy.attr("to")->empty()) copy.set_attr("to", mp::bare_of(ev.jid()));
      host().bounce(copy, "bad-request", "unknown presence type");
      return parley::Outcome::handled;
    }
    auto to_attr = stanza->attr("to");
    if (!to_attr || to_attr->empty()) return parley::Outcome::pass;
    if (!type.empty() && type != "unavailable") return parley::Outcome::pass;
    // Tracked in the server's own preparation of the address, so that the
    // unavailable for "Juliet@Example.COM" matches the available before it.
    std::optional<std::string> prepared = host().supports(PARLEY_HOST_ENTRY_END(jid_prepare))
                                              ? host().prepare_jid(*to_attr)
                                              : std::optional<std::string>(std::string(*to_attr));
    if (!prepared) return parley::Outcome::pass;  // the router answers jid-malformed
    const std::string* to = &*prepared;
    std::string_view full = ev.jid();
    // The user's own resources get the session's unavailable from the core,
    // and the server itself keeps no presence state.
    if (mp::bare_of(*to) == mp::bare_of(full) || *to == ev.host()) return parley::Outcome::pass;
    {
      std::lock_guard lock(mu_);
      SessionPresence& s = entry_locked(ev.session(), full);
      if (!type.empty()) {
        s.directed.remove(*to);
        return parley::Outcome::pass;
      }
      if (s.directed.add_capped(*to, max_directed_)) return parley::Outcome::pass;
    }
    // Not routed: a recipient that got available presence must get the
    // unavailable at logout, and that set is bounded.
    host().bounce(*stanza, "policy-violation",
                  "at most " + std::to_string(max_directed_) + " directed presences per session");
    return parley::Outcome::handled;
  }

  // The session's own presence (no 'to'); the core reflects it to the user's
  // resources after this returns pass.
  parley::Outcome on_broadcast(const parley::Event& ev) {
    auto stanza = ev.stanza();
    if (!stanza) return parley::Outcome::pass;
    std::string type(stanza->attr("type").value_or(""));
    const parley_session_id id = ev.session();
    const std::string full(ev.jid());
    const std::string bare(mp::bare_of(full));
    auto presence = std::make_shared<parley::Element>(stanza->clone());
    presence->remove_attr("to");
    presence->set_attr("from", full);

    if (type.empty()) {
      bool initial;
      {
        std::lock_guard lock(mu_);
        SessionPresence& s = entry_locked(id, full);
        initial = !s.available;
        s.available = true;
        s.last = presence->clone();
      }
      if (initial) show_other_resources(bare, full, id);
      sequencer_.submit(id, [this, presence, bare, full, initial, id](mp::Sequencer::Done done) {
        load_roster(bare, [this, presence, bare, full, initial, id, done](std::optional<std::vector<Contact>> roster) {
          if (!roster) return done();
          broadcast_available(presence, bare, full, initial, id,
                              std::make_shared<const std::vector<Contact>>(std::move(*roster)), done);
        });
      });
      return parley::Outcome::pass;
    }
    if (type != "unavailable") return parley::Outcome::pass;

    bool was_available = false;
    std::set<std::string> directed;
    {
      std::lock_guard lock(mu_);
      auto it = sessions_.find(id);
      if (it != sessions_.end()) {
        was_available = it->second.available;
        it->second.available = false;
        it->second.last.reset();
        directed = it->second.directed.take();
      }
    }
    if (was_available) remember_unavailable(bare, *presence);
    send_unavailable(id, bare, presence, was_available, std::move(directed));
    return parley::Outcome::pass;
  }

  // A session that ends while available went unavailable all the same
  // (§4.5.4); one that sent directed presence owes its recipients that too.
  void on_closed(const parley::Event& ev) {
    std::optional<SessionPresence> gone;
    {
      std::lock_guard lock(mu_);
      auto it = sessions_.find(ev.session());
      if (it == sessions_.end()) return;
      gone = std::move(it->second);
      sessions_.erase(it);
      forget_locked(gone->bare, ev.session());
    }
    if (!gone->available && gone->directed.empty()) return;
    auto presence = std::make_shared<parley::Element>(host().element("presence", ns_client));
    presence->set_attr("type", "unavailable");
    presence->set_attr("from", gone->full);
    if (gone->available) remember_unavailable(gone->bare, *presence);
    send_unavailable(ev.session(), gone->bare, presence, gone->available, gone->directed.take());
  }

  // Probes to a local user (§4.3.2), to the bare JID or to a full one.
  parley::Outcome on_presence_to_local(const parley::Event& ev) {
    auto stanza = ev.stanza();
    if (!stanza || stanza->attr("type").value_or("") != "probe") return parley::Outcome::pass;
    std::string from(stanza->attr("from").value_or(""));
    if (from.empty() || ev.user().empty()) return parley::Outcome::handled;
    std::string user = std::string(ev.user()) + "@" + std::string(ev.host());
    std::string prober(mp::bare_of(from));
    std::optional<std::string> probe_id;
    if (auto pid = stanza->attr("id")) probe_id = std::string(*pid);

    if (prober == user) {
      // An account is implicitly subscribed to its own presence.
      auto presences = available_presences(user, from);
      for (parley::Element& p : presences) {
        p.set_attr("to", from);
        host().route(std::move(p));
      }
      return parley::Outcome::handled;
    }
    host().query(
        "SELECT (SELECT subscription FROM mod_roster_items WHERE host = ? AND user = ? AND contact = ?), "
        "(SELECT xml FROM mod_presence_last WHERE jid = ?), (SELECT stamp FROM mod_presence_last WHERE jid = ?)",
        {std::string(ev.host()), std::string(ev.user()), prober, user, user},
        [this, user, prober, from, probe_id](parley::Result<parley::Rows, std::string> rows) {
          if (!rows) {
            host().error("reading the roster of " + user + " for a probe failed: " + rows.error());
            return;
          }
          std::optional<std::string> subscription;
          std::optional<LastUnavailable> last;
          if (rows->size() > 0) {
            subscription = text_cell(*rows, 0, 0);
            auto xml = text_cell(*rows, 0, 1);
            auto stamp = text_cell(*rows, 0, 2);
            if (xml && stamp) last = LastUnavailable{*xml, *stamp};
          }
          answer_probe(user, prober, from, probe_id, subscription, last);
        });
    return parley::Outcome::handled;
  }

  // A removed account's last presence must not outlive it.
  void on_user_removed(const parley::Event& ev) {
    std::string jid = std::string(ev.user()) + "@" + std::string(ev.host());
    host().execute("DELETE FROM mod_presence_last WHERE jid = ?", {jid},
                   [this, jid](parley::Result<parley::Rows, std::string> rows) {
                     if (!rows) host().error("forgetting the last presence of " + jid + " failed: " + rows.error());
                   });
  }

  // Hot reload: the sessions' presence and directed recipients, as bytes.
  parley::Result<std::string, std::string> save_state() override {
    std::vector<std::string> fields{"mod_presence/1"};
    std::lock_guard lock(mu_);
    for (const auto& [id, s] : sessions_) {
      fields.push_back(std::to_string(id));
      fields.push_back(s.full);
      fields.push_back(s.available ? "1" : "0");
      fields.push_back(s.last ? s.last->serialize() : std::string());
      fields.push_back(std::to_string(s.directed.size()));
      for (const std::string& jid : s.directed.jids()) fields.push_back(jid);
    }
    return mp::encode_fields(fields);
  }

  parley::Result<void, std::string> restore_state(std::string_view bytes) override {
    if (bytes.empty()) return {};
    auto fields = mp::decode_fields(bytes);
    if (!fields || fields->empty() || (*fields)[0] != "mod_presence/1")
      return parley::unexpected(std::string("unknown mod_presence state format"));
    const std::vector<std::string>& f = *fields;
    std::lock_guard lock(mu_);
    for (std::size_t i = 1; i < f.size();) {
      if (i + 5 > f.size()) return parley::unexpected(std::string("truncated mod_presence state"));
      auto id = number(f[i]);
      auto n = number(f[i + 4]);
      if (!id || !n) return parley::unexpected(std::string("malformed mod_presence state"));
      SessionPresence& s = entry_locked(*id, f[i + 1]);
      s.available = f[i + 2] == "1";
      if (!f[i + 3].empty()) {
        if (auto parsed = host().parse(f[i + 3])) s.last = std::move(*parsed);
      }
      i += 5;
      if (*n > f.size() - i) return parley::unexpected(std::string("truncated mod_presence state"));
      for (std::size_t k = 0; k < *n; ++k) s.directed.add(f[i + k]);
      i += *n;
    }
    return {};
  }

 private:
  // mu_ held.
  SessionPresence& entry_locked(parley_session_id id, std::string_view full) {
    auto [it, inserted] = sessions_.try_emplace(id);
    if (inserted) {
      it->second.full = std::string(full);
      it->second.bare = std::string(mp::bare_of(full));
      by_bare_[it->second.bare].insert(id);
    }
    return it->second;
  }

  // mu_ held.
  void forget_locked(const std::string& bare, parley_session_id id) {
    auto it = by_bare_.find(bare);
    if (it == by_bare_.end()) return;
    it->second.erase(id);
    if (it->second.empty()) by_bare_.erase(it);
  }

  // Copies of the last presence of each available resource of `bare`, but
  // the one whose full JID is `except`.
  std::vector<parley::Element> available_presences(const std::string& bare, std::string_view except = {}) {
    std::vector<parley::Element> out;
    std::lock_guard lock(mu_);
    auto it = by_bare_.find(bare);
    if (it == by_bare_.end()) return out;
    for (parley_session_id id : it->second) {
      auto s = sessions_.find(id);
      if (s == sessions_.end() || !s->second.available || !s->second.last || s->second.full == except) continue;
      out.push_back(s->second.last->clone());
    }
    return out;
  }

  // The new resource learns the presence of the user's other available ones
  // (the user is implicitly subscribed to their own presence, §4.2.2).
  void show_other_resources(const std::string& bare, const std::string& full, parley_session_id) {
    for (parley::Element& p : available_presences(bare, full)) {
      p.set_attr("to", full);
      host().route(std::move(p));
    }
  }

  // The user's roster with the last unavailable presence of each contact;
  // nullopt if it cannot be read (logged).
  void load_roster(const std::string& bare, std::function<void(std::optional<std::vector<Contact>>)> fn) {
    std::size_t at = bare.find('@');
    std::string user = bare.substr(0, at);
    std::string domain = at == std::string::npos ? std::string() : bare.substr(at + 1);
    host().query(
        "SELECT r.contact, r.subscription, l.xml, l.stamp FROM mod_roster_items r "
        "LEFT JOIN mod_presence_last l ON l.jid = r.contact WHERE r.host = ? AND r.user = ?",
        {domain, user}, [this, bare, fn = std::move(fn)](parley::Result<parley::Rows, std::string> rows) {
          if (!rows) {
            host().error("reading the roster of " + bare + " failed: " + rows.error());
            fn(std::nullopt);
            return;
          }
          std::vector<Contact> contacts;
          for (std::size_t r = 0; r < rows->size(); ++r) {
            Contact c;
            c.row.contact = text_cell(*rows, r, 0).value_or("");
            c.row.subscription = text_cell(*rows, r, 1).value_or("none");
            auto xml = text_cell(*rows, r, 2);
            auto stamp = text_cell(*rows, r, 3);
            if (xml && stamp) c.last = LastUnavailable{*xml, *stamp};
            if (!c.row.contact.empty()) contacts.push_back(std::move(c));
          }
          fn(std::move(contacts));
        });
  }

  static std::vector<mp::RosterRow> rows_of(const std::vector<Contact>& contacts) {
    std::vector<mp::RosterRow> rows;
    rows.reserve(contacts.size());
    for (const Contact& c : contacts) rows.push_back(c.row);
    return rows;
  }

  void route_copy(const parley::Element& presence, const std::string& to) {
    parley::Element copy = presence.clone();
    copy.set_attr("to", to);
    host().route(std::move(copy));
  }

  // Runs step(i) for each i in [from, n), at most batch_ of them per loop
  // turn, then done(): a large fan-out (a roster of thousands, the
  // unavailable owed to every directed recipient) leaves the loop between
  // batches, so the other sessions on it keep being served.
  void in_batches(std::size_t n, std::function<void(std::size_t)> step, std::function<void()> done,
                  std::size_t from = 0) {
    for (;;) {
      const std::size_t end = std::min(n, from + batch_);
      for (std::size_t i = from; i < end; ++i) step(i);
      from = end;
      if (from >= n) break;
      auto rest = [this, n, step, done, from](uint64_t) { in_batches(n, step, done, from); };
      // 1 ms, not 0: libuv before 1.45 runs a 0 ms timer started from a
      // timer callback in the same timer phase, and I/O would wait for the
      // whole chain.
      if (host().start_timer(std::chrono::milliseconds(1), std::move(rest)) != 0) return;
      // No timer (the module is stopping): finish now rather than owe
      // recipients their presence.
    }
    if (done) done();
  }

  // §4.2.2 / §4.4.2 broadcast, and on initial presence §4.3.1 probes; done()
  // once all of it is routed.
  void broadcast_available(Shared presence, const std::string& bare, const std::string& full, bool initial,
                           parley_session_id session, std::shared_ptr<const std::vector<Contact>> roster,
                           std::function<void()> done) {
    auto subscribers = std::make_shared<const std::vector<std::string>>(mp::subscribers(rows_of(*roster)));
    in_batches(
        subscribers->size(), [this, presence, subscribers](std::size_t i) { route_copy(*presence, (*subscribers)[i]); },
        [this, bare, full, initial, session, roster, done] {
          if (!initial) return done();
          probe_batches(bare, full, session, roster, 0, done);
        });
  }

  // §4.3.1 at login, at most batch_ roster items and about batch_bytes_ of
  // answers at a time. The answers for local contacts go to the new session
  // itself: with ABI 1.2 they are tracked sends, and the next batch waits
  // until the connection has written them (a roster of contacts with large
  // statuses would otherwise outgrow the session's write backlog and cut
  // it); a batch with nothing to wait for (and a host before 1.2) goes on at
  // the next loop turn.
  void probe_batches(std::string bare, std::string full, parley_session_id session,
                     std::shared_ptr<const std::vector<Contact>> roster, std::size_t from, std::function<void()> done) {
    struct Batch {
      std::size_t left = 1;  // the sending loop's own share, so that a send
                             // completed at once cannot move on early
      bool gone = false;     // the session ended: no more answers to send
      std::size_t end = 0;   // where the next batch starts
    };
    const bool tracked = session != 0 && host().supports_1_2();
    auto batch = std::make_shared<Batch>();
    auto go_on = [this, batch, bare, full, session, roster, done]() {
      if (batch->gone || batch->end >= roster->size()) return done();
      probe_batches(bare, full, session, roster, batch->end, done);
    };
    auto next = [batch, go_on]() {
      if (--batch->left == 0) go_on();
    };
    std::size_t bytes = 0;
    auto answer = [&](parley::Element p) {
      if (batch->gone) return;
      p.set_attr("to", full);
      if (!tracked) return host().route(std::move(p));
      bytes += p.serialize().size();
      ++batch->left;
      const bool accepted = host().send_tracked(session, std::move(p), [batch, next](bool written) {
        if (!written) batch->gone = true;
        next();
      });
      if (!accepted) {
        --batch->left;
        batch->gone = true;
      }
    };
    std::size_t i = from;
    const std::size_t last = std::min(roster->size(), from + batch_);
    while (i < last && bytes < batch_bytes_ && !batch->gone) probe_one(bare, (*roster)[i++], answer);
    batch->end = i;
    if (tracked && batch->left > 1) {
      --batch->left;  // the last completion to come goes on
      return;
    }
    // Nothing to wait for (nothing sent, or all written at once): the next
    // turn of the loop.
    if (batch->gone || batch->end >= roster->size()) return done();
    if (host().start_timer(std::chrono::milliseconds(1), [go_on](uint64_t) { go_on(); }) == 0) go_on();
  }

  // §4.3.1 for one roster item of a new resource: a local contact's presence
  // is answered here through `answer`, a remote one probed.
  void probe_one(const std::string& bare, const Contact& c, const std::function<void(parley::Element)>& answer) {
    if (!mp::has_to(c.row.subscription)) return;
    if (mp::domain_of(c.row.contact) == host().module_host() && c.row.contact.find('@') != std::string::npos) {
      // For the new resource only (the others already know).
      auto presences = available_presences(c.row.contact);
      if (presences.empty()) {
        answer(unavailable_answer(c.row.contact, std::string(), c.last, std::nullopt));
        return;
      }
      for (parley::Element& p : presences) answer(std::move(p));
      return;
    }
    parley::Element probe = host().element("presence", ns_client);
    probe.set_attr("type", "probe");
    probe.set_attr("from", bare);
    probe.set_attr("to", c.row.contact);
    host().route(std::move(probe));
  }

  // §4.5.2: subscribers (only if the session had been available: they never
  // saw it otherwise) and directed-presence recipients, in batches.
  void send_unavailable(parley_session_id id, const std::string& bare, Shared presence, bool was_available,
                        std::set<std::string> directed) {
    auto recipients = std::make_shared<std::set<std::string>>(std::move(directed));
    sequencer_.submit(id, [this, presence, bare, recipients, was_available](mp::Sequencer::Done done) {
      auto send = [this, presence, done](std::vector<std::string> targets) {
        auto list = std::make_shared<const std::vector<std::string>>(std::move(targets));
        in_batches(list->size(), [this, presence, list](std::size_t i) { route_copy(*presence, (*list)[i]); }, done);
      };
      if (!was_available) {
        send(std::vector<std::string>(recipients->begin(), recipients->end()));
        return;
      }
      load_roster(bare, [recipients, send](std::optional<std::vector<Contact>> roster) {
        std::vector<mp::RosterRow> rows = roster ? rows_of(*roster) : std::vector<mp::RosterRow>{};
        send(mp::unavailable_targets(rows, *recipients));
      });
    });
  }

  // Kept for probes that come while the account has no available resource.
  void remember_unavailable(const std::string& bare, const parley::Element& presence) {
    parley::Element copy = presence.clone();
    copy.remove_attr("to");
    std::string stamp = mp::xmpp_stamp(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()));
    host().execute("INSERT OR REPLACE INTO mod_presence_last (jid, xml, stamp) VALUES (?, ?, ?)",
                   {bare, copy.serialize(), stamp}, [this, bare](parley::Result<parley::Rows, std::string> rows) {
                     if (!rows) host().error("storing the last presence of " + bare + " failed: " + rows.error());
                   });
  }

  // §4.3.2 for an account with no available resource: unavailable from the
  // bare JID, with the last unavailable presence's content and id and a
  // XEP-0203 <delay/> saying when it was sent, if the server knows it.
  parley::Element unavailable_answer(const std::string& account, const std::string& to,
                                     const std::optional<LastUnavailable>& last,
                                     const std::optional<std::string>& probe_id) {
    parley::Element p;
    if (last) {
      if (auto parsed = host().parse(last->xml)) p = std::move(*parsed);
    }
    bool known = static_cast<bool>(p);
    if (!known) {
      p = host().element("presence", ns_client);
      if (probe_id) p.set_attr("id", *probe_id);
    }
    p.set_attr("type", "unavailable");
    p.set_attr("from", account);
    p.set_attr("to", to);
    p.remove_children("delay", ns_delay);
    if (known) {
      parley::ElementRef delay = p.add_child("delay", ns_delay);
      delay.set_attr("from", mp::domain_of(account));
      delay.set_attr("stamp", last->stamp);
    }
    return p;
  }

  void answer_probe(const std::string& user, const std::string& prober, const std::string& reply_to,
                    const std::optional<std::string>& probe_id, const std::optional<std::string>& subscription,
                    const std::optional<LastUnavailable>& last) {
    auto presences = available_presences(user);
    switch (mp::answer_probe(subscription, false, presences.size())) {
      case mp::ProbeAnswer::available:
        for (parley::Element& p : presences) {
          p.set_attr("to", reply_to);
          host().route(std::move(p));
        }
        return;
      case mp::ProbeAnswer::unavailable:
        host().route(unavailable_answer(user, reply_to, last, probe_id));
        return;
      case mp::ProbeAnswer::unsubscribed: {
        parley::Element p = host().element("presence", ns_client);
        p.set_attr("type", "unsubscribed");
        p.set_attr("from", user);
        p.set_attr("to", prober);
        if (probe_id) p.set_attr("id", *probe_id);
        host().route(std::move(p));
        return;
      }
    }
  }

  std::size_t max_directed_ = 1000;
  std::size_t batch_ = 256;
  std::size_t batch_bytes_ = 256 * 1024;
  std::mutex mu_;
  std::map<parley_session_id, SessionPresence> sessions_;
  std::map<std::string, std::set<parley_session_id>> by_bare_;
  mp::Sequencer sequencer_;
};

}  // namespace

PARLEY_MODULE(ModPresence, "mod_presence", "1.0.0", parley::depends("mod_roster"),
              parley::hook<&ModPresence::on_stanza_in>(PARLEY_EVENT_STANZA_IN),
              parley::hook<&ModPresence::on_broadcast>(PARLEY_EVENT_PRESENCE_BROADCAST),
              parley::hook<&ModPresence::on_presence_to_local>(PARLEY_EVENT_PRESENCE_TO_LOCAL),
              parley::hook<&ModPresence::on_closed>(PARLEY_EVENT_SESSION_CLOSED),
              parley::hook<&ModPresence::on_user_removed>(PARLEY_EVENT_USER_REMOVED),
              parley::option("max_directed_presences", PARLEY_OPT_INT),
              parley::option("fanout_batch", PARLEY_OPT_INT),
              parley::option("fanout_batch_bytes", PARLEY_OPT_INT),
              parley::schema("CREATE TABLE mod_presence_last (jid TEXT PRIMARY KEY, xml TEXT NOT NULL, "
                             "stamp TEXT NOT NULL)"))
