// mod_register: XEP-0077 In-Band Registration.
//
//   before authentication (PARLEY_IQ_PREAUTH; the stream feature
//   <register xmlns='http://jabber.org/features/iq-register'/>):
//     get -> the fields (<instructions/>, <username/>, <password/>) and the same
//            as a XEP-0004 form; service-unavailable when allow_registration is off
//     set -> creates the account (plain fields or the submitted form), answered
//            on the stream itself; per client address a burst of
//            registration_burst accounts, then one more per registration_timeout
//            seconds (policy-violation, type wait, saying when to try again)
//   a logged-in user, to the server or to their own bare JID (or no 'to'):
//     get -> <registered/> and their username
//     set <username/><password/> -> changes their password (section 3.3)
//     set <remove/>              -> removes their account; the result goes out
//                                   before the core closes the account's streams
//
// Errors carry the legacy code too (section 9 asks for both styles), and none
// echoes the request: it holds a password (section 3.3 "SHOULD NOT return the
// original XML").
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/module.hpp"
#include "rate_limiter.hpp"
#include "register_logic.hpp"

namespace {

namespace reg = parley::mod_register;

constexpr const char* ns_register = "jabber:iq:register";
constexpr const char* ns_data = "jabber:x:data";
constexpr const char* ns_stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
// A household or an office behind one address may register a few accounts in
// a row; a script registering hundreds gets one per ten minutes after those.
constexpr int64_t default_registration_timeout = 600;  // seconds per registration past the burst
constexpr int64_t default_registration_burst = 3;

constexpr const char* instructions_register = "Choose a username and password to register with this server.";
constexpr const char* instructions_registered =
    "You are registered. Send a new <password/> with your <username/> to change it, or <remove/> to cancel "
    "your registration.";

class ModRegister : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    policy_.allow_registration = host().option_bool("allow_registration").value_or(false);
    policy_.allow_password_change = host().option_bool("allow_password_change").value_or(true);
    policy_.allow_remove = host().option_bool("allow_remove").value_or(true);
    int64_t min_length = host().option_int("min_password_length").value_or(0);
    if (min_length < 0) return parley::unexpected(std::string("min_password_length must not be negative"));
    policy_.min_password_length = static_cast<std::size_t>(min_length);
    int64_t timeout = host().option_int("registration_timeout").value_or(default_registration_timeout);
    if (timeout < 0) return parley::unexpected(std::string("registration_timeout must not be negative"));
    int64_t burst = host().option_int("registration_burst").value_or(default_registration_burst);
    if (burst < 1 || burst > 1000) return parley::unexpected(std::string("registration_burst must be 1..1000"));
    if (!host().supports_1_2()) return parley::unexpected(std::string("needs a host with module ABI 1.2 (post)"));
    limiters_.init(host());
    for (uint32_t loop = 0; loop < limiters_.size(); ++loop) {
      limiters_.at(loop).set_window(std::chrono::seconds(timeout));
      limiters_.at(loop).set_burst(static_cast<uint32_t>(burst));
    }
    // XEP-0077 §4: the feature tells clients registration is possible; it is not when closed.
    host().offer_preauth_features(policy_.allow_registration);
    domain_ = host().module_host();
    return {};
  }

  // Hot reload keeps the rate limit's running windows: every loop's, in
  // one "v1" text. Both run while no entry point of the module runs (the
  // loops' limiters are read and filled from here without a race); each
  // address goes back to the loop that owns it.
  parley::Result<std::string, std::string> save_state() override {
    std::string out = "v1\n";
    for (uint32_t loop = 0; loop < limiters_.size(); ++loop)
      out += limiters_.at(loop).save(reg::RateLimiter::Clock::now()).substr(3);
    return out;
  }
  parley::Result<void, std::string> restore_state(std::string_view bytes) override {
    if (bytes.empty()) return {};
    if (bytes.substr(0, 3) != "v1\n") return parley::unexpected(std::string("unreadable mod_register state"));
    std::vector<std::string> parts(limiters_.size(), "v1\n");
    for (std::string_view rest = bytes.substr(3); !rest.empty();) {
      std::size_t eol = rest.find('\n');
      if (eol == std::string_view::npos) return parley::unexpected(std::string("unreadable mod_register state"));
      std::string_view line = rest.substr(0, eol + 1);
      rest.remove_prefix(eol + 1);
      std::size_t space = line.rfind(' ');
      if (space == std::string_view::npos) return parley::unexpected(std::string("unreadable mod_register state"));
      parts[owner_of(std::string(line.substr(0, space)))] += line;
    }
    for (uint32_t loop = 0; loop < limiters_.size(); ++loop)
      if (!limiters_.at(loop).restore(parts[loop], reg::RateLimiter::Clock::now()))
        return parley::unexpected(std::string("unreadable mod_register state"));
    return {};
  }

  // A stream that has not authenticated.
  void on_preauth(const parley::IqRequest& request) {
    Reply reply{request.iq(), request.session(), true};
    auto query = request.payload();
    if (!query || query->name() != "query") return send_error(reply, "bad-request", "expected <query/>");
    if (request.type() == "get") return answer_get(reply, reg::Requester::unauthenticated, {});
    reg::Decision d = reg::decide_set(read_query(*query), reg::Requester::unauthenticated, {}, domain_, policy_);
    if (d.is_error()) return send_error(reply, d.condition, d.text);
    register_account(reply, std::move(d));
  }

  // A logged-in user, to the server (PARLEY_IQ_SERVER) or to a bare JID
  // (PARLEY_IQ_ACCOUNT; the core makes a missing 'to' the sender's own).
  void on_authenticated(const parley::IqRequest& request) {
    Reply reply{request.iq(), request.session(), false};
    auto query = request.payload();
    if (!query || query->name() != "query") return send_error(reply, "bad-request", "expected <query/>");
    std::string user;
    reg::Requester requester = classify(request, user);
    if (request.type() == "get") return answer_get(reply, requester, user);
    reg::QueryContent content = read_query(*query);
    // The <username/> of a password change names the account as the client
    // typed it ("Alice" or "alice@Example.org"): compared in the server's
    // preparation of the address, as the account itself was named.
    if (content.username && !content.username->empty()) {
      const std::string& given = *content.username;
      auto jid = parley::Jid::parse(host(), given.find('@') == std::string::npos ? given + "@" + domain_ : given);
      if (jid && jid->has_local() && jid->is_bare() && jid->domain() == domain_) content.username = jid->local();
    }
    reg::Decision d = reg::decide_set(content, requester, user, domain_, policy_);
    if (d.is_error()) return send_error(reply, d.condition, d.text);
    if (d.kind == reg::Decision::Kind::change_password) return change_password(reply, std::move(d));
    if (d.kind == reg::Decision::Kind::remove_account) return remove_account(reply, std::move(d));
    send_error(reply, "bad-request");  // a registration from a logged-in stream is classified away above
  }

 private:
  // Where an answer goes: the request (kept beyond the call when needed) and,
  // before authentication, the stream to write it on.
  struct Reply {
    parley::ElementView iq;
    parley_session_id session;
    bool preauth;
  };
  struct HeldReply {
    std::shared_ptr<parley::Element> iq;
    parley_session_id session;
    bool preauth;
    Reply view() const { return Reply{*iq, session, preauth}; }
  };
  HeldReply hold(const Reply& r) const {
    return HeldReply{std::make_shared<parley::Element>(r.iq.clone()), r.session, r.preauth};
  }

  reg::Requester classify(const parley::IqRequest& request, std::string& user) const {
    // 'from' and 'to' are prepared by the server.
    const parley::Jid from = parley::Jid::prepared(request.from()).bare();
    if (!from.has_local() || from.domain() != domain_) return reg::Requester::foreign;
    user = from.local();
    const parley::Jid to = parley::Jid::prepared(request.to());
    if (to.has_local() && to != from) return reg::Requester::other_account;
    return reg::Requester::own_account;
  }

  static reg::QueryContent read_query(parley::ElementView query) {
    reg::QueryContent q;
    for (parley::ElementView child : query.children()) {
      ++q.children;
      std::string_view name = child.name();
      std::string_view xmlns = child.xmlns();
      if (xmlns == ns_register) {
        if (name == "remove") q.remove = true;
        else if (name == "username") q.username = child.text();
        else if (name == "password") q.password = child.text();
      } else if (xmlns == ns_data && name == "x" && !q.form) {
        q.form = read_form(child);
      }
    }
    return q;
  }

  static reg::DataForm read_form(parley::ElementView x) {
    reg::DataForm form;
    form.type = std::string(x.attr("type").value_or(""));
    for (parley::ElementView field : x.children()) {
      if (field.name() != "field") continue;
      reg::FormField f;
      f.var = std::string(field.attr("var").value_or(""));
      for (parley::ElementView value : field.children())
        if (value.name() == "value") f.values.push_back(value.text());
      form.fields.push_back(std::move(f));
    }
    return form;
  }

  void answer_get(const Reply& reply, reg::Requester requester, const std::string& user) {
    reg::GetDecision d = reg::decide_get(requester, policy_);
    if (d.answer == reg::GetAnswer::error) return send_error(reply, d.condition, d.text);
    parley::Element result = make_result(reply);
    parley::ElementRef query = result.add_child("query", ns_register);
    if (d.answer == reg::GetAnswer::registered) {
      query.add_child("registered", ns_register);
      query.add_child("instructions", ns_register).add_text(instructions_registered);
      query.add_child("username", ns_register).add_text(user);
      query.add_child("password", ns_register);
    } else {
      query.add_child("instructions", ns_register).add_text(instructions_register);
      query.add_child("username", ns_register);
      query.add_child("password", ns_register);
      add_form(query);
    }
    send(reply, std::move(result));
  }

  // XEP-0077 section 5 with the FORM_TYPE of section 14.5.1.
  void add_form(parley::ElementRef query) const {
    parley::ElementRef x = query.add_child("x", ns_data);
    x.set_attr("type", "form");
    x.add_child("title", ns_data).add_text("Account Registration");
    x.add_child("instructions", ns_data).add_text(instructions_register);
    parley::ElementRef type = x.add_child("field", ns_data);
    type.set_attr("type", "hidden").set_attr("var", "FORM_TYPE");
    type.add_child("value", ns_data).add_text(reg::form_type_register);
    parley::ElementRef username = x.add_child("field", ns_data);
    username.set_attr("type", "text-single").set_attr("label", "Username").set_attr("var", "username");
    username.add_child("required", ns_data);
    parley::ElementRef password = x.add_child("field", ns_data);
    password.set_attr("type", "text-private").set_attr("label", "Password").set_attr("var", "password");
    password.add_child("required", ns_data);
  }

  // The client's address is rate-limited on the loop that owns it; the
  // account is created from the stream's loop, where the answer is written.
  void register_account(const Reply& reply, reg::Decision d) {
    std::string address = host().session_peer_address(reply.session).value_or("");
    HeldReply held = hold(reply);
    if (address.empty()) {
      host().warn("no client address for a registration: it is not rate-limited");
      return create(held, std::move(d), address);
    }
    auto decision = std::make_shared<reg::Decision>(std::move(d));
    on_owner(address, [this, held, decision, address] {
      auto now = reg::RateLimiter::Clock::now();
      reg::RateLimiter& limiter = limiters_.here();
      const bool acquired = limiter.try_acquire(address, now);
      const int64_t wait = acquired ? 0 : limiter.wait_for(address, now).count();
      const bool posted = parley::post_to_session(host(), held.session, [this, held, decision, address, acquired,
                                                                         wait] {
        if (acquired) return create(held, std::move(*decision), address);
        host().counter_add("registrations_refused_rate");
        // A rule of this server, not a lack of resources: policy-violation
        // (RFC 6120 §8.3.3.12), of type wait since the same request succeeds
        // later, and a text saying when (clients show the text; with
        // resource-constraint some said the login failed).
        auto minutes = (wait + 59) / 60;
        send_error(held.view(), "policy-violation",
                   "Too many accounts were registered from your address; try again in " +
                       std::to_string(minutes < 1 ? 1 : minutes) + (minutes > 1 ? " minutes" : " minute"),
                   "wait");
      });
      if (!posted && acquired) limiter.release(address);  // the stream is gone
    });
  }

  void create(const HeldReply& held, reg::Decision d, const std::string& address) {
    std::string user = d.username;
    host().create_account(d.username, d.password, [this, held, address, user](std::string_view condition) {
      if (condition.empty()) {
        if (!address.empty())
          on_owner(address, [this, address] { limiters_.here().commit(address, reg::RateLimiter::Clock::now()); });
        host().counter_add("registrations");
        host().info("registered " + user + "@" + domain_ + " in-band from " +
                    (address.empty() ? std::string("an unknown address") : address));
        return send(held.view(), make_result(held.view()));
      }
      if (!address.empty()) on_owner(address, [this, address] { limiters_.here().release(address); });
      send_error(held.view(), account_condition(condition), account_text(condition));
    });
  }

  uint32_t owner_of(const std::string& address) const {
    return static_cast<uint32_t>(std::hash<std::string>{}(address) % limiters_.size());
  }
  // Runs `fn` on the loop that owns `address`'s limiter: now if this is it.
  void on_owner(const std::string& address, std::function<void()> fn) {
    const uint32_t owner = owner_of(address);
    if (parley::current_loop(host()) == static_cast<int32_t>(owner)) return fn();
    if (!parley::post(host(), owner, std::move(fn))) host().error("cannot post to loop " + std::to_string(owner));
  }

  void change_password(const Reply& reply, reg::Decision d) {
    HeldReply held = hold(reply);
    std::string user = d.username;
    host().set_password(d.username, d.password, [this, held, user](std::string_view condition) {
      if (condition.empty()) {
        host().counter_add("password_changes");
        host().info("password of " + user + "@" + domain_ + " changed in-band");
        return send(held.view(), make_result(held.view()));
      }
      send_error(held.view(), account_condition(condition), account_text(condition));
    });
  }

  void remove_account(const Reply& reply, reg::Decision d) {
    HeldReply held = hold(reply);
    std::string user = d.username;
    host().remove_account(d.username, [this, held, user](std::string_view condition) {
      if (condition.empty()) {
        host().counter_add("removals");
        host().info("account " + user + "@" + domain_ + " removed in-band");
        return send(held.view(), make_result(held.view()));
      }
      // The account the stream authenticated as is gone already: section 3.2's
      // registration-required ("was not previously registered").
      if (condition == "item-not-found") return send_error(held.view(), "registration-required");
      send_error(held.view(), account_condition(condition), account_text(condition));
    });
  }

  // The host's account conditions, as this XEP's answers.
  static std::string account_condition(std::string_view condition) {
    if (condition == "conflict" || condition == "jid-malformed" || condition == "not-acceptable")
      return std::string(condition);
    if (condition == "item-not-found") return "item-not-found";
    return "internal-server-error";
  }
  static std::string account_text(std::string_view condition) {
    if (condition == "conflict") return "the username is already registered";
    if (condition == "jid-malformed") return "the username is not a valid JID localpart";
    if (condition == "not-acceptable") return "the password is not acceptable";
    return {};
  }

  parley::Element make_result(const Reply& reply) const {
    if (!reply.preauth) return parley::make_iq_result(reply.iq);
    // Before authentication the client has no address to send to.
    parley::Element r = host().element("iq", reply.iq.xmlns());
    r.set_attr("type", "result");
    if (auto id = reply.iq.attr("id")) r.set_attr("id", *id);
    if (auto to = reply.iq.attr("to")) r.set_attr("from", *to);
    return r;
  }

  void send_error(const Reply& reply, std::string_view condition, std::string_view text = {},
                  std::string_view type = {}) {
    parley::Element r = make_result(reply);
    r.set_attr("type", "error");
    reg::ErrorShape shape = reg::error_shape(condition);
    parley::ElementRef error = r.add_child("error", reply.iq.xmlns());
    error.set_attr("type", type.empty() ? shape.type : type);
    if (shape.code != 0) error.set_attr("code", std::to_string(shape.code));
    error.add_child(condition, ns_stanzas);
    if (!text.empty()) {
      error.add_child("text", ns_stanzas).add_text(text);
    }
    send(reply, std::move(r));
  }

  void send(const Reply& reply, parley::Element&& stanza) {
    if (!reply.preauth) return host().route(std::move(stanza));
    if (!host().session_reply(reply.session, std::move(stanza)))
      host().debug("a registration answer found its stream gone");
  }

  reg::Policy policy_;
  parley::PerLoop<reg::RateLimiter> limiters_;  // each loop's addresses, touched by that loop only
  std::string domain_;
};

}  // namespace

PARLEY_MODULE(ModRegister, "mod_register", "1.0.0",
              parley::option("allow_registration", PARLEY_OPT_BOOL),
              parley::option("registration_timeout", PARLEY_OPT_INT),
              parley::option("registration_burst", PARLEY_OPT_INT),
              parley::option("min_password_length", PARLEY_OPT_INT),
              parley::option("allow_password_change", PARLEY_OPT_BOOL),
              parley::option("allow_remove", PARLEY_OPT_BOOL),
              parley::iq_handler<&ModRegister::on_preauth>(PARLEY_IQ_PREAUTH, PARLEY_IQ_GET | PARLEY_IQ_SET,
                                                           ns_register),
              parley::iq_handler<&ModRegister::on_authenticated>(PARLEY_IQ_SERVER, PARLEY_IQ_GET | PARLEY_IQ_SET,
                                                                 ns_register),
              parley::iq_handler<&ModRegister::on_authenticated>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET | PARLEY_IQ_SET,
                                                                 ns_register),
              parley::disco_feature(ns_register),
              parley::preauth_feature("<register xmlns='http://jabber.org/features/iq-register'/>"))
