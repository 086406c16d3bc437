// mod_last: XEP-0012 Last Activity.
//
//   get to the server         -> seconds since the module started for the host (section 5)
//   get to a user's bare JID  -> seconds since the user last logged out (or went
//                                unavailable), with the status text of their last
//                                unavailable presence (section 3); '0' while a
//                                resource is available; service-unavailable if
//                                nothing was ever recorded. Only for the user and
//                                for entities with a 'from' or 'both' subscription
//                                in the user's roster (mod_roster's table); others
//                                get forbidden (sections 3 and 8).
//   set                       -> not-allowed (the namespace defines get only)
//
// A get to a full JID is the client's (section 4): the core delivers it, but only for
// the user's own resources and entities with a 'from' or 'both' subscription. Section
// 8: "A server MUST NOT allow an unauthorized entity to learn a user's network
// availability by sending a Last Activity request to a JID of the form
// <user@host/resource>". Anyone else gets service-unavailable whether the resource is
// there or not, which is what a resource that is not there answers (RFC 6121 8.5.3.1).
//
// The records are in the keyval store (issue 11: user = the localpart, key "last",
// value "SECONDS:STATUS", SECONDS since the epoch).
//
// Threads: no lock. A user's sessions may live on several loops; what they
// report (an unavailable presence, a session's end, the account removed or
// created) is handed to the loop that owns the user (a hash of the bare JID),
// whose ActivityTracker alone keeps that user's state.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "last_logic.hpp"
#include "parley/module.hpp"
#include "parley/sdk/old_tables.hpp"

