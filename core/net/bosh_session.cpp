// BOSH sessions: creation, the rid order, holding requests, answering them
// with what the stream wrote, the timers (wait, inactivity) and termination.
// The HTTP side is in http_transport_bosh.cpp.
#include "core/net/bosh_session.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "core/addr/prep.hpp"
#include "core/c2s/c2s_stream.hpp"
#include "core/net/bosh_table.hpp"
#include "core/net/connection.hpp"
#include "core/sasl/crypto.hpp"
#include "core/server/server_context.hpp"
#include "core/session/session.hpp"
#include "xml/serializer.hpp"

namespace parley {

namespace {

// The highest BOSH version spoken here (XEP-0124 1.11).
constexpr unsigned kVerMajor = 1, kVerMinor = 11;

// XEP-0124 §9.3: an answer not acknowledged this long (ms) after it was sent
// is taken as lost, when a later request's ack shows the client lacks it
// (sooner, a request and the answer cross normally).
constexpr uint64_t kReportAfterMs = 1000;

std::string attr_text(std::string_view v) {
  std::string out;
  xml::escape_attr_to(out, v);
  return out;
}

// The loop a sid names ("LOOP-random"), or -1.
long sid_loop(std::string_view sid, size_t loops) {
  size_t dash = sid.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash > 4) return -1;
  auto n = bosh::parse_uint(sid.substr(0, dash), 9999);
  if (!n || *n >= loops) return -1;
  return static_cast<long>(*n);
}

std::string make_sid(unsigned loop) {
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string raw = sasl::random_bytes(24);
  std::string sid = std::to_string(loop) + "-";
  for (unsigned char c : raw) sid.push_back(digits[c % 36]);
  return sid;
}

std::string hex_of(std::string_view raw) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

// A content type we may put in a header: printable ASCII only.
bool plausible_content_type(std::string_view s) {
  if (s.size() > 128) return false;
  for (char c : s)
    if (c < ' ' || c > '~') return false;
  return true;
}

int legacy_status(std::string_view condition) {
  if (condition == "bad-request") return 400;
  if (condition == "policy-violation") return 403;
  if (condition == "item-not-found") return 404;
  return 200;
}

// An answer without a session (a bad body, an unknown sid, a refused creation).
BoshAnswer sessionless_error(std::string_view condition, bool legacy) {
  BoshAnswer a;
  if (legacy && legacy_status(condition) != 200) {
    a.status = legacy_status(condition);
    a.content_type = "text/plain; charset=utf-8";
    a.body = std::string(condition) + "\n";
    return a;
  }
  a.body = "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' condition='" + std::string(condition) +
           "'/>";
  return a;
}

void create_session(ServerContext& ctx, LoopContext& here, const config::Listener& listener, bosh::Body&& body,
            BoshReply reply, bool secure, const std::string& peer_ip) {
  const config::LimitsConfig& limits = ctx.config.limits;
  BoshParams p;
  p.legacy = !body.has("ver");
  auto fail = [&](std::string_view condition) { bosh_answer(ctx, reply, sessionless_error(condition, p.legacy)); };
  auto rid = bosh::parse_rid(body.attr("rid"));
  if (!rid) return fail("bad-request");
  p.first_rid = *rid;
  std::string_view content = body.attr("content");
  if (!plausible_content_type(content)) return fail("bad-request");
  p.content_type = content.empty() ? "text/xml; charset=utf-8" : std::string(content);
  std::string_view to = body.attr("to");
  if (to.empty()) return fail("improper-addressing");
  auto domain = nameprep_domain(to);
  if (!domain || !ctx.is_local_host(*domain)) return fail("host-unknown");
  p.host = *domain;
  p.wait = limits.bosh_max_wait;
  if (body.has("wait")) {
    auto w = bosh::parse_uint(body.attr("wait"), UINT32_MAX);
    if (!w) return fail("bad-request");
    p.wait = static_cast<unsigned>(std::min<uint64_t>(*w, limits.bosh_max_wait));
  }
  p.hold = std::min(1u, limits.bosh_max_hold);
  if (body.has("hold")) {
    auto h = bosh::parse_uint(body.attr("hold"), UINT32_MAX);
    if (!h) return fail("bad-request");
    p.hold = static_cast<unsigned>(std::min<uint64_t>(*h, limits.bosh_max_hold));
  }
  p.requests = p.hold + 1;  // XEP-0124 §7.1's recommendation
  p.inactivity = limits.bosh_inactivity;
  p.maxpause = limits.bosh_max_pause;
  p.polling = limits.bosh_polling;
  unsigned major = kVerMajor, minor = kVerMinor;
  if (!p.legacy) {
    auto v = bosh::parse_version(body.attr("ver"));
    if (!v) return fail("bad-request");
    if (v->first < major || (v->first == major && v->second < minor)) std::tie(major, minor) = *v;
  }
  p.ver = std::to_string(major) + "." + std::to_string(minor);
  p.ack = body.attr("ack") == "1";
  p.key = std::string(body.attr("newkey"));
  p.lang = body.has("xml:lang") ? std::string(body.attr("xml:lang")) : "en";
  p.secure = secure;
  p.peer_ip = peer_ip;
  size_t per_ip = limits.bosh_max_sessions_per_ip;
  if (per_ip != 0 && !ctx.bosh_sessions.try_add(peer_ip, per_ip)) {
    spdlog::info("bosh: refusing a session from {}: bosh_max_sessions_per_ip", peer_ip);
    return fail("policy-violation");
  }
  p.sid = make_sid(here.loop.index());

  SessionId id = here.new_session_id();
  auto session = std::make_unique<Session>(ctx, here, id);
  Session* raw = session.get();
  here.sessions.emplace(id, std::move(session));
  raw->adopt_stream(std::make_unique<C2sStream>(ctx, here, *raw, listener));
  C2sStream* stream = raw->stream();
  p.counted = per_ip != 0;
  BoshSession* bosh = stream->start_bosh(std::move(p));
  if (bosh != nullptr)
    bosh->start(reply);
  else
    bosh_answer(ctx, reply, sessionless_error("internal-server-error", false));
}

}  // namespace

