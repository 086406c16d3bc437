// Where a stanza goes (RFC 6120 §10, RFC 6121 §8). Runs on whichever loop the
// stanza arrived on; a stanza for a session on another loop crosses over in
// that loop's inbox, serialized once and shared.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/addr/jid.hpp"
#include "core/loop/worker_loop.hpp"
#include "core/session/session_table.hpp"
#include "xml/element.hpp"

namespace parley {

class ServerContext;

// One broadcast (Router::route_shared): the stanza without 'to', serialized
// once and split where 'to' goes. Immutable once made; every recipient's
// Delivery shares it, on any loop (reads only).
struct SharedStanza {
  xml::Element stanza;  // no 'to'
  std::string head;     // "<message" (the start tag up to its attributes)
  std::string tail;     // the rest: " from='...' ...>...</message>"
  // Takes `stanza` (its 'to' dropped); nullptr, and `stanza` left as it
  // was less its 'to', if the serialization has no place for 'to' after the name.
  static std::shared_ptr<const SharedStanza> make(xml::Element& stanza);
};

class Router;

// One stanza on its way to one or more sessions.
struct Delivery {
  explicit Delivery(xml::Element s);
  // One recipient of a broadcast: its bytes are the shared ones with its 'to'
  // spliced in, assembled when written (wire()); its element is made only if
  // something needs it (element()).
  Delivery(std::shared_ptr<const SharedStanza> shared, std::string to);
  // The stanza (for a shared delivery: the lent view while a broadcast's loop
  // hands it over, else its own copy, made now).
  xml::Element& element();
  // Its name and payload, without making anything ('to' may be missing).
  const xml::Element& peek() const { return shared ? shared->stanza : stanza; }
  // The bytes to write; `scratch` holds a shared delivery's assembled ones.
  std::string_view wire(std::string& scratch) const;
  size_t wire_size() const;
  xml::Element stanza;   // a shared delivery's: empty until element() makes it
  std::string bytes;     // serialized once for every recipient (default namespace jabber:client)
  std::shared_ptr<const SharedStanza> shared;  // set: a broadcast's recipient (bytes empty)
  std::string to;                              // its 'to' (a full JID, prepared)
  // The element of the loop that hands a broadcast's delivery over, with
  // this recipient's 'to', lent for that synchronous call only (cleared after).
  struct SharedView* lent = nullptr;
  bool made = false;  // a shared delivery's `stanza` was made
  // Dispatches (and backlog holds) not settled yet. A stanza fanned out to
  // several sessions is routed again only if none of them wrote it (else a
  // resource that closed would cause duplicates).
  std::atomic<int> outstanding{0};
  int targets = 1;  // sessions it was sent to
  // A session that accepts it into its write backlog (c2s_session.cpp) adds
  // one to `outstanding` and gives it back once the bytes are written or lost
  // (cut as a slow reader, reset): whoever brings `outstanding` to zero routes
  // it again unless a session wrote it (`written`: set by a session that
  // wrote it out, at once if it was fanned out, or from its backlog). One
  // counter, so that exactly one party sees the end.
  std::atomic<bool> written{false};
  // Its link into another loop's inbox when it goes to one session there
  // (Router::dispatch): a cross-loop delivery allocates nothing more than the
  // Delivery itself. Used once per Delivery (a fan-out posts each copy of its
  // own); `self` keeps it alive while queued and is moved, never copied (no
  // reference-count atomics on the way).
  struct Hop : LoopTask {
    Router* router = nullptr;
    SessionId id = 0;
    unsigned source = 0;
    unsigned target = 0;
    std::shared_ptr<Delivery> self;
  } hop;
};

class Router {
 public:
  explicit Router(ServerContext& ctx);

