// Live messages during a login's offline delivery.
//
// A session that becomes available starts the delivery of what was stored (posted to
// the user's owner loop, read on the session's loop, written in paced batches). A
// message routed to it meanwhile would reach it at once, ahead of older stored ones:
// a contact's "are you there?" before the "hello" it wrote an hour earlier, or, when a
// detached session's unacknowledged messages are routed again while the account logs
// in anew, the second of two messages before the first (one went to storage an instant
// before the presence, the other to the session an instant after).
//
// So from its available presence on, the session's outgoing filter (PER_SESSION: on
// only then) holds every message that storage would have taken had it come a moment
// earlier (offline_rules.cpp), that comes from someone else (the account's own bare
// JID sends carbons and archive results) and that is no archive result (a room's: it
// must stay before its query's <iq/> answer). Presence, iq and everything else pass.
// The owner loop releases the holds of every session of the user once no delivery runs
// and no message is on its way into storage (settle); the session's loop then sends
// what it held, in order, through the filters after this one (client state indication,
// stream management's counting).
//
// Bounds (options): hold_live_seconds (default 10; 0 turns holding off), and
// hold_live_max_messages / hold_live_max_bytes per session (256, 1 MiB). Past any, what
// was held goes out, then the rest as it comes: the order may then suffer, never the
// delivery. A session that closes while holding has its messages routed again as for
// a resource that is gone (RFC 6121: another resource, storage, or an error). The
// timer of a hold that holds something also keeps a reload or unload from dropping it:
// the host waits for (or refuses while) a module's timers are pending. An empty hold
// ends with a reload (the new code's filter is off): nothing is lost, the order of
// what follows is then not kept.
#include <string>
#include <vector>

#include "mod_offline.hpp"
#include "offline_rules.hpp"

namespace mod_offline {

bool ModOffline::start_hold(parley_session_id session) {
  if (hold_ms_ <= 0) return false;
  LoopState& loop = here();
  if (loop.holds.count(session) != 0) return true;
  if (!host().filter_out(session, true)) return false;
  loop.holds[session];
  return true;
}

// From the first message held: a session whose delivery stalls gets its live messages
// after hold_live_seconds all the same (then out of order).
void ModOffline::arm_hold_timer(parley_session_id session, Hold& hold) {
  hold.timer = host().start_timer(std::chrono::milliseconds(hold_ms_), [this, session](uint64_t id) {
    auto it = here().holds.find(session);
    if (it == here().holds.end() || it->second.timer != id) return;
    it->second.timer = 0;
    host().counter_add("hold_timeouts");
    host().warn("live messages held behind an offline delivery for " + std::to_string(hold_ms_ / 1000) +
                " s: released");
    release_hold(session);
  });
}

parley::Outcome ModOffline::on_stanza_out(const parley::Event& event) {
  LoopState& loop = here();
  if (loop.own_send) return parley::Outcome::pass;
  auto it = loop.holds.find(event.session());
  if (it == loop.holds.end()) return parley::Outcome::pass;
  auto stanza = event.stanza();
  if (!stanza || stanza->name() != "message") return parley::Outcome::pass;
  auto from = stanza->attr("from");
  if (!from || parley::Jid::prepared(*from).bare_str() == std::string(event.user()) + "@" + domain_)
    return parley::Outcome::pass;
  std::vector<parley::offline::ChildName> children;
  for (parley::ElementRef child : stanza->children()) {
    // An archive's result (a room's too) belongs before its query's <iq/> answer,
    // which is not held.
    if (child.name() == "result" && child.xmlns().substr(0, 12) == "urn:xmpp:mam") return parley::Outcome::pass;
    children.push_back({child.name(), child.xmlns()});
  }
  if (parley::offline::classify(stanza->attr("type").value_or(""), children) !=
      parley::offline::Disposition::store)
    return parley::Outcome::pass;
  Hold& hold = it->second;
  parley::OutBytes bytes = parley::stanza_out_bytes(host(), *stanza);
  if (hold.stanzas.size() >= hold_messages_ || hold.bytes + bytes.size() > hold_bytes_) {
    host().counter_add("hold_overflows");
    release_hold(event.session());  // what it held first, then this one
    return parley::Outcome::pass;
  }
  if (hold.timer == 0) arm_hold_timer(event.session(), hold);
  hold.bytes += bytes.size();
  hold.stanzas.push_back(std::move(bytes));
  host().counter_add("held_live");
  return parley::Outcome::handled;
}

void ModOffline::release_hold(parley_session_id session) {
  LoopState& loop = here();
  auto it = loop.holds.find(session);
  if (it == loop.holds.end()) return;
  Hold hold = std::move(it->second);
  loop.holds.erase(it);
  if (hold.timer != 0) host().cancel_timer(hold.timer);
  host().filter_out(session, false);
  std::vector<std::string> refused;  // the session is closing: routed as for a resource that is gone
  for (const parley::OutBytes& bytes : hold.stanzas) {
    std::string xml = bytes.str();
    auto stanza = host().parse(xml);
    if (stanza && !host().session_send_after(session, std::move(*stanza))) refused.push_back(std::move(xml));
  }
  if (!refused.empty() && !parley::route_from_task(host(), std::move(refused)))
    host().warn("held live messages of a closing session could not be routed again (shutting down)");
}

// What a closing session held is routed again as for a resource that is gone.
void ModOffline::on_session_closed(const parley::Event& event) {
  LoopState& loop = here();
  auto it = loop.holds.find(event.session());
  if (it == loop.holds.end()) return;
  Hold hold = std::move(it->second);
  loop.holds.erase(it);
  if (hold.timer != 0) host().cancel_timer(hold.timer);
  if (hold.stanzas.empty()) return;
  std::vector<std::string> messages;
  for (const parley::OutBytes& bytes : hold.stanzas) messages.push_back(bytes.str());
  if (!parley::route_from_task(host(), std::move(messages)))
    host().warn("held live messages of a closed session could not be routed again (shutting down)");
}

bool ModOffline::idle(const UserState& st) {
  return st.waiting.empty() && st.held.empty() && st.puts_in_flight == 0 && !st.loading && !st.delivering &&
         !st.redeliver;
}

// Owner loop. Only after a session started holding (its presence asked for the
// delivery); then every session of the user: the owner does not know which hold (a
// release of a session that holds nothing does nothing).
void ModOffline::settle(const std::string& user) {
  auto it = here().users.find(user);
  if (it == here().users.end() || !it->second.holding || !idle(it->second)) return;
  it->second.holding = false;
  for (const auto& s : host().user_sessions(user + "@" + domain_)) {
    parley_session_id session = s.id;
    parley::post_to_session(host(), session, [this, session] { release_hold(session); });
  }
}

}  // namespace mod_offline