thread_local std::unordered_map<std::string, BoshSession*> bosh_table::sessions;

BoshAnswer bosh_table::terminal(std::string_view condition, bool legacy) { return sessionless_error(condition, legacy); }

void BoshSession::handle(ServerContext& ctx, LoopContext& here, const config::Listener& listener,
                         std::string_view bytes, BoshReply reply, bool secure, const std::string& peer_ip) {
  auto body = bosh::parse_body(bytes, ctx.xml_limits);
  if (!body) {
    spdlog::debug("bosh: bad request body from {}: {}", peer_ip, body.error());
    bosh_answer(ctx, reply, sessionless_error("bad-request", false));
    return;
  }
  std::string sid(body->attr("sid"));
  if (sid.empty()) {
    create_session(ctx, here, listener, std::move(*body), reply, secure, peer_ip);
    return;
  }
  auto rid = bosh::parse_rid(body->attr("rid"));
  if (!rid) {
    bosh_answer(ctx, reply, sessionless_error("bad-request", false));
    return;
  }
  long loop = sid_loop(sid, ctx.loops.size());
  if (loop < 0) {
    bosh_answer(ctx, reply, sessionless_error("item-not-found", false));
    return;
  }
  auto r = std::make_shared<BoshRequest>(BoshRequest{std::move(*body), *rid, reply, secure});
  if (static_cast<unsigned>(loop) == here.loop.index())
    bosh_table::route(ctx, std::move(r), sid, 0);
  else
    ctx.loops[static_cast<size_t>(loop)]->loop.post(
        [&ctx, r, sid = std::move(sid)]() mutable { bosh_table::route(ctx, std::move(r), sid, 0); });
}

BoshSession::BoshSession(ServerContext& ctx, Connection& conn, ConnectionOwner& owner, BoshParams params)
    : ctx_(ctx),
      conn_(conn),
      owner_(owner),
      p_(std::move(params)),
      rids_(p_.first_rid, p_.requests + 1, std::max(2u, p_.requests + 1)),
      inactivity_(p_.inactivity),
      counted_(p_.counted) {}

