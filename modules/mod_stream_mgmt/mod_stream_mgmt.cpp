// mod_stream_mgmt: XEP-0198 Stream Management (urn:xmpp:sm:3) with resumption.
//
// Counting. h for the client (what the server handled) is the host's count of
// the stanzas the client sent (session_stanzas_in: every one, those the core
// refused before any hook included) since <enable/>. What the server sent is counted by an outgoing
// filter that runs after every other (priority 90): a filter that holds a
// stanza (client state indication) releases it later through the filters
// after its own, so this one sees exactly what is written, once. Each stanza
// it passes is kept, serialized with the time it was first written, until
// the client acknowledges it (<a h/>).
//
// Resumption. <enable resume='true'/> makes the session resumable; its SM-ID
// is "<session id>.<random token>". A connection lost without a closed
// stream keeps the session detached (SESSION_CLOSING) for the negotiated
// timeout. <resume previd h/> on a new authenticated stream, on any loop:
// the stream's input is held, the session's loop checks token, account and h
// (an unknown id, another account's or a bad token all get the same
// <failed><item-not-found/></failed>), then session_attach moves the
// connection there; on the session's loop <resumed/> is written, then the
// stanzas the client had not acknowledged, then what waited while detached
// (the core writes those through the filters: counted and kept as new).
//
// The end of a session (timeout, a closed stream, a replacing login, the ack
// queue over its bounds: policy-violation) routes every unacknowledged
// message again to the user's bare JID with a XEP-0203 stamp of when it was
// first written (another resource or offline storage takes it), bounces
// unacknowledged iq requests and drops the rest (presence, results, errors).
#include <chrono>
#include <memory>
#include <string>

#include "parley/module.hpp"
#include "sm_logic.hpp"

namespace {

namespace sm = parley::sm;
constexpr const char* ns_sm = "urn:xmpp:sm:3";
constexpr const char* ns_stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
constexpr const char* ns_delay = "urn:xmpp:delay";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct SmSlot {
  bool enabled = false;
  bool resumable = false;
  bool attaching = false;       // a resume of this session is under way
  bool resume_pending = false;  // (an unbound stream) its <resume/> is being checked
  bool over_limit = false;      // closing with policy-violation
  bool error_written = false;   // a stream error of this module's written: only the close follows
  std::string token;
  std::string bare;
  uint32_t in_base = 0;   // the host's count of the client's stanzas at <enable/>
  uint32_t out = 0;       // stanzas sent (sequence numbers), mod 2^32
  uint32_t acked = 0;     // the client's last h
  int64_t resume_seconds = 0;
  sm::UnackedQueue queue;
  uint32_t since_request = 0;
  uint64_t ack_timer = 0;
  uint64_t detach_timer = 0;
  uint64_t answer_timer = 0;
  sm::AnswerRate rate;
};

class ModStreamMgmt : public parley::Module {
 public:
  using SessionData = SmSlot;

  parley::Result<void, std::string> start() override {
    if (!host().supports(PARLEY_HOST_ENTRY_END(session_stanzas_in)))
      return parley::unexpected(std::string("needs a host with session_detach and session_stanzas_in"));
    auto opt = [&](const char* name, int64_t def, int64_t lo, int64_t hi) -> std::optional<int64_t> {
      int64_t v = host().option_int(name).value_or(def);
      if (v < lo || v > hi) return std::nullopt;
      return v;
    };
    struct {
      const char* name;
      int64_t def, lo, hi;
      int64_t* into;
    } table[] = {
        {"resume_timeout", 300, 1, 86400, &resume_timeout_},
        {"max_resume_timeout", 300, 1, 86400, &max_resume_timeout_},
        {"max_ack_queue", 5000, 1, 1000000, &max_ack_queue_},
        {"max_ack_queue_bytes", 8 << 20, 1024, int64_t{1} << 32, &max_ack_queue_bytes_},
        {"ack_request_stanzas", 5, 1, 1000000, &ack_request_stanzas_},
        {"ack_request_seconds", 5, 0, 3600, &ack_request_seconds_},
        {"max_ack_answers_per_second", 10, 1, 10000, &max_answers_},
    };
    for (auto& o : table) {
      auto v = opt(o.name, o.def, o.lo, o.hi);
      if (!v) return parley::unexpected(std::string(o.name) + " must be from " + std::to_string(o.lo) + " to " +
                                        std::to_string(o.hi));
      *o.into = *v;
    }
    if (resume_timeout_ > max_resume_timeout_) resume_timeout_ = max_resume_timeout_;
    domain_ = host().module_host();
    location_ = host().option_string("location").value_or("");
    if (location_.size() > 1023 || location_.find_first_of(" \t\r\n<>&'\"") != std::string::npos)
      return parley::unexpected(std::string("location must be a host:port without spaces or markup"));
    ended_.init(host());
    // The counting filter runs only for the sessions that sent <enable/>: the
    // others are written without it (a host without hook_mode runs it for
    // every session, as before; it passes at once for those).
    host().hook_mode(PARLEY_EVENT_STANZA_OUT, PARLEY_HOOKS_PER_SESSION);
    return {};
  }

