// mod_presence: the fan-outs (RFC 6121 §4.2.2, §4.3.1, §4.4.2, §4.5.2) in
// batches that leave the loop to its other sessions, and probe answers
// (§4.3.2).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <utility>

#include "mod_presence.hpp"

namespace mod_presence {

namespace {

std::vector<RosterRow> rows_of(const std::vector<Contact>& contacts) {
  std::vector<RosterRow> rows;
  rows.reserve(contacts.size());
  for (const Contact& c : contacts) rows.push_back(c.row);
  return rows;
}

}  // namespace

// The new resource learns the presence of the user's other available ones
// (the user is implicitly subscribed to their own presence, §4.2.2).
void ModPresence::show_other_resources(const std::string& bare, const std::string& full) {
  each_presence(
      bare, full,
      [this, full](parley::Element p) {
        p.set_attr("to", full);
        host().route(std::move(p));
      },
      nullptr);
}

// The user's roster (asked of the roster module, events 27-28); nullopt if it
// cannot be read (logged).
void ModPresence::load_roster(const std::string& bare, std::function<void(std::optional<std::vector<Contact>>)> fn) {
  const parley::Jid account = parley::Jid::prepared(bare);
  asks_.ask_roster(account.local(), {}, [this, bare, fn = std::move(fn)](auto roster) {
    if (!roster) {
      host().error("reading the roster of " + bare + " failed (no roster module answered)");
      return fn(std::nullopt);
    }
    auto contacts = std::make_shared<std::vector<Contact>>();
    contacts->reserve(roster->size());
    for (auto& item : *roster) {
      if (item.jid.empty()) continue;
      Contact c;
      c.row.contact = std::move(item.jid);
      c.row.subscription = std::move(item.subscription);
      contacts->push_back(std::move(c));
    }
    fn(std::move(*contacts));
  });
}

std::string encode_last(const LastUnavailable& last) { return last.stamp + "\n" + last.xml; }

std::optional<LastUnavailable> decode_last(std::string_view value) {
  const std::size_t cut = value.find('\n');
  if (cut == std::string_view::npos) return std::nullopt;
  return LastUnavailable{std::string(value.substr(cut + 1)), std::string(value.substr(0, cut))};
}

void ModPresence::get_last(const std::string& user, std::function<void(std::optional<LastUnavailable>)> fn) {
  move_.when_ready(host(), [this, user, fn = std::move(fn)] {
    bool sent = host().keyval_get(user, last_key, [this, user, fn](parley::Result<parley::KeyvalResult, std::string> r) {
      // A failed read answers as if nothing were stored (a plain unavailable):
      // the prober still learns the account is offline.
      if (!r) host().error("reading the last presence of " + user + " failed: " + r.error());
      fn(r && r->found() ? decode_last(r->value()) : std::nullopt);
    });
    if (!sent) fn(std::nullopt);
  });
}

void ModPresence::get_last_many(std::vector<std::string> users, std::function<void(LastByUser)> fn) {
  if (users.empty()) return fn({});
  move_.when_ready(host(), [this, users = std::move(users), fn = std::move(fn)]() mutable {
    if (!host().supports_keyval_get_many()) {
      // An older host: one get each, answered together.
      auto found = std::make_shared<LastByUser>();
      auto left = std::make_shared<std::size_t>(users.size());
      for (const std::string& user : users)
        get_last(user, [found, left, fn, user](std::optional<LastUnavailable> last) {
          if (last) found->emplace(user, std::move(*last));
          if (--*left == 0) fn(std::move(*found));
        });
      return;
    }
    const std::size_t count = users.size();
    bool sent = host().keyval_get_many(users, last_key, [this, count, fn](parley::Result<parley::MapResult, std::string> r) {
      // A failed read answers as if nothing were stored (a plain unavailable each):
      // the contact still shows as offline.
      LastByUser found;
      if (!r) {
        host().error("reading the last presences of " + std::to_string(count) + " contacts failed: " + r.error());
      } else {
        for (std::size_t i = 0; i < r->size(); ++i) {
          const parley::KeyvalItem item = r->at(i);
          if (auto last = decode_last(item.value)) found.emplace(std::string(item.key), std::move(*last));
        }
      }
      fn(std::move(found));
    });
    if (!sent) fn({});
  });
}

void ModPresence::route_copy(const parley::Element& presence, const std::string& to) {
  parley::Element copy = presence.clone();
  copy.set_attr("to", to);
  host().route(std::move(copy));
}

// Runs step(i) for each i in [from, n), at most batch_ of them per loop
// turn, then done(): a large fan-out (a roster of thousands, the
// unavailable owed to every directed recipient) leaves the loop between
// batches, so the other sessions on it keep being served.
void ModPresence::in_batches(std::size_t n, std::function<void(std::size_t)> step, std::function<void()> done,
                             std::size_t from) {
  for (;;) {
    const std::size_t end = std::min(n, from + batch_);
    for (std::size_t i = from; i < end; ++i) step(i);
    from = end;
    if (from >= n) break;
    auto rest = [this, n, step, done, from](uint64_t) { in_batches(n, step, done, from); };
    // 1 ms, not 0: libuv before 1.45 runs a 0 ms timer started from a
    // timer callback in the same timer phase, and I/O would wait for the
    // whole chain.
    try {
      host().start_timer(std::chrono::milliseconds(1), std::move(rest));
      return;
    } catch (...) {
      // No timer (the module is stopping): finish now rather than owe
      // recipients their presence.
    }
  }
  if (done) done();
}

// §4.2.2 / §4.4.2 broadcast, and on initial presence §4.3.1 probes; done()
// once all of it is routed.
void ModPresence::broadcast_available(Shared presence, const std::string& bare, const std::string& full,
                                      bool initial, parley_session_id session,
                                      std::shared_ptr<const std::vector<Contact>> roster,
                                      std::function<void()> done) {
  auto subscribers = std::make_shared<const std::vector<std::string>>(mod_presence::subscribers(rows_of(*roster)));
  in_batches(
      subscribers->size(), [this, presence, subscribers](std::size_t i) { route_copy(*presence, (*subscribers)[i]); },
      [this, bare, full, initial, session, roster, done] {
        if (!initial) return done();
        // The first batch is one item: its size says how many fit batch_bytes_.
        probe_batches(bare, full, session, roster, 0, 1, done);
      });
}

// §4.3.1 at login, `count` roster items at a time. A remote contact is
// probed; a local one is asked on its sessions' loops for its presence, and
// each answer goes to the new session as it arrives (never held behind
// another: a newer broadcast of that contact, which comes after it on the
// same queue, would otherwise overtake it), as a tracked send. The next
// batch starts once the connection wrote this one's answers, with as many
// items as fit batch_bytes_ at this batch's bytes per item (within
// [1, fanout_batch]): a roster of contacts with large statuses then cannot
// outgrow the session's write backlog and cut it. A batch with nothing to
// wait for goes on at the next loop turn.
void ModPresence::probe_batches(std::string bare, std::string full, parley_session_id session,
                                std::shared_ptr<const std::vector<Contact>> roster, std::size_t from,
                                std::size_t count, std::function<void()> done) {
  struct Batch {
    std::size_t left = 2;   // the sending loop's own share, so that nothing
                            // completed early can move on before the batch is out,
                            // and the stored presences' read
    bool gone = false;      // the session ended: no more answers to send
    std::size_t bytes = 0;  // of the answers sent
    std::size_t end = 0;    // where the next batch starts
    std::size_t asking = 1;  // local contacts whose sessions are still asked, and
                             // the loop below's own share
    // The local contacts found with no available resource, in roster order:
    // (bare JID, localpart).
    std::vector<std::pair<std::string, std::string>> offline;
  };
  auto batch = std::make_shared<Batch>();
  batch->end = std::min(roster->size(), from + count);
  auto go_on = [this, batch, bare, full, session, roster, from, done]() {
    if (batch->gone || batch->end >= roster->size()) return done();
    const std::size_t per_item = std::max<std::size_t>(1, batch->bytes / std::max<std::size_t>(1, batch->end - from));
    const std::size_t next = std::clamp<std::size_t>(batch_bytes_ / per_item, 1, batch_);
    probe_batches(bare, full, session, roster, batch->end, next, done);
  };
  auto release = [batch, go_on]() {
    if (--batch->left == 0) go_on();
  };
  auto answer = [this, batch, full, session, release](parley::Element p) {
    if (batch->gone) return;
    p.set_attr("to", full);
    batch->bytes += p.serialize().size();
    ++batch->left;
    const bool accepted = host().send_tracked(session, std::move(p), [batch, release](bool written) {
      if (!written) batch->gone = true;
      release();
    });
    if (!accepted) {  // the session is gone or closing: nothing more to send
      --batch->left;
      batch->gone = true;
    }
  };
  // Once every local contact of the batch has answered for its sessions: the
  // stored last unavailable presences of those with no available resource, in
  // one read (a statement per 256, not a round trip each: issue 11), each
  // answered in roster order.
  auto asked = [this, batch, answer, release]() {
    if (--batch->asking != 0) return;
    if (batch->offline.empty() || batch->gone) return release();
    std::vector<std::string> users;
    users.reserve(batch->offline.size());
    for (const auto& [account, local] : batch->offline) users.push_back(local);
    get_last_many(std::move(users), [this, batch, answer, release](LastByUser found) {
      for (const auto& [account, local] : batch->offline) {
        auto it = found.find(local);
        answer(unavailable_answer(account, std::string(), it == found.end() ? std::nullopt
                                                                             : std::optional<LastUnavailable>(it->second),
                                  std::nullopt));
      }
      release();
    });
  };
  const std::string& domain = host().module_host();
  for (std::size_t i = from; i < batch->end && !batch->gone; ++i) {
    const Contact& c = (*roster)[i];
    if (!has_to(c.row.subscription)) continue;
    const parley::Jid contact = parley::Jid::prepared(c.row.contact);
    if (!contact.has_local() || contact.domain() != domain) {
      parley::Element probe = host().element("presence", ns_client);
      probe.set_attr("type", "probe");
      probe.set_attr("from", bare);
      probe.set_attr("to", c.row.contact);
      host().route(std::move(probe));
      continue;
    }
    // For the new resource only (the others already know). A contact with no
    // available resource is answered from its stored last unavailable
    // presence, read only then (an online contact costs no read).
    ++batch->asking;
    each_presence(c.row.contact, std::string(), answer,
                  [batch, asked, account = c.row.contact, local = std::string(contact.local())](std::size_t found) {
                    if (found == 0) batch->offline.emplace_back(account, local);
                    asked();
                  });
  }
  asked();
  if (batch->left > 1) {
    --batch->left;  // the last answer or completion to come goes on
    return;
  }
  // Nothing to wait for (no local contact in the batch): the next turn of the loop.
  if (batch->gone || batch->end >= roster->size()) return done();
  try {
    host().start_timer(std::chrono::milliseconds(1), [go_on](uint64_t) { go_on(); });
  } catch (...) {
    go_on();
  }
}

// §4.5.2: subscribers (only if the session had been available: they never
// saw it otherwise) and directed-presence recipients, in batches.
void ModPresence::send_unavailable(parley_session_id id, const std::string& bare, Shared presence,
                                   bool was_available, std::set<std::string> directed) {
  auto recipients = std::make_shared<std::set<std::string>>(std::move(directed));
  here().sequencer.submit(id, [this, presence, bare, recipients, was_available](Sequencer::Done done) {
    auto send = [this, presence, done](std::vector<std::string> targets) {
      auto list = std::make_shared<const std::vector<std::string>>(std::move(targets));
      in_batches(list->size(), [this, presence, list](std::size_t i) { route_copy(*presence, (*list)[i]); }, done);
    };
    if (!was_available) {
      send(std::vector<std::string>(recipients->begin(), recipients->end()));
      return;
    }
    load_roster(bare, [recipients, send](std::optional<std::vector<Contact>> roster) {
      std::vector<RosterRow> rows = roster ? rows_of(*roster) : std::vector<RosterRow>{};
      send(unavailable_targets(rows, *recipients));
    });
  });
}

// Kept for probes that come while the account has no available resource.
void ModPresence::remember_unavailable(const std::string& bare, const parley::Element& presence) {
  parley::Element copy = presence.clone();
  copy.remove_attr("to");
  std::string stamp = xmpp_stamp(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()));
  const std::string user(parley::Jid::prepared(bare).local());
  if (user.empty()) return;
  // Not held for the move of old rows: those are put only where no value is
  // (KeyvalMove), so this newer one is never overwritten by them.
  bool sent = host().keyval_put(user, last_key, encode_last(LastUnavailable{copy.serialize(), stamp}),
                                [this, bare](parley::Result<parley::KeyvalResult, std::string> r) {
                                  if (!r) host().error("storing the last presence of " + bare + " failed: " + r.error());
                                });
  if (!sent) host().error("storing the last presence of " + bare + " failed: not queued");
}