namespace {

namespace last = parley::mod_last;

constexpr const char* ns_last = "jabber:iq:last";

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class ModLast : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    started_ = std::chrono::steady_clock::now();
    if (!host().supports_1_2()) return parley::unexpected(std::string("needs a host with module ABI 1.2 (post)"));
    if (!host().supports_keyval()) return parley::unexpected(std::string("this server has no keyval store"));
    trackers_.init(host());
    passed_.init(host());
    asks_.init(host(), "mod_last");
    // The records of a server that kept them in this module's own table (before the
    // keyval store): moved over once ("seconds:status"), the table dropped once empty;
    // reads wait for it.
    move_.start(host(), {parley::OldTables::Move{
                            "mod_last_activity",
                            "SELECT user, 'last', CAST(seconds AS TEXT) || ':' || status FROM mod_last_activity "
                            "WHERE host = ?1",
                            "DELETE FROM mod_last_activity WHERE host = ?1"}});
    return {};
  }

  // Uptime survives a reload: the new code goes on counting from the old start.
  parley::Result<std::string, std::string> save_state() override {
    return "v1 " + std::to_string(uptime_seconds());
  }
  parley::Result<void, std::string> restore_state(std::string_view bytes) override {
    if (bytes.empty()) return {};
    if (bytes.substr(0, 3) != "v1 ") return parley::unexpected(std::string("unknown mod_last state"));
    int64_t seconds = 0;
    for (char c : bytes.substr(3)) {
      if (c < '0' || c > '9') return parley::unexpected(std::string("malformed mod_last state"));
      seconds = seconds * 10 + (c - '0');
    }
    started_ = std::chrono::steady_clock::now() - std::chrono::seconds(seconds);
    return {};
  }

  void on_server(const parley::IqRequest& request) {
    if (!check(request)) return;
    parley::Element reply = parley::make_iq_result(request.iq());
    reply.add_child("query", ns_last).set_attr("seconds", std::to_string(uptime_seconds()));
    host().route(std::move(reply));
  }

  void on_account(const parley::IqRequest& request) {
    if (!check(request)) return;
    std::string target(request.to());  // the user's bare JID (the core fills in a missing 'to')
    std::string requester(parley::bare_jid(request.from()));
    std::string user = parley::Jid::prepared(target).local();
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    if (requester == target) return answer(iq, target, user);
    // The roster module's answer (events 27-28): never its storage.
    asks_.ask_roster(user, requester, [this, iq, target, user](auto roster) {
      if (!roster) {
        host().error("reading the roster of " + target + " failed (no roster module answered)");
        return host().bounce(*iq, "internal-server-error");
      }
      bool allowed = false;
      for (const auto& item : *roster) allowed = allowed || last::subscription_allows(item.subscription);
      if (!allowed) return host().bounce(*iq, "forbidden", "not subscribed to the user's presence");
      answer(iq, target, user);
    });
  }

  void on_roster_answer(const parley::Event& event) { asks_.on_answer(event); }

  // Section 8 for full JIDs (the header says why). Held while the roster answers, then
  // routed again (and passed: passed_ on this loop, where the route runs its hooks) or
  // refused.
  parley::Outcome on_iq_to_local(const parley::Event& event) {
    auto stanza = event.stanza();
    if (!stanza || stanza->attr("type").value_or("") != "get" || !stanza->child("query", ns_last))
      return parley::Outcome::pass;
    const parley::Jid to = parley::Jid::prepared(stanza->attr("to").value_or(""));
    if (!to.has_resource()) return parley::Outcome::pass;  // the bare JID: on_account
    const std::string requester(parley::bare_jid(stanza->attr("from").value_or("")));
    const std::string target = to.bare_str();
    if (requester == target) return parley::Outcome::pass;  // the account's own resources
    std::string key = std::string(stanza->attr("from").value_or("")) + '\n' + to.full() + '\n' +
                      std::string(stanza->attr("id").value_or(""));
    if (passed_.here().erase(key) != 0) return parley::Outcome::pass;
    auto iq = std::make_shared<parley::Element>(stanza->clone());
    asks_.ask_roster(to.local(), requester, [this, iq, target, key](auto roster) {
      bool allowed = false;
      if (roster)
        for (const auto& item : *roster) allowed = allowed || last::subscription_allows(item.subscription);
      else
        host().error("reading the roster of " + target + " failed (no roster module answered)");
      if (!allowed) return host().bounce(*iq, "service-unavailable");
      // Bounded: a request that an earlier hook takes on its second pass (a blocklist)
      // never comes back to erase its key.
      auto& passed = passed_.here();
      if (passed.size() >= kMaxPassed) passed.clear();
      passed.insert(key);
      host().route(std::move(*iq));
    });
    return parley::Outcome::handled;
  }

  parley::Outcome on_presence(const parley::Event& event) {
    auto stanza = event.stanza();
    if (!stanza || stanza->attr("type").value_or("") != "unavailable") return parley::Outcome::pass;
    std::string bare = bare_of(event);
    if (bare.empty()) return parley::Outcome::pass;
    bool others_available = false;
    for (const auto& s : host().user_sessions(bare))
      others_available = others_available || (s.id != event.session() && s.available);
    on_owner(bare, [this, bare, user = std::string(event.user()), status = stanza->child_text("status"),
                    others_available]() mutable {
      if (auto stored = trackers_.here().on_unavailable(bare, std::move(status), others_available))
        store(user, *stored);
    });
    return parley::Outcome::pass;
  }

  void on_session_closed(const parley::Event& event) {
    std::string bare = bare_of(event);
    // Only a bound session is a login (an unauthenticated stream has no user).
    if (bare.empty() || !parley::Jid::prepared(event.jid()).has_resource()) return;
    bool was_available = false, others_remain = false, others_available = false;
    for (const auto& s : host().user_sessions(bare)) {
      if (s.id == event.session()) {
        was_available = s.available;
        continue;
      }
      others_remain = true;
      others_available = others_available || s.available;
    }
    on_owner(bare, [this, bare, user = std::string(event.user()), was_available, others_remain, others_available] {
      if (auto status = trackers_.here().on_closed(bare, was_available, others_remain, others_available))
        store(user, *status);
    });
  }

  void on_user_removed(const parley::Event& event) {
    std::string bare = bare_of(event);
    if (bare.empty()) return;
    const bool has_sessions = !host().user_sessions(bare).empty();
    // On the owner loop, after the stores its closing sessions posted there
    // first: the storage writer is in order, so no store of theirs lands
    // after this delete (from another loop it could, and the removed account
    // kept a last activity).
    on_owner(bare, [this, bare, has_sessions, user = std::string(event.user())] {
      trackers_.here().removed(bare, has_sessions);
      // After the move of old records (one moved later would bring the record back).
      move_.when_ready(host(), [this, user] {
        host().keyval_remove_user(user, [this, user](parley::Result<parley::KeyvalResult, std::string> r) {
          if (!r) host().error("removing the last activity of " + user + " failed: " + r.error());
        });
      });
    });
  }

  void on_user_registered(const parley::Event& event) {
    std::string bare = bare_of(event);
    if (!bare.empty()) on_owner(bare, [this, bare] { trackers_.here().registered(bare); });
  }

 private:
  parley::AccountQuery asks_;  // roster reads (events 27-28)
  // Runs `fn` on the loop that owns `bare`'s tracker: now if that is this
  // loop, else posted there (posts from one loop keep their order).
  void on_owner(const std::string& bare, std::function<void()> fn) {
    const auto owner = static_cast<uint32_t>(std::hash<std::string>{}(bare) % trackers_.size());
    if (parley::current_loop(host()) == static_cast<int32_t>(owner)) return fn();
    if (!parley::post(host(), owner, std::move(fn))) host().error("cannot post to loop " + std::to_string(owner));
  }

  // Get only, with a <query/>; answers the error itself otherwise.
  bool check(const parley::IqRequest& request) {
    if (request.type() != "get") {
      host().bounce(request.iq(), "not-allowed", "jabber:iq:last defines get only");
      return false;
    }
    auto query = request.payload();
    if (!query || query->name() != "query") {
      host().bounce(request.iq(), "bad-request", "expected <query/>");
      return false;
    }
    return true;
  }

  // The requester may know: '0' while the user is available, else the record.
  void answer(const std::shared_ptr<parley::Element>& iq, const std::string& target, const std::string& user) {
    for (const auto& s : host().user_sessions(target)) {
      if (!s.available) continue;
      parley::Element reply = parley::make_iq_result(*iq);
      reply.add_child("query", ns_last).set_attr("seconds", "0");
      return host().route(std::move(reply));
    }
    move_.when_ready(host(), [this, iq, target, user] { load(iq, target, user); });
  }

  void load(const std::shared_ptr<parley::Element>& iq, const std::string& target, const std::string& user) {
    bool sent = host().keyval_get(user, key_, [this, iq, target](parley::Result<parley::KeyvalResult, std::string> r) {
      if (!r) {
        host().error("reading the last activity of " + target + " failed: " + r.error());
        return host().bounce(*iq, "internal-server-error");
      }
      if (!r->found()) return host().bounce(*iq, "service-unavailable", "no last activity recorded");
      auto record = last::parse_record(r->value());
      if (!record) {
        host().error("the stored last activity of " + target + " does not parse");
        return host().bounce(*iq, "service-unavailable", "no last activity recorded");
      }
      parley::Element reply = parley::make_iq_result(*iq);
      parley::ElementRef query = reply.add_child("query", ns_last);
      query.set_attr("seconds", std::to_string(last::seconds_since(record->seconds, unix_now())));
      if (!record->status.empty()) query.add_text(record->status);
      host().route(std::move(reply));
    });
    if (!sent) host().bounce(*iq, "internal-server-error");
  }

 public:
  // h-admin (issue 17, XEP-0133 get-user-lastlogin): a service administration
  // module asks for an account's last activity (event 27, want='last'); answered
  // with event 28 on this loop: <last stamp='UNIX SECONDS'>status</last> of the
  // last logout, or <last/> when none is recorded.
  parley::Outcome on_admin_query(const parley::Event& event) {
    auto acc = event.acc();
    if (!acc || acc->attr("want").value_or("") != "last" || event.user().empty()) return parley::Outcome::pass;
    int64_t answers = 0;
    for (char c : acc->attr("answers").value_or("0")) answers = c >= '0' && c <= '9' ? answers * 10 + (c - '0') : answers;
    acc->set_attr("answers", std::to_string(answers + 1));
    std::string token(acc->attr("token").value_or(""));
    std::string user(event.user());
    move_.when_ready(host(), [this, token, user] {
      auto reply = [this, token](std::optional<last::Record> record, bool failed) {
        parley::Element answer = host().element("answer", parley::ns_admin_user);
        answer.set_attr("token", token);
        if (!failed) {
          parley::ElementRef last = answer.add_child("last", ns_last);
          if (record) {
            last.set_attr("stamp", std::to_string(record->seconds));
            if (!record->status.empty()) last.add_text(record->status);
          }
        }
        host().run_fold(PARLEY_EVENT_ADMIN_USER_ANSWER, answer);
      };
      bool sent = host().keyval_get(user, key_, [this, user, reply](parley::Result<parley::KeyvalResult, std::string> r) {
        if (!r) {
          host().error("reading the last activity of " + user + " for an administrator failed: " + r.error());
          return reply(std::nullopt, true);
        }
        reply(r->found() ? last::parse_record(r->value()) : std::nullopt, false);
      });
      if (!sent) reply(std::nullopt, true);
    });
    return parley::Outcome::pass;
  }

 private:
  // A value written before the move is kept: the move puts only where nothing is.
  void store(const std::string& user, const std::string& status) {
    host().keyval_put(user, key_, last::format_record(unix_now(), status),
                      [this, user](parley::Result<parley::KeyvalResult, std::string> r) {
                        if (!r) host().error("storing the last activity of " + user + " failed: " + r.error());
                      });
  }

  static std::string bare_of(const parley::Event& event) {
    if (event.user().empty() || event.host().empty()) return {};
    return event.user_bare();
  }

  int64_t uptime_seconds() const {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count();
  }

  static constexpr std::string_view key_ = "last";

  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  parley::OldTables move_;
  parley::PerLoop<last::ActivityTracker> trackers_;  // each loop's users' state, touched by that loop only
  // Full-JID requests checked and routed again on this loop: their second pass.
  static constexpr std::size_t kMaxPassed = 4096;
  parley::PerLoop<std::unordered_set<std::string>> passed_;
};

}  // namespace