  // ---- counting ----

  parley::Outcome on_stanza_out(const parley::Event& ev) {
    SmSlot* s = host().session_slot<SmSlot>(ev.session());
    auto stanza = ev.stanza();
    if (!s || !s->enabled || !stanza) return parley::Outcome::pass;
    parley_session_id session = ev.session();
    // What is written, kept: a room's broadcast as a reference to its one
    // serialization (this filter runs last: nothing changes it after us).
    s->queue.push(parley::stanza_out_bytes(host(), *stanza), now_ms());
    ++s->out;
    if (s->over_limit) return parley::Outcome::handled;  // kept, routed again when the close comes
    if (s->queue.size() > static_cast<size_t>(max_ack_queue_) ||
        s->queue.bytes() > static_cast<size_t>(max_ack_queue_bytes_)) {
      // Not written: it is in the queue, handled with the rest at the close.
      s->over_limit = true;
      host().counter_add("ack_queue_overflows");
      parley::post_to_session(host(), session, [this, session] { host().session_close(session, "policy-violation"); });
      return parley::Outcome::handled;
    }
    if (++s->since_request >= static_cast<uint32_t>(ack_request_stanzas_)) {
      s->since_request = 0;
      // After this stanza is written: the request covers it.
      parley::post_to_session(host(), session, [this, session] { request_ack(session); });
    }
    arm_ack_timer(session, *s);
    return parley::Outcome::pass;
  }

  // ---- nonzas ----

  parley::Outcome on_nonza(const parley::Event& ev) {
    auto nonza = ev.stanza();
    if (!nonza || nonza->xmlns() != ns_sm) return parley::Outcome::pass;
    std::string_view name = nonza->name();
    parley_session_id session = ev.session();
    auto state = host().session_state(session);
    SmSlot* s = host().session_slot<SmSlot>(session);
    if (name == "enable") {
      if (s && s->enabled) {
        // A second time, a resumed stream's included (XEP-0198 §3: "If a
        // server receives a second <enable/> element it SHOULD respond with a
        // stream error, thus terminating the client connection"). <failed/>
        // first: an <enable/> is answered <enabled/> or <failed/> (§3, MUST).
        write(session, failed("unexpected-request"));
        host().session_close(session, "policy-violation");
        return parley::Outcome::handled;
      }
      if (state != parley::Host::SessionState::bound) {
        // Before binding (XEP-0198 §3: the server MAY enforce the order).
        write(session, failed("unexpected-request"));
        return parley::Outcome::handled;
      }
      enable(session, ev.jid(), *nonza);
    } else if (name == "resume") {
      if (state != parley::Host::SessionState::unbound || (s && s->resume_pending)) {
        write(session, failed("unexpected-request"));
        return parley::Outcome::handled;
      }
      resume(session, ev.jid(), nonza->attr("previd").value_or(""), nonza->attr("h"));
    } else if (name == "r") {
      if (!s || !s->enabled) return parley::Outcome::pass;
      answer_r(session, *s);
    } else if (name == "a") {
      if (!s || !s->enabled) return parley::Outcome::pass;
      auto h = sm::parse_h(nonza->attr("h").value_or(""));
      if (!h) {
        host().session_close(session, "bad-format");
        return parley::Outcome::handled;
      }
      if (!acknowledge(session, *s, *h)) close_handled_count_too_high(session, *h, s->out);
    } else {
      return parley::Outcome::pass;
    }
    return parley::Outcome::handled;
  }

