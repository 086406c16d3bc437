// Enforcement (XEP-0191 §3.3): what a blocked address sends to the user is not
// delivered, what the user sends to a blocked address is refused.
#include <algorithm>
#include <memory>
#include <utility>

#include "mod_blocking.hpp"

namespace mod_blocking {

namespace {

// A held stanza routed again after the lists it waited for were loaded. They
// are cached by then; should one not be (evicted in between, which the idle
// time makes all but impossible), the stanza goes through rather than loop.
struct Rerouting {
  std::string from;
  std::string to;
  std::vector<std::string> loaded;  // the users whose lists were loaded for it
};
thread_local const Rerouting* rerouting = nullptr;

// Whether `stanza` is being routed again after every list in `missing` was
// loaded for it.
bool is_rerouting(parley::ElementView stanza, const std::vector<std::string>& missing) {
  if (rerouting == nullptr || rerouting->from != stanza.attr("from").value_or("") ||
      rerouting->to != stanza.attr("to").value_or(""))
    return false;
  for (const std::string& user : missing)
    if (std::find(rerouting->loaded.begin(), rerouting->loaded.end(), user) == rerouting->loaded.end()) return false;
  return true;
}

std::string_view type_of(parley::ElementView stanza) { return stanza.attr("type").value_or(""); }

}  // namespace

void ModBlocking::reroute(parley::Element stanza, std::vector<std::string> loaded) {
  Rerouting guard{std::string(stanza.attr("from").value_or("")), std::string(stanza.attr("to").value_or("")),
                  std::move(loaded)};
  const Rerouting* outer = rerouting;
  rerouting = &guard;
  host().route(std::move(stanza));
  rerouting = outer;
}

// A held stanza whose list could not be loaded: refuse it rather than deliver
// what may be blocked. Presence and errors are dropped.
void ModBlocking::fail_held(parley::Element stanza) {
  if (stanza.name() == "presence") return;
  std::string_view type = type_of(stanza);
  if (stanza.name() == "iq" && type != "get" && type != "set") return;
  host().bounce(stanza, "internal-server-error", "the blocklist could not be read");
}

// XEP-0191 §3.3: presence is dropped without an answer; a message gets
// service-unavailable (so the user looks offline); an iq get or set gets
// service-unavailable, other iqs are dropped. bounce() never answers an error.
parley::Outcome ModBlocking::refuse_inbound(parley::ElementRef stanza) {
  host().counter_add("inbound_blocked");
  const std::string_view name = stanza.name();
  const std::string_view type = type_of(stanza);
  if (name == "message" || (name == "iq" && (type == "get" || type == "set")))
    host().bounce(stanza, "service-unavailable");
  return parley::Outcome::handled;
}

// XEP-0191 §3.3: not-acceptable with <blocked xmlns='urn:xmpp:blocking:errors'/>,
// from the blocked address, to the sending resource only: routed, the error
// would come from an address the user blocked and be dropped on the way.
void ModBlocking::refuse_outbound(parley::ElementView stanza, parley_session_id session) {
  host().counter_add("outbound_blocked");
  if (type_of(stanza) == "error") return;  // never answer an error with an error
  parley::Element reply = stanza.clone();
  const std::string from(stanza.attr("from").value_or(""));
  const std::string to(stanza.attr("to").value_or(""));
  reply.set_attr("type", "error");
  reply.remove_attr("from");
  reply.remove_attr("to");
  if (!to.empty()) reply.set_attr("from", to);
  if (!from.empty()) reply.set_attr("to", from);
  parley::ElementRef error = reply.add_child("error", ns_client);
  error.set_attr("type", "cancel");
  error.add_child("not-acceptable", ns_stanzas);
  error.add_child("blocked", ns_blocking_errors);
  host().send_to_session(session, std::move(reply));
}

parley::Outcome ModBlocking::on_stanza_in(const parley::Event& event) {
  auto stanza = event.stanza();
  if (!stanza || event.user().empty()) return parley::Outcome::pass;
  auto to_attr = stanza->attr("to");
  if (!to_attr || to_attr->empty()) return parley::Outcome::pass;  // the user's own account or presence
  if (blocks_nothing(event.user())) return parley::Outcome::pass;  // most users: nothing blocked
  // Prepared by the core before this hook (PARLEY_EVENT_STANZA_IN): no
  // stringprep again on every stanza.
  std::optional<parley::Jid> to = parley::Jid::prepared(*to_attr);
  const std::string user(event.user());
  if (to->local() == user && to->domain() == domain_) return parley::Outcome::pass;  // never blocks oneself
  if (auto blocked = cached_blocks(user, *to)) {
    if (!*blocked) return parley::Outcome::pass;
    refuse_outbound(*stanza, event.session());
    return parley::Outcome::handled;
  }
  // The session's input is held until its list is loaded, so this is rare:
  // the list was forgotten after a failed write. Decide once it is back.
  if (is_rerouting(*stanza, {user})) return parley::Outcome::pass;
  auto held = std::make_shared<parley::Element>(stanza->clone());
  const parley_session_id session = event.session();
  with_list(user, [this, held, user, session, to = *to](bool loaded) mutable {
    if (!loaded) return fail_held(std::move(*held));
    if (cached_blocks(user, to).value_or(false)) return refuse_outbound(*held, session);
    reroute(std::move(*held), {user});
  });
  return parley::Outcome::handled;
}

parley::Outcome ModBlocking::on_to_local(const parley::Event& event) {
  auto stanza = event.stanza();
  if (!stanza || event.user().empty() || event.host() != domain_) return parley::Outcome::pass;
  // 'from' is stamped by the server: prepared already.
  const std::string_view from_attr = stanza->attr("from").value_or("");
  if (from_attr.empty()) return parley::Outcome::pass;
  // Most stanzas, decided before any address is split: the user blocks nothing, and the
  // sender's side needs no check (below: not a presence or a bare JID's message to the user).
  const std::string_view type = type_of(*stanza);
  const bool for_the_user = stanza->name() == "presence" ? (type.empty() || type == "probe")
                                                          : stanza->name() == "message" &&
                                                                from_attr.find('/') == std::string_view::npos &&
                                                                type != "error";
  if (!for_the_user && blocks_nothing(event.user())) return parley::Outcome::pass;
  const parley::Jid from = parley::Jid::prepared(from_attr);
  const std::string user(event.user());
  if (from.local() == user && from.domain() == domain_) return parley::Outcome::pass;  // the user's own stanzas

  // The sender's side matters too when the sender is a local user of this
  // host and the stanza did not come through on_stanza_in: a presence module
  // broadcasting the sender's presence, probing, or answering a probe, and a
  // message from the user's bare JID, which the server sends on the user's
  // behalf (PEP notifications and last items: the user's data). Those are
  // dropped toward an address the sender blocked; unavailable presence,
  // subscription handling and errors (the refusals of what the blocked address
  // sent) still pass (XEP-0191 §3.3 wants the blocked contact to see the user
  // as unavailable).
  const bool check_sender = from.has_local() && from.domain() == domain_ && for_the_user;
  std::optional<parley::Jid> to;
  if (check_sender && !event.jid().empty()) to = parley::Jid::prepared(event.jid());

  std::optional<bool> inbound = cached_blocks(user, from);
  std::optional<bool> outbound;
  if (check_sender && to) outbound = cached_blocks(from.local(), *to);
  const bool need_sender = check_sender && to && !outbound;

  if (inbound && *inbound) return refuse_inbound(*stanza);
  if (inbound && !need_sender) {
    if (outbound && *outbound) {
      host().counter_add("outbound_blocked");
      return parley::Outcome::handled;
    }
    return parley::Outcome::pass;
  }
  std::vector<std::string> missing;
  if (!inbound) missing.push_back(user);
  if (need_sender) missing.push_back(from.local());
  if (is_rerouting(*stanza, missing)) {
    host().warn("a blocklist was evicted while a stanza waited for it; delivering unfiltered");
    return parley::Outcome::pass;
  }
  // Hold the stanza, load what is missing, then route a copy again: the
  // second pass finds the lists cached and decides.
  auto held = std::make_shared<parley::Element>(stanza->clone());
  auto then_reroute = [this, held, missing](bool loaded) {
    if (!loaded) return fail_held(std::move(*held));
    reroute(std::move(*held), missing);
  };
  if (missing.size() == 1) {
    with_list(missing[0], then_reroute);
  } else {
    with_list(missing[0], [this, held, second = missing[1], then_reroute](bool loaded) {
      if (!loaded) return fail_held(std::move(*held));
      with_list(second, then_reroute);
    });
  }
  return parley::Outcome::handled;
}

// Only messages and presence (what is stored for a user and written at a login:
// offline messages, subscription requests); an iq from a blocked address is
// answered on its way in. Errors pass: the one refuse_outbound writes comes
// from the blocked address by design.
parley::Outcome ModBlocking::on_stanza_out(const parley::Event& event) {
  auto stanza = event.stanza();
  if (!stanza || event.user().empty() || event.host() != domain_) return parley::Outcome::pass;
  const std::string_view name = stanza->name();
  if ((name != "message" && name != "presence") || type_of(*stanza) == "error") return parley::Outcome::pass;
  const std::string_view from_attr = stanza->attr("from").value_or("");
  if (from_attr.empty()) return parley::Outcome::pass;
  // Stored stanzas were prepared when they were first routed; the rest is the server's.
  const parley::Jid from = parley::Jid::prepared(from_attr);
  const std::string user(event.user());
  if (from.local() == user && from.domain() == domain_) return parley::Outcome::pass;
  // Not cached: the filter is on only while this loop holds a list that blocks
  // something, so this is an eviction race; routing checked the stanza already.
  if (!cached_blocks(user, from).value_or(false)) return parley::Outcome::pass;
  return refuse_inbound(*stanza);
}

void ModBlocking::on_session_bound(const parley::Event& event) {
  if (event.user().empty() || event.host() != domain_) return;
  const std::string user(event.user());
  if (is_cached(user)) return filter_sessions(user);
  // Hold the session's input until its list is here, so that its first
  // stanzas are checked like every later one.
  const parley_session_id session = event.session();
  const bool held = host().supports_1_1() && host().hold_session(session);
  with_list(user, [this, session, held](bool) {
    if (held) host().release_session(session);
  });
}

void ModBlocking::on_session_closed(const parley::Event& event) {
  here().interested.erase(event.session());  // kept by the session's loop, which runs this
  if (event.user().empty() || event.host() != domain_) return;
  const std::string user(event.user());
  // The closing session is still listed while this hook runs. The user's
  // last session gone, every loop that keeps a copy of the list may evict it.
  for (const auto& session : host().user_sessions(user + "@" + domain_))
    if (session.id != event.session()) return;
  const int32_t self = parley::current_loop(host());
  for (uint32_t loop = 0; loop < loops_.size(); ++loop) {
    auto arm = [this, user] {
      if (here().lists.count(user) != 0) arm_eviction();
    };
    if (static_cast<int32_t>(loop) == self) arm();
    else parley::post(host(), loop, arm);
  }
}

void ModBlocking::on_user_removed(const parley::Event& event) {
  if (event.host() != domain_) return;
  const std::string user(event.user());
  forget_everywhere(user);
  // After the move of old rows (one moved later would bring the list back).
  move_.when_ready(host(), [this, user] {
    host().map_clear(user, [this, user](parley::Result<parley::MapResult, std::string> r) {
      if (!r) host().error("removing the blocklist of " + user + " failed: " + r.error());
      // A load that raced the clear may have cached the old list.
      forget_everywhere(user);
    });
  });
}

}  // namespace mod_blocking
