// mod_carbons: XEP-0280 Message Carbons (urn:xmpp:carbons:2).
//
//   <iq type='set'><enable xmlns='urn:xmpp:carbons:2'/></iq>   -> result; this session gets copies
//   <iq type='set'><disable xmlns='urn:xmpp:carbons:2'/></iq>  -> result; it no longer does
//
// Enabling again, or disabling again, is a plain result (section 10.1). The
// request is the session's own: no 'to', its own bare JID, or its server. From
// anyone else (another account, a remote entity) it is not-allowed (sections 4
// and 5); a get, or another payload, is bad-request (RFC 6120 8.3.3.1).
//
// Copies, of the messages section 6.1 makes eligible (carbons_logic.hpp; the
// server advertises urn:xmpp:carbons:rules:0, section 6.2):
//   <received/>  from PARLEY_EVENT_MESSAGE_DELIVERED: a message the router gave
//                to one session of the user goes, wrapped, to the user's other
//                Carbons-enabled sessions that did not get it (section 7);
//   <sent/>      from PARLEY_EVENT_STANZA_IN: what a session sends goes to the
//                user's other Carbons-enabled sessions (section 8).
// Each copy is <message from='user@host' to='user@host/copy-receiver'
// type='(the original's)'><received|sent xmlns='urn:xmpp:carbons:2'><forwarded
// xmlns='urn:xmpp:forward:0'>(the original, as it was routed)</forwarded>...
//
// <private/> (section 9): no copies either way, and the element is removed
// from what the recipient's sessions get (a SHOULD). The module has no
// outgoing filter for it (one would make every stanza to every session a
// copy); the rare private message is taken at MESSAGE_DELIVERED and written
// again, without the element, through the outgoing filters.
//
// Threads: no lock. Whether a session enabled Carbons is its slot, read and
// written on its own loop only; a copy is built where the message is, then
// posted to the loop of the session that may get it, which checks the slot
// there. A hot reload keeps the slots (save/restore_session_data). One atomic
// counts the host's sessions with Carbons on (enable, disable, a slot freed):
// while it is 0 no copy work is done at all, and a user with one session
// (nobody to copy to) costs one user_sessions() call, before any JID is
// prepared.
#include <atomic>
#include <deque>
#include <memory>
#include <unordered_set>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "carbons_logic.hpp"
#include "parley/module.hpp"

namespace {

namespace carbons = parley::mod_carbons;

constexpr const char* ns_carbons = "urn:xmpp:carbons:2";
constexpr const char* ns_forward = "urn:xmpp:forward:0";
constexpr const char* ns_hints = "urn:xmpp:hints";
constexpr const char* ns_muc_user = "http://jabber.org/protocol/muc#user";
constexpr const char* ns_client = "jabber:client";
constexpr const char* ns_conference = "jabber:x:conference";                 // XEP-0249
constexpr const char* ns_chatstates = "http://jabber.org/protocol/chatstates";  // XEP-0085
constexpr const char* ns_receipts = "urn:xmpp:receipts";                      // XEP-0184
constexpr const char* ns_markers = "urn:xmpp:chat-markers:0";                 // XEP-0333
constexpr const char* ns_carbons_rules = "urn:xmpp:carbons:rules:0";

// How many sessions of this instance have Carbons on, all loops together:
// written only by enable/disable and a session's end (rare), read relaxed on
// the stanza path, where 0 skips all the work (no lock: one atomic, shared by
// the module and every slot, so a slot freed after stop() still finds it).
using EnabledCount = std::shared_ptr<std::atomic<int64_t>>;

struct CarbonsState {
  explicit CarbonsState(EnabledCount count) : count_(std::move(count)) {}
  CarbonsState(const CarbonsState&) = delete;
  CarbonsState& operator=(const CarbonsState&) = delete;
  ~CarbonsState() { set(false); }
  bool enabled() const { return enabled_; }
  void set(bool on) {
    if (on == enabled_) return;
    enabled_ = on;
    count_->fetch_add(on ? 1 : -1, std::memory_order_relaxed);
  }