  // ---- session life ----

  parley::Outcome on_closing(const parley::Event& ev) {
    SmSlot* s = host().session_slot<SmSlot>(ev.session());
    return s && s->resumable && !s->over_limit ? parley::Outcome::handled : parley::Outcome::pass;
  }

  // XEP-0198 section 4: before the server closes the stream gracefully, an <a/> with
  // the stanzas handled, so that the client need not send again what arrived (ABI
  // 1.12; an older host does not raise it, and the close goes without).
  void on_stream_closing(const parley::Event& ev) {
    SmSlot* s = host().session_slot<SmSlot>(ev.session());
    if (s && s->enabled && !s->error_written) write_a(ev.session(), *s);
  }

  void on_detached(const parley::Event& ev) {
    SmSlot* s = host().session_slot<SmSlot>(ev.session());
    if (!s) return;
    cancel(s->ack_timer);
    cancel(s->answer_timer);
    host().counter_add("detached");
    arm_detach_timer(ev.session(), *s, std::chrono::seconds(s->resume_seconds));
  }

  void on_reattached(const parley::Event& ev) {
    if (SmSlot* s = host().session_slot<SmSlot>(ev.session())) cancel(s->detach_timer);
  }

  void on_closed(const parley::Event& ev) {
    SmSlot* s = host().session_slot<SmSlot>(ev.session());
    if (!s) return;
    cancel(s->ack_timer);
    cancel(s->detach_timer);
    cancel(s->answer_timer);
    if (s->resumable) remember_ended(ev.session(), *s);
    if (s->queue.empty()) return;
    auto unacked = std::make_shared<std::deque<sm::Unacked>>(s->queue.take());
    std::string bare = s->bare;
    // After the session left the session table (the core does that once the
    // CLOSED hooks ran): routed to the bare JID now, it cannot come back here.
    int32_t loop = parley::current_loop(host());
    parley::post(host(), static_cast<uint32_t>(loop), [this, unacked, bare] { route_again(*unacked, bare); });
  }

  // ---- hot reload ----

  parley::Result<std::string, std::string> save_session_data(parley_session_id, const SmSlot& s) {
    if (!s.enabled) return std::string();
    sm::Saved saved;
    saved.resumable = s.resumable;
    saved.token = s.token;
    saved.bare = s.bare;
    saved.in_base = s.in_base;
    saved.out = s.out;
    saved.acked = s.acked;
    saved.resume_seconds = s.resume_seconds;
    for (const sm::Unacked& u : s.queue.items()) saved.queue.push_back(sm::Unacked{parley::OutBytes(u.xml.str()), u.stamp_ms});
    return sm::encode(saved);
  }
  parley::Result<std::unique_ptr<SmSlot>, std::string> restore_session_data(parley_session_id session,
                                                                            std::string_view bytes) {
    auto saved = sm::decode(bytes);
    if (!saved) return parley::unexpected(std::string("malformed stream management state"));
    auto s = std::make_unique<SmSlot>();
    s->enabled = true;
    s->resumable = saved->resumable;
    s->token = std::move(saved->token);
    s->bare = std::move(saved->bare);
    s->in_base = saved->in_base;
    s->out = saved->out;
    s->acked = saved->acked;
    s->resume_seconds = saved->resume_seconds;
    for (auto& u : saved->queue) s->queue.push(std::move(u.xml), u.stamp_ms);
    host().filter_out(session, true);  // the old code's went with its slot
    return s;
  }

