// mod_csi: XEP-0352 Client State Indication (urn:xmpp:csi:0).
//
// The <csi/> stream feature after authentication; <inactive/> and <active/>
// nonzas (no answer: the XEP defines none). While a session is inactive its
// outgoing filter (STANZA_OUT, priority 40: before stream management's
// counting filter, so that what it holds is counted when it is really
// written) holds what is not urgent in a bounded buffer of the session's slot
// (csi_rules.hpp says what is urgent, held_buffer.hpp how the buffer keeps
// only the latest presence per contact) and flushes it, in order, with
// session_send_after (the filters after this one run then):
//  - before an urgent stanza (which then goes out);
//  - on <active/>, before anything the client sends after it is processed
//    (XEP-0352 section 5.1: the nonza's effects come first);
//  - when the buffer would go past max_stanzas or max_bytes (the stanza that
//    did not fit goes out after the flush);
//  - when the client sends anything (flush_on_client_traffic): its radio is
//    up already, so the held stanzas cost no extra wake-up now;
//  - when the session detaches (stream management): what was held goes to
//    the core's detached queue, in order, after what it already had, and is
//    written (and counted) after a resume; a resumed stream starts active
//    (section 5: "a stream always begins in 'active' state").
// When the session closes, held presence is dropped (the resource is gone:
// nobody is to see it) and held messages are routed again from a task of the
// loop, once the session has left the session table: RFC 6121's rules for a
// resource that is gone (another resource, offline storage, an error to the
// sender), as the core does with what a closed session had not written.
//
// An urgent message for an inactive session also raises PARLEY_EVENT_WAKE_UP
// (reason 'csi') for a push module (mod_push's notify_csi_inactive).
//
// Threads: everything here runs on the session's loop (its hooks); the slot
// is the only state of a session. The module itself is read-only after start.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "csi_rules.hpp"
#include "held_buffer.hpp"
#include "parley/module.hpp"

namespace {

namespace csi = parley::csi;

class ModCsi;

// What the slot's end does with stanzas it still holds: sends them (unload).
// The module's token says it is still there to send them.
struct SlotOwner {
  ModCsi* module = nullptr;
  std::shared_ptr<const bool> alive;
};

struct CsiSlot {
  CsiSlot(csi::BufferLimits limits, parley_session_id session, SlotOwner owner)
      : held(limits), session(session), owner(std::move(owner)) {}
  CsiSlot(CsiSlot&&) = default;
  CsiSlot& operator=(CsiSlot&&) = default;
  // The core frees a slot when its session ends (on_closed took what it held
  // first), when the module is unloaded (before stop(), on the session's
  // loop: what it holds is sent now, not dropped) and when it is reloaded
  // (saved first: nothing to send here).
  ~CsiSlot();
  bool inactive = false;
  csi::HeldBuffer held;
  parley_session_id session = 0;
  std::string account;  // user@host, the held stanzas' <delay from/> (set at the first stamp)
  SlotOwner owner;
  mutable bool saved = false;  // carried to the new code by a reload
};

enum class Reason { urgent, active, full, client, detach, unload };

class ModCsi : public parley::Module {
 public:
  using SessionData = CsiSlot;