 private:
  EnabledCount count_;
  bool enabled_ = false;
};

// XEP-0280 section 6, third rule: an error answering a message that was
// eligible is eligible. What each loop's sessions sent (eligible, with an id)
// is remembered there, bounded (oldest out first); the error comes back to the
// sending session, on the same loop. Key: "user\npeer's bare JID\nid".
struct SentIds {
  std::unordered_set<std::string> keys;
  std::deque<std::string> order;
};

class ModCarbons : public parley::Module {
 public:
  using SessionData = CarbonsState;

  parley::Result<void, std::string> start() override {
    if (!host().supports_1_2())
      return parley::unexpected(std::string("needs a host with module ABI 1.2 (MESSAGE_DELIVERED, post_to_session)"));
    const int64_t tracked = host().option_int("max_tracked_sent").value_or(4096);
    if (tracked < 0 || tracked > 1000000)
      return parley::unexpected(std::string("max_tracked_sent must be from 0 to 1000000"));
    max_tracked_ = static_cast<size_t>(tracked);
    sent_.init(host());
    copies_ = parley::register_metric(host(), "copies", PARLEY_METRIC_COUNTER, "carbon copies sent to sessions");
    return {};
  }

  void on_iq(const parley::IqRequest& request) {
    // A local session asking for itself: its own account, or its server.
    const std::string requester(parley::bare_jid(request.from()));
    const bool own = request.to() == requester || request.to() == host().module_host();
    if (request.session() == 0 || !own || requester.find('@') == std::string::npos)
      return host().bounce(request.iq(), "not-allowed", "Carbons are enabled by a session of this server for itself");
    if (request.type() != "set") return host().bounce(request.iq(), "bad-request", "enable and disable are iq set");
    auto payload = request.payload();
    if (!payload || payload->xmlns() != ns_carbons || (payload->name() != "enable" && payload->name() != "disable"))
      return host().bounce(request.iq(), "bad-request", "expected <enable/> or <disable/>");
    const bool enable = payload->name() == "enable";
    if (auto* state = host().session_slot<CarbonsState>(request.session())) {
      state->set(enable);
    } else if (enable) {
      auto fresh = std::make_unique<CarbonsState>(enabled_);
      fresh->set(true);
      if (!host().set_session_slot(request.session(), std::move(fresh)))
        return host().bounce(request.iq(), "internal-server-error");
    }
    host().route(parley::make_iq_result(request.iq()));
  }

  // What a session sends: <sent/> copies to the user's other sessions.
  parley::Outcome on_stanza_in(const parley::Event& event) {
    auto stanza = event.stanza();
    if (!stanza || stanza->name() != "message" || nobody_enabled()) return parley::Outcome::pass;
    if (!carbons::eligible(facts(*stanza, carbons::Direction::sent), carbons::Direction::sent))
      return parley::Outcome::pass;
    const std::string bare = own_bare(event);
    auto sessions = host().user_sessions(bare);
    if (sessions.size() < 2) return parley::Outcome::pass;  // no other resource to copy to
    const std::string_view to = stanza->attr("to").value_or("");
    remember_sent(bare, to, stanza->attr("id").value_or(""));
    // No 'to' is the sender's own bare JID (RFC 6120 10.3.1).
    const bool to_own_account = to.empty() || parley::bare_jid(to) == bare;
    auto targets = carbons::sent_copy_targets(logic_sessions(sessions), event.session(), to_own_account);
    send_copies(*stanza, bare, sessions, targets, "sent");
    return parley::Outcome::pass;
  }