 private:
  void enable(parley_session_id session, std::string_view jid, const parley::ElementRef& nonza) {
    SmSlot* s = slot(session);
    if (!s) return;
    s->enabled = true;
    host().filter_out(session, true);  // from here what is written is counted
    s->in_base = host().session_stanzas_in(session);
    s->bare = std::string(parley::bare_jid(jid));
    parley::Element enabled = host().element("enabled", ns_sm);
    std::string_view resume = nonza.attr("resume").value_or("");
    if (resume == "true" || resume == "1") {
      int64_t seconds = resume_timeout_;
      if (auto wanted = sm::parse_u64(nonza.attr("max").value_or("")); wanted && *wanted > 0)
        seconds = static_cast<int64_t>(std::min<uint64_t>(*wanted, static_cast<uint64_t>(max_resume_timeout_)));
      s->resumable = true;
      s->resume_seconds = seconds;
      s->token = sm::random_token();
      enabled.set_attr("id", sm::make_sm_id(session, s->token));
      enabled.set_attr("resume", "true");
      enabled.set_attr("max", std::to_string(seconds));
      // XEP-0198 §5: where the client should reconnect to resume (a
      // configured "host:port" or "[ipv6]:port"; none: the same server).
      if (!location_.empty()) enabled.set_attr("location", location_);
    }
    host().counter_add("enabled");
    write(session, enabled);
  }

  // On the stream's loop: hold its input, check on the session's loop, come
  // back to attach.
  void resume(parley_session_id stream, std::string_view jid, std::string_view previd_text,
              std::optional<std::string_view> h_text) {
    std::string previd(previd_text);
    auto id = sm::parse_sm_id(previd_text);
    auto h = h_text ? sm::parse_h(*h_text) : std::optional<uint32_t>();
    if (!h) {
      write(stream, failed("bad-request"));
      return;
    }
    if (!id) {
      write(stream, failed("item-not-found"));
      return;
    }
    SmSlot* own = slot(stream);
    if (!own || !host().hold_session(stream)) {
      write(stream, failed("internal-server-error"));
      return;
    }
    own->resume_pending = true;
    std::string bare(parley::bare_jid(jid));
    uint32_t stream_loop = static_cast<uint32_t>(parley::current_loop(host()));
    uint32_t hv = *h;
    sm::SmId target = *id;
    bool posted = parley::post_to_session(host(), target.session, [this, target, bare, hv, stream, stream_loop,
                                                                    previd] {
      Check check = check_resumable(target, bare, hv);
      parley::post(host(), stream_loop, [this, check, target, stream, previd] {
        if (check.condition.empty()) attach(stream, target.session, previd);
        else refuse(stream, check);
      });
    });
    if (!posted) {
      // No such session any more: its h if it ended recently and was this account's.
      refuse(stream, Check{"item-not-found", ended_.here().find(target.session, target.token, bare, steady_ms())});
    }
  }

  struct TooHigh {
    uint32_t h;           // the client's
    uint32_t send_count;  // what the server sent
  };
  struct Check {
    std::string condition;      // empty: resumable, reserved (attaching)
    std::optional<uint32_t> h;  // for <failed h=/>, when the session is known
    std::optional<TooHigh> too_high = std::nullopt;  // the client's h acknowledges more than was sent
  };

  // On the session's loop.
  Check check_resumable(const sm::SmId& id, const std::string& bare, uint32_t h) {
    SmSlot* s = host().session_slot<SmSlot>(id.session);
    if (!s) {
      // Ended (timed out, replaced, closed): its h if it was this account's.
      return {"item-not-found", ended_.here().find(id.session, id.token, bare, steady_ms())};
    }
    // One answer for "no such session", "another account's", "a bad token":
    // nothing tells them apart, and nothing of the session is shown.
    if ( !s->resumable || s->over_limit || s->attaching || s->bare != bare || !sm::same_token(s->token, id.token))
      return {"item-not-found", std::nullopt};
    // The client's h checked before anything changes: an ack of more than
    // was sent (XEP-0198 handled-count-too-high) resumes nothing.
    auto acked = sm::newly_acked(s->acked, h, s->queue.size());
    if (!acked) return {"undefined-condition", handled(id.session, *s), TooHigh{h, s->out}};
    auto state = host().session_state(id.session);
    if (state == parley::Host::SessionState::bound) {
      // The old connection is still open (XEP-0198 §5: it SHOULD be
      // terminated): it ends with a stream error, the session stays detached
      // for this stream to take.
      if (!host().session_detach(id.session, "conflict")) return {"item-not-found", std::nullopt};
      host().counter_add("resume_replaced_connection");
    } else if (state != parley::Host::SessionState::detached) {
      return {"item-not-found", std::nullopt};
    }
    // What the client handled is settled now, whatever becomes of the attach.
    s->queue.pop(*acked);
    s->acked = h;
    s->attaching = true;
    return {"", std::nullopt};
  }