BoshSession::~BoshSession() {
  // Answers are posted to other loops: not while the server stops.
  if (!terminated_ && !ctx_.shutting_down.load()) finish("remote-connection-failed");
  auto it = bosh_table::sessions.find(p_.sid);
  if (it != bosh_table::sessions.end() && it->second == this) bosh_table::sessions.erase(it);
  // The loops it moved away from forget it: its sid is item-not-found now.
  if (!ctx_.shutting_down.load()) bosh_table::forget_forwards(ctx_, p_.sid, forwarders_);
  if (counted_) ctx_.bosh_sessions.remove(p_.peer_ip);
  if (timer_ != nullptr) {
    auto* h = reinterpret_cast<uv_handle_t*>(timer_);
    if (uv_is_closing(h)) {
      delete timer_;  // closed by the loop's stop
    } else {
      h->data = nullptr;
      uv_close(h, [](uv_handle_t* handle) { delete reinterpret_cast<uv_timer_t*>(handle); });
    }
  }
}

uint64_t BoshSession::now_ms() const { return uv_now(conn_.loop().loop.uv()); }

void BoshSession::start(BoshReply reply) {
  bosh_table::sessions[p_.sid] = this;
  spdlog::debug("c2s {}: BOSH session {} from {} (wait {}, hold {})", conn_.log_id(), p_.sid, p_.peer_ip, p_.wait,
                p_.hold);
  last_arrival_ms_ = now_ms();
  held_.push_back(Held{p_.first_rid, reply, now_ms() + uint64_t{p_.wait} * 1000, false});
  std::string header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" +
                       attr_text(p_.host) + "' version='1.0' xml:lang='" + attr_text(p_.lang) + "'>";
  input_.push_back(std::move(header));
  pump();
  if (!terminated_) flush();
}

void BoshSession::resume() {
  if (resume_posted_ || terminated_ || input_.empty()) return;
  resume_posted_ = true;
  std::string sid = p_.sid;
  conn_.loop().loop.post([sid] {
    auto it = bosh_table::sessions.find(sid);
    if (it == bosh_table::sessions.end()) return;
    BoshSession* self = it->second;
    self->resume_posted_ = false;
    self->pump();
    if (!self->terminated_) self->flush();
  });
}

void BoshSession::pump() {
  if (pumping_) return;
  pumping_ = true;
  while (!input_.empty() && !terminated_ && !conn_.closing() && !conn_.reading_suspended_ && !conn_.throttled_) {
    std::string bytes = std::move(input_.front());
    input_.pop_front();
    owner_.on_connection_bytes(bytes);
  }
  pumping_ = false;
}

