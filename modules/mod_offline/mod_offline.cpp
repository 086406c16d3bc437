// mod_offline: offline messages (XEP-0160) with delayed-delivery stamps
// (XEP-0203).
//
// A chat or normal message with content for a user who has no available
// resource of non-negative priority is stored, stamped
//   <delay xmlns='urn:xmpp:delay' from='DOMAIN' stamp='...Z'>Offline Storage</delay>
// and delivered, in arrival order, to the first session that then sends
// available presence with a non-negative priority; it is removed only once
// its bytes were written to that session's socket. Errors and headlines are dropped, groupchat
// and content-less messages (chat states only) are refused with
// service-unavailable, and so is a message for a user whose queue holds
// `max_messages` already (XEP-0160: "the recipient's offline message queue is
// full"). XEP-0334 hints: <no-store/> is refused, <store/> stores what would
// not be (a headline, a chat state), never an error or groupchat.
//
// Options:
//   max_messages          per-user quota (default 1000)
//   max_per_sender        of it, messages from one sender's bare JID (default
//                         max_messages / 4; past it: resource-constraint);
//                         with write_back, a sender's stored rows count as 0
//                         again once a delivery removed rows (lower bound)
//   delivery_batch_messages, delivery_batch_bytes
//                         delivery is paced (ABI 1.2): a batch of at most this
//                         many messages / bytes at a time (default 32, 64 KiB)
//   durability            `immediate` (default) or `write_back`
//   write_back_window     seconds a message stays in memory only (default 60)
//   write_back_max_bytes  memory for held messages, all users (default 64 MiB)
//
// Durability, the trade:
//   immediate   every message is committed before the sender's next stanza
//               is processed (the sender's session is held until the INSERT
//               committed), so an acknowledged message survives a crash of
//               parleyd (SIGKILL). A power cut is the storage's business: the
//               SQLite store runs WAL with synchronous=NORMAL, whose last
//               commits may be lost then. One commit per message.
//   write_back  messages are held in memory; a user who comes back within
//               the window gets them without the disk ever being written;
//               older ones (or all, once the memory cap is reached) are
//               committed in batches, one multi-row INSERT per batch (group
//               commit). A clean stop (SIGTERM) commits what is held (an
//               unload or reload waits until nothing is held: the flush timer
//               is pending). A crash inside the window LOSES the held messages:
//               choose it only where that is acceptable. The quota counts
//               stored rows learnt by one COUNT per user after a start; until
//               that answer came (milliseconds) only held rows are counted.
//
// Counters: stored, delivered, delivered_from_memory, flushed, bounced_quota,
// bounced_sender_share.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "offline_export.hpp"
#include "offline_queue.hpp"
#include "offline_rules.hpp"
#include "parley/module.hpp"