  void refuse(parley_session_id stream, const Check& check) {
    if (SmSlot* own = host().session_slot<SmSlot>(stream)) own->resume_pending = false;
    host().release_session(stream);
    host().counter_add("resume_failed");
    parley::Element f = failed(check.condition);
    if (check.h) f.set_attr("h", std::to_string(*check.h));
    write(stream, f);
    // <failed/> answers the <resume/> (XEP-0198 §6: MUST); an h of more than
    // was sent then ends the stream as it would in an <a/> (§6: SHOULD). The
    // session stays detached and resumable: a client that counts right may
    // still take it.
    if (check.too_high) close_handled_count_too_high(stream, check.too_high->h, check.too_high->send_count);
  }

  // XEP-0198 §6: the peer acknowledged more stanzas than it was sent: the
  // stream error undefined-condition with <handled-count-too-high/> (which
  // session_close cannot carry: written here, then a plain close).
  void close_handled_count_too_high(parley_session_id session, uint32_t h, uint32_t send_count) {
    host().counter_add("handled_count_too_high");
    parley::Element error = host().element("error", "http://etherx.jabber.org/streams");
    error.add_child("undefined-condition", "urn:ietf:params:xml:ns:xmpp-streams");
    error.add_child("handled-count-too-high", ns_sm)
        .set_attr("h", std::to_string(h))
        .set_attr("send-count", std::to_string(send_count));
    error.add_child("text", "urn:ietf:params:xml:ns:xmpp-streams")
        .add_text("You acknowledged " + std::to_string(h) + " stanzas, but I only sent you " +
                  std::to_string(send_count) + " so far.");
    write(session, error);
    // RFC 6120 4.9.1.1: nothing but the close after a stream error (no last <a/>).
    if (SmSlot* s = host().session_slot<SmSlot>(session)) s->error_written = true;
    host().session_close(session);
  }

  // On the stream's loop, the session reserved.
  void attach(parley_session_id stream, parley_session_id session, const std::string& previd) {
    auto unreserve = [this, session] {
      parley::post_to_session(host(), session, [this, session] {
        if (SmSlot* s = host().session_slot<SmSlot>(session)) s->attaching = false;
      });
    };
    bool started = host().session_attach(session, stream, [this, session, previd, unreserve](
                                                               parley_session_id which, bool attached) {
      if (!attached) {
        unreserve();
        // `which` is the stream (on this loop, or gone).
        host().counter_add("resume_failed");
        write(which, failed("item-not-found"));
        return;
      }
      resumed(session, previd);
    });
    // The input stays held by the attach until it is done; the module's own
    // hold goes now (an attach under way keeps the stream from reading).
    host().release_session(stream);
    if (!started) {
      unreserve();
      if (SmSlot* own = host().session_slot<SmSlot>(stream)) own->resume_pending = false;
      write(stream, failed("item-not-found"));
    }
  }

  // On the session's loop, attached: before what waited is written.
  void resumed(parley_session_id session, const std::string& previd) {
    SmSlot* s = host().session_slot<SmSlot>(session);
    if (!s) return;
    s->attaching = false;
    host().counter_add("resumed");
    parley::Element answer = host().element("resumed", ns_sm);
    answer.set_attr("previd", previd).set_attr("h", std::to_string(handled(session, *s)));
    write(session, answer);
    // The client's h was applied before the attach: these are what it lacks.
    // Sent again, a message or presence says when it was first sent (XEP-0198
    // since 1.5.2: a re-sent stanza keeps its original time in a XEP-0203
    // <delay/>; Prosody's mod_smacks does the same). The queue keeps them
    // unstamped: a later resume stamps them again with the same time.
    for (const sm::Unacked& u : s->queue.items()) {
      auto stanza = host().parse(u.xml.str());
      if (!stanza) continue;
      if (stanza->name() == "message" || stanza->name() == "presence") stamp_delay(*stanza, u.stamp_ms);
      write(session, *stanza);
    }
    if (!s->queue.empty()) request_ack(session);
  }