  // What the router gave to a session: <received/> copies to the others.
  parley::Outcome on_delivered(const parley::Event& event) {
    auto stanza = event.stanza();
    if (!stanza || stanza->name() != "message") return parley::Outcome::pass;
    const carbons::MessageFacts message = facts(*stanza, carbons::Direction::received);
    if (message.is_private) return deliver_without_private(event.session(), *stanza);
    if (nobody_enabled()) return parley::Outcome::pass;
    const std::string bare = own_bare(event);
    if (message.type == "error") {
      // Eligible only as the answer to an eligible message this user sent.
      if (message.is_carbon || !answers_sent(bare, stanza->attr("from").value_or(""), stanza->attr("id").value_or("")))
        return parley::Outcome::pass;
    } else if (!carbons::eligible(message, carbons::Direction::received)) {
      return parley::Outcome::pass;
    }
    auto sessions = host().user_sessions(bare);
    if (sessions.size() < 2) return parley::Outcome::pass;  // no other resource to copy to
    const parley::Jid to = parley::Jid::prepared(stanza->attr("to").value_or(""));
    const parley::Jid from = parley::Jid::prepared(stanza->attr("from").value_or(""));
    const std::string_view sender_resource = from.bare_str() == bare ? std::string_view(from.resource()) : "";
    auto targets = carbons::received_copy_targets(logic_sessions(sessions), event.session(), to.resource(),
                                                  sender_resource);
    send_copies(*stanza, bare, sessions, targets, "received");
    return parley::Outcome::pass;
  }

  // Hot reload: whether each session enabled Carbons.
  parley::Result<std::string, std::string> save_session_data(parley_session_id, const CarbonsState& state) {
    return std::string(state.enabled() ? "1" : "0");
  }
  parley::Result<std::unique_ptr<CarbonsState>, std::string> restore_session_data(parley_session_id,
                                                                                  std::string_view bytes) {
    if (bytes != "1" && bytes != "0") return parley::unexpected(std::string("unknown mod_carbons session state"));
    auto state = std::make_unique<CarbonsState>(enabled_);
    state->set(bytes == "1");
    return state;
  }

 private:
  // One pass over the children: every message delivered to a session comes here.
  static carbons::MessageFacts facts(parley::ElementView message, carbons::Direction direction) {
    carbons::MessageFacts f;
    f.type = message.attr("type").value_or("");
    for (parley::ElementView child : message.children()) {
      const std::string_view ns = child.xmlns();
      const std::string_view name = child.name();
      if (ns == ns_client) {
        f.has_body = f.has_body || name == "body";
      } else if (ns == ns_carbons) {
        f.is_private = f.is_private || name == "private";
        f.is_carbon = f.is_carbon || name == "received" || name == "sent";
      } else if (ns == ns_hints) {
        f.no_copy = f.no_copy || name == "no-copy";
      } else if (ns == ns_muc_user) {
        f.from_muc = f.from_muc || name == "x";
        f.muc_invitation = f.muc_invitation || (name == "x" && child.child("invite", ns_muc_user).has_value());
      } else if (ns == ns_conference) {
        f.muc_invitation = f.muc_invitation || name == "x";
      } else if (ns == ns_chatstates) {
        f.im_payload = true;  // active, composing, paused, inactive, gone
      } else if (ns == ns_receipts) {
        f.im_payload = f.im_payload || name == "request" || name == "received";
      } else if (ns == ns_markers) {
        f.im_payload = f.im_payload || name == "markable" || name == "received" || name == "displayed" ||
                       name == "acknowledged";
      }
    }
    // Only a resource may hold '/' (RFC 7622 3.1): one says a full JID.
    const std::string_view peer =
        message.attr(direction == carbons::Direction::received ? "from" : "to").value_or("");
    f.peer_is_full = peer.find('/') != std::string_view::npos;
    return f;
  }

  static std::string own_bare(const parley::Event& event) {
    return event.user_bare();
  }

  static std::vector<carbons::UserSession> logic_sessions(const std::vector<parley::Host::UserSession>& sessions) {
    std::vector<carbons::UserSession> out;
    out.reserve(sessions.size());
    for (const auto& s : sessions)
      out.push_back(carbons::UserSession{s.id, parley::Jid::prepared(s.full_jid).resource(), s.available, s.priority});
    return out;
  }