void BoshSession::request(BoshRequest&& r) {
  if (terminated_) {
    bosh_answer(ctx_, r.reply, sessionless_error("item-not-found", false));
    return;
  }
  // XEP-0124 §20.1: a secure session's requests come over TLS; another is
  // closed, the session goes on (a third party cannot end it).
  if (p_.secure && !r.secure) {
    BoshAnswer cut;
    cut.cut = true;
    bosh_answer(ctx_, r.reply, std::move(cut));
    return;
  }
  uint64_t now = now_ms();
  if (r.body.has("ack")) {
    if (auto ack = bosh::parse_uint(r.body.attr("ack"), UINT64_MAX)) {
      // §9.3: an ack below an answer sent a while ago says that answer was
      // lost: the next answer goes at once and reports it (the client may
      // send that rid again: its answer is kept, as it is not acknowledged).
      if (p_.ack && *ack < UINT64_MAX) {
        if (auto sent = rids_.sent_at(*ack + 1); sent && now >= *sent + kReportAfterMs) {
          report_rid_ = *ack + 1;
          report_ms_ = now - *sent;
        }
      }
      rids_.acknowledged(*ack);
    }
  }
  uint64_t rid = r.rid;
  BoshReply reply = r.reply;
  std::optional<BoshRequest> displaced;
  auto held = [&](uint64_t x) {
    return std::any_of(held_.begin(), held_.end(), [x](const Held& h) { return h.rid == x; });
  };
  switch (rids_.admit(rid, std::move(r), held, displaced)) {
    case bosh::Admit::replay: {
      // A repeat of an answered request (its answer was lost): the same answer.
      BoshAnswer again;
      again.body = *rids_.answer(rid);
      again.content_type = p_.content_type;
      bosh_answer(ctx_, reply, std::move(again));
      return;
    }
    case bosh::Admit::repeat_held:
      // The client sent it again (its connection broke): the answer goes to
      // the new copy, the old connection closes.
      for (Held& h : held_) {
        if (h.rid != rid) continue;
        BoshAnswer cut;
        cut.cut = true;
        bosh_answer(ctx_, h.reply, std::move(cut));
        h.reply = reply;
      }
      return;
    case bosh::Admit::replaced: {
      BoshAnswer cut;
      cut.cut = true;
      bosh_answer(ctx_, displaced->reply, std::move(cut));
      return;
    }
    case bosh::Admit::not_found:
      terminate("item-not-found", &reply);
      return;
    case bosh::Admit::queued:
      break;
  }
  // XEP-0124 §12: more requests at once than 'requests' (a pause or a
  // terminate may be one more), or empty ones faster than 'polling'. Whether
  // "the last request" is empty, a pause or a terminate is read from the last
  // one in rid order, not from the last to arrive: a client's requests come on
  // several connections (and through either worker loop) in any order, and an
  // empty poll that arrives after the request with data sent behind it is not
  // polling too often. The arriving request waits in the window now, so there
  // is a last one.
  const BoshRequest& last = *rids_.last_waiting();
  bool special = last.body.attr("type") == "terminate" || last.body.has("pause");
  bool empty = !special && last.body.payloads.empty() && last.body.attr(bosh::kXmppRestart) != "true";
  size_t outstanding = held_.size() + rids_.waiting();
  if (!special && outstanding > p_.requests) {
    spdlog::info("bosh {}: {} makes too many simultaneous requests", p_.sid, p_.peer_ip);
    terminate("policy-violation", nullptr);
    return;
  }
  if (!special && empty && p_.polling != 0 && outstanding == p_.requests && outstanding > 1 &&
      now - last_arrival_ms_ < uint64_t{p_.polling} * 1000) {
    spdlog::info("bosh {}: {} makes requests too often", p_.sid, p_.peer_ip);
    terminate("policy-violation", nullptr);
    return;
  }
  last_arrival_ms_ = now;
  while (auto next = rids_.next_ready()) {
    process(next->first, std::move(next->second));
    if (terminated_) return;
  }
  pump();
  if (!terminated_) flush();
}

void BoshSession::process(uint64_t rid, BoshRequest&& r) {
  uint64_t now = now_ms();
  if (!p_.key.empty()) {
    // XEP-0124 §15: each key hashes to the one before; a wrong one is not processed.
    std::string_view key = r.body.attr("key");
    if (key.empty() || hex_of(sasl::digest(sasl::Hash::sha1, key)) != p_.key) {
      terminate("item-not-found", &r.reply);
      return;
    }
    p_.key = std::string(r.body.has("newkey") ? r.body.attr("newkey") : key);
  }
  inactivity_ = p_.inactivity;  // a pause lasts until the next request (§10)
  if (r.body.has("pause") && p_.maxpause != 0) {
    if (auto pause = bosh::parse_uint(r.body.attr("pause"), p_.maxpause)) {
      // Every held request is answered now, the pause's own without payloads.
      inactivity_ = static_cast<unsigned>(*pause);
      while (!held_.empty()) {
        Held h = held_.front();
        held_.pop_front();
        answer_held(h, out_, false);
        out_.clear();
      }
      answer_held(Held{rid, r.reply, now, true}, {}, false);
      idle_since_ms_ = now;
      return;
    }
  }
  bool empty = r.body.payloads.empty() && r.body.attr(bosh::kXmppRestart) != "true" &&
               r.body.attr("type") != "terminate";
  if (empty && (p_.hold == 0 || p_.wait == 0) && p_.polling != 0) {
    // A polling session (§11): two empty polls closer than 'polling', the
    // first answered with nothing.
    if (last_poll_ms_ != 0 && last_poll_empty_ && now - last_poll_ms_ < uint64_t{p_.polling} * 1000) {
      spdlog::info("bosh {}: {} polls too often", p_.sid, p_.peer_ip);
      terminate("policy-violation", &r.reply);
      return;
    }
    last_poll_ms_ = now;
  }
  if (r.body.attr(bosh::kXmppRestart) == "true") {
    // XEP-0206 §5: a new stream, as after SASL success on TCP.
    input_.push_back("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" +
                     attr_text(p_.host) + "' version='1.0' xml:lang='" + attr_text(p_.lang) + "'>");
  }
  for (std::string& payload : r.body.payloads) input_.push_back(std::move(payload));
  if (r.body.attr("type") == "terminate") input_.push_back("</stream:stream>");
  held_.push_back(Held{rid, r.reply, now + uint64_t{p_.wait} * 1000, false});
}