namespace {

using parley::offline::ChildName;
using parley::offline::Disposition;
using parley::offline::FlushPart;
using parley::offline::HeldMessage;
using parley::offline::OfflineQueue;

constexpr int64_t default_max_messages = 1000;
constexpr int64_t default_window_seconds = 60;
constexpr int64_t default_max_bytes = 64ll * 1024 * 1024;
// Paced delivery (ABI 1.2): a batch in flight at a time, bounded by count and bytes.
constexpr int64_t default_batch_messages = 32;
constexpr int64_t default_batch_bytes = 64 * 1024;
// Rows per INSERT: 5 parameters each, under SQLite's oldest limit (999).
constexpr std::size_t rows_per_insert = 190;

// The user's quota and the sender's share of it, in one statement.
constexpr const char* sql_insert_if_room =
    "INSERT INTO mod_offline_messages (host, user, stamp, xml, sender) SELECT ?, ?, ?, ?, ? "
    "WHERE (SELECT COUNT(*) FROM mod_offline_messages WHERE host = ? AND user = ?) < ? "
    "AND (SELECT COUNT(*) FROM mod_offline_messages WHERE host = ? AND user = ? AND sender = ?) < ?";
constexpr const char* sql_select =
    "SELECT id, xml FROM mod_offline_messages WHERE host = ? AND user = ? ORDER BY id";
// One batch: what the previous batch wrote was deleted before (same writer).
constexpr const char* sql_select_batch =
    "SELECT id, xml FROM mod_offline_messages WHERE host = ? AND user = ? ORDER BY id LIMIT ?";
constexpr const char* sql_delete_upto = "DELETE FROM mod_offline_messages WHERE host = ? AND user = ? AND id <= ?";
constexpr const char* sql_delete_user = "DELETE FROM mod_offline_messages WHERE host = ? AND user = ?";
constexpr const char* sql_count = "SELECT COUNT(*) FROM mod_offline_messages WHERE host = ? AND user = ?";
constexpr const char* sql_count_by_sender =
    "SELECT sender, COUNT(*) FROM mod_offline_messages WHERE host = ? AND user = ? GROUP BY sender";

int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// Per session: whether it is available with a non-negative priority, so that
// only the step into that state delivers (XEP-0160: "when the recipient next
// sends non-negative available presence").
struct PresenceState {
  bool eligible = false;
};

class ModOffline : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    domain_ = host().module_host();
    max_messages_ = host().option_int("max_messages").value_or(default_max_messages);
    if (max_messages_ < 1) return parley::unexpected(std::string("max_messages must be at least 1"));
    max_per_sender_ = host().option_int("max_per_sender").value_or(std::max<int64_t>(1, max_messages_ / 4));
    if (max_per_sender_ < 1) return parley::unexpected(std::string("max_per_sender must be at least 1"));
    std::string durability = host().option_string("durability").value_or("immediate");
    if (durability == "write_back") write_back_ = true;
    else if (durability != "immediate")
      return parley::unexpected("durability must be 'immediate' or 'write_back', not '" + durability + "'");
    int64_t window = host().option_int("write_back_window").value_or(default_window_seconds);
    if (window < 0) return parley::unexpected(std::string("write_back_window must not be negative"));
    int64_t max_bytes = host().option_int("write_back_max_bytes").value_or(default_max_bytes);
    if (max_bytes < 1) return parley::unexpected(std::string("write_back_max_bytes must be positive"));
    window_ms_ = window * 1000;
    batch_messages_ = host().option_int("delivery_batch_messages").value_or(default_batch_messages);
    if (batch_messages_ < 1 || batch_messages_ > 10000)
      return parley::unexpected(std::string("delivery_batch_messages must be from 1 to 10000"));
    batch_bytes_ = host().option_int("delivery_batch_bytes").value_or(default_batch_bytes);
    if (batch_bytes_ < 1024) return parley::unexpected(std::string("delivery_batch_bytes must be at least 1024"));
    queue_ = std::make_unique<OfflineQueue>(max_messages_, window_ms_, static_cast<std::size_t>(max_bytes),
                                            max_per_sender_);
    // Only the two 1.1 entries this module uses (not every 1.1 entry).
    can_hold_ = host().supports(PARLEY_HOST_ENTRY_END(session_release));
    can_pace_ = host().supports_1_2() && host().supports(PARLEY_HOST_ENTRY_END(session_peer_address));
    if (!can_pace_) host().warn("this host predates module ABI 1.2: offline messages are delivered unpaced");
    if (!write_back_ && !can_hold_)
      host().warn("this host predates module ABI 1.1: immediate durability cannot hold the sender until the commit");
    return {};
  }

  // A clean stop commits what is held. Held messages imply an armed timer,
  // and the host refuses an unload or reload while one is: this runs at
  // shutdown, after the loops stopped and before the storage pool drains
  // its write queue.
  void stop() override {
    if (!write_back_ || !queue_) return;
    std::lock_guard lock(mu_);
    std::vector<FlushPart> parts = queue_->take_all();
    if (parts.empty()) return;
    std::size_t n = 0;
    for (const FlushPart& p : parts) n += p.messages.size();
    host().info("committing " + std::to_string(n) + " held offline message(s) at stop");
    // Without a completion: after stop() no module code may be called (at
    // shutdown the loops that would run it have stopped; after an unload the
    // code is unmapped). The writer still runs the INSERTs before it closes.
    for (auto& batch : batches(std::move(parts), [](const std::string&) {})) {
      std::vector<parley::Value> values;
      std::string sql = insert_sql(batch, values);
      std::vector<parley_value> raw;
      raw.reserve(values.size());
      for (const parley::Value& v : values) raw.push_back(v.raw());
      host().api()->storage_query(host().handle(), parley_str{sql.data(), sql.size()}, raw.data(), raw.size(), 1,
                                  nullptr, nullptr);
    }
  }

  parley::Outcome on_offline_message(const parley::Event& event) {
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
    HeldMessage message;
    message.arrived_ms = steady_ms();
    message.stamp = parley::offline::delay_stamp(std::chrono::system_clock::now());
    parley::Element copy = stanza->clone();
    if (!our_delay)
      copy.add_child("delay", parley::offline::ns_delay)
          .set_attr("from", domain_)
          .set_attr("stamp", message.stamp)
          .add_text("Offline Storage");
    message.xml = copy.serialize();
    message.sender = sender_key(*stanza);
    if (write_back_) hold(event, *stanza, user, std::move(message));
    else store_now(event, *stanza, user, std::move(message));
    return parley::Outcome::handled;
  }

  void on_presence(const parley::Event& event) {
    auto stanza = event.stanza();
    if (!stanza || event.session() == 0) return;
    auto type = stanza->attr("type");
    bool eligible = false;
    if (!type || type->empty()) {
      // The core checked the priority (an integer from -128 to 127).
      std::string priority = stanza->child_text("priority");
      eligible = priority.empty() || std::atoi(priority.c_str()) >= 0;
    } else if (*type != "unavailable") {
      return;
    }
    auto* state = host().session_slot<PresenceState>(event.session());
    bool was = state != nullptr && state->eligible;
    if (state == nullptr && eligible)
      state = host().set_session_slot(event.session(), std::make_unique<PresenceState>());
    if (state != nullptr) state->eligible = eligible;
    if (eligible && !was) deliver(std::string(event.user()), event.session());
  }

  // An account removed (and perhaps created again) must not inherit messages.
  void on_user_removed(const parley::Event& event) {
    std::string user(event.user());
    std::lock_guard lock(mu_);
    std::size_t held = queue_->remove_user(user);
    disarm_if_idle_locked();
    if (held > 0) host().debug("dropped " + std::to_string(held) + " held message(s) of removed user " + user);
    bool counted = queue_->write_issued(user);
    host().execute(sql_delete_user, {domain_, user},
                   [this, user, counted](parley::Result<parley::Rows, std::string> rows) {
                     if (!rows) host().error("removing the offline messages of " + user + " failed: " + rows.error());
                     std::lock_guard lock(mu_);
                     queue_->write_done(user, rows ? -rows->changes() : 0, counted);
                   });
  }

  // XEP-0227 export (offline_export.hpp): the stored messages, oldest first. Messages
  // held in memory by write_back durability are not on disk yet and not exported.
  void on_account_export(const parley::Event& event) {
    parley::AccountData data(host(), event);
    if (!data.held()) return;
    std::string user(event.user());
    host().query(sql_select, {domain_, user}, [this, data](parley::Result<parley::Rows, std::string> rows) {
      if (!rows) return data.fail("reading the offline messages failed: " + rows.error());
      if (rows->size() == 0) return data.done();
      parley::Element list = host().element("offline-messages", parley::kPieNs);
      std::size_t n = 0;
      for (std::size_t i = 0; i < rows->size(); ++i) {
        auto stanza = host().parse(rows->at(i, 1).bytes().value_or(""));
        if (!stanza) continue;  // as delivery does: a row that does not parse is not a message
        list.add_child(std::move(*stanza));
        ++n;
      }
      data.add(list);
      data.done(std::to_string(n) + " offline message" + (n == 1 ? "" : "s"));
    });
  }

  // XEP-0227 import: the file's <offline-messages/>, stored as if they had arrived
  // (their delay kept), counted in the user's quota.
  void on_account_import(const parley::Event& event) {
    auto user_el = event.acc();
    auto list = user_el ? user_el->child("offline-messages", parley::kPieNs) : std::nullopt;
    if (!list || list->child_count() == 0) return;
    parley::AccountData data(host(), event);
    if (!data.held()) return;
    auto messages = parley::offline::import_messages(host(), *list, domain_,
                                                     parley::offline::delay_stamp(std::chrono::system_clock::now()));
    if (!messages) return data.fail(messages.error());
    if (static_cast<int64_t>(messages->size()) > max_messages_)
      return data.fail("more offline messages than max_messages (" + std::to_string(max_messages_) + ")");
    std::string user(event.user());
    struct Progress {
      std::size_t left = 0;
      std::size_t stored = 0;
      std::string error;
    };
    auto progress = std::make_shared<Progress>();
    std::lock_guard lock(mu_);
    for (std::size_t at = 0; at < messages->size(); at += rows_per_insert) {
      std::size_t end = std::min(messages->size(), at + rows_per_insert);
      std::string sql = "INSERT INTO mod_offline_messages (host, user, stamp, xml, sender) VALUES ";
      std::vector<parley::Value> values;
      for (std::size_t i = at; i < end; ++i) {
        sql += i == at ? "(?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?)";
        const auto& m = (*messages)[i];
        values.emplace_back(std::string_view(domain_));
        values.emplace_back(std::string_view(user));
        values.emplace_back(std::string_view(m.stamp));
        values.emplace_back(std::string_view(m.xml));
        values.emplace_back(std::string_view(m.sender));
      }
      ++progress->left;
      bool counted = queue_->write_issued(user);
      host().storage_call(sql, values.data(), values.size(), true,
                          [this, user, counted, progress, data](parley::Result<parley::Rows, std::string> rows) {
                            {
                              std::lock_guard lock(mu_);
                              queue_->write_done(user, rows ? rows->changes() : 0, counted);
                            }
                            if (!rows) progress->error = rows.error();
                            else progress->stored += static_cast<std::size_t>(rows->changes());
                            if (--progress->left > 0) return;
                            if (!progress->error.empty())
                              return data.fail("storing the offline messages failed: " + progress->error);
                            data.done(std::to_string(progress->stored) + " offline message" +
                                      (progress->stored == 1 ? "" : "s"));
                          });
    }
  }

 private:
  // ---- immediate durability ----

  void store_now(const parley::Event& event, parley::ElementView stanza, const std::string& user,
                 HeldMessage message) {
    parley_session_id sender = event.session();
    bool held = sender != 0 && can_hold_ && host().api()->session_hold(host().handle(), sender) == 1;
    auto original = std::make_shared<parley::Element>(stanza.clone());
    // The quota check and the insert are one statement on the single writer:
    // exact, whatever the number of loops storing for this user.
    std::string from = message.sender;
    host().execute(sql_insert_if_room,
                   {domain_, user, message.stamp, message.xml, from, domain_, user, max_messages_, domain_, user, from,
                    max_per_sender_},
                   [this, held, sender, original, user](parley::Result<parley::Rows, std::string> rows) {
                     if (!rows) {
                       if (held) host().api()->session_release(host().handle(), sender);
                       host().error("storing an offline message for " + user + " failed: " + rows.error());
                       return host().bounce(*original, "internal-server-error");
                     }
                     if (rows->changes() == 0) {
                       // Which limit: the queue, or this sender's share of it. The
                       // sender stays held until it is answered.
                       return host().query(sql_count, {domain_, user},
                                           [this, held, sender, original](parley::Result<parley::Rows, std::string> n) {
                                             if (held) host().api()->session_release(host().handle(), sender);
                                             bool full = !n || n->size() != 1 ||
                                                         n->at(0, 0).integer().value_or(0) >= max_messages_;
                                             if (full) refuse_full(*original);
                                             else refuse_sender_share(*original);
                                           });
                     }
                     if (held) host().api()->session_release(host().handle(), sender);
                     host().counter_add("stored");
                     deliver_if_online(user);
                   });
  }

  void refuse_full(parley::ElementView stanza) {
    host().counter_add("bounced_quota");
    host().bounce(stanza, "service-unavailable", "the recipient's offline message queue is full");
  }

  // One sender past its share of the queue (max_per_sender): the queue has
  // room for the others. resource-constraint (type wait), as ejabberd answers
  // for a full queue: the share frees up once the recipient reads.
  void refuse_sender_share(parley::ElementView stanza) {
    host().counter_add("bounced_sender_share");
    host().bounce(stanza, "resource-constraint",
                  "you have too many messages waiting in the recipient's offline message queue");
  }

  // Messages are counted per sender by bare JID: a sender's resources share one share.
  static std::string sender_key(parley::ElementView stanza) {
    return parley::Jid::prepared(stanza.attr("from").value_or("")).bare_str();  // stamped by the server
  }

  // ---- write-back durability ----

  void hold(const parley::Event& /*event*/, parley::ElementView stanza, const std::string& user,
            HeldMessage message) {
    OfflineQueue::Admission admission;
    {
      std::lock_guard lock(mu_);
      admission = queue_->admit(user, std::move(message));
      if (admission.ask_count) ask_count_locked(user);
      if (admission.arm_timer) arm_timer(window_ms_);
      if (admission.over_cap) {
        host().debug("write-back memory cap reached: committing every held message");
        flush_locked(queue_->take_all());
        disarm_if_idle_locked();
      }
    }
    if (!admission.accepted) return admission.sender_share ? refuse_sender_share(stanza) : refuse_full(stanza);
    host().counter_add("stored");
    deliver_if_online(user);
  }

  // On the writer, ordered with every write: see offline_queue.hpp.
  void ask_count_locked(const std::string& user) {
    host().execute(sql_count_by_sender, {domain_, user},
                   [this, user](parley::Result<parley::Rows, std::string> rows) {
                     std::optional<int64_t> count;
                     std::vector<std::pair<std::string, int64_t>> senders;
                     if (rows) {
                       count = 0;
                       for (std::size_t i = 0; i < rows->size(); ++i) {
                         int64_t n = rows->at(i, 1).integer().value_or(0);
                         senders.emplace_back(std::string(rows->at(i, 0).bytes().value_or("")), n);
                         *count += n;
                       }
                     } else {
                       host().error("counting the offline messages of " + user + " failed: " + rows.error());
                     }
                     std::lock_guard lock(mu_);
                     if (count) queue_->sender_counts(user, senders);
                     queue_->count_result(user, count);
                   });
  }

  // Under mu_. A little late rather than early: the messages due are then
  // all expired. The timer runs on the calling loop, which is this thread:
  // it cannot fire before timer_id_ is set.
  void arm_timer(int64_t delay_ms) {
    timer_id_ = host().start_timer(std::chrono::milliseconds(std::max<int64_t>(0, delay_ms) + 5),
                                   [this](uint64_t id) { on_flush_timer(id); });
  }

  // Under mu_: no timer is left waiting when nothing is held (a pending timer
  // refuses a reload, and outlives a shutdown).
  void disarm_if_idle_locked() {
    if (timer_id_ == 0 || queue_->held_messages() != 0) return;
    host().cancel_timer(timer_id_);
    timer_id_ = 0;
    queue_->timer_fired();
  }

  void on_flush_timer(uint64_t id) {
    std::lock_guard lock(mu_);
    if (id != timer_id_) return;  // cancelled while it was firing
    timer_id_ = 0;
    queue_->timer_fired();
    int64_t now = steady_ms();
    flush_locked(queue_->take_expired(now));
    if (auto next = queue_->arm_if_idle()) arm_timer(*next - now);
  }

  // Batches of at most rows_per_insert rows, in order. A user's part larger
  // than the room left is split; `more` is called once per extra piece.
  template <class OnExtraPiece>
  static std::vector<std::vector<FlushPart>> batches(std::vector<FlushPart> parts, OnExtraPiece more) {
    std::vector<std::vector<FlushPart>> out(1);
    std::size_t rows = 0;
    for (FlushPart& part : parts) {
      bool first_piece = true;
      while (!part.messages.empty()) {
        if (rows == rows_per_insert) {
          out.emplace_back();
          rows = 0;
        }
        std::size_t take = std::min(rows_per_insert - rows, part.messages.size());
        FlushPart piece;
        piece.user = part.user;
        piece.counted = part.counted;
        auto cut = part.messages.begin() + static_cast<std::ptrdiff_t>(take);
        piece.messages.assign(std::make_move_iterator(part.messages.begin()), std::make_move_iterator(cut));
        part.messages.erase(part.messages.begin(), cut);
        if (!first_piece) more(piece.user);
        first_piece = false;
        out.back().push_back(std::move(piece));
        rows += take;
      }
    }
    if (out.back().empty()) out.pop_back();
    return out;
  }

  // Group commit: one multi-row INSERT per batch, issued under the lock (so
  // that the count bookkeeping sees the writer's order); each extra piece of
  // a split part is one more write in flight.
  void flush_locked(std::vector<FlushPart> parts) {
    for (auto& batch : batches(std::move(parts), [this](const std::string& user) { queue_->write_issued(user); }))
      insert_batch(std::move(batch));
  }

  // One multi-row INSERT for a batch; `values` borrow from `batch`.
  std::string insert_sql(const std::vector<FlushPart>& batch, std::vector<parley::Value>& values) const {
    std::string sql = "INSERT INTO mod_offline_messages (host, user, stamp, xml, sender) VALUES ";
    bool first = true;
    for (const FlushPart& part : batch)
      for (const HeldMessage& m : part.messages) {
        sql += first ? "(?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?)";
        first = false;
        values.emplace_back(domain_);
        values.emplace_back(part.user);
        values.emplace_back(m.stamp);
        values.emplace_back(m.xml);
        values.emplace_back(m.sender);
      }
    return sql;
  }

  void insert_batch(std::vector<FlushPart> batch) {
    std::vector<parley::Value> values;
    std::string sql = insert_sql(batch, values);
    std::size_t rows = values.size() / 5;
    auto owned = std::make_shared<std::vector<FlushPart>>(std::move(batch));
    host().storage_call(sql, values.data(), values.size(), true,
                        [this, owned, rows](parley::Result<parley::Rows, std::string> result) {
                          if (!result)
                            host().error("committing " + std::to_string(rows) +
                                         " held offline message(s) failed, keeping them: " + result.error());
                          std::vector<std::string> users;
                          {
                            std::lock_guard lock(mu_);
                            for (FlushPart& part : *owned) {
                              users.push_back(part.user);
                              queue_->flush_done(std::move(part), result.has_value());
                            }
                            if (!result)
                              if (auto next = queue_->arm_if_idle()) arm_timer(*next - steady_ms() + 1000);
                          }
                          if (!result) return;
                          host().counter_add("flushed", static_cast<int64_t>(rows));
                          for (const std::string& user : users) deliver_if_online(user);
                        });
  }

  // ---- delivery ----

  // A message stored while its recipient came online (the router chose this
  // module an instant before the presence was recorded) is delivered now
  // rather than at the next login.
  void deliver_if_online(const std::string& user) {
    parley_session_id best = 0;
    int best_priority = -1;
    for (const auto& s : host().user_sessions(user + "@" + domain_))
      if (s.available && s.priority >= 0 && s.priority > best_priority) {
        best = s.id;
        best_priority = s.priority;
      }
    if (best != 0) deliver(user, best);
  }

  // ---- paced delivery (ABI 1.2) ----
  //
  // One batch at a time (delivery_batch_messages, delivery_batch_bytes), the
  // next once the connection wrote the last: a queue of any size goes at the
  // pace the client reads, never into its write backlog at once. A stored
  // row is deleted only once its bytes were written to the socket; held
  // (write-back) messages leave memory a batch at a time, so the rest stays
  // under the window and the memory cap. A cut, a reset or a crash mid-flush
  // leaves the rest stored for the next login (after a crash, the last
  // batch's written rows may come twice: at least once, never lost).
  struct Flush {
    std::string user;
    parley_session_id session = 0;
    bool failed = false;           // a send was refused or not written: end after this batch
    bool disk_empty_seen = false;  // the last SELECT found every stored row delivered
    std::size_t in_flight = 0;
    std::vector<char> written;     // per stanza of the batch: written (or dropped as unreadable)
    std::vector<int64_t> ids;      // a stored batch: the rows, in order
    std::vector<HeldMessage> held; // a batch from memory
  };

  // Whether the session is on the calling loop (where tracked sends go).
  bool on_this_loop(parley_session_id session) const {
    return can_pace_ && host().session_peer_address(session).has_value();
  }

  void deliver(const std::string& user, parley_session_id session) {
    if (!on_this_loop(session)) return deliver_unpaced(user, session);
    {
      std::lock_guard lock(mu_);
      if (!queue_->begin_paced(user)) return;  // the delivery in progress runs again when done
    }
    auto flush = std::make_shared<Flush>();
    flush->user = user;
    flush->session = session;
    step(flush);
  }

  // The next batch: stored rows first (in write-back mode, whenever the
  // bookkeeping says some may exist: a flush may have moved held messages to
  // disk meanwhile), then held ones; the end when there is nothing left or
  // the connection failed.
  void step(const std::shared_ptr<Flush>& f) {
    std::vector<HeldMessage> batch;
    bool again = false;
    {
      std::lock_guard lock(mu_);
      if (!f->failed) {
        bool disk = !f->disk_empty_seen && (!write_back_ || queue_->disk_may_have_rows(f->user));
        if (disk) {
          // On the writer: after every INSERT issued so far (immediate
          // commits and flushes alike) and after the previous batch's DELETE.
          host().execute(sql_select_batch, {domain_, f->user, batch_messages_},
                         [this, f](parley::Result<parley::Rows, std::string> rows) { send_rows(f, rows); });
          return;
        }
        batch = queue_->take_front(f->user, static_cast<std::size_t>(batch_messages_),
                                   static_cast<std::size_t>(batch_bytes_));
        disarm_if_idle_locked();
      }
      if (batch.empty()) again = queue_->end_delivery(f->user);
    }
    if (!batch.empty()) return send_memory(f, std::move(batch));
    if (again) deliver_if_online(f->user);
  }

  void send_rows(const std::shared_ptr<Flush>& f, const parley::Result<parley::Rows, std::string>& rows) {
    f->ids.clear();
    f->written.clear();
    if (!rows) {
      host().error("reading the offline messages of " + f->user + " failed: " + rows.error());
      f->failed = true;
      return step(f);
    }
    if (rows->size() == 0) {
      f->disk_empty_seen = true;
      return step(f);
    }
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < rows->size(); ++i) {
      int64_t id = rows->at(i, 0).integer().value_or(0);
      std::string xml(rows->at(i, 1).bytes().value_or(""));
      if (!f->ids.empty() && bytes + xml.size() > static_cast<std::size_t>(batch_bytes_)) break;
      bytes += xml.size();
      auto stanza = host().parse(xml);
      if (!stanza) {
        host().error("an offline message of " + f->user + " does not parse; dropping it");
        f->ids.push_back(id);
        f->written.push_back(1);  // deleted with the batch
        continue;
      }
      std::size_t index = f->ids.size();
      f->ids.push_back(id);
      f->written.push_back(0);
      if (!host().send_tracked(f->session, std::move(*stanza), [this, f, index](bool written) {
            sent_one(f, index, written, &ModOffline::rows_written);
          })) {
        f->ids.pop_back();
        f->written.pop_back();
        f->failed = true;  // closing: the rest stays stored
        break;
      }
      ++f->in_flight;
    }
    // Every row of a short answer went out: nothing was left on disk then.
    if (!f->failed && f->ids.size() == rows->size() && rows->size() < static_cast<std::size_t>(batch_messages_))
      f->disk_empty_seen = true;
    if (f->in_flight == 0) rows_written(f);
  }

  void sent_one(const std::shared_ptr<Flush>& f, std::size_t index, bool written,
                void (ModOffline::*batch_done)(const std::shared_ptr<Flush>&)) {
    f->written[index] = written ? 1 : 0;
    if (!written) f->failed = true;
    if (--f->in_flight == 0) (this->*batch_done)(f);
  }

  // Completions come in order: what was written is a prefix of the batch.
  static std::size_t written_prefix(const Flush& f) {
    std::size_t n = 0;
    while (n < f.written.size() && f.written[n]) ++n;
    return n;
  }

  void rows_written(const std::shared_ptr<Flush>& f) {
    std::size_t n = written_prefix(*f);
    if (n < f->ids.size()) f->disk_empty_seen = false;
    if (n > 0) {
      host().counter_add("delivered", static_cast<int64_t>(n));
      std::lock_guard lock(mu_);
      std::string user = f->user;
      bool counted = queue_->write_issued(user);
      host().execute(sql_delete_upto, {domain_, user, f->ids[n - 1]},
                     [this, user, counted](parley::Result<parley::Rows, std::string> result) {
                       if (!result) host().error("removing delivered offline messages failed: " + result.error());
                       std::lock_guard lock(mu_);
                       queue_->write_done(user, result ? -result->changes() : 0, counted);
                     });
    }
    step(f);
  }

  void send_memory(const std::shared_ptr<Flush>& f, std::vector<HeldMessage> batch) {
    f->held = std::move(batch);
    f->written.clear();
    for (std::size_t i = 0; i < f->held.size(); ++i) {
      auto stanza = host().parse(f->held[i].xml);
      if (!stanza) {  // serialized by the host: cannot happen
        f->written.push_back(1);
        continue;
      }
      f->written.push_back(0);
      if (!host().send_tracked(f->session, std::move(*stanza), [this, f, i](bool written) {
            sent_one(f, i, written, &ModOffline::memory_written);
          })) {
        f->written.pop_back();
        f->failed = true;
        break;
      }
      ++f->in_flight;
    }
    if (f->in_flight == 0) memory_written(f);
  }

  void memory_written(const std::shared_ptr<Flush>& f) {
    std::size_t n = written_prefix(*f);
    if (n > 0) {
      host().counter_add("delivered", static_cast<int64_t>(n));
      host().counter_add("delivered_from_memory", static_cast<int64_t>(n));
    }
    std::vector<HeldMessage> rest(std::make_move_iterator(f->held.begin() + static_cast<std::ptrdiff_t>(n)),
                                  std::make_move_iterator(f->held.end()));
    f->held.clear();
    if (!rest.empty()) {
      std::lock_guard lock(mu_);
      requeue_locked(f->user, std::move(rest));
    }
    f->disk_empty_seen = false;  // a flush may have stored held messages meanwhile
    step(f);
  }

  // A delivery to a session on another loop (a message stored the instant its
  // recipient came online, stored from the sender's loop), or on a host
  // before ABI 1.2: everything at once, removed once handed to the session.
  // What the session accepted and did not write comes back through the
  // router if it is cut (RFC 6121's rules for a resource that is gone).
  // Nothing is sent under the lock: a stanza for a session that closed
  // meanwhile comes straight back to on_offline_message.
  void deliver_unpaced(const std::string& user, parley_session_id session) {
    OfflineQueue::Delivery d;
    {
      std::lock_guard lock(mu_);
      d = queue_->begin_delivery(user, !write_back_);
      if (d.busy) return;  // the delivery in progress runs again when done
      disarm_if_idle_locked();
      if (d.need_disk) {
        // On the writer: after every INSERT issued so far (immediate commits
        // and flushes alike), so that none is missed or overtaken.
        auto memory = std::make_shared<std::vector<HeldMessage>>(std::move(d.memory));
        host().execute(sql_select, {domain_, user},
                       [this, user, session, memory](parley::Result<parley::Rows, std::string> rows) {
                         deliver_rows(user, session, rows, *memory);
                       });
        return;
      }
    }
    std::vector<HeldMessage> rest = send_held(session, d.memory);
    if (rest.empty()) return;
    std::lock_guard lock(mu_);
    requeue_locked(user, std::move(rest));
  }

  // Not handed over (the session's loop is gone): held again, flushed in time.
  void requeue_locked(const std::string& user, std::vector<HeldMessage> rest) {
    if (rest.empty()) return;
    queue_->requeue_front(user, std::move(rest));
    if (auto next = queue_->arm_if_idle()) arm_timer(*next - steady_ms());
  }

  void deliver_rows(const std::string& user, parley_session_id session,
                    const parley::Result<parley::Rows, std::string>& rows, std::vector<HeldMessage>& memory) {
    int64_t last_id = 0;
    int64_t sent = 0;
    bool handed = true;
    if (!rows) {
      host().error("reading the offline messages of " + user + " failed: " + rows.error());
      handed = false;
    } else {
      for (std::size_t i = 0; i < rows->size(); ++i) {
        int64_t id = rows->at(i, 0).integer().value_or(0);
        auto stanza = host().parse(rows->at(i, 1).bytes().value_or(""));
        if (!stanza) {
          host().error("an offline message of " + user + " does not parse; dropping it");
          last_id = id;
          continue;
        }
        if (!host().send_to_session(session, std::move(*stanza))) {
          handed = false;
          break;
        }
        last_id = id;
        ++sent;
      }
    }
    if (sent > 0) host().counter_add("delivered", sent);
    std::vector<HeldMessage> rest = handed ? send_held(session, memory) : std::move(memory);
    bool again;
    {
      std::lock_guard lock(mu_);
      if (last_id > 0) {
        bool counted = queue_->write_issued(user);
        host().execute(sql_delete_upto, {domain_, user, last_id},
                       [this, user, counted](parley::Result<parley::Rows, std::string> result) {
                         if (!result) host().error("removing delivered offline messages failed: " + result.error());
                         std::lock_guard lock(mu_);
                         queue_->write_done(user, result ? -result->changes() : 0, counted);
                       });
      }
      requeue_locked(user, std::move(rest));
      again = queue_->end_delivery(user);
    }
    if (again) deliver_if_online(user);
  }

  // Sends held messages in order; returns those that could not be handed over.
  std::vector<HeldMessage> send_held(parley_session_id session, std::vector<HeldMessage>& memory) {
    std::vector<HeldMessage> rest;
    int64_t sent = 0;
    for (std::size_t i = 0; i < memory.size(); ++i) {
      auto stanza = host().parse(memory[i].xml);
      if (!stanza) continue;  // serialized by the host: cannot happen
      if (!host().send_to_session(session, std::move(*stanza))) {
        rest.assign(std::make_move_iterator(memory.begin() + static_cast<std::ptrdiff_t>(i)),
                    std::make_move_iterator(memory.end()));
        break;
      }
      ++sent;
    }
    if (sent > 0) {
      host().counter_add("delivered", sent);
      host().counter_add("delivered_from_memory", sent);
    }
    return rest;
  }

  std::string domain_;
  int64_t max_messages_ = default_max_messages;
  int64_t max_per_sender_ = default_max_messages / 4;
  int64_t batch_messages_ = default_batch_messages;
  int64_t batch_bytes_ = default_batch_bytes;
  bool can_pace_ = false;
  bool write_back_ = false;
  bool can_hold_ = false;
  int64_t window_ms_ = default_window_seconds * 1000;
  std::mutex mu_;  // queue_, timer_id_ and the storage calls issued with its bookkeeping
  std::unique_ptr<OfflineQueue> queue_;
  uint64_t timer_id_ = 0;  // the flush timer, 0 when none is armed
};

}  // namespace