  bool acknowledge(parley_session_id session, SmSlot& s, uint32_t h) {
    auto n = sm::newly_acked(s.acked, h, s.queue.size());
    if (!n) return false;
    s.queue.pop(*n);
    s.acked = h;
    if (s.queue.empty()) {
      cancel(s.ack_timer);
      s.since_request = 0;
    } else {
      arm_ack_timer(session, s);
    }
    return true;
  }

  void answer_r(parley_session_id session, SmSlot& s) {
    if (s.rate.allow(steady_ms(), static_cast<uint32_t>(max_answers_))) {
      write_a(session, s);
      return;
    }
    // Over the rate: one answer at the window's end, with h as it is then.
    host().counter_add("ack_requests_coalesced");
    if (s.answer_timer != 0) return;
    int64_t wait = std::max<int64_t>(1, s.rate.window_end_ms() - steady_ms());
    s.answer_timer = host().start_timer(std::chrono::milliseconds(wait), [this, session] {
      SmSlot* t = host().session_slot<SmSlot>(session);
      if (!t) return;
      t->answer_timer = 0;
      t->rate.allow(steady_ms(), static_cast<uint32_t>(max_answers_));
      write_a(session, *t);
    });
  }

  void write_a(parley_session_id session, const SmSlot& s) {
    parley::Element a = host().element("a", ns_sm);
    a.set_attr("h", std::to_string(handled(session, s)));
    write(session, a);
  }

  void request_ack(parley_session_id session) {
    SmSlot* s = host().session_slot<SmSlot>(session);
    if (!s || s->queue.empty() || host().session_state(session) != parley::Host::SessionState::bound) return;
    write(session, host().element("r", ns_sm));
  }

  void arm_ack_timer(parley_session_id session, SmSlot& s) {
    if (ack_request_seconds_ == 0 || s.ack_timer != 0 || s.queue.empty()) return;
    s.ack_timer = host().start_timer(std::chrono::seconds(ack_request_seconds_), [this, session] {
      SmSlot* t = host().session_slot<SmSlot>(session);
      if (!t) return;
      t->ack_timer = 0;
      t->since_request = 0;
      request_ack(session);
    });
  }

  void arm_detach_timer(parley_session_id session, SmSlot& s, std::chrono::milliseconds delay) {
    cancel(s.detach_timer);
    s.detach_timer = host().start_timer(delay, [this, session] {
      SmSlot* t = host().session_slot<SmSlot>(session);
      if (!t) return;
      t->detach_timer = 0;
      if (t->attaching) {
        // A resume is on its way: it decides; checked again shortly.
        arm_detach_timer(session, *t, std::chrono::seconds(1));
        return;
      }
      host().counter_add("resume_timeouts");
      host().session_close(session);
    });
  }

  // A XEP-0203 <delay/> from this server with the time the stanza was first
  // written, unless it has one from this server already (offline storage's,
  // client state indication's: of an earlier, truer time).
  void stamp_delay(parley::Element& stanza, int64_t stamp_ms) {
    for (parley::ElementRef child : stanza.children())
      if (child.name() == "delay" && child.xmlns() == ns_delay && child.attr("from") == domain_) return;
    stanza.add_child("delay", ns_delay).set_attr("from", domain_).set_attr("stamp", sm::delay_stamp(stamp_ms));
  }

