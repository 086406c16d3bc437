// mod_push: XEP-0357 push notifications, published to the user's app servers
// (XMPP push services: usually an external component, XEP-0114).
//
// A client enables a push service for its account with
//   <iq type='set'><enable xmlns='urn:xmpp:push:0' jid='SERVICE' node='NODE'>
//     [<x xmlns='jabber:x:data'> FORM_TYPE pubsub#publish-options ... </x>]</enable></iq>
// and disables it (one node, or every node of the service) with <disable/>.
// Registrations are kept per account, service and node (the device), with
// the publish-options form as the client gave it, in the account's map of the
// typed store (registrations.hpp; the module's table of before is moved there).
//
// Triggers (for a message worth waking a phone for: push_logic.hpp,
// worth_waking): one that reaches the offline rules (no available resource:
// mod_offline stores it) for an account with registrations; one queued for a
// detached XEP-0198 session (its socket was lost; the host's
// PARLEY_EVENT_DETACHED_STANZA); PARLEY_EVENT_WAKE_UP (room messages for
// members not in the room, urgent stanzas for CSI-inactive sessions). Except
// for an offline message, only when every bound session of the user sleeps
// (detached or CSI-inactive: sleep_table.hpp): never for a user with a
// connected, active session.
//
// The notification: an iq-set pubsub <publish node='NODE'> with
// <notification xmlns='urn:xmpp:push:0'> carrying the summary form
// (message-count: messages notified since the user last bound a session;
// last-message-sender; last-message-body only with include_body: true) and
// the registration's publish-options passed through unchanged, from the
// server's JID (XEP-0357 0.3), routed like any iq (send_iq). The app
// server's answer: an error of type cancel or auth disables the registration
// (removed); a wait error or no answer in time is retried with exponential
// back-off (max_retries); a modify error drops this notification only. An
// app server's affiliation change notice to the user (§8, remote disabling)
// removes the registration of that service and node.
//
// Options:
//   include_body          send the message body to the app server (default false)
//   max_registrations     per account (default 20; past it: resource-constraint)
//   min_push_interval_ms  per device: at most one notification per interval; one
//                         inside it is held until the interval ends (the later
//                         summary replaces it) (default 1000; 0: no limit)
//   max_retries           default 3
//   retry_base_ms         first back-off (default 2000), doubled per attempt
//   iq_timeout_ms         how long an app server may take to answer (default 30000)
//   notify_csi_inactive   also notify for an urgent message (one mod_csi lets through)
//                         for a session the client said is inactive (XEP-0352,
//                         mod_csi raises PARLEY_EVENT_WAKE_UP) (default false)
//   notify_groupchat      notify room members with no joined session of a room's
//                         messages (mod_muc raises PARLEY_EVENT_WAKE_UP) (default true)
//   webhook_url           the HTTP webhook backend (for operators without an XMPP app
//                         server): every notification of every account of the host is
//                         also POSTed there as JSON (push_logic.hpp: webhook_json),
//                         signed with HMAC-SHA256 (X-Parley-Signature: sha256=HEX), through
//                         the core's HTTP client (libcurl on the loop: never blocking)
//   webhook_secret        the HMAC key; required with webhook_url (at least 16 bytes)
//   webhook_timeout_ms    how long the webhook may take to answer (default 10000); a
//                         timeout, 408, 429 or 5xx is retried like an iq (max_retries)
//
// Counters: enabled, disabled, sent, failed, removed, retried, rate_limited,
// dropped_disabled (a notification that waited for a registration disabled
// meanwhile), webhook_sent, webhook_failed, remote_disabled (§8), awake (a
// trigger not pushed: the user has a connected, active session).
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/module.hpp"
#include "push_logic.hpp"
#include "registrations.hpp"
#include "sleep_table.hpp"

