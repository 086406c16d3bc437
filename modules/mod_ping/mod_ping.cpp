// mod_ping: XEP-0199 XMPP Ping.
//
// A client pings the server (or its own account) to check the stream is
// alive; the answer is an empty result.
//
// Server-to-client pings (XEP-0199 section 4.2), ejabberd's options and
// defaults: with send_pings, a session the server has received nothing from
// (no stanza, no nonza) for ping_interval seconds is pinged at its full JID;
// any answer, a result or an error, shows it alive. No answer within
// ping_ack_timeout seconds: with timeout_action kill, its connection is cut as
// lost (host session_cut: no stream error, so stream management may keep the
// session detached, as for any dead connection); with none, it is only logged
// and the session is pinged again after another interval.
//
// Threads: no lock. Each loop keeps its own sessions (bound there, where their
// hooks run) and one repeating timer while it has any; the sweep pings the
// idle ones from that loop, where their answers come back.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "parley/module.hpp"

namespace {

constexpr const char* ns_ping = "urn:xmpp:ping";
using Clock = std::chrono::steady_clock;

struct Tracked {
  Clock::time_point last_seen;
  bool ping_out = false;  // a ping waits for its answer
  std::string full_jid;
};

struct LoopPings {
  std::unordered_map<parley_session_id, Tracked> sessions;
  uint64_t timer = 0;
};

class ModPing : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    send_pings_ = host().option_bool("send_pings").value_or(false);
    const int64_t interval = host().option_int("ping_interval").value_or(60);
    const int64_t ack_timeout = host().option_int("ping_ack_timeout").value_or(32);
    const std::string action = host().option_string("timeout_action").value_or("none");
    if (interval < 1 || interval > 86400)
      return parley::unexpected(std::string("ping_interval must be 1 to 86400 seconds"));
    // send_iq waits at most 10 minutes.
    if (ack_timeout < 1 || ack_timeout > 600)
      return parley::unexpected(std::string("ping_ack_timeout must be 1 to 600 seconds"));
    if (action != "none" && action != "kill")
      return parley::unexpected(std::string("timeout_action must be none or kill"));
    interval_ = std::chrono::seconds(interval);
    ack_timeout_ = std::chrono::seconds(ack_timeout);
    kill_ = action == "kill";
    if (!send_pings_) {
      // Then its session hooks do nothing: left out of the server's tables,
      // every stanza and nonza of every client goes without them.
      for (parley_event e : {PARLEY_EVENT_SESSION_BOUND, PARLEY_EVENT_SESSION_CLOSED, PARLEY_EVENT_STANZA_IN,
                             PARLEY_EVENT_NONZA_IN, PARLEY_EVENT_SESSION_REATTACHED})
        host().hook_mode(e, PARLEY_HOOKS_OFF);
      return {};
    }
    if (!host().supports_1_2())
      return parley::unexpected(std::string("send_pings needs a host with module ABI 1.2 (send_iq)"));
    if (kill_ && !host().supports(PARLEY_HOST_ENTRY_END(session_cut)))
      return parley::unexpected(std::string("timeout_action kill needs a host with session_cut"));
    // A sweep often enough that an idle session is pinged within a tenth of
    // the interval after it became due (at least every 10 s, at most 10 a second).
    tick_ = std::clamp<std::chrono::milliseconds>(std::chrono::milliseconds(interval * 100),
                                                  std::chrono::milliseconds(100), std::chrono::seconds(10));
    loops_.init(host());
    pings_ = parley::register_metric(host(), "pings_sent", PARLEY_METRIC_COUNTER, "pings sent to idle clients");
    timeouts_ = parley::register_metric(host(), "ping_timeouts", PARLEY_METRIC_COUNTER,
                                        "pings a client did not answer in ping_ack_timeout");
    return {};
  }

  void on_ping(const parley::IqRequest& request) { host().route(parley::make_iq_result(request.iq())); }

  // A ping without 'to', or to the sender's own bare JID, is for the account:
  // the server answers on its behalf (RFC 6120 §10.3.3, RFC 6121 §8.5.2).
  // Another account's bare JID gets service-unavailable, which is also what a
  // ping to an account that does not exist gets (RFC 6121 §8.5.1): answering
  // those would tell anyone which accounts exist. XEP-0199 pings a client at
  // its full JID, which the core delivers to that resource.
  void on_account_ping(const parley::IqRequest& request) {
    if (parley::bare_jid(request.from()) != parley::bare_jid(request.to()))
      return host().bounce(request.iq(), "service-unavailable");
    host().route(parley::make_iq_result(request.iq()));
  }

  // ---- server-to-client pings ----

  void on_bound(const parley::Event& event) {
    if (!send_pings_) return;
    LoopPings& here = loops_.here();
    here.sessions[event.session()] = Tracked{Clock::now(), false, std::string(event.jid())};
    if (here.timer == 0) here.timer = host().start_repeating_timer(tick_, tick_, [this](uint64_t) { sweep(); });
  }

  void on_closed(const parley::Event& event) {
    if (!send_pings_ || parley::current_loop(host()) < 0) return;
    LoopPings& here = loops_.here();
    here.sessions.erase(event.session());
    // No timer while the loop has nothing to ping.
    if (here.sessions.empty() && here.timer != 0) {
      host().cancel_timer(here.timer);
      here.timer = 0;
    }
  }

  // Anything from the client (a stanza, a nonza, a resumed connection) shows
  // it alive. Never takes the stanza.
  parley::Outcome on_activity(const parley::Event& event) {
    if (!send_pings_) return parley::Outcome::pass;
    auto& sessions = loops_.here().sessions;
    if (auto it = sessions.find(event.session()); it != sessions.end()) it->second.last_seen = Clock::now();
    return parley::Outcome::pass;
  }

 private:
  void sweep() {
    const auto now = Clock::now();
    for (auto& [id, tracked] : loops_.here().sessions) {
      if (tracked.ping_out || now - tracked.last_seen < interval_) continue;
      // A detached session has no connection to ask; its keeper decides.
      if (host().session_state(id) != parley::Host::SessionState::bound) continue;
      ping(id, tracked);
    }
  }

  void ping(parley_session_id id, Tracked& tracked) {
    parley::Element iq = host().element("iq", "jabber:client");
    iq.set_attr("type", "get").set_attr("from", host().module_host()).set_attr("to", tracked.full_jid);
    iq.add_child("ping", ns_ping);
    tracked.ping_out = true;
    const bool sent = parley::send_iq(host(), std::move(iq), ack_timeout_,
                                      [this, id](std::optional<parley::ElementView> reply) {
                                        answered(id, reply.has_value());
                                      });
    if (!sent) {
      tracked.ping_out = false;
      tracked.last_seen = Clock::now();  // not again at once
      return;
    }
    pings_.add();
  }

  // Any answer, result or error (a client without XEP-0199 answers
  // service-unavailable), shows the client alive.
  void answered(parley_session_id id, bool answer) {
    auto& sessions = loops_.here().sessions;
    auto it = sessions.find(id);
    if (it == sessions.end()) return;  // gone meanwhile
    it->second.ping_out = false;
    it->second.last_seen = Clock::now();
    if (answer) return;
    timeouts_.add();
    if (!kill_) {
      host().info(it->second.full_jid + " did not answer a ping in " + std::to_string(ack_timeout_.count()) + " s");
      return;
    }
    host().info(it->second.full_jid + " did not answer a ping in " + std::to_string(ack_timeout_.count()) +
                " s: connection cut");
    host().session_cut(id);
  }

  bool send_pings_ = false;
  bool kill_ = false;
  std::chrono::seconds interval_{60};
  std::chrono::seconds ack_timeout_{32};
  std::chrono::milliseconds tick_{1000};
  parley::PerLoop<LoopPings> loops_;  // each loop's sessions, touched by that loop only
  parley::Metric pings_;
  parley::Metric timeouts_;
};

}  // namespace

PARLEY_MODULE(ModPing, "mod_ping", "1.2.0",
              parley::option("send_pings", PARLEY_OPT_BOOL),
              parley::option("ping_interval", PARLEY_OPT_INT),
              parley::option("ping_ack_timeout", PARLEY_OPT_INT),
              parley::option("timeout_action", PARLEY_OPT_STRING),
              parley::iq_handler<&ModPing::on_ping>(PARLEY_IQ_SERVER, PARLEY_IQ_GET, ns_ping),
              parley::iq_handler<&ModPing::on_account_ping>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET, ns_ping),
              parley::hook<&ModPing::on_bound>(PARLEY_EVENT_SESSION_BOUND),
              parley::hook<&ModPing::on_closed>(PARLEY_EVENT_SESSION_CLOSED),
              parley::hook<&ModPing::on_activity>(PARLEY_EVENT_STANZA_IN, 0),
              parley::hook<&ModPing::on_activity>(PARLEY_EVENT_NONZA_IN, 0),
              parley::hook<&ModPing::on_activity>(PARLEY_EVENT_SESSION_REATTACHED),
              parley::disco_feature(ns_ping))