PARLEY_MODULE(ModOffline, "mod_offline", "1.0.0",
              parley::option("max_messages", PARLEY_OPT_INT),
              parley::option("durability", PARLEY_OPT_STRING),
              parley::option("write_back_window", PARLEY_OPT_INT),
              parley::option("write_back_max_bytes", PARLEY_OPT_INT),
              parley::option("max_per_sender", PARLEY_OPT_INT),
              parley::option("delivery_batch_messages", PARLEY_OPT_INT),
              parley::option("delivery_batch_bytes", PARLEY_OPT_INT),
              parley::hook<&ModOffline::on_offline_message>(PARLEY_EVENT_OFFLINE_MESSAGE),
              // Before modules that take the broadcast over (HANDLED) would hide it.
              parley::hook<&ModOffline::on_presence>(PARLEY_EVENT_PRESENCE_BROADCAST, 20),
              parley::hook<&ModOffline::on_user_removed>(PARLEY_EVENT_USER_REMOVED),
              parley::hook<&ModOffline::on_account_export>(PARLEY_EVENT_ACCOUNT_EXPORT),
              parley::hook<&ModOffline::on_account_import>(PARLEY_EVENT_ACCOUNT_IMPORT),
              parley::disco_feature("msgoffline"),
              parley::schema("CREATE TABLE mod_offline_messages (id INTEGER PRIMARY KEY, host TEXT NOT NULL, "
                             "user TEXT NOT NULL, stamp TEXT NOT NULL, xml TEXT NOT NULL)"),
              parley::schema("CREATE INDEX mod_offline_messages_by_user ON mod_offline_messages (host, user, id)"),
              // The sender's bare JID, for max_per_sender (rows stored before: '').
              parley::schema("ALTER TABLE mod_offline_messages ADD COLUMN sender TEXT NOT NULL DEFAULT ''"),
              parley::schema("CREATE INDEX mod_offline_messages_by_sender ON mod_offline_messages (host, user, sender)"))