namespace {

namespace push = parley::push;

constexpr const char* ns_disco_info = "http://jabber.org/protocol/disco#info";
constexpr const char* ns_wake = "urn:parley:wake:0";  // PARLEY_EVENT_WAKE_UP's accumulator
constexpr const char* ns_csi = "urn:xmpp:csi:0";

int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

using push::Registration;

int64_t unix_seconds() {
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

class ModPush : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    domain_ = host().module_host();
    include_body_ = host().option_bool("include_body").value_or(false);
    max_registrations_ = host().option_int("max_registrations").value_or(20);
    if (max_registrations_ < 1) return parley::unexpected(std::string("max_registrations must be at least 1"));
    int64_t interval = host().option_int("min_push_interval_ms").value_or(1000);
    if (interval < 0) return parley::unexpected(std::string("min_push_interval_ms must not be negative"));
    rate_ = std::make_unique<push::RateLimit>(interval);
    max_retries_ = host().option_int("max_retries").value_or(3);
    if (max_retries_ < 0 || max_retries_ > 20) return parley::unexpected(std::string("max_retries must be 0 to 20"));
    retry_base_ms_ = host().option_int("retry_base_ms").value_or(2000);
    if (retry_base_ms_ < 1) return parley::unexpected(std::string("retry_base_ms must be positive"));
    iq_timeout_ms_ = host().option_int("iq_timeout_ms").value_or(30000);
    if (iq_timeout_ms_ < 100) return parley::unexpected(std::string("iq_timeout_ms must be at least 100"));
    if (!host().supports_1_2()) return parley::unexpected(std::string("mod_push needs module ABI 1.2 (send_iq)"));
    notify_csi_inactive_ = host().option_bool("notify_csi_inactive").value_or(false);
    notify_groupchat_ = host().option_bool("notify_groupchat").value_or(true);
    webhook_url_ = host().option_string("webhook_url").value_or("");
    webhook_secret_ = host().option_string("webhook_secret").value_or("");
    webhook_timeout_ms_ = host().option_int("webhook_timeout_ms").value_or(10000);
    if (!webhook_url_.empty()) {
      if (!push::valid_webhook_url(webhook_url_))
        return parley::unexpected(std::string("webhook_url must be an http:// or https:// URL"));
      if (webhook_secret_.size() < 16)
        return parley::unexpected(std::string("webhook_secret (at least 16 bytes) is required with webhook_url"));
      if (webhook_timeout_ms_ < 100 || webhook_timeout_ms_ > 600000)
        return parley::unexpected(std::string("webhook_timeout_ms must be 100 to 600000"));
      if (!parley::supports_http_client(host()))
        return parley::unexpected(std::string("webhook_url needs a host with the HTTP client (http_request)"));
    } else if (!webhook_secret_.empty()) {
      return parley::unexpected(std::string("webhook_secret without webhook_url"));
    }
    if (!host().supports(PARLEY_HOST_ENTRY_END(map_clear)))
      return parley::unexpected(std::string("mod_push needs a host with the typed map store (map_get)"));
    registrations_.start(host());
    return {};
  }

  // ---- enable / disable (XEP-0357 §5, §6) ----

