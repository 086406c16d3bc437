// mod_roster: presence subscriptions (RFC 6121 section 3).
//
// A user's own subscription stanza (STANZA_IN) is the outbound side: the
// user's server stamps the bare JIDs (3.1.2), moves the user's item through
// Appendix A.2 and routes the stanza on, or not. A subscription stanza to a
// local user (PRESENCE_TO_LOCAL) is the inbound side, Appendix A.3: the
// contact's roster changes, and the stanza is delivered, or not, or answered
// on the user's behalf. When both users are local the routed stanza comes
// straight back here as the other user's inbound stanza.
#include <algorithm>
#include <utility>

#include "mod_roster.hpp"

namespace mod_roster {

namespace {

// The roster item's own fields changed (Pending In lives elsewhere).
bool item_differs(const SubState& a, const SubState& b) {
  return a.sub != b.sub || a.pending_out != b.pending_out || a.approved != b.approved;
}

bool creates_item(const SubState& s) { return s.sub != Subscription::none || s.pending_out || s.approved; }

}  // namespace

// ---- hooks ----------------------------------------------------------------------

parley::Outcome ModRoster::on_stanza_in(const parley::Event& event) {
  auto stanza = event.stanza();
  if (!stanza || stanza->name() != "presence") return parley::Outcome::pass;
  auto type = parse_sub_type(stanza->attr("type").value_or(""));
  if (!type) return parley::Outcome::pass;
  auto to_attr = stanza->attr("to");
  if (!to_attr || to_attr->empty()) return parley::Outcome::pass;  // means nothing (the core drops it)
  if (event.host() != domain_ || event.user().empty()) return parley::Outcome::pass;
  auto to = prepare(*to_attr);
  if (!to) {
    host().bounce(*stanza, "jid-malformed");
    return parley::Outcome::handled;
  }
  std::string user(event.user());
  const std::string owner = bare_of(user);
  std::string contact = to->bare_str();
  // The user's own resources always share its presence (RFC 6121 4.2.2):
  // a subscription to oneself manages nothing.
  if (contact == owner) return parley::Outcome::handled;
  // 3.1.2 and the like: the user's server stamps the bare JIDs.
  auto copy = std::make_shared<parley::Element>(stanza->clone());
  copy->set_attr("to", contact);
  const parley_session_id session = event.session();
  // The session's next stanzas wait until this one has changed the roster
  // and gone on, so that they are seen in the order they were sent.
  std::shared_ptr<Hold> held;
  if (can_hold_ && session != 0 && host().hold_session(session)) held = std::make_shared<Hold>(this, session);
  // Errors go back to the resource that sent it.
  copy->set_attr("from", event.jid().empty() ? owner : std::string(event.jid()));
  exclusive(owner, [this, user, contact, t = *type, copy, held](TurnPtr turn) {
    outbound(std::move(turn), user, contact, t, copy, held);
  });
  return parley::Outcome::handled;
}

parley::Outcome ModRoster::on_presence_to_local(const parley::Event& event) {
  auto stanza = event.stanza();
  if (!stanza || stanza->name() != "presence") return parley::Outcome::pass;
  auto type = parse_sub_type(stanza->attr("type").value_or(""));
  if (!type) return parley::Outcome::pass;
  if (event.host() != domain_ || event.user().empty()) return parley::Outcome::pass;
  auto from = prepare(stanza->attr("from").value_or(""));
  if (!from) return parley::Outcome::handled;
  std::string user(event.user());
  const std::string owner = bare_of(user);
  std::string contact = from->bare_str();
  if (contact == owner) return parley::Outcome::handled;
  auto copy = std::make_shared<parley::Element>(stanza->clone());
  copy->set_attr("from", contact);
  copy->set_attr("to", owner);
  exclusive(owner, [this, user, contact, t = *type, copy](TurnPtr turn) {
    inbound(std::move(turn), user, contact, t, copy);
  });
  return parley::Outcome::handled;
}

parley::Outcome ModRoster::on_presence_broadcast(const parley::Event& event) {
  auto stanza = event.stanza();
  if (!stanza || event.host() != domain_ || event.user().empty()) return parley::Outcome::pass;
  const std::string_view type = stanza->attr("type").value_or("");
  SessionSlot* s = slot(event.session());
  if (s == nullptr) return parley::Outcome::pass;
  if (type.empty()) {
    // 3.1.3: the requests the user has not answered are delivered whenever
    // one of the user's resources becomes available, until answered.
    if (!s->available) {
      s->available = true;
      deliver_pending(std::string(event.user()), event.session());
    }
  } else if (type == "unavailable") {
    s->available = false;
  }
  return parley::Outcome::pass;
}

// ---- outbound (Appendix A.2) ------------------------------------------------------

void ModRoster::outbound(TurnPtr turn, std::string user, std::string contact, SubType type, ElementPtr stanza,
                         std::shared_ptr<Hold> hold) {
  // `hold` (the sender's paused input) goes with the last callback.
  load_contact(user, contact, [this, turn, user, contact, type, stanza, hold](std::optional<ContactState> cs) {
    if (!cs) {
      host().bounce(*stanza, "internal-server-error");
      return;
    }
    const SubState before = cs->item.state;
    const Transition t = transition(before, Direction::outbound, type);
    const bool exists = cs->in_roster;
    const bool item_changed = exists ? item_differs(before, t.next) : creates_item(t.next);
    if (!exists && item_changed &&
        (cs->roster_size >= max_roster_size_ ||
         !roster_bytes_fit(cs->roster_bytes, static_cast<int64_t>(item_cost(contact, std::nullopt, {}))))) {
      host().bounce(*stanza, "not-allowed", "the roster is full");
      return;
    }
    RosterItem item = cs->item;
    item.state = t.next;
    Change change;
    if (item_changed) {
      item.ver = cs->current_ver + 1;
      put_item(change, item);  // replaces a removal record of the contact, if any
    }
    if (before.pending_in && !t.next.pending_in) delete_pending(change, contact);
    apply(user, std::move(change), [this, turn, user, contact, type, stanza, hold, before, t, item,
                                 item_changed](bool ok) {
      if (!ok) {
        host().bounce(*stanza, "internal-server-error");
        return;
      }
      const std::string owner = bare_of(user);
      stanza->set_attr("from", owner);
      if (t.forward) {
        if (type == SubType::unsubscribed && has_from(before.sub)) {
          // 3.2.2: while the contact is still subscribed, it sees the user
          // go unavailable; then the cancellation.
          unavailable_from_each(user, contact);
        }
        host().route(stanza->clone());
        if (type == SubType::subscribed) {
          // 3.1.5: the contact now sees the user's current presence (the
          // presence module answers the probe from the roster just written).
          route_presence("probe", contact, owner);
        }
      }
      if (item_changed) push(user, item_element(item), item.ver);
    });
  });
}

// ---- inbound (Appendix A.3) ------------------------------------------------------

void ModRoster::inbound(TurnPtr turn, std::string user, std::string contact, SubType type, ElementPtr stanza) {
  load_contact(user, contact, [this, turn, user, contact, type, stanza](std::optional<ContactState> cs) {
    if (!cs) return;  // logged; a lost inbound request is what a crash would do too
    const SubState before = cs->item.state;
    const Transition t = transition(before, Direction::inbound, type);
    const bool exists = cs->in_roster;
    // An inbound stanza never creates an item: a request from a contact not
    // in the roster is only remembered (3.1.3).
    const bool item_changed = exists && item_differs(before, t.next);
    RosterItem item = cs->item;
    item.state = t.next;
    Change change;
    if (item_changed) {
      item.ver = cs->current_ver + 1;
      put_item(change, item);
    }
    if (!before.pending_in && t.next.pending_in) {
      // A new request is remembered until answered (3.1.3), so the number a
      // user may have waiting is bounded: past it the requester is told to
      // try again later (the user answering frees room), not silently lost.
      if (cs->pending_count >= max_pending_requests_) {
        host().bounce(*stanza, "resource-constraint", "too many subscription requests are waiting for this user");
        return;
      }
      // 3.1.3: the complete stanza, status and extensions included, as far
      // as max_pending_request_bytes allows; what is stored is also what is
      // delivered now.
      *stanza = bounded_request(*stanza);
      change.put.emplace_back(std::string(pending_prefix) + contact, stanza->serialize());
    } else if (before.pending_in && !t.next.pending_in) {
      delete_pending(change, contact);
    }
    apply(user, std::move(change), [this, turn, user, contact, type, stanza, before, t, item, item_changed](bool ok) {
      if (!ok) return;
      const std::string owner = bare_of(user);
      if (t.forward) {
        // Requests go to the available resources (3.1.3); answers to the
        // interested ones as well (3.1.6, 3.2.3, 3.3.3).
        deliver_to_user(user, stanza->clone(), type == SubType::subscribe);
      }
      if (item_changed) push(user, item_element(item), item.ver);
      if (t.auto_reply_subscribed) {
        // 3.1.3 / 3.4: approved on the user's behalf; the requester then
        // gets the user's presence.
        route_presence("subscribed", owner, contact);
        route_presence("probe", contact, owner);
      }
      if (type == SubType::unsubscribe && has_from(before.sub) && !has_from(t.next.sub)) {
        // 3.3.3: the former subscriber sees the user go unavailable.
        unavailable_from_each(user, contact);
      }
    });
  });
}

// ---- deliveries -----------------------------------------------------------------

void ModRoster::deliver_pending(std::string user, parley_session_id session) {
  when_moved([this, user, session] {
    load_roster(user, [this, user, session](std::optional<StoredRoster> roster) {
      if (!roster) return;  // logged
      std::sort(roster->pending.begin(), roster->pending.end());
      auto list = std::make_shared<std::vector<std::string>>();
      list->reserve(roster->pending.size());
      for (auto& p : roster->pending) list->push_back(std::move(p.second));
      push_pending(user, session, std::move(list), 0);
    });
  });
}

// The requests go out push_batch_ (or push_batch_bytes_) at a time, the next batch once the
// connection has written every byte of the one before (ABI 1.2 tracked
// sends): dumped at once, 60 large requests outgrew the write backlog and
// cut the user's every login. A connection that ends stops it; the requests
// stay stored until answered and come again at the next login (3.1.3).
void ModRoster::push_pending(std::string user, parley_session_id session,
                             std::shared_ptr<std::vector<std::string>> list, std::size_t from) {
  const bool tracked = host().supports_1_2();
  // At most push_batch_ requests and, past the first, push_batch_bytes_.
  std::size_t end = from;
  std::size_t bytes = 0;
  while (end < list->size() && (!tracked || (end - from < push_batch_ && (end == from || bytes < push_batch_bytes_))))
    bytes += (*list)[end++].size();
  struct Batch {
    std::size_t left = 1;  // one for the sending loop itself: a completion run
                           // within send_tracked cannot start the next batch early
    bool written = true;
  };
  auto batch = std::make_shared<Batch>();
  auto finish_one = [this, batch, user, session, list, end]() {
    if (--batch->left == 0 && batch->written && end < list->size()) push_pending(user, session, list, end);
  };
  for (std::size_t i = from; i < end; ++i) {
    auto stanza = host().parse((*list)[i]);
    if (!stanza) continue;
    stanza->set_attr("to", bare_of(user));
    if (!tracked) {
      host().send_to_session(session, std::move(*stanza));
      continue;
    }
    ++batch->left;
    const bool accepted = host().send_tracked(session, std::move(*stanza), [batch, finish_one](bool written) {
      if (!written) batch->written = false;
      finish_one();
    });
    if (!accepted) {  // the session is gone or closing: nothing more to send
      --batch->left;
      batch->written = false;
      break;
    }
  }
  finish_one();
}

parley::Element ModRoster::bounded_request(const parley::Element& stanza) const {
  if (stanza.serialize().size() <= max_pending_request_bytes_) return stanza.clone();
  // Too large: keep the request and what a user reads in it (its status,
  // cut to fit), drop the extensions. The markup and attributes are small:
  // the stanza came through mod_roster with its 'from' and 'to' prepared.
  parley::Element out = host().element("presence", "jabber:client");
  for (const char* name : {"type", "from", "to", "id"})
    if (auto v = stanza.attr(name)) out.set_attr(name, *v);
  std::string status;
  for (parley::ElementRef child : stanza.children()) {
    if (child.name() == "status" && (child.xmlns() == "jabber:client" || child.xmlns().empty())) {
      status = child.text();
      break;
    }
  }
  const std::size_t bare_size = out.serialize().size() + 32;  // + <status></status>
  if (!status.empty() && bare_size < max_pending_request_bytes_) {
    // Escaping may lengthen the text (& is &amp;): cut until it fits.
    std::size_t room = max_pending_request_bytes_ - bare_size;
    while (room > 0) {
      parley::Element trial = out.clone();
      trial.add_child("status", "jabber:client").add_text(status.substr(0, utf8_prefix(status, room)));
      if (trial.serialize().size() <= max_pending_request_bytes_) return trial;
      room /= 2;
    }
  }
  return out;
}

void ModRoster::deliver_to_user(const std::string& user, parley::Element stanza, bool available_only) {
  auto shared = std::make_shared<const parley::Element>(std::move(stanza));
  if (available_only) to_sessions(user, shared, [](bool available, bool) { return available; });
  else to_sessions(user, shared, [](bool available, bool interested) { return available || interested; });
}

void ModRoster::route_presence(std::string_view type, const std::string& from, const std::string& to) {
  parley::Element p = host().element("presence", "jabber:client");
  p.set_attr("type", type);
  p.set_attr("from", from);
  p.set_attr("to", to);
  host().route(std::move(p));
}

void ModRoster::unavailable_from_each(const std::string& user, const std::string& contact) {
  for (const auto& s : host().user_sessions(bare_of(user))) {
    if (!s.available) continue;
    parley::Element p = host().element("presence", "jabber:client");
    p.set_attr("type", "unavailable");
    p.set_attr("from", s.full_jid);
    p.set_attr("to", contact);
    host().route(std::move(p));
  }
}

Hold::~Hold() { self->release_hold(session); }

// The work ran on the user's owning loop; the hold is released where it was
// taken, on the session's loop.
void ModRoster::release_hold(parley_session_id session) {
  if (session == 0 || stopping_) return;
  parley::post_to_session(host(), session, [this, session] { host().release_session(session); });
}

}  // namespace mod_roster