  parley::Result<void, std::string> start() override {
    if (!host().supports_1_2()) return parley::unexpected(std::string("needs a host with module ABI 1.2 (sessions)"));
    int64_t max_stanzas = host().option_int("max_stanzas").value_or(256);
    int64_t max_bytes = host().option_int("max_bytes").value_or(262144);
    if (max_stanzas < 1 || max_stanzas > 100000)
      return parley::unexpected(std::string("max_stanzas must be between 1 and 100000"));
    if (max_bytes < 1024 || max_bytes > (64 << 20))
      return parley::unexpected(std::string("max_bytes must be between 1024 and 67108864"));
    limits_ = csi::BufferLimits{static_cast<std::size_t>(max_stanzas), static_cast<std::size_t>(max_bytes)};
    std::vector<csi::Payload> extra;
    for (const std::string& clark : host().option_string_list("important_payloads").value_or(std::vector<std::string>{})) {
      auto payload = csi::parse_payload(clark);
      if (!payload)
        return parley::unexpected("important_payloads: '" + clark + "' is not {namespace} or {namespace}name");
      extra.push_back(std::move(*payload));
    }
    rules_ = csi::Rules(std::move(extra));
    delay_stamp_ = host().option_bool("delay_stamp").value_or(true);
    flush_on_client_traffic_ = host().option_bool("flush_on_client_traffic").value_or(true);

    held_ = metric("held", PARLEY_METRIC_COUNTER, "stanzas held for inactive clients");
    superseded_ = metric("superseded", PARLEY_METRIC_COUNTER, "held presences replaced by a newer one of the contact, never written");
    wakeups_saved_ = metric("wakeups_saved", PARLEY_METRIC_COUNTER,
                            "held stanzas that did not cause a write of their own (written with another one or never)");
    flushes_ = metric("flushes", PARLEY_METRIC_COUNTER, "flushes of a non-empty buffer, all reasons");
    flush_reason_[static_cast<int>(Reason::urgent)] = metric("flushes_urgent", PARLEY_METRIC_COUNTER, "flushes before an urgent stanza");
    flush_reason_[static_cast<int>(Reason::active)] = metric("flushes_active", PARLEY_METRIC_COUNTER, "flushes on <active/>");
    flush_reason_[static_cast<int>(Reason::full)] = metric("flushes_full", PARLEY_METRIC_COUNTER, "flushes of a full buffer");
    flush_reason_[static_cast<int>(Reason::client)] = metric("flushes_client", PARLEY_METRIC_COUNTER, "flushes on the client's own traffic");
    flush_reason_[static_cast<int>(Reason::detach)] = metric("flushes_detach", PARLEY_METRIC_COUNTER, "flushes into a detached session's queue");
    flush_reason_[static_cast<int>(Reason::unload)] = metric("flushes_unload", PARLEY_METRIC_COUNTER, "flushes when the module was unloaded");
    rerouted_ = metric("rerouted", PARLEY_METRIC_COUNTER, "held messages routed again when their session closed");
    inactive_ = metric("inactive_sessions", PARLEY_METRIC_GAUGE, "sessions in the inactive state");
    // The filter runs only for inactive sessions (turned on at <inactive/>,
    // off once active again): an active session is written without it.
    host().hook_mode(PARLEY_EVENT_STANZA_OUT, PARLEY_HOOKS_PER_SESSION);
    return {};
  }

  // ---- nonzas ----

  parley::Outcome on_nonza(const parley::Event& ev) {
    auto nonza = ev.stanza();
    if (!nonza) return parley::Outcome::pass;
    parley_session_id session = ev.session();
    if (nonza->xmlns() != csi::ns_csi) {
      // Another nonza (stream management's <r/> or <a/>): the client is
      // talking, so its radio is up.
      client_traffic(session);
      return parley::Outcome::pass;
    }
    std::string_view name = nonza->name();
    if (name == "inactive") {
      // Also before resource binding (the feature is offered after
      // authentication): the state then applies from binding on.
      CsiSlot& s = slot(session);
      if (!s.inactive) {
        s.inactive = true;
        inactive_.add(1);
        host().filter_out(session, true);
      }
      return parley::Outcome::handled;
    }
    if (name == "active") {
      if (auto* s = host().session_slot<CsiSlot>(session); s && s->inactive) {
        s->inactive = false;
        inactive_.add(-1);
        flush(session, *s, Reason::active);
        host().filter_out(session, false);  // what it released has passed it
      }
      return parley::Outcome::handled;
    }
    // <csi/> is a feature, not a nonza; anything else is not in the schema:
    // the core closes the stream with unsupported-stanza-type.
    return parley::Outcome::pass;
  }