  void on_iq(const parley::IqRequest& request) {
    std::string user(parley::Jid::prepared(request.to()).local());
    // Only the account's owner manages its push services; anyone else learns
    // nothing (the answer for an account that does not exist).
    if (parley::bare_jid(request.from()) != parley::bare_jid(request.to()) || user.empty())
      return host().bounce(request.iq(), "service-unavailable");
    auto payload = request.payload();
    if (!payload) return host().bounce(request.iq(), "bad-request");
    std::string_view jid_attr = payload->attr("jid").value_or("");
    auto service = jid_attr.empty() ? std::nullopt : host().prepare_jid(jid_attr);
    std::string node(payload->attr("node").value_or(""));
    auto reply = std::make_shared<parley::Element>(parley::make_iq_result(request.iq()));
    auto original = std::make_shared<parley::Element>(request.iq().clone());

    if (payload->name() == "disable") {
      if (!service) return host().bounce(request.iq(), "bad-request");
      std::optional<std::string> which;
      if (payload->has_attr("node")) which = node;
      registrations_.remove(user, *service, which, [this, reply, original](std::optional<uint64_t> removed) {
        if (!removed) return host().bounce(*original, "internal-server-error");
        host().counter_add("disabled", static_cast<int64_t>(*removed));
        host().route(std::move(*reply));
      });
      return;
    }
    if (payload->name() != "enable") return host().bounce(request.iq(), "feature-not-implemented");
    std::optional<parley::ElementView> form = payload->child("x", push::ns_data);
    std::string form_type;
    if (form) {
      for (parley::ElementView f : form->children())
        if (f.name() == "field" && f.attr("var") == "FORM_TYPE") form_type = f.child_text("value", push::ns_data);
    }
    if (auto bad = push::check_enable(jid_attr, service.has_value(), form.has_value(), form_type))
      return host().bounce(request.iq(), *bad);
    Registration reg{*service, node, form ? form->serialize() : std::string()};
    // Re-enabling a jid + node keeps one registration with the last options
    // (§5); a new one must fit max_registrations (checked by the store with
    // the write: two enables racing cannot both pass it).
    registrations_.put(user, reg, static_cast<uint64_t>(max_registrations_),
                       [this, reply, original](const std::string& error) {
                         if (error == "policy-violation")
                           return host().bounce(*original, "resource-constraint", "Too many push registrations");
                         if (!error.empty()) return host().bounce(*original, "internal-server-error");
                         host().counter_add("enabled");
                         host().route(std::move(*reply));
                       });
  }

  parley::Outcome on_account_disco(const parley::Event& event) {
    // XEP-0357 §4: the feature on the account (asked by its owner).
    if (auto acc = event.acc()) acc->add_child("feature", ns_disco_info).set_attr("var", push::ns_push);
    return parley::Outcome::pass;
  }

  // ---- triggers ----

  // A message for a user with no available resource (before mod_offline
  // stores it: the hook only looks).
  parley::Outcome on_offline_message(const parley::Event& event) {
    if (auto stanza = event.stanza(); stanza && worth_a_push(*stanza, false))
      notify(std::string(event.user()), std::string(stanza->attr("from").value_or("")), stanza->child_text("body"));
    return parley::Outcome::pass;
  }

  // A message waiting for a detached session (XEP-0198): its client sleeps.
  // The offline rule, and a room's message too (the session is a joined
  // occupant of a group chat).
  // Not while another session of the user is connected and active.
  parley::Outcome on_detached_stanza(const parley::Event& event) {
    auto stanza = event.stanza();
    if (!stanza || !worth_a_push(*stanza, true)) return parley::Outcome::pass;
    std::string user(event.user());
    if (!user_asleep(user)) {
      host().counter_add("awake");
      return parley::Outcome::pass;
    }
    notify(user, std::string(stanza->attr("from").value_or("")), stanza->child_text("body"));
    return parley::Outcome::pass;
  }

  // PARLEY_EVENT_WAKE_UP: another module says users will not see a stanza
  // now (mod_muc: room members with no joined session; mod_csi: an urgent
  // stanza for an inactive session). Each recipient of this host with
  // registrations is notified, as for an offline message, when every session
  // of theirs sleeps: a room member who is online elsewhere, not joined to
  // the room, is at their client and is not pushed.
  parley::Outcome on_wake_up(const parley::Event& event) {
    auto acc = event.acc();
    if (!acc || acc->name() != "wake" || acc->xmlns() != ns_wake) return parley::Outcome::pass;
    std::string_view reason = acc->attr("reason").value_or("");
    if (reason == "csi" && !notify_csi_inactive_) return parley::Outcome::pass;
    if (reason == "groupchat" && !notify_groupchat_) return parley::Outcome::pass;
    if (reason != "csi" && reason != "groupchat") return parley::Outcome::pass;
    std::optional<parley::ElementView> stanza = acc->child("message");
    if (!stanza || !worth_a_push(*stanza, true)) return parley::Outcome::pass;
    std::string sender(stanza->attr("from").value_or(""));
    std::string body = stanza->child_text("body");
    for (parley::ElementView u : acc->children()) {
      if (u.name() != "user") continue;
      auto prepared = host().prepare_jid(u.attr("jid").value_or(""));
      if (!prepared) continue;
      parley::Jid jid = parley::Jid::prepared(*prepared);
      if (jid.local().empty() || jid.domain() != domain_) continue;
      std::string user(jid.local());
      if (!user_asleep(user)) {
        host().counter_add("awake");
        continue;
      }
      notify(user, sender, body);
    }
    return parley::Outcome::pass;
  }