void BoshSession::write(std::string_view bytes) {
  if (terminated_) return;
  std::vector<std::string> messages;
  split_.split(bytes, messages);
  for (std::string& m : messages) {
    if (m.starts_with("<open ")) {
      // Our stream header: its id is the authid (XEP-0206 §4).
      size_t at = m.find(" id='");
      if (at != std::string::npos) {
        size_t end = m.find('\'', at + 5);
        if (end != std::string::npos) stream_id_ = m.substr(at + 5, end - at - 5);
      }
      continue;
    }
    if (m.starts_with("<close ")) {
      stream_closed_ = true;
      continue;
    }
    if (m.starts_with("<stream:error")) {
      stream_error_ = std::move(m);
      continue;
    }
    out_ += m;
  }
  // Bounded like a socket's backlog: a client that never asks is cut.
  if (out_.size() > ctx_.config.limits.max_write_backlog) {
    spdlog::warn("bosh {}: {} does not fetch its data; closing", p_.sid, p_.peer_ip);
    out_.clear();
    finish("remote-connection-failed");
    conn_.cut();
    return;
  }
  schedule_flush();
}

void BoshSession::schedule_flush() {
  if (flush_posted_ || terminated_) return;
  flush_posted_ = true;
  // After what the stream does in this turn, so that one answer carries it all.
  LoopContext& loop = conn_.loop();
  std::string sid = p_.sid;
  loop.loop.post([sid] {
    auto it = bosh_table::sessions.find(sid);
    if (it == bosh_table::sessions.end()) return;
    it->second->flush_posted_ = false;
    it->second->flush();
  });
}

void BoshSession::flush() {
  if (terminated_) return;
  if (stream_closed_) {
    finish(stream_error_.empty() ? std::string_view() : "remote-stream-error");
    return;
  }
  if ((!out_.empty() || report_rid_ != 0) && !held_.empty()) {
    Held h = held_.front();
    held_.pop_front();
    answer_held(h, out_, false);
    out_.clear();
  }
  // No more than 'hold' wait (§8).
  while (held_.size() > p_.hold) {
    Held h = held_.front();
    held_.pop_front();
    answer_held(h, out_, false);
    out_.clear();
  }
  reschedule();
}

std::string BoshSession::envelope(std::string_view attrs, std::string_view payload) const {
  std::string body = "<body xmlns='http://jabber.org/protocol/httpbind'";
  body += attrs;
  if (payload.empty()) {
    body += "/>";
    return body;
  }
  body += '>';
  body += payload;
  body += "</body>";
  return body;
}

void BoshSession::answer_held(Held h, std::string_view payload, bool terminate, std::string_view condition) {
  std::string attrs;
  if (!created_answered_) {
    created_answered_ = true;
    // The session creation response (XEP-0124 §7.1, XEP-0206 §3).
    attrs += " xmlns:xmpp='urn:xmpp:xbosh' sid='" + p_.sid + "' wait='" + std::to_string(p_.wait) +
             "' hold='" + std::to_string(p_.hold) + "' requests='" + std::to_string(p_.requests) +
             "' inactivity='" + std::to_string(p_.inactivity) + "' polling='" + std::to_string(p_.polling) + "'";
    if (p_.maxpause != 0) attrs += " maxpause='" + std::to_string(p_.maxpause) + "'";
    if (!p_.legacy) attrs += " ver='" + p_.ver + "'";
    attrs += " from='" + attr_text(p_.host) + "' secure='true' xmpp:version='1.0' xmpp:restartlogic='true'";
    if (!stream_id_.empty()) attrs += " authid='" + attr_text(stream_id_) + "'";
    if (p_.ack) attrs += " ack='" + std::to_string(p_.first_rid) + "'";
  } else if (p_.ack && rids_.last_processed() != h.rid) {
    // §9.1: every request up to this rid was received.
    attrs += " ack='" + std::to_string(rids_.last_processed()) + "'";
  }
  if (report_rid_ != 0 && !terminate) {
    attrs += " report='" + std::to_string(report_rid_) + "' time='" + std::to_string(report_ms_) + "'";
    report_rid_ = 0;
  }
  if (terminate) {
    attrs += " type='terminate'";
    if (!condition.empty()) attrs += " condition='" + std::string(condition) + "'";
  }
  BoshAnswer a;
  a.content_type = p_.content_type;
  if (terminate && p_.legacy && legacy_status(condition) != 200) {
    a = sessionless_error(condition, true);
  } else {
    a.body = envelope(attrs, payload);
  }
  // Kept for a repeat of the rid (§14.3): not a pause's, not an error's.
  if (!h.pause && condition.empty()) rids_.answered(h.rid, a.body, now_ms());
  if (p_.hold == 0 || p_.wait == 0) last_poll_empty_ = payload.empty();
  if (held_.empty()) idle_since_ms_ = now_ms();
  bosh_answer(ctx_, h.reply, std::move(a));
}