  parley::Outcome on_stanza_in(const parley::Event& ev) {
    client_traffic(ev.session());
    return parley::Outcome::pass;
  }

  // ---- the outgoing filter ----

  parley::Outcome on_out(const parley::Event& ev) {
    auto* s = host().session_slot<CsiSlot>(ev.session());
    if (!s || !s->inactive) return parley::Outcome::pass;
    auto stanza = ev.stanza();
    if (!stanza) return parley::Outcome::pass;
    csi::StanzaShape shape = shape_of(*stanza);
    switch (rules_.classify(shape)) {
      case csi::Urgency::pass:
        return parley::Outcome::pass;
      case csi::Urgency::urgent:
        flush(ev.session(), *s, Reason::urgent);
        wake_up(ev, *stanza);
        return parley::Outcome::pass;
      case csi::Urgency::hold:
        break;
    }
    std::string key = csi::presence_key(shape.name, shape.type, stanza->attr("from").value_or(""));
    // XEP-0203: when the server had it (Prosody and ejabberd stamp held
    // stanzas too); from the account, as ejabberd's issue 1750 settled. The
    // <delay/> goes in when the stanza is released: what is held is the
    // stanza as it was to be written, which for a room's broadcast is a
    // reference to its one serialization (the lent element stays unchanged).
    std::string stamp;
    std::size_t extra = 0;
    if (delay_stamp_ && !stanza->child("delay", csi::ns_delay)) {
      if (s->account.empty()) s->account = ev.user_bare();
      stamp = csi::delay_stamp(std::chrono::system_clock::now());
      extra = delay_bytes(s->account, stamp);
    }
    csi::HeldBuffer::Pushed pushed =
        s->held.push(std::move(key), parley::stanza_out_bytes(host(), *stanza), std::move(stamp), extra);
    if (pushed.superseded) {
      superseded_.add();
      wakeups_saved_.add();
    }
    if (!pushed.full) {
      held_.add();
      return parley::Outcome::handled;
    }
    // Full: what was held goes now, then this one (not held: no stamp).
    flush(ev.session(), *s, Reason::full);
    return parley::Outcome::pass;
  }

  // ---- session life ----

  void on_detached(const parley::Event& ev) {
    if (auto* s = host().session_slot<CsiSlot>(ev.session())) flush(ev.session(), *s, Reason::detach);
  }

  void on_reattached(const parley::Event& ev) {
    auto* s = host().session_slot<CsiSlot>(ev.session());
    if (!s) return;
    // A new stream begins active (XEP-0352 section 5); the client says
    // <inactive/> again if it still is.
    if (s->inactive) {
      s->inactive = false;
      inactive_.add(-1);
    }
    flush(ev.session(), *s, Reason::detach);  // empty unless held after detaching (cannot happen)
    host().filter_out(ev.session(), false);
  }

  void on_closed(const parley::Event& ev) {
    auto* s = host().session_slot<CsiSlot>(ev.session());
    if (!s) return;
    if (s->inactive) {
      s->inactive = false;
      inactive_.add(-1);
    }
    if (s->held.empty()) return;
    std::vector<std::string> messages;
    for (csi::HeldBuffer::Entry& e : s->held.take()) {
      if (!e.key.empty()) {
        wakeups_saved_.add();  // a presence for a resource that is gone: never written
        continue;
      }
      auto stanza = released(*s, e);
      if (stanza && stanza->name() == "message") messages.push_back(stanza->serialize());
    }
    if (messages.empty()) return;
    // From a task of this loop: the session is still in the session table now.
    if (!parley::route_from_task(host(), std::move(messages), [this] { rerouted_.add(); }))
      host().warn("held messages of a closed session could not be routed again (shutting down)");
  }

  // ---- hot reload: "I" or "A", then the held buffer ----