  // A new session, or a detached one resumed: the summary counts from here again.
  void on_session_bound(const parley::Event& event) {
    std::lock_guard lock(mu_);
    counts_.erase(std::string(event.user()));
  }

  // ---- which sessions sleep ----

  void on_detached(const parley::Event& event) { sleep_.set(event.session(), push::SleepTable::detached, true); }

  // A new stream begins active (XEP-0352 §5): the client says <inactive/>
  // again if it still is.
  void on_reattached(const parley::Event& event) {
    sleep_.set(event.session(), push::SleepTable::detached, false);
    sleep_.set(event.session(), push::SleepTable::inactive, false);
    on_session_bound(event);
  }

  void on_session_closed(const parley::Event& event) { sleep_.forget(event.session()); }

  // XEP-0352's nonzas, seen before mod_csi (40) takes them; passed on.
  parley::Outcome on_nonza(const parley::Event& event) {
    auto nonza = event.stanza();
    if (!nonza || nonza->xmlns() != ns_csi) return parley::Outcome::pass;
    if (nonza->name() == "inactive") sleep_.set(event.session(), push::SleepTable::inactive, true);
    else if (nonza->name() == "active") sleep_.set(event.session(), push::SleepTable::inactive, false);
    return parley::Outcome::pass;
  }

  // ---- XEP-0357 §8: remote disabling ----

  // An app server's affiliation change notice to the user's bare JID
  // (push_logic.hpp: AffiliationNotice) removes the registration of its
  // sender and that node. The sender is the stanza's 'from', which the
  // router vouches for (a component's is checked against its domain): a
  // notice can only remove its sender's own registrations. The message goes
  // on to the user's clients (or offline) as any: it is addressed to them,
  // and a pubsub notice from some other service may be theirs to read.
  parley::Outcome on_message_to_local(const parley::Event& event) {
    auto stanza = event.stanza();
    if (!stanza) return parley::Outcome::pass;
    auto pubsub = stanza->child("pubsub", push::ns_pubsub);
    if (!pubsub || stanza->attr("type").value_or("") == "error") return parley::Outcome::pass;
    std::string user(event.user());
    auto from = host().prepare_jid(stanza->attr("from").value_or(""));
    if (user.empty() || !from) return parley::Outcome::pass;
    std::string user_bare = user + "@" + domain_;
    auto consider = [&](std::optional<std::string_view> node, parley::ElementView affiliation) {
      std::string_view jid_attr = affiliation.attr("jid").value_or("");
      std::optional<std::string> jid = jid_attr.empty() ? std::optional<std::string>(std::string())
                                                        : host().prepare_jid(jid_attr);
      if (!jid) return;
      push::AffiliationNotice notice{node, *jid, affiliation.attr("affiliation").value_or("")};
      if (!push::notice_disables(notice, user_bare, domain_)) return;
      Registration reg{*from, std::string(*node), {}};
      registrations_.remove(user, reg.jid, reg.node, [this, user, reg](std::optional<uint64_t> removed) {
        if (!removed || *removed == 0) return;
        host().counter_add("remote_disabled", static_cast<int64_t>(*removed));
        host().info("push service " + reg.jid + " disabled node '" + reg.node + "' of " + user +
                    " (XEP-0357 affiliation change)");
        std::lock_guard lock(mu_);
        rate_->forget(device_key(user, reg));
      });
    };
    // XEP-0357's example: the node on <pubsub/>, the <affiliation/> in it.
    if (auto a = pubsub->child("affiliation", push::ns_pubsub)) consider(pubsub->attr("node"), *a);
    // XEP-0060 §8.9.4's shape: <affiliations node='...'><affiliation/></affiliations>.
    if (auto list = pubsub->child("affiliations", push::ns_pubsub)) {
      for (parley::ElementView a : list->children())
        if (a.name() == "affiliation" && a.xmlns() == push::ns_pubsub) consider(list->attr("node"), a);
    }
    return parley::Outcome::pass;
  }