  // One wrapped copy per target, built here (the original is this call's),
  // checked and sent on the target's own loop. Posted even to this loop: the
  // copy is not delivered from inside another session's hook.
  void send_copies(parley::ElementView original, const std::string& bare,
                   const std::vector<parley::Host::UserSession>& sessions, const std::vector<uint64_t>& targets,
                   std::string_view kind) {
    for (uint64_t id : targets) {
      const std::string* full = nullptr;
      for (const auto& s : sessions)
        if (s.id == id) full = &s.full_jid;
      if (!full) continue;
      auto copy = std::make_shared<parley::Element>(host().element("message", ns_client));
      copy->set_attr("from", bare).set_attr("to", *full);
      if (auto type = original.attr("type")) copy->set_attr("type", *type);
      copy->add_child(kind, ns_carbons).add_child("forwarded", ns_forward).add_child(original.clone());
      parley::post_to_session(host(), id, [this, id, copy] {
        const auto* state = host().session_slot<CarbonsState>(id);
        if (!state || !state->enabled()) return;
        if (host().send_to_session(id, std::move(*copy))) copies_.add();
      });
    }
  }

  // XEP-0280 section 9: the recipient's server SHOULD remove <private/>. The
  // delivery is taken (HANDLED) and the message written again without it,
  // through the outgoing filters (other modules' counting and holding).
  parley::Outcome deliver_without_private(parley_session_id session, parley::ElementView message) {
    parley::Element stripped = message.clone();
    stripped.remove_children("private", ns_carbons);
    if (!host().session_send_after(session, std::move(stripped))) return parley::Outcome::pass;
    return parley::Outcome::handled;
  }

  // No session of this host has Carbons on: no copy to make (the common
  // case of a server whose clients do not use them costs one relaxed load).
  bool nobody_enabled() const { return enabled_->load(std::memory_order_relaxed) == 0; }

  static std::string sent_key(std::string_view user, std::string_view peer, std::string_view id) {
    std::string key(user);
    key += '\n';
    key += parley::bare_jid(peer);
    key += '\n';
    key += id;
    return key;
  }
  void remember_sent(std::string_view user, std::string_view to, std::string_view id) {
    if (max_tracked_ == 0 || id.empty() || to.empty()) return;
    SentIds& here = sent_.here();
    std::string key = sent_key(user, to, id);
    if (!here.keys.insert(key).second) return;
    here.order.push_back(std::move(key));
    while (here.order.size() > max_tracked_) {
      here.keys.erase(here.order.front());
      here.order.pop_front();
    }
  }
  // Whether an error from `from` with `id` answers what `user` sent (forgotten
  // once answered; the order list keeps the key until it ages out).
  bool answers_sent(std::string_view user, std::string_view from, std::string_view id) {
    if (max_tracked_ == 0 || id.empty() || from.empty()) return false;
    return sent_.here().keys.erase(sent_key(user, from, id)) == 1;
  }

  parley::Metric copies_;
  size_t max_tracked_ = 4096;
  parley::PerLoop<SentIds> sent_;  // each loop's, touched by that loop only
  EnabledCount enabled_ = std::make_shared<std::atomic<int64_t>>(0);
};

}  // namespace

PARLEY_MODULE(ModCarbons, "mod_carbons", "1.0.0",
              parley::option("max_tracked_sent", PARLEY_OPT_INT),
              parley::iq_handler<&ModCarbons::on_iq>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET | PARLEY_IQ_SET, ns_carbons),
              parley::iq_handler<&ModCarbons::on_iq>(PARLEY_IQ_SERVER, PARLEY_IQ_GET | PARLEY_IQ_SET, ns_carbons),
              parley::hook<&ModCarbons::on_stanza_in>(PARLEY_EVENT_STANZA_IN, 90),
              parley::hook<&ModCarbons::on_delivered>(PARLEY_EVENT_MESSAGE_DELIVERED, 90),
              parley::disco_feature(ns_carbons),
              // Section 6.2: the rules of section 6.1 are followed, all of them (carbons_logic.hpp).
              parley::disco_feature(ns_carbons_rules))