PARLEY_MODULE(ModLast, "mod_last", "1.0.0",
              parley::depends("mod_roster"),
              parley::iq_handler<&ModLast::on_server>(PARLEY_IQ_SERVER, PARLEY_IQ_GET | PARLEY_IQ_SET, ns_last),
              parley::iq_handler<&ModLast::on_account>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET | PARLEY_IQ_SET, ns_last),
              parley::hook<&ModLast::on_presence>(PARLEY_EVENT_PRESENCE_BROADCAST),
              parley::hook<&ModLast::on_iq_to_local>(PARLEY_EVENT_IQ_TO_LOCAL),
              parley::hook<&ModLast::on_session_closed>(PARLEY_EVENT_SESSION_CLOSED),
              parley::hook<&ModLast::on_user_removed>(PARLEY_EVENT_USER_REMOVED),
              parley::hook<&ModLast::on_user_registered>(PARLEY_EVENT_USER_REGISTERED),
              parley::hook<&ModLast::on_admin_query>(PARLEY_EVENT_ADMIN_USER_QUERY),
              parley::hook<&ModLast::on_roster_answer>(PARLEY_EVENT_ADMIN_USER_ANSWER),
              parley::disco_feature(ns_last),
              // The records before the keyval store: kept so that a server that has rows
              // in it gets them moved (OldTables in start()), then dropped.
              parley::schema("CREATE TABLE mod_last_activity (host TEXT NOT NULL, user TEXT NOT NULL, "
                             "seconds INTEGER NOT NULL, status TEXT NOT NULL, PRIMARY KEY (host, user))"))