// §4.3.2 for an account with no available resource: unavailable from the
// bare JID, with the last unavailable presence's content and id and a
// XEP-0203 <delay/> saying when it was sent, if the server knows it.
parley::Element ModPresence::unavailable_answer(const std::string& account, const std::string& to,
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
    delay.set_attr("from", parley::Jid::prepared(account).domain());
    delay.set_attr("stamp", last->stamp);
  }
  return p;
}

// The prober's subscription decides whether it learns anything; then each
// available resource answers with its last presence (asked on its loop), or
// the account with its last unavailable one.
void ModPresence::answer_probe(const std::string& user, const std::string& prober, const std::string& reply_to,
                               const std::optional<std::string>& probe_id,
                               const std::optional<std::string>& subscription,
                               const std::optional<LastUnavailable>& last) {
  if (mod_presence::answer_probe(subscription, false, 1) == ProbeAnswer::unsubscribed) {
    parley::Element p = host().element("presence", ns_client);
    p.set_attr("type", "unsubscribed");
    p.set_attr("from", user);
    p.set_attr("to", prober);
    if (probe_id) p.set_attr("id", *probe_id);
    host().route(std::move(p));
    return;
  }
  each_presence(
      user, std::string(),
      [this, reply_to](parley::Element p) {
        p.set_attr("to", reply_to);
        host().route(std::move(p));
      },
      [this, user, reply_to, subscription, last, probe_id](std::size_t found) {
        if (mod_presence::answer_probe(subscription, false, found) == ProbeAnswer::unavailable)
          host().route(unavailable_answer(user, reply_to, last, probe_id));
      });
}

}  // namespace mod_presence
