// Resource binding, nonzas and the stanzas of a bound c2s stream (RFC 6120
// §7-§8, RFC 6121 §4 for the session's own presence).
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "core/addr/jid_cache.hpp"
#include "core/c2s/c2s_stream.hpp"
#include "core/modules/hooks.hpp"
#include "core/modules/module_instance.hpp"
#include "core/router/router.hpp"
#include "core/server/server_context.hpp"
#include "core/session/session.hpp"
#include "core/stanza/namespaces.hpp"
#include "core/stanza/stanza_errors.hpp"
#include "core/stanza/stanza_rules.hpp"

namespace parley {

namespace {

bool is_stanza(const xml::Element& e) {
  return e.xmlns() == ns::client && (e.name() == "message" || e.name() == "presence" || e.name() == "iq");
}

std::string random_resource() {
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string raw = sasl::random_bytes(10);
  std::string out = "parley-";
  for (unsigned char c : raw) out.push_back(digits[c % 36]);
  return out;
}

}  // namespace

void C2sStream::reply_error(const xml::Element& stanza, std::string_view condition, std::string_view text) {
  if (is_error_stanza(stanza)) return;
  xml::Element reply = make_stanza_error(stanza, condition, text);
  // An error about the client's own stanza comes from the server on its behalf.
  reply.remove_attr("from");
  if (stanza.has_attr("to")) reply.set_attr("from", std::string(stanza.attr("to")));
  reply.remove_attr("to");
  if (!jid().empty()) reply.set_attr("to", jid().full());
  if (state_ == State::online) {
    session_->send_stanza(std::move(reply));  // through the outgoing filters
    return;
  }
  send_element(reply);
}

void C2sStream::handle_bind_state(xml::Element&& element) {
  if (element.xmlns() == ns::client && element.name() == "iq" && element.attr("type") == "set" &&
      element.find_child("bind", ns::bind) != nullptr) {
    handle_bind(element);
    return;
  }
  if (element.xmlns() == ns::client && element.name() == "iq" && handle_session_iq(element)) return;
  // A module's nonza instead of binding (XEP-0198 <resume/>).
  if (!(element.xmlns() == ns::client && element.name() == "iq") && handle_nonza(element)) return;
  // RFC 6120 §7.1: nothing but binding before a resource is bound.
  close_with_stream_error("not-authorized");
}

void C2sStream::handle_bind(const xml::Element& iq) {
  if (!iq.has_attr("id")) {
    reply_error(iq, "bad-request");
    return;
  }
  const xml::Element* bind = iq.find_child("bind", ns::bind);
  std::string requested = bind->child_text("resource");
  std::string resource;
  if (requested.empty()) {
    resource = random_resource();
  } else {
    auto prepared = resourceprep(requested);
    if (!prepared) {
      reply_error(iq, "bad-request", "Invalid resource");
      return;
    }
    resource = std::move(*prepared);
  }
  Jid full = jid().bare().with_resource(resource);
  SessionId id = session_->id();
  auto result = ctx_.sessions.bind(full.bare_str(), resource, id, ctx_.config.limits.max_sessions_per_user);
  if (!result.ok) {
    reply_error(iq, "resource-constraint", "Too many sessions for this account");
    return;
  }
  state_ = State::online;
  arm_timer(0);  // no deadline once bound: the timer handle goes
  // The account exists: once its sessions are gone, what comes for it goes to
  // the offline rules at once, with no storage round trip to ask again (a
  // round trip from one loop could let a later stanza from another overtake).
  ctx_.known_accounts.add(full.bare_str());
  session_->bind(std::move(full));
  xml::Element reply = make_iq_result(iq);
  reply.remove_attr("from");
  reply.remove_attr("to");
  reply.add_child("bind", std::string(ns::bind)).add_child("jid", std::string(ns::bind)).add_text(jid().full());
  send_element(reply);
  spdlog::debug("c2s {}: bound {}", id, jid().full());
  if (result.replaced != 0) {
    // RFC 6120 §7.7.2.2: the new session wins; the old one gets <conflict/>
    // (a detached one ends at once). After our result: what waited for a
    // detached one is routed again at once, maybe to this very resource.
    SessionId old = result.replaced;
    unsigned target = loop_of(old);
    if (target < ctx_.loops.size()) {
      LoopContext* loop = ctx_.loops[target].get();
      auto kick = [loop, old] {
        if (Session* previous = loop->find(old)) previous->close("conflict", "Replaced by new connection");
      };
      if (target == loop_->loop.index())
        kick();
      else
        loop->loop.post(std::move(kick));
    }
  }
  session_->run_hook(PARLEY_EVENT_SESSION_BOUND, nullptr);
}

bool C2sStream::handle_nonza(xml::Element& element) {
  if (!loop_->modules || loop_->modules->hooks_for(PARLEY_EVENT_NONZA_IN, host()) == nullptr) return false;
  parley_result taken = session_->run_hook(PARLEY_EVENT_NONZA_IN, &element);
  return taken == PARLEY_HANDLED || taken == PARLEY_STOP;
}

bool C2sStream::handle_session_iq(const xml::Element& iq) {
  // RFC 3921 session establishment: a no-op kept for old clients.
  if (iq.attr("type") != "set" || iq.find_child("session", ns::session) == nullptr) return false;
  xml::Element reply = make_iq_result(iq);
  reply.remove_attr("from");
  reply.remove_attr("to");
  send_element(reply);
  return true;
}

bool C2sStream::handle_preauth_iq(xml::Element& iq) {
  // Offered only where the stream could authenticate (XEP-0077 §3: the same
  // place as the SASL mechanisms).
  if (!conn_.secure() && listener_.starttls_required) return false;
  if (iq.xmlns() != ns::client) return false;
  std::string_view type = iq.attr("type");
  if (type != "get" && type != "set") return false;
  const xml::Element* payload = iq.first_child();
  if (payload == nullptr) return false;
  const IqEntry* entry = loop_->modules->iq_for(host(), PARLEY_IQ_PREAUTH, type, payload->xmlns());
  if (entry == nullptr) return false;
  if (!conn_.secure() && !listener_.allow_plain_without_tls) {
    // A pre-auth iq sends a password in the clear (XEP-0077 registration), so
    // it goes where PLAIN goes: not over an unencrypted stream unless the
    // listener opts in. policy-violation, as Prosody answers registration
    // without encryption; type modify: after STARTTLS the same request works.
    reply_error(iq, "policy-violation", "Encryption is required (use STARTTLS)");
    return true;
  }
  if (!valid_iq(iq)) {
    reply_error(iq, "bad-request");
    return true;
  }
  // Nothing the client claims about itself counts before authentication.
  iq.remove_attr("from");
  parley_iq_request request{sizeof(parley_iq_request), reinterpret_cast<const parley_element*>(&iq), to_pstr({}),
                            to_pstr({}), session_->id()};
  int result;
  try {
    result = entry->fn(entry->instance->state, &request);
  } catch (...) {
    result = PARLEY_ERROR;
  }
  if (result == PARLEY_HANDLED || result == PARLEY_STOP) return true;
  if (result == PARLEY_PASS) {
    reply_error(iq, "service-unavailable");
    return true;
  }
  spdlog::error("module {} failed on a pre-authentication iq for {}", entry->instance->library->name,
                payload->xmlns());
  reply_error(iq, "internal-server-error");
  return true;
}

void C2sStream::handle_stanza(xml::Element&& stanza) { process_stanza(std::move(stanza)); }

void C2sStream::wait_for_modules(xml::Element&& element) {
  ModulePause& pause = loop_->module_pause;
  // A hold like a module's: reading stops, this stanza waits first in line
  // (those already waiting came after it), and the pause's end releases it,
  // in order with the loop's other held-back events (this session's
  // SESSION_BOUND before its first stanza).
  hold_input();
  if (!waiting_) waiting_ = std::make_unique<Waiting>();
  waiting_->elements.push_front(std::move(element));
  pause.defer([loop = loop_, id = session_->id()] {
    if (Session* session = loop->find(id)) session->release_input();
  });
}

void C2sStream::process_stanza(xml::Element&& stanza) {
  if (state_ != State::online) return;
  if (!is_stanza(stanza)) {
    if (handle_nonza(stanza)) return;
    close_with_stream_error("unsupported-stanza-type");
    return;
  }
  // Handled from here, whatever becomes of it (an error included): XEP-0198 h.
  session_->count_stanza_in();
  const std::string& name = stanza.name();
  std::string to(stanza.attr("to"));
  Jid to_jid;  // prepared once here; the router reuses it
  if (!to.empty()) {
    // Through the loop's cache of prepared addresses: a contact written to
    // before is not prepared again.
    bool canonical = false;
    auto parsed = jid_cache::parse(to, &canonical);
    if (!parsed) {
      reply_error(stanza, "jid-malformed");
      return;
    }
    to_jid = std::move(*parsed);
    // Hooks see the address as the router uses it: prepared once, here (a
    // module need not run stringprep again on every stanza).
    if (!canonical) {
      std::string prepared = to_jid.full();
      stanza.set_attr("to", prepared);
      to = std::move(prepared);
    }
  }
  if (!valid_presence_type(stanza)) {
    reply_error(stanza, "bad-request", "Unknown presence type");
    return;
  }
  if (name == "iq") {
    if (!valid_iq(stanza)) {
      reply_error(stanza, "bad-request");
      return;
    }
    if (stanza.find_child("bind", ns::bind) != nullptr) {
      reply_error(stanza, "not-allowed", "A resource is already bound");
      return;
    }
    if (to.empty() && handle_session_iq(stanza)) return;
  }
  // RFC 6120 §8.1.2.1: the server stamps the sender's full JID, whatever the
  // client wrote (no spoofing).
  const Jid& self = jid();
  stanza.set_attr("from", self.full());

  parley_result filtered = session_->run_hook(PARLEY_EVENT_STANZA_IN, &stanza);
  if (filtered == PARLEY_HANDLED) return;
  if (filtered == PARLEY_ERROR) {
    reply_error(stanza, "internal-server-error");
    return;
  }

  if (name == "presence" && to.empty()) {
    handle_own_presence(std::move(stanza));
    return;
  }
  if (name == "message" && to.empty()) {
    // §10.3.1: a message without 'to' is for the sender's own bare JID.
    stanza.set_attr("to", self.bare_str());
    to_jid = self.bare();
  } else if (stanza.attr("to") != to) {
    // A filter hook readdressed it: prepare the new address.
    ctx_.router->route(std::move(stanza), loop_->loop.index());
    return;
  }
  ctx_.router->route(std::move(stanza), self, to_jid, loop_->loop.index());
}

void C2sStream::handle_own_presence(xml::Element&& presence) {
  std::string_view type = presence.attr("type");
  if (type.empty()) {
    int priority = 0;
    std::string text = presence.child_text("priority");
    if (!text.empty()) {
      char* end = nullptr;
      long value = std::strtol(text.c_str(), &end, 10);
      if (end == text.c_str() || *end != '\0' || value < -128 || value > 127) {
        reply_error(presence, "bad-request", "Priority must be an integer from -128 to 127");
        return;
      }
      priority = static_cast<int>(value);
    }
    session_->set_presence(true, priority);
  } else if (type == "unavailable") {
    session_->set_presence(false, session_->priority());
  } else {
    // probe and subscription management without 'to' mean nothing here;
    // subscriptions are the presence module's (RFC 6121 §3).
    return;
  }
  parley_result hooked = session_->run_hook(PARLEY_EVENT_PRESENCE_BROADCAST, &presence);
  if (hooked == PARLEY_HANDLED) return;
  if (hooked == PARLEY_ERROR) {
    reply_error(presence, "internal-server-error");
    return;
  }
  // RFC 6121 §4.2.2/§4.5.2: the user's own available resources, this one
  // included, see the broadcast. Contacts get it from the presence module.
  const Jid& self = jid();
  SessionId id = session_->id();
  for (const SessionRef& ref : ctx_.sessions.sessions_of(self.bare_str())) {
    if (!ref.available && ref.id != id) continue;
    xml::Element copy = presence;
    copy.set_attr("to", self.bare().with_resource(ref.resource).full());
    ctx_.router->deliver_to_session(ref.id, std::make_shared<Delivery>(std::move(copy)), loop_->loop.index());
  }
}

}  // namespace parley