  // Hot reload: the sleeping sessions go to the new code.
  parley::Result<std::string, std::string> save_state() override { return sleep_.save(); }
  parley::Result<void, std::string> restore_state(std::string_view bytes) override {
    if (!sleep_.restore(bytes)) return parley::unexpected(std::string("malformed mod_push state"));
    return {};
  }

  void on_user_removed(const parley::Event& event) {
    std::string user(event.user());
    {
      std::lock_guard lock(mu_);
      counts_.erase(user);
    }
    registrations_.clear(user);
  }

 private:
  // Whether every bound session of `user` (local part) sleeps, or none is bound.
  bool user_asleep(const std::string& user) const {
    std::vector<uint64_t> ids;
    for (const auto& s : host().user_sessions(user + "@" + domain_)) ids.push_back(s.id);
    return sleep_.all_asleep(ids);
  }

  // A message a phone should be woken for (push_logic.hpp: worth_waking): a
  // body, an encrypted payload, a call; not a chat state or a receipt alone.
  static bool worth_a_push(parley::ElementView stanza, bool groupchat) {
    if (stanza.name() != "message") return false;
    std::vector<push::ChildName> children;
    for (parley::ElementView c : stanza.children()) children.push_back(push::ChildName{c.xmlns(), c.name()});
    return push::worth_waking(stanza.attr("type").value_or("normal"), !stanza.child_text("body").empty(), children,
                              groupchat);
  }

  void notify(const std::string& user, std::string sender, std::string body) {
    push::Summary summary;
    {
      std::lock_guard lock(mu_);
      summary.message_count = ++counts_[user];
    }
    summary.last_sender = std::move(sender);
    if (include_body_) summary.last_body = std::move(body);
    if (!webhook_url_.empty()) {
      Registration hook;
      hook.webhook = true;
      schedule(user, std::move(hook), summary);
    }
    registrations_.list(user, [this, user, summary](std::optional<std::vector<Registration>> regs) {
      if (!regs) return;  // logged
      if (regs->empty()) {
        if (!webhook_url_.empty()) return;  // the webhook counts for every account
        std::lock_guard lock(mu_);
        counts_.erase(user);  // nobody to notify: nothing to count
        return;
      }
      for (Registration& reg : *regs) schedule(user, std::move(reg), summary);
    });
  }

  static std::string device_key(const std::string& user, const Registration& reg) {
    if (reg.webhook) return user + "\n\nwebhook";  // no JID is empty: no registration's key
    return user + '\n' + reg.jid + '\n' + reg.node;
  }

  // The per-device rate limit: now, or once the interval ends with the
  // latest summary (one held notification per device).
  void schedule(const std::string& user, Registration reg, const push::Summary& summary) {
    std::string key = device_key(user, reg);
    int64_t wait;
    {
      std::lock_guard lock(mu_);
      auto held = held_.find(key);
      if (held != held_.end()) {
        held->second = summary;  // the held one goes out with the latest count
        host().counter_add("rate_limited");
        return;
      }
      wait = rate_->delay(key, steady_ms());
      if (wait > 0) held_.emplace(key, summary);
    }
    if (wait == 0) return publish(user, std::move(reg), summary, 0);
    host().counter_add("rate_limited");
    host().start_timer(std::chrono::milliseconds(wait), [this, user, reg, key](uint64_t) {
      push::Summary latest;
      {
        std::lock_guard lock(mu_);
        auto it = held_.find(key);
        if (it == held_.end()) return;
        latest = std::move(it->second);
        held_.erase(it);
        rate_->delay(key, steady_ms());  // recorded as sent now
      }
      publish_if_enabled(user, reg, latest, 0);
    });
  }