void BoshSession::terminate(std::string_view condition, const BoshReply* reply) {
  if (terminated_) return;
  spdlog::info("bosh {}: terminated ({}) for {}", p_.sid, condition, p_.peer_ip);
  if (reply != nullptr) {
    Held h{0, *reply, 0, true};
    answer_held(h, {}, true, condition);
  }
  finish(condition);
  conn_.cut();  // the stream hears of it as a lost connection (a module may keep the session)
}

void BoshSession::finish(std::string_view condition) {
  if (finished_) return;
  finished_ = true;
  terminated_ = true;
  auto it = bosh_table::sessions.find(p_.sid);
  if (it != bosh_table::sessions.end() && it->second == this) bosh_table::sessions.erase(it);
  if (timer_ != nullptr) uv_timer_stop(timer_);
  std::string payload = std::move(out_);
  out_.clear();
  if (condition == "remote-stream-error") payload += stream_error_;
  bool with_payload = true;
  while (!held_.empty()) {
    Held h = held_.front();
    held_.pop_front();
    answer_held(h, with_payload ? std::string_view(payload) : std::string_view(), true, condition);
    with_payload = false;
  }
  for (auto& [rid, r] : rids_.take_waiting()) answer_held(Held{rid, r.reply, 0, false}, {}, true, condition);
}

void BoshSession::closing() {
  if (terminated_) return;
  stream_closed_ = true;
  finish(stream_error_.empty() ? std::string_view() : "remote-stream-error");
}

void BoshSession::reschedule() {
  if (terminated_) return;
  if (timer_ == nullptr) {
    timer_ = new uv_timer_t{};
    uv_timer_init(conn_.loop().loop.uv(), timer_);
    timer_->data = this;
  }
  uint64_t now = now_ms();
  uint64_t at = held_.empty() ? idle_since_ms_ + uint64_t{inactivity_} * 1000 : held_.front().until_ms;
  for (const Held& h : held_) at = std::min(at, h.until_ms);
  uv_timer_start(timer_, &BoshSession::on_timer, at > now ? at - now : 0, 0);
}

void BoshSession::on_timer(uv_timer_t* timer) {
  auto* self = static_cast<BoshSession*>(timer->data);
  if (self == nullptr || self->terminated_) return;
  uint64_t now = self->now_ms();
  if (!self->held_.empty()) {
    // 'wait' passed: answered with what there is (nothing, or it would have gone).
    std::deque<Held> keep;
    while (!self->held_.empty()) {
      Held h = self->held_.front();
      self->held_.pop_front();
      if (h.until_ms <= now) {
        self->answer_held(h, self->out_, false);
        self->out_.clear();
      } else {
        keep.push_back(h);
      }
    }
    self->held_ = std::move(keep);
    if (self->held_.empty()) self->idle_since_ms_ = now;
    self->reschedule();
    return;
  }
  if (now < self->idle_since_ms_ + uint64_t{self->inactivity_} * 1000) {
    self->reschedule();
    return;
  }
  // §10: no request for 'inactivity' seconds: the client is gone.
  spdlog::info("bosh {}: {} inactive for {} s; session ends", self->p_.sid, self->p_.peer_ip, self->inactivity_);
  self->finish({});
  self->conn_.cut();
}

}  // namespace parley
