// mod_adhoc: XEP-0050 Ad-Hoc Commands on the server's domain and the XEP-0133
// service administration commands on it (admin_commands.cpp), for the
// administrators the configuration names (`admins:`, top level or per host).
//
//   disco#items node='http://jabber.org/protocol/commands': the commands the
//     requester may run (an admin: all of them; anyone else: none)
//   disco#info node=<command>: automation/command-node, commands + jabber:x:data
//     (forbidden for a requester who may not run it, XEP-0050 section 2.2)
//   <iq type='set'><command node=... action=...>: a session per run, kept on
//     the requester's loop for its full JID (module options max_sessions,
//     session_timeout), errors as XEP-0050 section 4.6 lists them
//   the message of the day (set-motd) at each user's next available presence,
//     once per user until it is set again (ejabberd's mod_announce): kept in
//     the keyval store (motd_store.cpp)
#include "mod_adhoc.hpp"

#include <chrono>
#include <functional>
#include <utility>

namespace parley::mod_adhoc {

namespace {

constexpr const char* ns_stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
constexpr const char* ns_info = "http://jabber.org/protocol/disco#info";
constexpr const char* ns_items = "http://jabber.org/protocol/disco#items";

constexpr int64_t kDefaultTimeoutSeconds = 600;
constexpr int64_t kDefaultMaxSessions = 10;

Form read_form(ElementView x) {
  Form form;
  form.type = std::string(x.attr("type").value_or(""));
  for (ElementView field : x.children()) {
    if (field.name() != "field" || field.xmlns() != ns_data) continue;
    auto var = field.attr("var");
    if (!var) continue;
    auto& values = form.fields[std::string(*var)];
    for (ElementView value : field.children())
      if (value.name() == "value" && value.xmlns() == ns_data) values.push_back(value.text());
  }
  return form;
}

}  // namespace

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Result<void, std::string> ModAdhoc::start() {
  if (!supports_admin(host())) return unexpected(std::string("needs a host with the service administration entries"));
  int64_t timeout = host().option_int("session_timeout").value_or(kDefaultTimeoutSeconds);
  if (timeout < 1 || timeout > 86400) return unexpected(std::string("session_timeout must be 1..86400 seconds"));
  int64_t max = host().option_int("max_sessions").value_or(kDefaultMaxSessions);
  if (max < 1 || max > 1000) return unexpected(std::string("max_sessions must be 1..1000"));
  if (!supports_account_admin(host()))
    return unexpected(std::string("needs a host with the account administration entries (h-admin)"));
  stores_.init(host());
  asks_.init(host());
  for (uint32_t loop = 0; loop < stores_.size(); ++loop)
    stores_.at(loop) = SessionStore(static_cast<size_t>(max), timeout * 1000);
  if (!host().supports_keyval()) return unexpected(std::string("this server has no keyval store"));
  domain_ = host().module_host();
  start_store();
  return {};
}

bool ModAdhoc::may_run(std::string_view requester, const CommandSpec& command) const {
  return !command.admin || is_admin(host(), requester);
}

// ---- disco (XEP-0050 section 2.2) ----

parley_result ModAdhoc::on_node_items(const Event& event) {
  auto reply = event.acc();
  if (!reply) return PARLEY_PASS;
  auto query = reply->child("query", ns_items);
  if (!query || query->attr("node").value_or("") != ns_commands) return PARLEY_PASS;
  // Only the commands this requester may run (the list may differ per requester).
  for (const CommandSpec& command : commands()) {
    if (!may_run(event.jid(), command)) continue;
    query->add_child("item", ns_items).set_attr("jid", domain_).set_attr("node", command.node).set_attr("name",
                                                                                                     command.name);
  }
  return PARLEY_HANDLED;
}

parley_result ModAdhoc::on_node_info(const Event& event) {
  auto reply = event.acc();
  if (!reply) return PARLEY_PASS;
  auto query = reply->child("query", ns_info);
  if (!query) return PARLEY_PASS;
  std::string node(query->attr("node").value_or(""));
  if (node == ns_commands) {
    query->add_child("identity", ns_info)
        .set_attr("category", "automation")
        .set_attr("type", "command-list")
        .set_attr("name", "Commands");
    return PARLEY_HANDLED;
  }
  const CommandSpec* command = find_command(node);
  if (command == nullptr) return PARLEY_PASS;
  if (!may_run(event.jid(), *command)) {
    // XEP-0050 section 2.2: SHOULD be forbidden; answered here, from the reply's addresses.
    Element error = reply->clone();
    error.set_attr("type", "error");
    ElementRef e = error.add_child("error", error.xmlns());
    e.set_attr("type", "auth");
    e.add_child("forbidden", ns_stanzas);
    host().route(std::move(error));
    return PARLEY_STOP;
  }
  query->add_child("identity", ns_info)
      .set_attr("category", "automation")
      .set_attr("type", "command-node")
      .set_attr("name", command->name);
  query->add_child("feature", ns_info).set_attr("var", ns_commands);
  query->add_child("feature", ns_info).set_attr("var", ns_data);
  return PARLEY_HANDLED;
}

// ---- execution (XEP-0050 section 2.4) ----

void ModAdhoc::on_command(const IqRequest& request) {
  auto command_el = request.payload();
  if (!command_el || command_el->name() != "command") return host().bounce(request.iq(), "bad-request");
  auto req = std::make_shared<Request>();
  req->iq = request.iq().clone();
  req->requester = std::string(request.from());
  std::string node(command_el->attr("node").value_or(""));
  req->command = find_command(node);
  if (req->command == nullptr) return reply_error(req, "item-not-found");
  if (!may_run(req->requester, *req->command)) {
    host().info("event=adhoc_forbidden requester=" + req->requester + " node=" + node);
    return reply_error(req, "forbidden");
  }
  std::optional<Action> action = parse_action(command_el->attr("action"));
  if (!action) return reply_error(req, "bad-request", "malformed-action");
  // XEP-0050 4.6: a locale it cannot accept (any language tag is: answers are in English).
  if (auto lang = command_el->attr("xml:lang"); lang && !acceptable_language(*lang))
    return reply_error(req, "bad-request", "bad-locale", "'" + std::string(*lang) + "' is not a language tag");
  std::optional<ElementView> x = command_el->child("x", ns_data);
  SessionStore& store = stores_.here();
  const int64_t now = steady_ms();
  const CommandSpec& spec = *req->command;
  auto sessionid = command_el->attr("sessionid");

  if (!sessionid) {
    store.expire(now);
    // A new run: only execute (and its synonyms next/complete) starts one.
    if (*action == Action::cancel) return reply_error(req, "bad-request", "bad-sessionid");
    if (*action == Action::prev) return reply_error(req, "bad-request", "bad-action");
    CommandSession* session = store.create(req->requester, spec.node, now);
    if (session == nullptr)
      return reply_error(req, "not-allowed", {}, "too many command sessions are open; complete or cancel one");
    req->session_id = session->id;
    host().info("event=adhoc_command requester=" + req->requester + " node=" + spec.node);
    if (spec.stages.empty()) return finish(req, Form());
    return render_stage(req, *session);
  }

  if (sessionid->empty()) return reply_error(req, "bad-request", "bad-sessionid");
  CommandSession* session = nullptr;
  switch (store.find(req->requester, *sessionid, now, session)) {
    case SessionStore::Found::unknown:
      return reply_error(req, "bad-request", "bad-sessionid");
    case SessionStore::Found::ended:
      return reply_error(req, "not-allowed", "session-expired");
    case SessionStore::Found::ok:
      break;
  }
  if (session->node != spec.node) return reply_error(req, "bad-request", "bad-sessionid");
  // Its completion is answering: nothing else until it did (not even cancel).
  if (session->busy) return reply_error(req, "bad-request", "bad-action", "the command is completing");
  req->session_id = session->id;
  const size_t last = spec.stages.empty() ? 0 : spec.stages.size() - 1;
  if (*action == Action::cancel) {
    store.end(session->id);
    return host().route(command_reply(req, "canceled"));
  }
  // A command without a form completed when it started; nothing to go on with.
  if (spec.stages.empty()) return reply_error(req, "bad-request", "bad-action");
  if (*action == Action::prev) {
    if (session->stage == 0) return reply_error(req, "bad-request", "bad-action");
    --session->stage;
    return render_stage(req, *session);
  }
  // execute is the stage's default: next before the last stage, complete on it.
  Action effective = *action;
  if (effective == Action::execute) effective = session->stage < last ? Action::next : Action::complete;
  if (effective == Action::next && session->stage >= last) return reply_error(req, "bad-request", "bad-action");
  if (effective == Action::complete && session->stage != last) return reply_error(req, "bad-request", "bad-action");
  if (!x) return reply_error(req, "bad-request", "bad-payload", "the stage's form was not submitted");
  Form form = read_form(*x);
  const StageSpec& stage = spec.stages[session->stage];
  if (auto wrong = check_submission(stage, form)) return reply_error(req, "bad-request", "bad-payload", *wrong);
  for (const FieldSpec& field : stage.fields)
    if (field.type != FieldType::hidden) session->values[field.var] = form.values(field.var);
  if (effective == Action::next) {
    ++session->stage;
    return render_stage(req, *session);
  }
  if (!session->offered.empty() || std::string_view(spec.node) == "urn:parley:admin#end-sessions")
    if (auto wrong = check_choices(form, "sessions", session->offered))
      return reply_error(req, "bad-request", "bad-payload", *wrong);
  finish(req, form);
}

Element ModAdhoc::command_reply(const RequestPtr& req, std::string_view status) const {
  Element reply = make_iq_result(req->iq);
  ElementRef command = reply.add_child("command", ns_commands);
  // XEP-0050 section 3.5: the responder says the language in use; it answers
  // in English whatever was asked (bad-locale is not used).
  command.set_attr("xml:lang", "en");
  command.set_attr("node", req->command->node);
  if (!req->session_id.empty()) command.set_attr("sessionid", req->session_id);
  command.set_attr("status", status);
  return reply;
}

void ModAdhoc::render_stage(const RequestPtr& req, CommandSession& session) {
  const CommandSpec& spec = *req->command;
  const StageSpec& stage = spec.stages[session.stage];
  const bool last = session.stage + 1 == spec.stages.size();
  auto reply = std::make_shared<Element>(command_reply(req, "executing"));
  ElementRef command = *reply->child("command", ns_commands);
  // XEP-0050 section 3.4: the allowed actions, and which one execute means.
  ElementRef actions = command.add_child("actions", ns_commands);
  actions.set_attr("execute", last ? "complete" : "next");
  if (session.stage > 0) actions.add_child("prev", ns_commands);
  actions.add_child(last ? "complete" : "next", ns_commands);
  ElementRef x = command.add_child("x", ns_data);
  x.set_attr("type", "form");
  x.add_child("title", ns_data).add_text(stage.title);
  x.add_child("instructions", ns_data).add_text(stage.instructions);
  for (const FieldSpec& field : stage.fields) {
    ElementRef f = x.add_child("field", ns_data);
    f.set_attr("type", field_type_name(field.type));
    f.set_attr("var", field.var);
    if (field.label != nullptr) f.set_attr("label", field.label);
    if (field.required) f.add_child("required", ns_data);
    if (field.type == FieldType::hidden) {
      f.add_child("value", ns_data).add_text(ns_admin);
      continue;
    }
    // Values submitted before are shown again (a stage reached with prev: XEP-0050 MAY).
    auto remembered = session.values.find(field.var);
    if (remembered != session.values.end() && field.type != FieldType::text_private)
      for (const std::string& v : remembered->second) f.add_child("value", ns_data).add_text(v);
    for (const auto& [label, value] : field.options) {
      ElementRef option = f.add_child("option", ns_data);
      option.set_attr("label", label);
      option.add_child("value", ns_data).add_text(value);
    }
  }
  fill_stage(req, session, x, [this, reply] { host().route(std::move(*reply)); });
}

void ModAdhoc::finish(const RequestPtr& req, const Form& last) {
  CommandSession* session = nullptr;
  SessionStore& store = stores_.here();
  if (store.find(req->requester, req->session_id, steady_ms(), session) != SessionStore::Found::ok || !session)
    return reply_error(req, "not-allowed", "session-expired");
  // A copy: the command may answer later, and the session ends when it does.
  session->busy = true;
  CommandSession copy = *session;
  complete_command(req, last, copy);
}

void ModAdhoc::reply_completed(const RequestPtr& req, std::string_view note, std::string_view note_type,
                               Element form) {
  stores_.here().end(req->session_id);
  Element reply = command_reply(req, "completed");
  ElementRef command = *reply.child("command", ns_commands);
  if (!note.empty()) command.add_child("note", ns_commands).set_attr("type", note_type).add_text(note);
  if (form) command.add_child(std::move(form));
  host().route(std::move(reply));
}

void ModAdhoc::reply_error(const RequestPtr& req, std::string_view condition, std::string_view specific,
                           std::string_view text) {
  // A completion that failed leaves the session to the admin, who may send the form again.
  CommandSession* session = nullptr;
  if (!req->session_id.empty() &&
      stores_.here().find(req->requester, req->session_id, steady_ms(), session) == SessionStore::Found::ok)
    session->busy = false;
  Element reply = make_iq_result(req->iq);
  reply.set_attr("type", "error");
  ElementRef error = reply.add_child("error", req->iq.xmlns());
  // XEP-0050 section 4.6's types (forbidden is cancel there), RFC 6120 8.3.3's for the rest.
  std::string_view type = "cancel";
  if (condition == "bad-request" || condition == "not-acceptable" || condition == "jid-malformed") type = "modify";
  error.set_attr("type", type);
  error.add_child(condition, ns_stanzas);
  if (!specific.empty()) error.add_child(specific, ns_commands);
  if (!text.empty()) error.add_child("text", ns_stanzas).add_text(text);
  host().route(std::move(reply));
}

Element ModAdhoc::result_form(std::string_view type) const {
  Element x = host().element("x", ns_data);
  x.set_attr("type", type);
  ElementRef f = x.add_child("field", ns_data);
  f.set_attr("type", "hidden").set_attr("var", "FORM_TYPE");
  f.add_child("value", ns_data).add_text(ns_admin);
  return x;
}

}  // namespace parley::mod_adhoc

