// mod_presence: RFC 6121 §4, exchanging presence information, on top of the
// subscriptions mod_roster keeps (asked through events 27-28, want='roster').
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
//   unknown presence types (§4.7.1)   <bad-request/>, from a local client or
//                                     from elsewhere (another server, a component)
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
// Threads: see mod_presence.hpp (state in session slots, questions about
// another user's presence posted to that user's sessions' loops).
#include "mod_presence.hpp"

#include <chrono>
#include <utility>

namespace mod_presence {

parley::Result<void, std::string> ModPresence::start() {
  const int64_t cap = host().option_int("max_directed_presences").value_or(1000);
  const int64_t batch = host().option_int("fanout_batch").value_or(256);
  const int64_t batch_bytes = host().option_int("fanout_batch_bytes").value_or(256 * 1024);
  if (cap < 1 || batch < 1 || batch_bytes < 1)
    return parley::unexpected(
        std::string("max_directed_presences, fanout_batch and fanout_batch_bytes must be at least 1"));
  batch_bytes_ = static_cast<std::size_t>(batch_bytes);
  max_directed_ = static_cast<std::size_t>(cap);
  batch_ = static_cast<std::size_t>(batch);
  if (!host().supports_1_2()) return parley::unexpected(std::string("needs a host with module ABI 1.2 (post)"));
  if (!host().supports_keyval()) return parley::unexpected(std::string("this server has no keyval store"));
  loops_.init(host());
  asks_.init(host(), "mod_presence");
  // The last unavailable presences of a server that kept them in this
  // module's table (before the keyval store, one table for every host, by
  // bare JID): this host's moved over once, the table dropped once empty;
  // reads and removals wait for it.
  move_.start(host(), {parley::OldTables::Move{
                          "mod_presence_last",
                          "SELECT substr(jid, 1, instr(jid, '@') - 1), 'last', stamp || char(10) || xml "
                          "FROM mod_presence_last WHERE instr(jid, '@') > 1 AND substr(jid, instr(jid, '@') + 1) = ?1",
                          "DELETE FROM mod_presence_last WHERE substr(jid, instr(jid, '@') + 1) = ?1"}});
  tracked_ = parley::register_metric(host(), "sessions_tracked", PARLEY_METRIC_GAUGE,
                                     "sessions whose presence the module keeps (in their slots)");
  return {};
}

// Directed presence (§4.6): routed by the core as usual; remembered here so
// that the recipient learns when the session goes away.
parley::Outcome ModPresence::on_stanza_in(const parley::Event& ev) {
  auto stanza = ev.stanza();
  if (!stanza || stanza->name() != "presence") return parley::Outcome::pass;
  std::string_view type = stanza->attr("type").value_or("");
  const std::string_view sender_bare = parley::bare_jid(ev.jid());  // stamped by the server: prepared
  if (!known_presence_type(type)) {
    // RFC 6121 §4.7.1: an unknown type deserves <bad-request/>.
    // No 'to' means the sender's own account (RFC 6120 §10.3): the error
    // comes from there (a bounce of a stanza with no 'to' has no 'from').
    parley::Element copy = stanza->clone();
    if (!copy.attr("to") || copy.attr("to")->empty()) copy.set_attr("to", sender_bare);
    host().bounce(copy, "bad-request", "unknown presence type");
    return parley::Outcome::handled;
  }
  auto to_attr = stanza->attr("to");
  if (!to_attr || to_attr->empty()) return parley::Outcome::pass;
  if (!type.empty() && type != "unavailable") return parley::Outcome::pass;
  // Tracked in the server's own preparation of the address, so that the
  // unavailable for "Juliet@Example.COM" matches the available before it.
  // The canonical string is all that is kept and compared here (the hot
  // path of a directed-presence flood): no split into a parley::Jid.
  auto prepared = host().prepare_jid(*to_attr);
  if (!prepared) return parley::Outcome::pass;  // the router answers jid-malformed
  // The user's own resources get the session's unavailable from the core,
  // and the server itself keeps no presence state.
  const std::string& recipient = *prepared;
  if (parley::bare_jid(recipient) == sender_bare || recipient == ev.host()) return parley::Outcome::pass;
  SessionPresence* s = slot(ev.session(), ev.jid());
  if (s == nullptr) return parley::Outcome::pass;
  if (!type.empty()) {
    s->directed.remove(recipient);
    return parley::Outcome::pass;
  }
  if (s->directed.add_capped(recipient, max_directed_)) return parley::Outcome::pass;
  // Not routed: a recipient that got available presence must get the
  // unavailable at logout, and that set is bounded.
  host().bounce(*stanza, "policy-violation",
                "at most " + std::to_string(max_directed_) + " directed presences per session");
  return parley::Outcome::handled;
}

// The session's own presence (no 'to'); the core reflects it to the user's
// resources after this returns pass.
parley::Outcome ModPresence::on_broadcast(const parley::Event& ev) {
  auto stanza = ev.stanza();
  if (!stanza) return parley::Outcome::pass;
  std::string type(stanza->attr("type").value_or(""));
  const parley_session_id id = ev.session();
  const std::string full(ev.jid());
  const std::string bare = parley::Jid::prepared(full).bare_str();
  auto presence = std::make_shared<parley::Element>(stanza->clone());
  presence->remove_attr("to");
  presence->set_attr("from", full);

  if (type.empty()) {
    SessionPresence* s = slot(id, full);
    if (s == nullptr) return parley::Outcome::pass;
    const bool initial = !s->available;
    s->available = true;
    s->last = compact_presence(*presence);
    if (initial) show_other_resources(bare, full);
    here().sequencer.submit(id, [this, presence, bare, full, initial, id](Sequencer::Done done) {
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
  if (SessionPresence* s = slot(id)) {
    was_available = s->available;
    s->available = false;
    std::string().swap(s->last);
    directed = s->directed.take();
  }
  if (was_available) remember_unavailable(bare, *presence);
  send_unavailable(id, bare, presence, was_available, std::move(directed));
  return parley::Outcome::pass;
}

// A session that ends while available went unavailable all the same
// (§4.5.4); one that sent directed presence owes its recipients that too.
// The slot is still there while this hook runs, and freed after it.
void ModPresence::on_closed(const parley::Event& ev) {
  SessionPresence* s = slot(ev.session());
  if (s == nullptr) return;
  const bool available = s->available;
  std::set<std::string> directed = s->directed.take();
  s->available = false;
  std::string().swap(s->last);
  if (!available && directed.empty()) return;
  auto presence = std::make_shared<parley::Element>(host().element("presence", ns_client));
  presence->set_attr("type", "unavailable");
  presence->set_attr("from", s->full);
  const std::string bare = parley::Jid::prepared(s->full).bare_str();
  if (available) remember_unavailable(bare, *presence);
  send_unavailable(ev.session(), bare, presence, available, std::move(directed));
}

// Probes to a local user (§4.3.2), to the bare JID or to a full one; and a
// presence of a type nobody knows (§4.7.1), whoever sent it.
parley::Outcome ModPresence::on_presence_to_local(const parley::Event& ev) {
  auto stanza = ev.stanza();
  if (!stanza) return parley::Outcome::pass;
  const std::string_view type = stanza->attr("type").value_or("");
  if (!known_presence_type(type)) {
    // RFC 6121 §4.7.1 asks the recipient or a server on the way for
    // <bad-request/>: a local user's own stanza was answered in
    // on_stanza_in; one from another server or a component is answered
    // here rather than handed to the user's client.
    host().bounce(*stanza, "bad-request", "unknown presence type");
    return parley::Outcome::handled;
  }
  if (type != "probe") return parley::Outcome::pass;
  std::string from(stanza->attr("from").value_or(""));
  if (from.empty() || ev.user().empty()) return parley::Outcome::handled;
  std::string user = ev.user_bare();
  std::string prober = parley::Jid::prepared(from).bare_str();  // stamped by the server
  std::optional<std::string> probe_id;
  if (auto pid = stanza->attr("id")) probe_id = std::string(*pid);

  if (prober == user) {
    // An account is implicitly subscribed to its own presence.
    each_presence(
        user, from,
        [this, from](parley::Element p) {
          p.set_attr("to", from);
          host().route(std::move(p));
        },
        nullptr);
    return parley::Outcome::handled;
  }
  // The prober's item, asked of the roster module (events 27-28: read after
  // its last committed change, as the probe a subscription sends follows the
  // commit); then the last unavailable presence from the keyval store, whose
  // operations run in the order queued: it may have been written a moment
  // ago (its broadcast can reach the prober first), and the get sees that
  // put (a reader thread of before could answer from the row before it:
  // test_unavailable_on_clean_logout_carries_the_status_once got no status
  // that way).
  asks_.ask_roster(ev.user(), prober, [this, user, local = std::string(ev.user()), prober, from, probe_id](auto roster) {
    if (!roster) return host().error("reading the roster of " + user + " for a probe failed");
    std::optional<std::string> subscription;
    for (const auto& item : *roster)
      if (item.jid == prober) subscription = item.subscription;
    get_last(local, [this, user, prober, from, probe_id, subscription](std::optional<LastUnavailable> last) {
      answer_probe(user, prober, from, probe_id, subscription, last);
    });
  });
  return parley::Outcome::handled;
}

// A removed account's last presence must not outlive it.
// After the move of old rows (one moved later would bring it back).
void ModPresence::on_user_removed(const parley::Event& ev) {
  std::string user(ev.user());
  if (user.empty()) return;
  move_.when_ready(host(), [this, user] {
    host().keyval_remove_user(user, [this, user](parley::Result<parley::KeyvalResult, std::string> r) {
      if (!r) host().error("forgetting the last presence of " + user + " failed: " + r.error());
    });
  });
}

}  // namespace mod_presence

using mod_presence::ModPresence;

PARLEY_MODULE(ModPresence, "mod_presence", "1.0.0", parley::depends("mod_roster"),
              parley::hook<&ModPresence::on_stanza_in>(PARLEY_EVENT_STANZA_IN),
              parley::hook<&ModPresence::on_broadcast>(PARLEY_EVENT_PRESENCE_BROADCAST),
              parley::hook<&ModPresence::on_presence_to_local>(PARLEY_EVENT_PRESENCE_TO_LOCAL),
              parley::hook<&ModPresence::on_closed>(PARLEY_EVENT_SESSION_CLOSED),
              parley::hook<&ModPresence::on_user_removed>(PARLEY_EVENT_USER_REMOVED),
              parley::hook<&ModPresence::on_roster_answer>(PARLEY_EVENT_ADMIN_USER_ANSWER),
              parley::option("max_directed_presences", PARLEY_OPT_INT),
              parley::option("fanout_batch", PARLEY_OPT_INT),
              parley::option("fanout_batch_bytes", PARLEY_OPT_INT),
              // Before the keyval store: moved there at start, the table
              // dropped after (the step stays: versions never go back).
              parley::schema("CREATE TABLE mod_presence_last (jid TEXT PRIMARY KEY, xml TEXT NOT NULL, "
                             "stamp TEXT NOT NULL)"))