  // A notification that waited (the rate limit, a retry's back-off): the
  // registration may have been disabled meanwhile, and a service that is not
  // enabled MUST NOT be published to (XEP-0357 §6).
  void publish_if_enabled(const std::string& user, const Registration& reg, const push::Summary& summary,
                          int attempt) {
    if (reg.webhook) return publish(user, reg, summary, attempt);
    registrations_.exists(user, reg.jid, reg.node, [this, user, reg, summary, attempt](std::optional<bool> there) {
      if (!there) return;  // logged
      if (!*there) {
        host().counter_add("dropped_disabled");  // disabled while it waited
        return;
      }
      publish(user, reg, summary, attempt);
    });
  }

  void publish(const std::string& user, Registration reg, push::Summary summary, int attempt) {
    if (reg.webhook) return publish_webhook(user, summary, attempt);
    auto iq = host().parse(push::notification_iq(domain_, reg.jid, reg.node, summary, reg.options));
    if (!iq) return host().error("mod_push: could not build a notification for " + reg.jid);
    bool sent = parley::send_iq(
        host(), std::move(*iq), std::chrono::milliseconds(iq_timeout_ms_),
        [this, user, reg, summary, attempt](std::optional<parley::ElementView> answer) {
          if (answer && answer->attr("type") == "result") {
            host().counter_add("sent");
            return;
          }
          push::ErrorAction action = push::ErrorAction::retry;  // no answer in time
          std::string condition = "timeout";
          if (answer) {
            std::string type;
            condition.clear();
            if (auto error = answer->child("error")) {
              type = std::string(error->attr("type").value_or(""));
              for (parley::ElementView c : error->children())
                if (c.xmlns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name() != "text") condition = c.name();
            }
            action = push::classify_error(type, condition);
          }
          on_failure(user, reg, summary, attempt, action, condition);
        });
    if (!sent) host().error("mod_push: the host refused to send a notification to " + reg.jid);
  }

  // The HTTP webhook: the summary as JSON, signed, POSTed on this loop.
  void publish_webhook(const std::string& user, const push::Summary& summary, int attempt) {
    parley::HttpClientRequest req;
    req.method = "POST";
    req.url = webhook_url_;
    req.body = push::webhook_json(user + "@" + domain_, summary, unix_seconds());
    req.headers.emplace_back("Content-Type", "application/json");
    req.headers.emplace_back(std::string(push::signature_header),
                             "sha256=" + push::hmac_sha256_hex(webhook_secret_, req.body));
    req.timeout = std::chrono::milliseconds(webhook_timeout_ms_);
    uint64_t id = parley::http_request(host(), req, [this, user, summary, attempt](const parley::HttpClientResponse& r) {
      push::WebhookAction action = push::classify_webhook(r.status, r.error);
      if (action == push::WebhookAction::done) {
        host().counter_add("webhook_sent");
        return;
      }
      std::string why = r.error.empty() ? "HTTP " + std::to_string(r.status) : r.error;
      if (action == push::WebhookAction::retry && attempt < max_retries_) {
        host().counter_add("retried");
        int64_t wait = push::backoff_ms(attempt + 1, retry_base_ms_);
        host().start_timer(std::chrono::milliseconds(wait),
                           [this, user, summary, attempt](uint64_t) { publish_webhook(user, summary, attempt + 1); });
        return;
      }
      host().counter_add("webhook_failed");
      host().info("webhook notification for " + user + " failed (" + why + ")");
    });
    if (id == 0) {
      host().counter_add("webhook_failed");
      host().warn("mod_push: the host refused the webhook request for " + user);
    }
  }

  void on_failure(const std::string& user, const Registration& reg, const push::Summary& summary, int attempt,
                  push::ErrorAction action, const std::string& condition) {
    if (action == push::ErrorAction::retry && attempt < max_retries_) {
      host().counter_add("retried");
      int64_t wait = push::backoff_ms(attempt + 1, retry_base_ms_);
      host().start_timer(std::chrono::milliseconds(wait), [this, user, reg, summary, attempt](uint64_t) {
        publish_if_enabled(user, reg, summary, attempt + 1);
      });
      return;
    }
    host().counter_add("failed");
    if (action != push::ErrorAction::remove) {
      host().info("push to " + reg.jid + " for " + user + " failed (" + condition + "); registration kept");
      return;
    }
    // XEP-0357 §7.1: the app server refused it: disabled.
    host().info("push service " + reg.jid + " node '" + reg.node + "' refused a notification for " + user + " (" +
                condition + "): registration removed");
    {
      std::lock_guard lock(mu_);
      rate_->forget(device_key(user, reg));
    }
    registrations_.remove(user, reg.jid, reg.node, [this](std::optional<uint64_t> removed) {
      if (removed && *removed > 0) host().counter_add("removed", static_cast<int64_t>(*removed));
    });
  }

