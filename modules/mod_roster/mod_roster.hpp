// mod_roster/mod_roster.hpp - the module class shared by mod_roster.cpp
// (start, storage, queue, pushes, sessions), roster_iq.cpp (jabber:iq:roster
// get/set, RFC 6121 2 and 2.6) and subscriptions.cpp (RFC 6121 3).
//
// Storage (issue 11): one map per account in the host's map store (either
// backend; roster_codec.hpp has the keys): the items, bounded removal records
// (for versioned gets) and unanswered subscription requests (Pending In,
// with the original stanza, whether or not the contact is in the roster:
// RFC 6121 3.1.3, a request alone does not create an item). The SQLite tables
// of earlier versions (mod_roster_items, mod_roster_pending,
// mod_roster_removed) are moved into it at the first start. Other modules
// read a roster through event 27 (want='roster'), never its storage.
//
// Threads (no lock, no polling): a user's roster work runs on one owning
// loop, chosen by a hash of the user. A hook or iq handler on the session's
// loop posts the work there (or runs it at once when it is that loop); the
// owning loop keeps the user's line (UserLines), runs one piece at a time,
// and its storage completions come back to it. What needs the session's
// loop goes back there by post: releasing a held session, and roster pushes
// and deliveries to "interested" resources, since which sessions asked for
// the roster is known only on their own loops. Posts from one loop to another
// keep their order, and the router hands a stanza to another loop through the
// same queue, so an iq result routed before a push arrives before it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "parley/module.hpp"
#include "parley/sdk/old_tables.hpp"
#include "roster_codec.hpp"
#include "roster_item.hpp"
#include "subscription_state.hpp"
#include "user_queue.hpp"

namespace mod_roster {

inline constexpr const char* ns_roster = "jabber:iq:roster";
inline constexpr const char* ns_rosterver = "urn:xmpp:features:rosterver";

// A change of one account's map: puts (one transaction), then removals.
struct Change {
  std::vector<std::pair<std::string, std::string>> put;
  std::vector<std::string> remove;
  bool empty() const { return put.empty() && remove.empty(); }
};

// What the roster holds about one contact of one user.
struct ContactState {
  bool in_roster = false;
  RosterItem item;  // item.state.pending_in: a row in mod_roster_pending
  int64_t current_ver = 0;  // the user's roster version
  int64_t roster_size = 0;
  int64_t roster_bytes = 0;   // item_cost summed over the roster
  int64_t pending_count = 0;  // the user's unanswered requests (all contacts)
};

class ModRoster;

// The user's turn in its line: held (shared) by every callback of one piece
// of work, on the owning loop; the next piece starts when the last copy goes.
struct Turn {
  ModRoster* self;
  std::string user;
  Turn(ModRoster* s, std::string u) : self(s), user(std::move(u)) {}
  ~Turn();
  Turn(const Turn&) = delete;
  Turn& operator=(const Turn&) = delete;
};
using TurnPtr = std::shared_ptr<Turn>;

// A hold on the sender's input (ABI 1.1) for as long as its subscription
// stanza is being processed; released when the last callback lets go (on the
// owning loop), by a post to the session's loop.
struct Hold {
  ModRoster* self;
  parley_session_id session;
  Hold(ModRoster* s, parley_session_id id) : self(s), session(id) {}
  ~Hold();
  Hold(const Hold&) = delete;
  Hold& operator=(const Hold&) = delete;
};
using ElementPtr = std::shared_ptr<parley::Element>;

// Per-session data, in the session's slot (only touched on its loop).
struct SessionSlot {
  ModRoster* self;
  parley_session_id id;
  bool available = false;  // has sent initial presence (pending requests delivered)
};

class ModRoster : public parley::Module {
 public:
  ModRoster() = default;
  ~ModRoster() override;

  parley::Result<void, std::string> start() override;
  // Hot reload keeps the interested resources (the slots of the old code go
  // with it; see mod_roster.cpp).
  parley::Result<std::string, std::string> save_state() override;
  parley::Result<void, std::string> restore_state(std::string_view bytes) override;

  // roster_iq.cpp
  void on_roster_iq(const parley::IqRequest& request);
  // subscriptions.cpp
  parley::Outcome on_stanza_in(const parley::Event& event);
  parley::Outcome on_presence_to_local(const parley::Event& event);
  parley::Outcome on_presence_broadcast(const parley::Event& event);
  // mod_roster.cpp
  void on_user_removed(const parley::Event& event);
  void on_user_registered(const parley::Event& event);
  // roster_export.cpp: XEP-0227 export and import of the roster
  void on_account_export(const parley::Event& event);
  void on_account_import(const parley::Event& event);
  parley::Result<std::vector<std::pair<std::string, std::string>>, std::string> imported_requests(
      parley::ElementView user_el, const std::vector<RosterItem>& items, const std::string& user) const;
  // h-admin (issue 17, XEP-0133 get-user-roster, user-stats): a service
  // administration module asks for an account's roster (event 27, want='roster');
  // answered with event 28 from the storage read's completion (roster_iq.cpp).
  parley::Outcome on_admin_query(const parley::Event& event);

  // Called by the session slot's destructor and by Turn.
  void forget_session(parley_session_id id);
  void leave_line(const std::string& user);