  parley::Result<std::string, std::string> save_session_data(parley_session_id, const CsiSlot& s) {
    s.saved = true;  // the new code holds them now: the old slot's end sends nothing
    // Saved as released (with their <delay/>): the text the new code holds.
    return std::string(s.inactive ? "I" : "A") + s.held.save([&](const csi::HeldBuffer::Entry& e) {
      auto stanza = released(s, e);
      return stanza ? stanza->serialize() : e.xml.str();
    });
  }
  parley::Result<std::unique_ptr<CsiSlot>, std::string> restore_session_data(parley_session_id session,
                                                                             std::string_view bytes) {
    if (bytes.empty() || (bytes[0] != 'I' && bytes[0] != 'A'))
      return parley::unexpected(std::string("malformed mod_csi slot"));
    auto held = csi::HeldBuffer::restore(bytes.substr(1), limits_);
    if (!held) return parley::unexpected(std::string("malformed mod_csi held buffer"));
    auto s = std::make_unique<CsiSlot>(limits_, session, owner());
    s->inactive = bytes[0] == 'I';
    s->held = std::move(*held);
    if (s->inactive) inactive_.add(1);  // a reload starts the metrics at 0
    // The old code's filter went with its slot; held stanzas of an active
    // session (cannot happen) are released by the next flush all the same.
    if (s->inactive || !s->held.empty()) host().filter_out(session, true);
    return s;
  }

 private:
  parley::Metric metric(std::string_view name, parley_metric_kind kind, std::string_view help) {
    parley::Metric m = parley::register_metric(host(), name, kind, help);
    if (!m) host().warn("metric " + std::string(name) + " refused");
    return m;
  }

  SlotOwner owner() { return SlotOwner{this, alive_}; }

  // An urgent message for an inactive session: the client may be suspended
  // with its connection open (a phone app in the background), so whoever
  // wakes clients (a push module) hears of it through PARLEY_EVENT_WAKE_UP.
  // mod_csi does not know who listens; a host without the event refuses the
  // fold (-2) and nothing happens.
  void wake_up(const parley::Event& ev, parley::ElementView stanza) {
    if (stanza.name() != "message") return;
    parley::Element wake = host().element("wake", "urn:parley:wake:0");
    wake.set_attr("reason", "csi");
    wake.add_child("user", "urn:parley:wake:0").set_attr("jid", ev.user_bare());
    wake.add_child(stanza.clone());
    host().run_fold(PARLEY_EVENT_WAKE_UP, wake, ev.session());
  }

  CsiSlot& slot(parley_session_id session) {
    if (auto* s = host().session_slot<CsiSlot>(session)) return *s;
    if (auto* s = host().set_session_slot(session, std::make_unique<CsiSlot>(limits_, session, owner()))) return *s;
    // Not this loop's session (cannot happen from its own events): a scratch
    // slot that nothing reads again (and that sends nothing when it goes).
    thread_local CsiSlot scratch(csi::BufferLimits{}, 0, SlotOwner{});
    scratch = CsiSlot(limits_, 0, SlotOwner{});
    return scratch;
  }

  void client_traffic(parley_session_id session) {
    if (!flush_on_client_traffic_) return;
    if (auto* s = host().session_slot<CsiSlot>(session); s && !s->held.empty()) flush(session, *s, Reason::client);
  }

  // Sends what the slot holds, in order, through the filters after ours.
  void flush(parley_session_id session, CsiSlot& s, Reason reason) {
    flush_entries(session, s, reason);
  }

 public:
  // The slot's end (~CsiSlot).
  void release(CsiSlot& s) { flush_entries(s.session, s, Reason::unload); }

 private:
  void flush_entries(parley_session_id session, CsiSlot& s, Reason reason) {
    if (s.held.empty()) return;
    std::vector<csi::HeldBuffer::Entry> entries = s.held.take();
    flushes_.add();
    flush_reason_[static_cast<int>(reason)].add();
    for (csi::HeldBuffer::Entry& e : entries) {
      auto stanza = released(s, e);
      if (!stanza) {
        host().error("a held stanza did not parse again; dropped");
        continue;
      }
      // Each one goes with the flush's write: no wake-up of its own.
      wakeups_saved_.add();
      if (!host().session_send_after(session, std::move(*stanza)))
        host().debug("a held stanza was refused by its session (closing)");
    }
  }

