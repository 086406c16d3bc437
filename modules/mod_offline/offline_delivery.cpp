// Delivery at login (XEP-0160), paced by what the connection wrote (ABI 1.2's
// session_send_tracked): the owner loop decides (one delivery per user at a time;
// write-back's held messages are put first), the session's loop reads the user's map,
// sends a batch (delivery_batch_messages / _bytes), and removes from the map the
// prefix that was written to the socket before the next batch. A reset, a cut or a
// crash mid-flush leaves the rest stored for the next login (after a crash, the last
// batch's written items may come twice: at least once, never lost).
#include <memory>

#include "mod_offline.hpp"
#include "offline_item.hpp"

namespace mod_offline {

// One delivery, on the session's loop.
struct Flush {
  ModOffline* module = nullptr;
  std::string user;
  parley_session_id session = 0;
  std::vector<std::pair<std::string, std::string>> items;  // key, xml ("" if it does not parse)
  std::size_t pos = 0;      // items[0, pos) are done
  std::size_t batch = 0;    // items[pos, pos + batch) are in flight
  std::size_t in_flight = 0;
  std::vector<char> written;  // per item of the batch
  bool failed = false;

  parley::Host& host() { return module->host(); }

  void fetch(const std::shared_ptr<Flush>& self) {
    module->move_.when_ready(host(), [self] {
      bool sent = self->host().map_get(self->user, [self](parley::Result<parley::MapResult, std::string> r) {
        self->got(self, r);
      });
      if (!sent) self->end();
    });
  }

  void got(const std::shared_ptr<Flush>& self, const parley::Result<parley::MapResult, std::string>& r) {
    items.clear();
    pos = 0;
    if (!r) {
      host().error("reading the offline messages of " + user + " failed: " + r.error());
      return end();
    }
    for (std::size_t i = 0; i < r->size(); ++i) {
      auto item = parley::offline::decode_item(r->at(i).value);
      items.emplace_back(std::string(r->at(i).key), item ? std::string(item->xml) : std::string());
    }
    if (items.empty()) return end();
    send_batch(self);
  }

  void send_batch(const std::shared_ptr<Flush>& self) {
    written.clear();
    batch = 0;
    std::size_t bytes = 0;
    while (pos + batch < items.size() && batch < static_cast<std::size_t>(module->batch_messages_)) {
      const std::string& xml = items[pos + batch].second;
      if (batch > 0 && bytes + xml.size() > static_cast<std::size_t>(module->batch_bytes_)) break;
      bytes += xml.size();
      std::size_t index = batch++;
      auto stanza = xml.empty() ? std::nullopt : host().parse(xml);
      if (!stanza) {
        host().error("an offline message of " + user + " does not parse; dropping it");
        written.push_back(1);  // removed with the batch
        continue;
      }
      written.push_back(0);
      // Past this module's own hold (offline_hold.cpp): the stored ones are what it waits for.
      module->here().own_send = true;
      bool accepted =
          host().send_tracked(session, std::move(*stanza), [self, index](bool ok) { self->sent_one(self, index, ok); });
      module->here().own_send = false;
      if (!accepted) {
        written.pop_back();
        --batch;
        failed = true;  // closing: the rest stays stored
        break;
      }
      ++in_flight;
    }
    if (in_flight == 0) batch_done(self);
  }

  void sent_one(const std::shared_ptr<Flush>& self, std::size_t index, bool ok) {
    written[index] = ok ? 1 : 0;
    if (!ok) failed = true;
    if (--in_flight == 0) batch_done(self);
  }

  // Completions come in order: what was written is a prefix of the batch.
  void batch_done(const std::shared_ptr<Flush>& self) {
    std::size_t n = 0;
    while (n < written.size() && written[n]) ++n;
    if (n > 0) {
      std::vector<std::string> keys;
      int64_t delivered = 0;
      for (std::size_t i = pos; i < pos + n; ++i) {
        keys.push_back(items[i].first);
        delivered += items[i].second.empty() ? 0 : 1;
      }
      // Made before the next read: the store keeps their order. Counted once removed
      // (a test that sees the counter sees the store without them).
      host().map_remove(user, keys,
                        [user = user, module = module, delivered](parley::Result<parley::MapResult, std::string> r) {
                          if (!r)
                            module->host().error("removing delivered offline messages of " + user +
                                                 " failed: " + r.error());
                          if (delivered > 0) module->host().counter_add("delivered", delivered);
                        });
    }
    pos += n;
    if (failed || n < written.size()) return end();
    if (pos < items.size()) return send_batch(self);
    fetch(self);  // what arrived meanwhile
  }

  void end() {
    ModOffline* m = module;
    std::string u = user;
    m->on_owner(u, [m, u] { m->delivery_ended(u); });
  }
};

// Owner loop: a message stored while its recipient came online (the router chose this
// module an instant before the presence was recorded) is delivered now rather than at
// the next login.
void ModOffline::deliver_if_online(const std::string& user) {
  parley_session_id best = 0;
  int best_priority = -1;
  for (const auto& s : host().user_sessions(user + "@" + domain_))
    if (s.available && s.priority >= 0 && s.priority > best_priority) {
      best = s.id;
      best_priority = s.priority;
    }
  if (best != 0) request_delivery(user, best);
}

void ModOffline::request_delivery(const std::string& user, parley_session_id session) {
  LoopState& loop = here();
  UserState& st = loop.users[user];
  if (st.delivering) {
    st.redeliver = true;  // runs again when the one in progress ends
    return;
  }
  st.delivering = true;
  // Write-back: what is held is put first, in one put; the delivery's read comes after
  // it in the store's order.
  if (!st.held.empty()) flush_user(user, st, st.held.size());
  if (loop.held_count == 0 && loop.timer != 0) {
    host().cancel_timer(loop.timer);
    loop.timer = 0;
  }
  if (!parley::post_to_session(host(), session, [this, user, session] { start_delivery(user, session); }))
    delivery_ended(user);  // the session is gone
}

void ModOffline::start_delivery(const std::string& user, parley_session_id session) {
  auto f = std::make_shared<Flush>();
  f->module = this;
  f->user = user;
  f->session = session;
  f->fetch(f);
}

void ModOffline::delivery_ended(const std::string& user) {
  auto it = here().users.find(user);
  if (it == here().users.end()) return;
  UserState& st = it->second;
  st.delivering = false;
  st.stale = true;  // items were removed: the counts are high until read again
  bool again = st.redeliver;
  st.redeliver = false;
  if (again) deliver_if_online(user);
  settle(user);
  maybe_forget(user);
}

}  // namespace mod_offline