 private:
  // ---- mod_roster.cpp: plumbing ----
  std::string bare_of(const std::string& local) const { return local + "@" + domain_; }
  // A JID as the server prepares it (stringprep, IDNA), split; an error if invalid.
  parley::Result<parley::Jid, parley::JidError> prepare(std::string_view text) const {
    return parley::Jid::parse(host(), text);
  }
  using Work = std::function<void(TurnPtr)>;
  // The loop that runs `owner`'s roster work.
  uint32_t owner_loop(const std::string& owner) const;
  // Runs `work` on `owner`'s loop when it is `owner`'s turn (now if this is
  // that loop and the user is idle).
  void exclusive(const std::string& owner, Work work);
  void run_head(const std::string& owner);
  // The item and pending request of (user, contact), the roster version and size.
  void load_contact(const std::string& user, const std::string& contact,
                    std::function<void(std::optional<ContactState>)> done);
  // The whole stored roster of `user` (nullopt: unreadable, logged).
  void load_roster(const std::string& user, std::function<void(std::optional<StoredRoster>)> done);
  // Writes `change` to the user's map (the put, then the removals, in the
  // store's order); done(ok) after the last.
  void apply(const std::string& user, Change change, std::function<void(bool)> done);
  static void put_item(Change& c, const RosterItem& item) {
    c.put.emplace_back(std::string(item_prefix) + item.jid, encode_item(item));
  }
  static void delete_pending(Change& c, const std::string& contact) {
    c.remove.push_back(std::string(pending_prefix) + contact);
  }
  // The roster's items as jabber:iq:roster <item/>s in a <query/> (admin and roster queries).
  parley::Element roster_query(const StoredRoster& roster, std::string_view only_contact) const;

  parley::Element item_element(const RosterItem& item) const;
  parley::Element removed_item_element(const std::string& contact) const;
  // A roster push (RFC 6121 2.1.6) to every interested resource of the user,
  // or to `only` when set (from the loop that runs `only`'s request).
  void push(const std::string& user, parley::Element item, int64_t ver, parley_session_id only = 0);
  parley::Element push_iq(const std::string& user, const std::string& to, const parley::Element& item, int64_t ver);
  // Sends a copy of `stanza` to each session of `user` that `wants` it, the
  // choice made on the session's own loop: wants(available, interested).
  void to_sessions(const std::string& user, std::shared_ptr<const parley::Element> stanza,
                   bool (*wants)(bool available, bool interested));
  SessionSlot* slot(parley_session_id session);
  // On the session's loop.
  void mark_interested(parley_session_id session);
  bool interested_here(parley_session_id session);

  // ---- subscriptions.cpp ----
  void outbound(TurnPtr turn, std::string user, std::string contact, SubType type, ElementPtr stanza,
                std::shared_ptr<Hold> hold);
  void inbound(TurnPtr turn, std::string user, std::string contact, SubType type, ElementPtr stanza);
  void deliver_pending(std::string user, parley_session_id session);
  void push_pending(std::string user, parley_session_id session, std::shared_ptr<std::vector<std::string>> list,
                    std::size_t from);
  // The form of an inbound request that is stored (and delivered): within
  // max_pending_request_bytes_, its <status/> cut and extensions dropped if
  // needed.
  parley::Element bounded_request(const parley::Element& stanza) const;
  // Whether a change of the roster from `before` bytes by `delta` fits
  // max_roster_bytes_ (a change that shrinks it always does).
  bool roster_bytes_fit(int64_t before, int64_t delta) const {
    return delta <= 0 || before + delta <= max_roster_bytes_;
  }
  // Side effects routed after a commit.
  void route_presence(std::string_view type, const std::string& from, const std::string& to);
  void unavailable_from_each(const std::string& user, const std::string& contact);
  void deliver_to_user(const std::string& user, parley::Element stanza, bool available_only);
  friend struct Hold;
  void release_hold(parley_session_id session);

  // ---- roster_iq.cpp ----
  void roster_get(TurnPtr turn, std::string user, ElementPtr iq, parley_session_id session,
                  std::optional<std::string> client_ver);
  void roster_set(TurnPtr turn, std::string user, ElementPtr iq, RosterSet set);
  void roster_remove(TurnPtr turn, std::string user, ElementPtr iq, RosterSet set);

  std::string domain_;
  int64_t max_roster_size_ = 1000;
  int64_t max_roster_bytes_ = 512 * 1024;
  int64_t max_pending_requests_ = 1000;
  std::size_t max_pending_request_bytes_ = 2048;
  std::size_t push_batch_ = 16;
  std::size_t push_batch_bytes_ = 64 * 1024;
  bool versioning_ = true;
  RosterSetLimits limits_;
  bool can_hold_ = false;
  int64_t max_removal_records_ = 200;
  // The rows of the SQLite tables of earlier versions, moved into the map
  // store once (start()); roster work waits for all three.
  parley::OldTables move_;
  bool moved() const { return move_.ready(); }
  template <class F>
  void when_moved(F fn) {
    move_.when_ready(host(), std::move(fn));
  }

  // What each worker loop keeps; only that loop touches it.
  struct LoopState {
    UserLines<Work> lines;                            // the users this loop owns
    std::unordered_set<parley_session_id> interested;  // this loop's sessions that asked for the roster
    uint64_t push_ids = 0;                             // ids of pushes sent from this loop
  };
  LoopState& here() { return loops_.here(); }
  parley::PerLoop<LoopState> loops_;
  // How the lines are used (parleyctl status): work that had to wait for the
  // user's earlier work, and work handed to the owning loop by a post.
  parley::Metric work_waited_, work_posted_;
  bool stopping_ = false;  // set by the destructor: Turns and Holds let go without posting
};

}  // namespace mod_roster