  // `stanza` carries a trustworthy 'from' (stamped by the server); 'to' may be
  // empty, meaning the server (iq) or the sender's account.
  void route(xml::Element stanza, unsigned loop);
  // The same for a stanza whose addresses the caller has prepared already (a
  // client's stanza: 'from' stamped, 'to' checked): no second stringprep.
  // An empty `to` means the sender's own account.
  void route(xml::Element stanza, const Jid& from, const Jid& to, unsigned loop);
  // Replies with a stanza error, unless `stanza` is itself an error (§8.3.1).
  void bounce(const xml::Element& stanza, std::string_view condition, unsigned loop, std::string_view text = {});
  void deliver_to_session(SessionId id, std::shared_ptr<Delivery> delivery, unsigned loop);
  void deliver_to_sessions(const std::vector<SessionId>& ids, std::shared_ptr<Delivery> delivery, unsigned loop);
  // A stanza a session accepted but had not written when its connection
  // ended (cut as a slow reader, reset), after the session left the session
  // table and gave up its hold: routed again unless another session took it.
  void reroute_unwritten(std::shared_ptr<Delivery> delivery, unsigned loop);
  // One stanza (its 'from' set, no 'to') to several full JIDs, only 'to'
  // differing (a room's broadcast, module.h route_shared): serialized once;
  // the recipients' hooks (MESSAGE_TO_LOCAL/PRESENCE_TO_LOCAL) run on one
  // element whose 'to' is set for each in turn; the deliveries to another
  // loop go in one post per loop. A recipient that is not a bound local
  // session (or whose hooks changed the stanza) is routed as route() would.
  // router_fanout.cpp.
  void route_shared(xml::Element stanza, const std::vector<std::string>& recipients, unsigned loop);

 private:
  // `single`: its only recipient, so it may cross loops in its own hop.
  void dispatch(SessionId id, std::shared_ptr<Delivery> delivery, unsigned loop, bool single);
  static void run_hop(LoopTask* task, bool run);
  void route_to_server(xml::Element&& stanza, const Jid& from, const Jid& to, unsigned loop);
  // `checked`: the account is known to exist (it has sessions, or storage said so).
  void route_to_account(xml::Element&& stanza, const Jid& from, const Jid& to, unsigned loop, bool checked = false);
  // RFC 6121 §8.5.1: asks storage whether the account exists, then goes on
  // (or applies the no-such-user rules) on `loop`.
  void check_account(xml::Element&& stanza, const Jid& from, const Jid& to, unsigned loop);
  // RFC 6121 §8.5.1 (and XEP-0030 §7 for disco#items) for an account that does not exist.
  void no_such_user(xml::Element&& stanza, const Jid& from, const Jid& to, unsigned loop);
  // `fenced`: the sender's earlier stanzas have left this loop's routes (fence_offline).
  void route_to_bare(xml::Element&& stanza, const Jid& from, const Jid& to, unsigned loop, bool fenced = false);
  // A message of a client of this loop that found no available resource
  // waits until this loop's routes to the other loops have drained: true if
  // it took the stanza (it comes back to route_to_bare, fenced).
  bool fence_offline(xml::Element& stanza, const Jid& from, const Jid& to, unsigned loop);
  void handle_iq(xml::Element&& stanza, const Jid& from, const Jid& to, uint32_t scope, unsigned loop);
  void deliver_here(SessionId id, std::shared_ptr<Delivery> delivery, unsigned loop);
  // A domain served by a module (ABI 1.2 register_route).
  void route_to_service(xml::Element&& stanza, const Jid& from, const Jid& to, const struct ServiceEntry& service,
                        unsigned loop);
  // An answer to an iq a module sent (send_iq), on whichever loop it arrived:
  // handed to the loop that waits for it.
  void answer_module_iq(xml::Element&& stanza, const Jid& from, unsigned owner, unsigned loop);
  void undeliverable(std::shared_ptr<Delivery> delivery, unsigned loop);
  // The route to the target loop is at limits.max_route_queue.
  void route_full(std::shared_ptr<Delivery> delivery, unsigned loop);

  // route_shared's deliveries to one loop's sessions (session id, 'to').
  void deliver_shared(const std::shared_ptr<const SharedStanza>& shared,
                      std::vector<std::pair<SessionId, std::string>>& batch, unsigned loop);

  ServerContext& ctx_;
};

}  // namespace parley