  // The session is gone: its unacknowledged messages go to the account again.
  void route_again(std::deque<sm::Unacked>& unacked, const std::string& bare) {
    for (sm::Unacked& u : unacked) {
      auto stanza = host().parse(u.xml.str());
      if (!stanza) continue;
      std::string_view name = stanza->name();
      std::string type(stanza->attr("type").value_or(""));
      if (name == "message") {
        if (type == "error") continue;  // never answered, never bounced (no loops)
        stamp_delay(*stanza, u.stamp_ms);
        stanza->set_attr("to", bare);
        host().counter_add("rerouted");
        host().route(std::move(*stanza));
      } else if (name == "iq" && (type == "get" || type == "set")) {
        host().bounce(*stanza, "service-unavailable");
      }
      // Presence, iq results and errors: the state they carried is gone with the session.
    }
  }

  // Every loop keeps its copy (a <resume/> may arrive on any): this one now,
  // the others by a post.
  void remember_ended(parley_session_id session, const SmSlot& s) {
    uint32_t h = handled(session, s);
    int32_t here = parley::current_loop(host());
    for (uint32_t loop = 0; loop < parley::loop_count(host()); ++loop) {
      if (static_cast<int32_t>(loop) == here) {
        ended_.here().add(session, s.token, s.bare, h, steady_ms());
        continue;
      }
      parley::post(host(), loop, [this, session, token = s.token, bare = s.bare, h] {
        ended_.here().add(session, token, bare, h, steady_ms());
      });
    }
  }

  uint32_t handled(parley_session_id session, const SmSlot& s) const {
    return sm::handled_since(host().session_stanzas_in(session), s.in_base);
  }

  SmSlot* slot(parley_session_id session) {
    if (auto* s = host().session_slot<SmSlot>(session)) return s;
    return host().set_session_slot(session, std::make_unique<SmSlot>());
  }
  void cancel(uint64_t& timer) {
    if (timer != 0) host().cancel_timer(timer);
    timer = 0;
  }
  parley::Element failed(std::string_view condition) const {
    parley::Element f = host().element("failed", ns_sm);
    f.add_child(condition, ns_stanzas);
    return f;
  }
  void write(parley_session_id session, const parley::ElementView& element) const {
    if (!host().session_write(session, element)) host().debug("session_write refused");
  }

  int64_t resume_timeout_ = 300, max_resume_timeout_ = 300, max_ack_queue_ = 5000, max_ack_queue_bytes_ = 8 << 20,
          ack_request_stanzas_ = 5, ack_request_seconds_ = 5, max_answers_ = 10;
  std::string domain_;
  std::string location_;  // XEP-0198 <enabled location=/> (option; empty: none)
  parley::PerLoop<sm::EndedSessions> ended_;  // each loop's, touched only there
};

}  // namespace

PARLEY_MODULE(ModStreamMgmt, "mod_stream_mgmt", "1.0.0",
              parley::hook<&ModStreamMgmt::on_stanza_out>(PARLEY_EVENT_STANZA_OUT, 90),
              parley::hook<&ModStreamMgmt::on_nonza>(PARLEY_EVENT_NONZA_IN),
              parley::hook<&ModStreamMgmt::on_closing>(PARLEY_EVENT_SESSION_CLOSING),
              parley::hook<&ModStreamMgmt::on_detached>(PARLEY_EVENT_SESSION_DETACHED),
              parley::hook<&ModStreamMgmt::on_reattached>(PARLEY_EVENT_SESSION_REATTACHED),
              parley::hook<&ModStreamMgmt::on_closed>(PARLEY_EVENT_SESSION_CLOSED),
              parley::hook<&ModStreamMgmt::on_stream_closing>(PARLEY_EVENT_STREAM_CLOSING),
              parley::option("location", PARLEY_OPT_STRING),
              parley::option("resume_timeout", PARLEY_OPT_INT), parley::option("max_resume_timeout", PARLEY_OPT_INT),
              parley::option("max_ack_queue", PARLEY_OPT_INT), parley::option("max_ack_queue_bytes", PARLEY_OPT_INT),
              parley::option("ack_request_stanzas", PARLEY_OPT_INT),
              parley::option("ack_request_seconds", PARLEY_OPT_INT),
              parley::option("max_ack_answers_per_second", PARLEY_OPT_INT),
              parley::session_feature("<sm xmlns='urn:xmpp:sm:3'/>"))