  std::string domain_;
  bool include_body_ = false;
  int64_t max_registrations_ = 20;
  int64_t max_retries_ = 3;
  int64_t retry_base_ms_ = 2000;
  int64_t iq_timeout_ms_ = 30000;
  bool notify_csi_inactive_ = false;
  bool notify_groupchat_ = true;
  std::string webhook_url_;
  std::string webhook_secret_;
  int64_t webhook_timeout_ms_ = 10000;
  // Hooks run on every loop: the counts and the rate limit are shared.
  std::mutex mu_;
  std::map<std::string, int64_t> counts_;          // user -> messages notified since the last bind
  std::map<std::string, push::Summary> held_;      // device -> the notification waiting for its interval
  std::unique_ptr<push::RateLimit> rate_;
  push::SleepTable sleep_;
  push::Registrations registrations_;
};

}  // namespace

PARLEY_MODULE(ModPush, "mod_push", "1.0.0",
              parley::option("include_body", PARLEY_OPT_BOOL),
              parley::option("max_registrations", PARLEY_OPT_INT),
              parley::option("min_push_interval_ms", PARLEY_OPT_INT),
              parley::option("max_retries", PARLEY_OPT_INT),
              parley::option("retry_base_ms", PARLEY_OPT_INT),
              parley::option("iq_timeout_ms", PARLEY_OPT_INT),
              parley::option("notify_csi_inactive", PARLEY_OPT_BOOL),
              parley::option("notify_groupchat", PARLEY_OPT_BOOL),
              parley::option("webhook_url", PARLEY_OPT_STRING),
              parley::option("webhook_secret", PARLEY_OPT_STRING),
              parley::option("webhook_timeout_ms", PARLEY_OPT_INT),
              parley::iq_handler<&ModPush::on_iq>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_SET, "urn:xmpp:push:0"),
              // Before mod_offline (50), which takes the message.
              parley::hook<&ModPush::on_offline_message>(PARLEY_EVENT_OFFLINE_MESSAGE, 10),
              parley::hook<&ModPush::on_detached_stanza>(PARLEY_EVENT_DETACHED_STANZA),
              parley::hook<&ModPush::on_wake_up>(PARLEY_EVENT_WAKE_UP),
              parley::hook<&ModPush::on_session_bound>(PARLEY_EVENT_SESSION_BOUND),
              parley::hook<&ModPush::on_reattached>(PARLEY_EVENT_SESSION_REATTACHED),
              parley::hook<&ModPush::on_detached>(PARLEY_EVENT_SESSION_DETACHED),
              parley::hook<&ModPush::on_session_closed>(PARLEY_EVENT_SESSION_CLOSED),
              // Before mod_csi (40), which takes <inactive/> and <active/>.
              parley::hook<&ModPush::on_nonza>(PARLEY_EVENT_NONZA_IN, 30),
              parley::hook<&ModPush::on_message_to_local>(PARLEY_EVENT_MESSAGE_TO_LOCAL),
              parley::hook<&ModPush::on_user_removed>(PARLEY_EVENT_USER_REMOVED),
              parley::hook<&ModPush::on_account_disco>(PARLEY_EVENT_ACCOUNT_DISCO_INFO),
              // The registrations of before the typed stores: moved into the
              // map store at start (registrations.hpp), the table dropped after.
              parley::schema("CREATE TABLE mod_push_registrations (host TEXT NOT NULL, user TEXT NOT NULL, "
                             "jid TEXT NOT NULL, node TEXT NOT NULL, options TEXT NOT NULL, "
                             "PRIMARY KEY (host, user, jid, node))"))