  // A held stanza as it goes out: parsed again, with its <delay/> if it was
  // stamped when held.
  std::optional<parley::Element> released(const CsiSlot& s, const csi::HeldBuffer::Entry& e) const {
    auto stanza = host().parse(e.xml.str());
    if (stanza && !e.stamp.empty())
      stanza->add_child("delay", csi::ns_delay).set_attr("from", s.account).set_attr("stamp", e.stamp);
    return stanza;
  }

  // The bytes that <delay/> adds (counted against max_bytes while held).
  static std::size_t delay_bytes(std::string_view from, std::string_view stamp) {
    return std::string_view("<delay xmlns='urn:xmpp:delay' from='' stamp=''/>").size() + from.size() + stamp.size();
  }

  static std::vector<csi::ChildName> children_of(const parley::ElementView& e) {
    std::vector<csi::ChildName> out;
    for (parley::ElementView c : e.children()) out.push_back(csi::ChildName{c.name(), c.xmlns()});
    return out;
  }

  // The views in the shape borrow from `stanza`, which outlives it.
  static csi::StanzaShape shape_of(const parley::ElementView& stanza) {
    csi::StanzaShape shape;
    shape.name = stanza.name();
    shape.type = stanza.attr("type").value_or("");
    if (shape.name != "message") return shape;
    shape.children = children_of(stanza);
    // XEP-0280: <received/> or <sent/> carries the message in <forwarded/>.
    for (std::string_view wrapper : {"received", "sent"}) {
      auto carbon = stanza.child(wrapper, csi::ns_carbons);
      if (!carbon) continue;
      auto forwarded = carbon->child("forwarded", csi::ns_forward);
      auto inner = forwarded ? forwarded->child("message", csi::ns_client) : std::nullopt;
      if (!inner) continue;
      shape.forwarded = true;
      shape.forwarded_type = inner->attr("type").value_or("");
      shape.forwarded_children = children_of(*inner);
      break;
    }
    return shape;
  }

  csi::BufferLimits limits_;
  csi::Rules rules_;
  bool delay_stamp_ = true;
  bool flush_on_client_traffic_ = true;
  parley::Metric held_, superseded_, wakeups_saved_, flushes_, rerouted_, inactive_;
  parley::Metric flush_reason_[6];
  // False once this object is gone: a slot freed later (at shutdown) sends nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

 public:
  ~ModCsi() override { *alive_ = false; }
};

CsiSlot::~CsiSlot() {
  if (saved || held.empty() || owner.module == nullptr || !owner.alive || !*owner.alive) return;
  owner.module->release(*this);
}

}  // namespace

PARLEY_MODULE(ModCsi, "mod_csi", "1.0.0",
              parley::session_feature("<csi xmlns='urn:xmpp:csi:0'/>"),
              parley::option("max_stanzas", PARLEY_OPT_INT),
              parley::option("max_bytes", PARLEY_OPT_INT),
              parley::option("important_payloads", PARLEY_OPT_STRING_LIST),
              parley::option("delay_stamp", PARLEY_OPT_BOOL),
              parley::option("flush_on_client_traffic", PARLEY_OPT_BOOL),
              parley::hook<&ModCsi::on_nonza>(PARLEY_EVENT_NONZA_IN, 40),
              parley::hook<&ModCsi::on_stanza_in>(PARLEY_EVENT_STANZA_IN, 40),
              parley::hook<&ModCsi::on_out>(PARLEY_EVENT_STANZA_OUT, 40),
              parley::hook<&ModCsi::on_detached>(PARLEY_EVENT_SESSION_DETACHED),
              parley::hook<&ModCsi::on_reattached>(PARLEY_EVENT_SESSION_REATTACHED),
              parley::hook<&ModCsi::on_closed>(PARLEY_EVENT_SESSION_CLOSED))
