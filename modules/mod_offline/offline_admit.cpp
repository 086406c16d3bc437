// A message for an offline user (RFC 6121 8.5.2.2): the storage rules, then, on the
// user's owner loop, the sender's share of the queue and the queue's limit, and the
// write: at once (`immediate`: the sender's session is held until the put committed)
// or later (`write_back`: held in the owner loop's memory, put in groups).
#include <algorithm>
#include <chrono>

#include "mod_offline.hpp"
#include "offline_item.hpp"
#include "offline_rules.hpp"

namespace mod_offline {

using parley::offline::ChildName;
using parley::offline::Disposition;

namespace {

std::size_t weight(const Incoming& m) { return m.xml.size() + m.key.size() + m.sender.size() + sizeof(Incoming); }

}  // namespace

parley::Outcome ModOffline::on_offline_message(const parley::Event& event) {
  auto stanza = event.stanza();
  if (!stanza || stanza->name() != "message") return parley::Outcome::pass;
  std::string type(stanza->attr("type").value_or(""));
  std::vector<ChildName> children;
  bool our_delay = false;
  for (parley::ElementRef child : stanza->children()) {
    children.push_back(ChildName{child.name(), child.xmlns()});
    // A message that comes back (its session closed during delivery) keeps its first stamp.
    if (child.name() == "delay" && child.xmlns() == parley::offline::ns_delay && child.attr("from") == domain_)
      our_delay = true;
  }
  switch (parley::offline::classify(type, children)) {
    case Disposition::drop:
      return parley::Outcome::handled;
    case Disposition::refuse:
      return parley::Outcome::pass;  // the core answers service-unavailable
    case Disposition::store:
      break;
  }
  std::string user(event.user());
  auto message = std::make_shared<Incoming>();
  message->key = new_key();
  message->arrived_ms = steady_ms();
  message->original = std::make_shared<parley::Element>(stanza->clone());
  parley::Element copy = stanza->clone();
  if (!our_delay)
    copy.add_child("delay", parley::offline::ns_delay)
        .set_attr("from", domain_)
        .set_attr("stamp", parley::offline::delay_stamp(std::chrono::system_clock::now()))
        .add_text("Offline Storage");
  message->xml = copy.serialize();
  // Counted per bare JID: a sender's resources share one share ('from' is stamped by the server).
  message->sender = parley::Jid::prepared(stanza->attr("from").value_or("")).bare_str();
  // Immediate: the sender's next stanza waits until this one is stored (or refused).
  if (!write_back_ && event.session() != 0 &&
      host().api()->session_hold(host().handle(), event.session()) == 1)
    message->held_session = event.session();
  if (here().stopping) {
    admit_at_stop(user, message);
    return parley::Outcome::handled;
  }
  if (!on_owner(user, [this, user, message] { admit(user, std::move(*message)); })) {
    Incoming& m = *message;
    finish_sender(m, [this, &m] { host().bounce(*m.original, "internal-server-error"); });
  }
  return parley::Outcome::handled;
}

// Owner loop. The counts are loaded first (once per user, and again after a delivery
// removed items, when no put is in flight: a put in flight would be counted twice).
void ModOffline::admit(const std::string& user, Incoming message) {
  UserState& st = here().users[user];
  bool reload = st.stale && st.puts_in_flight == 0 && st.held.empty();
  if (st.loading || !st.loaded || reload) {
    if (static_cast<int64_t>(st.waiting.size()) >= max_messages_) return refuse_full(message);
    st.waiting.push_back(std::move(message));
    if (!st.loading) load_counts(user);
    return;
  }
  admit_loaded(user, st, std::move(message));
}

void ModOffline::load_counts(const std::string& user) {
  here().users[user].loading = true;
  move_.when_ready(host(), [this, user] {
    bool sent = host().map_get(user, [this, user](parley::Result<parley::MapResult, std::string> items) {
      auto it = here().users.find(user);
      if (it == here().users.end()) return;
      UserState& st = it->second;
      st.loading = false;
      st.loaded = true;
      st.total = 0;
      st.senders.clear();
      if (items) {
        st.stale = false;
        for (std::size_t i = 0; i < items->size(); ++i) {
          auto item = parley::offline::decode_item(items->at(i).value);
          ++st.senders[std::string(item ? item->sender : std::string_view())];
          ++st.total;
        }
      } else {
        // The database is away (reads fail at once; writes wait in the store's queue):
        // the queue's limit is still checked by the put; the sender's share counts from
        // the messages since, until a read succeeds.
        st.stale = true;
        host().warn("reading the offline queue of " + user + " failed (" + items.error() +
                    "): its senders' shares count from now");
      }
      std::deque<Incoming> waiting = std::move(st.waiting);
      st.waiting.clear();
      for (Incoming& m : waiting) admit_loaded(user, here().users[user], std::move(m));
      maybe_forget(user);
    });
    if (!sent) {
      UserState& st = here().users[user];
      st.loading = false;
      std::deque<Incoming> waiting = std::move(st.waiting);
      st.waiting.clear();
      for (Incoming& m : waiting) finish_sender(m, [this, &m] { host().bounce(*m.original, "internal-server-error"); });
    }
  });
}

void ModOffline::admit_loaded(const std::string& user, UserState& st, Incoming message) {
  int64_t from_sender = 0;
  if (auto it = st.senders.find(message.sender); it != st.senders.end()) from_sender = it->second;
  for (const Incoming& h : st.held) from_sender += h.sender == message.sender;
  // A full queue answers before a sender's share (XEP-0160's condition). Immediate: the put
  // checks the limit again, exactly; this count may only be too high for an instant.
  if (st.total + static_cast<int64_t>(st.held.size()) >= max_messages_) return refuse_full(message);
  if (max_per_sender_ < max_messages_ && from_sender >= max_per_sender_) return refuse_sender_share(message);
  if (write_back_) {
    LoopState& loop = here();
    loop.held_bytes += weight(message);
    ++loop.held_count;
    st.held.push_back(std::move(message));
    host().counter_add("stored");
    if (loop.held_bytes > max_bytes_per_loop_) {
      host().debug("write-back memory cap reached: committing every held message of this loop");
      flush_all_here();
    } else if (loop.timer == 0) {
      arm_timer(window_ms_);
    }
    return deliver_if_online(user);
  }
  // Counted now, so that the next admission sees it; undone if the put fails.
  ++st.total;
  ++st.senders[message.sender];
  ++st.puts_in_flight;
  auto m = std::make_shared<Incoming>(std::move(message));
  std::string value = parley::offline::encode_item(m->sender, m->xml);
  const std::vector<parley::KeyvalItem> item{parley::KeyvalItem{m->key, value}};
  bool sent = host().map_put(user, item, static_cast<uint64_t>(max_messages_),
                             [this, user, m](parley::Result<parley::MapResult, std::string> r) {
                               stored(user, *m, r ? std::string() : r.error());
                             });
  if (!sent) stored(user, *m, "internal-server-error");
}

// After SERVER_STOPPING (what a detached session held is routed as the sessions end):
// the loops may stop before a post to the owner loop or a read of the queue's counts
// completes, so the message is put at once from this loop; the store runs the puts it
// has before it closes. The queue's limit is still checked by the put; the sender's
// share is not (the counts live on the owner loop).
void ModOffline::admit_at_stop(const std::string& user, std::shared_ptr<Incoming> m) {
  const std::string value = parley::offline::encode_item(m->sender, m->xml);  // the item views it
  const std::vector<parley::KeyvalItem> item{parley::KeyvalItem{m->key, value}};
  bool sent = host().map_put(user, item, static_cast<uint64_t>(max_messages_),
                             [this, user, m](parley::Result<parley::MapResult, std::string> r) {
                               if (!r) host().error("storing an offline message for " + user + " at stop failed: " + r.error());
                               else host().counter_add("stored");
                               finish_sender(*m, {});
                             });
  if (!sent) {
    host().error("storing an offline message for " + user + " at stop: the store refused it");
    finish_sender(*m, {});
  }
}

// Owner loop: the put of an immediate message completed (error: its condition).
void ModOffline::stored(const std::string& user, Incoming& message, const std::string& error) {
  if (auto it = here().users.find(user); it != here().users.end()) {
    UserState& st = it->second;
    --st.puts_in_flight;
    if (!error.empty()) {
      --st.total;
      if (auto s = st.senders.find(message.sender); s != st.senders.end() && s->second > 0) --s->second;
    }
  }
  if (error == "policy-violation") {
    refuse_full(message);
  } else if (!error.empty()) {
    host().error("storing an offline message for " + user + " failed: " + error);
    finish_sender(message, [this, &message] { host().bounce(*message.original, "internal-server-error"); });
  } else {
    host().counter_add("stored");
    finish_sender(message, {});
    deliver_if_online(user);
  }
  settle(user);  // a delivery that ended while this put was in flight left the holds on
  maybe_forget(user);
}

// The sender's answer (if any) first, then its next stanza: the release runs on the
// sender's loop, after the bounce routed from here.
void ModOffline::finish_sender(Incoming& message, std::function<void()> then) {
  if (then) then();
  if (message.held_session == 0) return;
  parley_session_id session = message.held_session;
  message.held_session = 0;
  parley::post_to_session(host(), session,
                          [this, session] { host().api()->session_release(host().handle(), session); });
}

void ModOffline::refuse_full(Incoming& m) {
  host().counter_add("bounced_quota");
  finish_sender(m, [this, &m] {
    host().bounce(*m.original, "service-unavailable", "the recipient's offline message queue is full");
  });
}

// One sender past its share of the queue (max_per_sender): the queue has room for the
// others. resource-constraint (type wait), as ejabberd answers for a full queue: the
// share frees up once the recipient reads.
void ModOffline::refuse_sender_share(Incoming& m) {
  host().counter_add("bounced_sender_share");
  finish_sender(m, [this, &m] {
    host().bounce(*m.original, "resource-constraint",
                  "you have too many messages waiting in the recipient's offline message queue");
  });
}

// ---- write-back (owner loop) ----

// A little late rather than early: the messages due are then all expired.
void ModOffline::arm_timer(int64_t delay_ms) {
  LoopState& loop = here();
  loop.timer = host().start_timer(std::chrono::milliseconds(std::max<int64_t>(0, delay_ms) + 5),
                                  [this](uint64_t id) { on_flush_timer(id); });
}

void ModOffline::on_flush_timer(uint64_t id) {
  LoopState& loop = here();
  if (id != loop.timer) return;  // cancelled while it was firing
  loop.timer = 0;
  int64_t now = steady_ms();
  std::optional<int64_t> next;
  std::vector<std::string> users;
  for (auto& [user, st] : loop.users) users.push_back(user);
  for (const std::string& user : users) {
    UserState& st = loop.users[user];
    std::size_t n = 0;
    while (n < st.held.size() && st.held[n].arrived_ms + window_ms_ <= now) ++n;
    if (n > 0) flush_user(user, st, n);
    if (!st.held.empty() && (!next || st.held.front().arrived_ms + window_ms_ < *next))
      next = st.held.front().arrived_ms + window_ms_;
  }
  if (next && loop.timer == 0) arm_timer(*next - now);
}

// The user's n oldest held messages, in one put (one transaction: group commit). No
// item limit: they were accepted already and must not be lost.
void ModOffline::flush_user(const std::string& user, UserState& st, std::size_t n, std::function<void()> then) {
  LoopState& loop = here();
  auto batch = std::make_shared<std::vector<Incoming>>();
  for (std::size_t i = 0; i < n && !st.held.empty(); ++i) {
    loop.held_bytes -= weight(st.held.front());
    --loop.held_count;
    ++st.senders[st.held.front().sender];
    batch->push_back(std::move(st.held.front()));
    st.held.pop_front();
  }
  if (batch->empty()) return;
  st.total += static_cast<int64_t>(batch->size());
  ++st.puts_in_flight;
  std::vector<std::string> values;
  values.reserve(batch->size());
  for (const Incoming& m : *batch) values.push_back(parley::offline::encode_item(m.sender, m.xml));
  std::vector<parley::KeyvalItem> items;
  for (std::size_t i = 0; i < batch->size(); ++i) items.push_back(parley::KeyvalItem{(*batch)[i].key, values[i]});
  auto landed = [this, user, batch](bool ok, const std::string& error) {
    LoopState& loop = here();
    UserState& st = loop.users[user];
    --st.puts_in_flight;
    if (ok) {
      host().counter_add("flushed", static_cast<int64_t>(batch->size()));
    } else {
      host().error("committing " + std::to_string(batch->size()) + " held offline message(s) of " + user +
                   " failed, keeping them: " + error);
      st.total -= static_cast<int64_t>(batch->size());
      for (auto it = batch->rbegin(); it != batch->rend(); ++it) {
        if (auto s = st.senders.find(it->sender); s != st.senders.end() && s->second > 0) --s->second;
        loop.held_bytes += weight(*it);
        ++loop.held_count;
        st.held.push_front(std::move(*it));
      }
      if (loop.timer == 0) arm_timer(1000);
    }
    settle(user);
    maybe_forget(user);
  };
  bool sent = host().map_put(user, items, 0, [landed](parley::Result<parley::MapResult, std::string> r) {
    landed(r.has_value(), r ? std::string() : r.error());
  });
  if (!sent) landed(false, "the map store refused the put");
  if (then) then();
}

void ModOffline::flush_all_here() {
  LoopState& loop = here();
  std::vector<std::string> users;
  for (auto& [user, st] : loop.users)
    if (!st.held.empty()) users.push_back(user);
  for (const std::string& user : users) {
    UserState& st = loop.users[user];
    flush_user(user, st, st.held.size());
  }
  if (loop.held_count == 0 && loop.timer != 0) {
    host().cancel_timer(loop.timer);
    loop.timer = 0;
  }
}

// A clean stop (SIGTERM, server_stop) commits what this loop holds: the store runs
// the puts before it closes.
void ModOffline::on_server_stopping(const parley::Event& /*event*/) {
  here().stopping = true;
  std::size_t n = here().held_count;
  if (n == 0) return;
  host().info("committing " + std::to_string(n) + " held offline message(s) at stop");
  flush_all_here();
}

// An idle user's counts are kept (the next message needs no read) up to a bound.
void ModOffline::maybe_forget(const std::string& user) {
  LoopState& loop = here();
  auto it = loop.users.find(user);
  if (it == loop.users.end()) return;
  const UserState& st = it->second;
  if (!idle(st)) return;
  if (st.total == 0 || loop.users.size() > max_idle_users) loop.users.erase(it);
}

}  // namespace mod_offline
