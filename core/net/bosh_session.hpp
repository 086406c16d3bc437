// A BOSH session (XEP-0124, XMPP over it: XEP-0206) as a transport of the
// core's Connection: its c2s stream runs over a connection without a socket
// whose bytes come from the payloads of the session's HTTP requests (in rid
// order) and whose output waits, bounded, until a request can carry it. The
// c2s state machine, SASL, binding and every module run unchanged.
//
// The session lives on the loop that created it (its sid names that loop):
// a request that reaches another loop (HTTP connections spread over the
// loops) is parsed there and posted here; its answer is posted back to the
// loop of the connection waiting for it (bosh_answer). Everything below runs
// on the session's loop.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/net/bosh_body.hpp"
#include "core/net/bosh_rids.hpp"
#include "core/net/xmpp_framing.hpp"

namespace parley {

class ServerContext;
struct LoopContext;
class Connection;
class ConnectionOwner;

namespace config {
struct Listener;
}

inline constexpr std::string_view kBoshPath = "/http-bind";

// The HTTP connection an answer goes to: its loop and the id of its wait.
struct BoshReply {
  unsigned loop = 0;
  uint64_t id = 0;
};

struct BoshAnswer {
  int status = 200;
  std::string body;
  std::string content_type = "text/xml; charset=utf-8";
  bool cut = false;  // no answer: the connection closes (a repeated or insecure request's old copy)
};

// Hands `answer` to the connection waiting at `to` (posted to its loop; any
// thread). Nothing happens if it went meanwhile. In http_transport_bosh.cpp.
void bosh_answer(ServerContext& ctx, const BoshReply& to, BoshAnswer answer);

// One request, parsed, on its way to its session.
struct BoshRequest {
  bosh::Body body;
  uint64_t rid = 0;
  BoshReply reply;
  bool secure = false;  // came over https
};

// What the session creation request settled (XEP-0124 §7).
struct BoshParams {
  std::string sid;
  std::string host;  // 'to'
  std::string lang;
  std::string ver;   // the version answered: the client's or ours, the lower
  std::string content_type;
  std::string peer_ip;
  std::string key;   // 'newkey': the key sequence (§15), empty when unused
  uint64_t first_rid = 0;
  unsigned wait = 60, hold = 1, requests = 2, inactivity = 60, maxpause = 0, polling = 2;
  bool ack = false;     // the client uses acknowledgements
  bool legacy = false;  // no 'ver': errors as HTTP status codes (§17.1)
  bool secure = false;
  bool counted = false;  // in ServerContext::bosh_sessions (bosh_max_sessions_per_ip)
};

class BoshSession {
 public:
  // An HTTP request to /http-bind, on the loop of its connection `here`:
  // creates a session (no sid) or goes to the session's loop.
  static void handle(ServerContext& ctx, LoopContext& here, const config::Listener& listener, std::string_view body,
                     BoshReply reply, bool secure, const std::string& peer_ip);

  BoshSession(ServerContext& ctx, Connection& conn, ConnectionOwner& owner, BoshParams params);
  ~BoshSession();
  BoshSession(const BoshSession&) = delete;
  BoshSession& operator=(const BoshSession&) = delete;

  // ---- the Connection's side ----
  // What the c2s stream wrote (stream header, stanzas, </stream:stream>).
  void write(std::string_view bytes);
  // The connection closes at its owner's request: the session ends (terminate).
  void closing();
  // The stream reads again (Connection::start_reading): the payloads that
  // waited go on, from a task of this loop.
  void resume();
  void pump();

  // Migration (a stream management resume onto a session of another loop,
  // Connection::migrate_out/migrate_in). leave, on the old loop: the timer
  // closes, the sid is parked there (requests that reach it wait). arrive,
  // on the new loop: the session is found here; the old loop forwards its
  // parked requests and every later one (its sid names the loop that created
  // it: requests keep reaching that one first) until the session ends.
  void leave();
  void arrive(unsigned from);

  // ---- on the session's loop ----
  // The creation request (rid first_rid): the stream starts.
  void start(BoshReply reply);
  void request(BoshRequest&& r);
  const std::string& sid() const { return p_.sid; }

 private:
  struct Held {
    uint64_t rid;
    BoshReply reply;
    uint64_t until_ms;
    bool pause;
  };
  void process(uint64_t rid, BoshRequest&& r);
  void flush();
  void schedule_flush();
  void answer_held(Held h, std::string_view payload, bool terminate, std::string_view condition = {});
  // Ends the session with `condition`, `reply` (if any) getting the answer first.
  void terminate(std::string_view condition, const BoshReply* reply);
  // The session is over: every held and waiting request answered (the first
  // with what waited), unregistered, no timer. Once.
  void finish(std::string_view condition);
  void reschedule();
  static void on_timer(uv_timer_t* timer);
  std::string envelope(std::string_view attrs, std::string_view payload) const;
  uint64_t now_ms() const;

  ServerContext& ctx_;
  Connection& conn_;
  ConnectionOwner& owner_;
  BoshParams p_;
  bosh::RidWindow<BoshRequest> rids_;
  std::deque<Held> held_;
  std::deque<std::string> input_;  // payloads (and restarts, the end) for the stream, in rid order
  std::string out_;                 // payloads waiting for a request to carry them
  framing::Outbound split_;
  std::string stream_id_;           // authid (XEP-0206)
  std::string stream_error_;        // the stream's <stream:error/>, for remote-stream-error
  uv_timer_t* timer_ = nullptr;
  uint64_t last_arrival_ms_ = 0;
  uint64_t idle_since_ms_ = 0;      // no request held since then (inactivity counts from it)
  uint64_t last_poll_ms_ = 0;       // the last empty request of a polling session
  unsigned inactivity_ = 0;         // seconds; a pause changes it until the next request
  uint64_t report_rid_ = 0;         // §9.3: an answer the client seems to have lost (0: none)
  uint64_t report_ms_ = 0;          // and how long ago it was sent
  bool counted_ = false;            // in ctx.bosh_sessions
  bool created_answered_ = false;   // the creation attributes went out
  bool last_poll_empty_ = false;    // its answer carried nothing
  bool stream_closed_ = false;
  bool terminated_ = false;
  bool finished_ = false;
  bool flush_posted_ = false;
  bool resume_posted_ = false;
  bool pumping_ = false;
  std::vector<unsigned> forwarders_;  // loops that forward this sid's requests (it moved away from them)
};

}  // namespace parley
