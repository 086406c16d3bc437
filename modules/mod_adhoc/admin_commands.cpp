// mod_adhoc: what each XEP-0133 command does once its form is submitted
// (section 4), through the host's account, session and shutdown entries.
// Errors named by XEP-0133 section 5 (conflict, forbidden, not-allowed, ...)
// are stanza errors; a command over several JIDs that fails for some of them
// completes with a note of type error (XEP-0050 section 3.6).
#include <algorithm>
#include <chrono>
#include <memory>
#include <set>

#include "mod_adhoc.hpp"

namespace parley::mod_adhoc {

namespace {

constexpr const char* p = "http://jabber.org/protocol/admin#";

bool is(const RequestPtr& req, const char* suffix) { return std::string_view(req->command->node) == std::string(p) + suffix; }

void add_value_field(ElementRef x, const char* var, const char* label, const std::vector<std::string>& values,
                     const char* type = nullptr) {
  ElementRef f = x.add_child("field", ns_data);
  if (type != nullptr) f.set_attr("type", type);
  f.set_attr("label", label).set_attr("var", var);
  for (const std::string& v : values) f.add_child("value", ns_data).add_text(v);
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

// One account after the other; the results are gathered for the note.
struct ModAdhoc::DeleteProgress {
  std::vector<std::string> pending, done, failed;
  std::string last_condition;
};

void ModAdhoc::complete_command(const RequestPtr& req, const Form& form, const CommandSession& session) {
  if (is(req, "add-user")) return add_user(req, form);
  if (is(req, "delete-user")) {
    auto locals = accounts_of_host(req, form.values("accountjids"), false);
    if (!locals) return;
    auto progress = std::make_shared<DeleteProgress>();
    progress->pending.assign(locals->rbegin(), locals->rend());
    return delete_next(req, progress);
  }
  if (is(req, "end-user-session")) return end_user_sessions(req, form);
  if (is(req, "change-user-password")) return change_password(req, form);
  if (is(req, "get-registered-users-num")) {
    return account_count(host(), [this, req](int64_t count, std::string_view condition) {
      if (!condition.empty()) return reply_error(req, condition);
      // The form's type is XEP-0133's example's, 'form'.
      Element x = result_form("form");
      add_value_field(x, "registeredusersnum", "The number of registered users", {std::to_string(count)});
      reply_completed(req, {}, "info", std::move(x));
    });
  }
  if (is(req, "get-online-users-num"))
    return count_online(req, false, "onlineusersnum", "The number of online users");
  if (is(req, "get-active-users-num"))
    return count_online(req, true, "activeusersnum", "The number of active users");
  if (is(req, "get-online-users-list") || is(req, "get-online-users"))
    return list_online(req, form, false, "onlineuserjids", "The list of all online users");
  if (is(req, "get-active-users"))
    return list_online(req, form, true, "activeuserjids", "The list of active users");
  if (is(req, "announce")) {
    send_to_online(form.text("announcement"));
    return reply_completed(req, "The announcement was sent to the online users.");
  }
  if (is(req, "set-motd")) return set_motd(req, form, false);
  if (is(req, "edit-motd")) return set_motd(req, form, true);
  if (is(req, "delete-motd")) return delete_motd(req);
  if (is(req, "shutdown")) return shutdown(req, form);
  if (std::string_view(req->command->node) == "urn:parley:admin#end-sessions")
    return end_chosen_sessions(req, form, session);
  if (complete_user_command(req, form)) return;  // h-admin: user_commands.cpp
  reply_error(req, "feature-not-implemented");
}

std::optional<std::vector<std::string>> ModAdhoc::accounts_of_host(const RequestPtr& req,
                                                                   const std::vector<std::string>& jids,
                                                                   bool keep_resource) {
  std::vector<std::string> out;
  for (const std::string& text : jids) {
    if (text.empty()) continue;
    auto jid = Jid::parse(host(), text);
    if (!jid || !jid->has_local()) {
      reply_error(req, "jid-malformed", {}, "'" + text + "' is not a user's JID");
      return std::nullopt;
    }
    // Commands act on the service they were sent to (XEP-0133 section 3).
    if (jid->domain() != domain_) {
      reply_error(req, "not-allowed", {}, "'" + text + "' is not an account of " + domain_);
      return std::nullopt;
    }
    out.push_back(keep_resource ? jid->full() : jid->local());
  }
  return out;
}

void ModAdhoc::add_user(const RequestPtr& req, const Form& form) {
  auto locals = accounts_of_host(req, {form.single("accountjid")}, false);
  if (!locals) return;
  if (locals->size() != 1) return reply_error(req, "bad-request", "bad-payload", "accountjid is required");
  std::string user = locals->front();
  host().create_account(user, form.single("password"), [this, req, user](std::string_view condition) {
    if (!condition.empty()) return reply_error(req, condition);
    host().info("event=admin_add_user by=" + req->requester + " user=" + user + "@" + domain_);
    reply_completed(req, "User " + user + "@" + domain_ + " was created.");
  });
}

void ModAdhoc::delete_next(const RequestPtr& req, std::shared_ptr<DeleteProgress> progress) {
  if (progress->pending.empty()) {
    // One JID that failed: the error itself (XEP-0133 section 5).
    if (progress->done.empty() && progress->failed.size() == 1) return reply_error(req, progress->last_condition);
    std::string note = "Deleted: " + (progress->done.empty() ? std::string("none") : joined(progress->done));
    if (!progress->failed.empty()) note += ". Not deleted: " + joined(progress->failed);
    return reply_completed(req, note, progress->failed.empty() ? "info" : "error");
  }
  std::string user = progress->pending.back();
  progress->pending.pop_back();
  host().remove_account(user, [this, req, progress, user](std::string_view condition) {
    std::string jid = user + "@" + domain_;
    if (condition.empty()) {
      progress->done.push_back(jid);
      host().info("event=admin_delete_user by=" + req->requester + " user=" + jid);
    } else {
      progress->failed.push_back(jid + " (" + std::string(condition) + ")");
      progress->last_condition = std::string(condition);
    }
    delete_next(req, progress);
  });
}

void ModAdhoc::end_user_sessions(const RequestPtr& req, const Form& form) {
  auto jids = accounts_of_host(req, form.values("accountjids"), true);
  if (!jids) return;
  size_t ended = 0;
  for (const std::string& jid : *jids) {
    std::string bare(jid.substr(0, jid.find('/')));
    for (const Host::UserSession& s : host().user_sessions(bare)) {
      if (jid.find('/') != std::string::npos && s.full_jid != jid) continue;
      parley_session_id id = s.id;
      // On the session's loop; the client is told why (RFC 6120 4.9.3.18).
      post_to_session(host(), id, [this, id] { host().session_close(id, "policy-violation"); });
      ++ended;
    }
  }
  host().info("event=admin_end_user_session by=" + req->requester + " accounts=" + joined(*jids) +
              " sessions=" + std::to_string(ended));
  reply_completed(req, std::to_string(ended) + " session(s) ended.");
}

void ModAdhoc::change_password(const RequestPtr& req, const Form& form) {
  auto locals = accounts_of_host(req, {form.single("accountjid")}, false);
  if (!locals) return;
  if (locals->size() != 1) return reply_error(req, "bad-request", "bad-payload", "accountjid is required");
  std::string user = locals->front();
  host().set_password(user, form.single("password"), [this, req, user](std::string_view condition) {
    if (!condition.empty()) return reply_error(req, condition);
    host().info("event=admin_change_password by=" + req->requester + " user=" + user + "@" + domain_);
    reply_completed(req, "The password of " + user + "@" + domain_ + " was changed.");
  });
}

namespace {
// Online: a bound session; active: one that sent an available presence
// (XEP-0133 4.16: online = active + idle; an idle user here is one bound
// without an available presence).
std::vector<std::string> online_users(const std::vector<Host::UserSession>& sessions, bool active_only) {
  std::set<std::string> users;
  for (const Host::UserSession& s : sessions)
    if (!active_only || s.available) users.insert(s.full_jid.substr(0, s.full_jid.find('/')));
  return {users.begin(), users.end()};
}
}  // namespace

void ModAdhoc::count_online(const RequestPtr& req, bool active_only, const char* var, const char* label) {
  std::vector<std::string> users = online_users(host_sessions(host()), active_only);
  Element x = result_form("result");
  add_value_field(x, var, label, {std::to_string(users.size())});
  reply_completed(req, {}, "info", std::move(x));
}

void ModAdhoc::list_online(const RequestPtr& req, const Form& form, bool active_only, const char* var,
                           const char* label) {
  std::optional<size_t> max = parse_max_items(form.single("max_items"));
  if (!max) return reply_error(req, "bad-request", "bad-payload", "max_items is a count or 'none'");
  std::vector<std::string> users = online_users(host_sessions(host()), active_only);
  if (*max != 0 && users.size() > *max) users.resize(*max);
  Element x = result_form("result");
  add_value_field(x, var, label, users, "jid-multi");
  reply_completed(req, {}, "info", std::move(x));
}

void ModAdhoc::send_to_online(std::string_view text) {
  for (const Host::UserSession& s : host_sessions(host())) {
    Element message = host().element("message", "jabber:client");
    message.set_attr("from", domain_).set_attr("to", s.full_jid);
    message.add_child("body", "jabber:client").add_text(text);
    host().send_to_session(s.id, std::move(message));
  }
}

void ModAdhoc::set_motd(const RequestPtr& req, const Form& form, bool edit) {
  std::string text = form.text("motd");
  motd_generation_.fetch_add(1);  // before the write: logins read again
  // set-motd: a new message (a new id), for everyone again (XEP-0133 4.24:
  // at once to those online, at their next login to the others); edit-motd
  // corrects the text under the current id, without sending it again to
  // those who had it (a new id if there was none).
  auto store = [this, req, edit](Motd motd) {
    write_motd(motd, [this, req, edit, motd](bool stored) {
      if (!stored) return reply_error(req, "internal-server-error");
      host().info(std::string("event=admin_") + (edit ? "edit" : "set") + "_motd by=" + req->requester);
      if (edit) return reply_completed(req, "The message of the day was saved.");
      for (const Host::UserSession& s : host_sessions(host()))
        if (s.available) send_motd_to(s.id, s.full_jid, motd);
      reply_completed(req, "The message of the day was saved and sent to the users online.");
    });
  };
  if (!edit) return store(Motd{new_motd_id(), std::move(text)});
  read_motd([this, req, store, text](Result<std::optional<Motd>, std::string> current) {
    if (!current) return reply_error(req, "internal-server-error");
    store(Motd{*current ? (*current)->id : new_motd_id(), text});
  });
}

void ModAdhoc::delete_motd(const RequestPtr& req) {
  motd_generation_.fetch_add(1);
  // The users' markers stay (a later set-motd has a new id): removed with
  // each account.
  delete_motd_value([this, req](bool deleted) {
    if (!deleted) return reply_error(req, "internal-server-error");
    host().info("event=admin_delete_motd by=" + req->requester);
    reply_completed(req, "The message of the day was deleted.");
  });
}

void ModAdhoc::shutdown(const RequestPtr& req, const Form& form) {
  uint64_t delay = parse_delay(form.single("delay")).value_or(0);
  std::string announcement = form.text("announcement");
  host().warn("event=admin_shutdown by=" + req->requester + " delay=" + std::to_string(delay));
  // The announcement goes out at once, so that users have the delay to log
  // off; the sessions get it before the shutdown's <system-shutdown/> (each
  // loop runs what was handed to it first).
  if (!announcement.empty()) send_to_online(announcement);
  reply_completed(req, delay == 0 ? "The service is shutting down." : "The service will shut down in " +
                                                                          std::to_string(delay) + " seconds.");
  if (delay == 0) return server_stop(host());
  host().start_timer(std::chrono::seconds(delay), [this] { server_stop(host()); });
}

void ModAdhoc::end_chosen_sessions(const RequestPtr& req, const Form& form, const CommandSession& session) {
  (void)session;
  std::vector<std::string> chosen = form.values("sessions");
  size_t ended = 0;
  for (const std::string& full : chosen) {
    std::string bare(full.substr(0, full.find('/')));
    for (const Host::UserSession& s : host().user_sessions(bare)) {
      if (s.full_jid != full) continue;
      parley_session_id id = s.id;
      post_to_session(host(), id, [this, id] { host().session_close(id, "policy-violation"); });
      ++ended;
    }
  }
  host().info("event=admin_end_sessions by=" + req->requester + " sessions=" + joined(chosen));
  reply_completed(req, std::to_string(ended) + " session(s) ended.");
}

void ModAdhoc::fill_stage(const RequestPtr& req, CommandSession& session, ElementRef x, std::function<void()> send) {
  auto field = [&](std::string_view var) -> std::optional<ElementRef> {
    for (ElementRef f : x.children())
      if (f.name() == "field" && f.attr("var").value_or("") == var) return f;
    return std::nullopt;
  };
  if (is(req, "edit-motd") && !session.values.count("motd")) {
    // XEP-0133 4.25: the current message, if there is one.
    std::optional<ElementRef> motd = field("motd");
    if (!motd) return send();
    ElementRef target = *motd;
    return read_motd([target, send](Result<std::optional<Motd>, std::string> motd) mutable {
      if (motd && *motd) {
        const std::string& text = (*motd)->text;
        size_t start = 0;
        while (start <= text.size()) {
          size_t end = text.find('\n', start);
          if (end == std::string::npos) end = text.size();
          target.add_child("value", ns_data).add_text(text.substr(start, end - start));
          start = end + 1;
        }
      }
      send();
    });
  }
  if (std::string_view(req->command->node) == "urn:parley:admin#end-sessions" && session.stage == 1) {
    std::optional<ElementRef> sessions = field("sessions");
    session.offered.clear();
    auto account = session.values["accountjid"];
    if (sessions && !account.empty()) {
      auto jid = Jid::parse(host(), account.front());
      if (jid && jid->domain() == domain_)
        for (const Host::UserSession& s : host().user_sessions(jid->bare_str())) {
          session.offered.push_back(s.full_jid);
          ElementRef option = sessions->add_child("option", ns_data);
          option.set_attr("label", s.full_jid);
          option.add_child("value", ns_data).add_text(s.full_jid);
        }
    }
  }
  send();
}

}  // namespace parley::mod_adhoc