namespace {
using parley::mod_adhoc::ModAdhoc;
}

PARLEY_MODULE(ModAdhoc, "mod_adhoc", "1.0.0",
              parley::option("session_timeout", PARLEY_OPT_INT),
              parley::option("max_sessions", PARLEY_OPT_INT),
              parley::iq_handler<&ModAdhoc::on_command>(PARLEY_IQ_SERVER, PARLEY_IQ_SET,
                                                        parley::mod_adhoc::ns_commands),
              parley::hook<&ModAdhoc::on_node_info>(PARLEY_EVENT_DISCO_NODE_INFO),
              parley::hook<&ModAdhoc::on_node_items>(PARLEY_EVENT_DISCO_NODE_ITEMS),
              parley::hook<&ModAdhoc::on_presence>(PARLEY_EVENT_PRESENCE_BROADCAST, 60),
              parley::hook<&ModAdhoc::on_user_removed>(PARLEY_EVENT_USER_REMOVED),
              parley::hook<&ModAdhoc::on_user_registered>(PARLEY_EVENT_USER_REGISTERED),
              parley::hook<&ModAdhoc::on_admin_answer>(PARLEY_EVENT_ADMIN_USER_ANSWER),
              parley::disco_feature(parley::mod_adhoc::ns_commands),
              // The tables of before the keyval store: moved there at start and
              // dropped after (motd_store.cpp); the steps stay (versions never go back).
              parley::schema("CREATE TABLE mod_adhoc_motd (host TEXT PRIMARY KEY, text TEXT NOT NULL)"),
              parley::schema("CREATE TABLE mod_adhoc_motd_sent (host TEXT NOT NULL, user TEXT NOT NULL, "
                             "PRIMARY KEY (host, user))"),
              // h-admin: set-welcome's message, sent to each new account.
              parley::schema("CREATE TABLE mod_adhoc_welcome (host TEXT PRIMARY KEY, text TEXT NOT NULL)"))
