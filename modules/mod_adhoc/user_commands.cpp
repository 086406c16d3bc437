// mod_adhoc: the XEP-0133 commands about accounts that need more of the host than
// admin_commands.cpp's (h-admin, issue 17):
//
//   disable-user, reenable-user         the account store's disabled flag
//                                       (set_account_disabled: a disabled account
//                                       cannot log in, its sessions end)
//   get-registered-users-list,          list_accounts (all, or the disabled ones)
//   get-disabled-users-num/-list
//   get-idle-users-num, get-idle-users  from the host's sessions: an idle user is
//                                       online without an available session
//   get-user-roster, get-user-lastlogin what mod_roster and mod_last know, asked
//   user-stats                          through the events 27-28 (no module is
//                                       named: module.h, ADMIN_USER_QUERY), and
//                                       the sessions' addresses (user_addresses)
//   set-welcome, delete-welcome         a message to each new account (ejabberd's
//                                       welcome_message), sent at USER_REGISTERED
//
// Everything here runs on the requester's loop; the answers of other modules come
// back to it (module.h: they answer on the loop that ran their hook).
#include <chrono>
#include <ctime>
#include <map>
#include <memory>
#include <set>

#include "mod_adhoc.hpp"

namespace parley::mod_adhoc {

namespace {

constexpr const char* kAdminNode = "http://jabber.org/protocol/admin#";
constexpr const char* ns_roster_query = "jabber:iq:roster";
constexpr const char* ns_last_activity = "jabber:iq:last";
// How long a command waits for the other modules' answers (a module stopped
// meanwhile never answers): then it answers with what it has.
constexpr std::chrono::seconds kAskTimeout{10};

bool is_node(const RequestPtr& req, const char* suffix) {
  return std::string_view(req->command->node) == std::string(kAdminNode) + suffix;
}

void add_values(ElementRef x, const char* var, const char* label, const std::vector<std::string>& values,
                const char* type = nullptr) {
  ElementRef f = x.add_child("field", ns_data);
  if (type != nullptr) f.set_attr("type", type);
  f.set_attr("label", label).set_attr("var", var);
  for (const std::string& v : values) f.add_child("value", ns_data).add_text(v);
}

std::string joined_list(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// XEP-0082 DateTime (UTC) of unix seconds.
std::string datetime(int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int64_t number(std::string_view text) {
  int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return text.empty() ? -1 : n;
}

// Users online without any available session (XEP-0133 4.17: online = active + idle).
std::vector<std::string> idle_users(const std::vector<Host::UserSession>& sessions) {
  std::map<std::string, bool> available;
  for (const Host::UserSession& s : sessions) {
    bool& a = available[s.full_jid.substr(0, s.full_jid.find('/'))];
    a = a || s.available;
  }
  std::vector<std::string> out;
  for (const auto& [bare, any] : available)
    if (!any) out.push_back(bare);
  return out;
}

}  // namespace

// One account after the other (disable, re-enable); the results gathered for the note.
struct ModAdhoc::ToggleProgress {
  bool disable = true;
  std::vector<std::string> pending, done, failed;
  std::string last_condition;
};

bool ModAdhoc::complete_user_command(const RequestPtr& req, const Form& form) {
  if (is_node(req, "disable-user") || is_node(req, "reenable-user")) {
    auto locals = accounts_of_host(req, form.values("accountjids"), false);
    if (!locals) return true;
    auto progress = std::make_shared<ToggleProgress>();
    progress->disable = is_node(req, "disable-user");
    progress->pending.assign(locals->rbegin(), locals->rend());
    toggle_next(req, progress);
    return true;
  }
  if (is_node(req, "get-disabled-users-num")) {
    count_accounts(req);
    return true;
  }
  if (is_node(req, "get-registered-users-list")) {
    list_registered(req, form, AccountListing::all, "registereduserjids", "The list of all users");
    return true;
  }
  if (is_node(req, "get-disabled-users-list")) {
    list_registered(req, form, AccountListing::disabled, "disableduserjids", "The list of all disabled users");
    return true;
  }
  if (is_node(req, "get-idle-users-num") || is_node(req, "get-idle-users")) {
    std::vector<std::string> idle = idle_users(host_sessions(host()));
    Element x = result_form("result");
    if (is_node(req, "get-idle-users-num")) {
      add_values(x, "idleusersnum", "The number of idle users", {std::to_string(idle.size())});
    } else {
      std::optional<size_t> max = parse_max_items(form.single("max_items"));
      if (!max) {
        reply_error(req, "bad-request", "bad-payload", "max_items is a count or 'none'");
        return true;
      }
      if (*max != 0 && idle.size() > *max) idle.resize(*max);
      add_values(x, "idleuserjids", "The list of idle users", idle, "jid-multi");
    }
    reply_completed(req, {}, "info", std::move(x));
    return true;
  }
  if (is_node(req, "get-user-roster") || is_node(req, "get-user-lastlogin")) {
    bool roster = is_node(req, "get-user-roster");
    with_existing_account(req, form.values("accountjids"), [this, req, roster](const std::string& user) {
      if (roster) return user_roster(req, user);
      user_lastlogin(req, user);
    });
    return true;
  }
  if (is_node(req, "user-stats")) {
    with_existing_account(req, {form.single("accountjid")}, [this, req](const std::string& user) { user_stats(req, user); });
    return true;
  }
  if (is_node(req, "set-welcome")) {
    write_welcome(form.text("welcome"), [this, req](bool stored) {
      if (!stored) return reply_error(req, "internal-server-error");
      host().info("event=admin_set_welcome by=" + req->requester);
      reply_completed(req, "The welcome message was saved: each new account gets it.");
    });
    return true;
  }
  if (is_node(req, "delete-welcome")) {
    delete_welcome([this, req](bool deleted) {
      if (!deleted) return reply_error(req, "internal-server-error");
      host().info("event=admin_delete_welcome by=" + req->requester);
      reply_completed(req, "The welcome message was deleted.");
    });
    return true;
  }
  return false;
}

void ModAdhoc::toggle_next(const RequestPtr& req, std::shared_ptr<ToggleProgress> progress) {
  if (progress->pending.empty()) {
    // One JID that failed: the error itself (XEP-0133 section 5), as delete-user.
    if (progress->done.empty() && progress->failed.size() == 1) return reply_error(req, progress->last_condition);
    std::string verb = progress->disable ? "Disabled: " : "Re-enabled: ";
    std::string note = verb + (progress->done.empty() ? std::string("none") : joined_list(progress->done));
    if (!progress->failed.empty()) note += ". Not changed: " + joined_list(progress->failed);
    return reply_completed(req, note, progress->failed.empty() ? "info" : "error");
  }
  std::string user = progress->pending.back();
  progress->pending.pop_back();
  set_account_disabled(host(), user, progress->disable, [this, req, progress, user](std::string_view condition) {
    std::string jid = user + "@" + domain_;
    if (condition.empty()) {
      progress->done.push_back(jid);
      host().info(std::string("event=admin_") + (progress->disable ? "disable" : "reenable") +
                  "_user by=" + req->requester + " user=" + jid);
    } else {
      progress->failed.push_back(jid + " (" + std::string(condition) + ")");
      progress->last_condition = std::string(condition);
    }
    toggle_next(req, progress);
  });
}

void ModAdhoc::count_accounts(const RequestPtr& req) {
  list_accounts(host(), AccountListing::disabled, [this, req](std::vector<std::string> users, std::string_view condition) {
    if (!condition.empty()) return reply_error(req, condition);
    Element x = result_form("result");
    add_values(x, "disabledusersnum", "The number of disabled users", {std::to_string(users.size())});
    reply_completed(req, {}, "info", std::move(x));
  });
}

void ModAdhoc::list_registered(const RequestPtr& req, const Form& form, AccountListing which, const char* var,
                               const char* label) {
  std::optional<size_t> max = parse_max_items(form.single("max_items"));
  if (!max) return reply_error(req, "bad-request", "bad-payload", "max_items is a count or 'none'");
  list_accounts(host(), which, [this, req, max, var, label](std::vector<std::string> users, std::string_view condition) {
    if (!condition.empty()) return reply_error(req, condition);
    if (*max != 0 && users.size() > *max) users.resize(*max);
    for (std::string& u : users) u += "@" + domain_;
    Element x = result_form("result");
    add_values(x, var, label, users, "jid-multi");
    reply_completed(req, {}, "info", std::move(x));
  });
}

void ModAdhoc::with_existing_account(const RequestPtr& req, const std::vector<std::string>& jids,
                                     std::function<void(const std::string&)> then) {
  auto locals = accounts_of_host(req, jids, false);
  if (!locals) return;
  // The result form holds one account's data (XEP-0133 4.8, 4.9): one at a time.
  if (locals->size() != 1) return reply_error(req, "bad-request", "bad-payload", "name exactly one account");
  std::string user = locals->front();
  list_accounts(
      host(), AccountListing::all,
      [this, req, user, then = std::move(then)](std::vector<std::string> found, std::string_view condition) {
        if (!condition.empty()) return reply_error(req, condition);
        if (found.empty()) return reply_error(req, "item-not-found", {}, user + "@" + domain_ + " has no account");
        then(user);
      },
      user);
}

void ModAdhoc::ask_modules(const std::string& user, const char* want, std::function<void(Answers)> done) {
  std::string token = std::to_string(ask_serial_.fetch_add(1) + 1);
  auto& asks = asks_.here();
  asks[token].done = std::move(done);
  Element query = host().element("query", ns_admin_user);
  query.set_attr("user", user).set_attr("want", want).set_attr("token", token).set_attr("answers", "0");
  host().run_fold(PARLEY_EVENT_ADMIN_USER_QUERY, query);
  auto it = asks.find(token);
  if (it == asks.end()) return;
  int64_t expected = number(query.attr("answers").value_or("0"));
  it->second.expected = expected < 0 ? 0 : expected;
  if (it->second.answers.size() >= static_cast<size_t>(it->second.expected)) return finish_ask(token);
  it->second.timer = host().start_timer(kAskTimeout, [this, token] {
    auto found = asks_.here().find(token);
    if (found == asks_.here().end()) return;
    found->second.timer = 0;
    host().warn("event=admin_query_timeout token=" + token + " answers=" + std::to_string(found->second.answers.size()) +
                " expected=" + std::to_string(found->second.expected));
    finish_ask(token);
  });
}

void ModAdhoc::finish_ask(const std::string& token) {
  auto& asks = asks_.here();
  auto it = asks.find(token);
  if (it == asks.end()) return;
  PendingAsk ask = std::move(it->second);
  asks.erase(it);
  if (ask.timer != 0) host().cancel_timer(ask.timer);
  if (ask.done) ask.done(std::move(ask.answers));
}

parley_result ModAdhoc::on_admin_answer(const Event& event) {
  auto acc = event.acc();
  if (!acc) return PARLEY_PASS;
  std::string token(acc->attr("token").value_or(""));
  auto& asks = asks_.here();
  auto it = asks.find(token);
  if (it == asks.end()) return PARLEY_PASS;  // another module's question, or one that timed out
  // An answer without a payload (the module failed to read; it logged why) still counts.
  ++it->second.received;
  for (ElementView child : acc->children()) it->second.answers.push_back(child.clone());
  // (During the fold the count is not known yet: ask_modules looks after it.)
  if (it->second.expected >= 0 && it->second.received >= it->second.expected) finish_ask(token);
  return PARLEY_PASS;
}

namespace {
std::optional<ElementView> payload(const std::vector<Element>& answers, const char* name, const char* ns) {
  for (const Element& a : answers)
    if (a.name() == name && a.xmlns() == ns) return ElementView(a);
  return std::nullopt;
}
}  // namespace

void ModAdhoc::user_roster(const RequestPtr& req, const std::string& user) {
  ask_modules(user, "roster", [this, req, user](Answers answers) {
    auto roster = payload(answers, "query", ns_roster_query);
    if (!roster) return reply_error(req, "service-unavailable", {}, "no module keeps rosters here (mod_roster)");
    Element x = result_form("result");
    add_values(x, "accountjids", "The Jabber ID", {user + "@" + domain_}, "jid-single");
    x.add_child(roster->clone());  // jabber:iq:roster inside the form (XEP-0133 4.8's example)
    reply_completed(req, {}, "info", std::move(x));
  });
}

void ModAdhoc::user_lastlogin(const RequestPtr& req, const std::string& user) {
  // As ejabberd answers it: "Online" while a session is bound, else the time the
  // user last logged out (mod_last's record), "Never" if none was recorded.
  if (!host().user_sessions(user + "@" + domain_).empty()) {
    Element x = result_form("result");
    add_values(x, "accountjids", "The Jabber ID", {user + "@" + domain_}, "jid-single");
    add_values(x, "lastlogin", "The last login time", {"Online"});
    return reply_completed(req, {}, "info", std::move(x));
  }
  ask_modules(user, "last", [this, req, user](Answers answers) {
    auto last = payload(answers, "last", ns_last_activity);
    if (!last) return reply_error(req, "service-unavailable", {}, "no module records the last activity (mod_last)");
    int64_t stamp = number(last->attr("stamp").value_or(""));
    Element x = result_form("result");
    add_values(x, "accountjids", "The Jabber ID", {user + "@" + domain_}, "jid-single");
    add_values(x, "lastlogin", "The last login time", {stamp < 0 ? std::string("Never") : datetime(stamp)});
    reply_completed(req, {}, "info", std::move(x));
  });
}

void ModAdhoc::user_stats(const RequestPtr& req, const std::string& user) {
  std::string bare = user + "@" + domain_;
  user_addresses(host(), bare, [this, req, user, bare](std::vector<SessionAddress> sessions) {
    ask_modules(user, "roster", [this, req, bare, sessions = std::move(sessions)](Answers answers) {
      std::set<std::string> addresses;
      std::vector<std::string> resources;
      for (const SessionAddress& s : sessions) {
        addresses.insert(s.address);
        resources.push_back(s.full_jid.substr(s.full_jid.find('/') + 1));
      }
      Element x = result_form("result");
      add_values(x, "accountjid", "The Jabber ID", {bare}, "jid-single");
      add_values(x, "ipaddresses", "IP addresses", {addresses.begin(), addresses.end()}, "text-multi");
      // Without a roster module there is no roster to count: the field is left out.
      if (auto roster = payload(answers, "query", ns_roster_query)) {
        size_t items = 0;
        for (ElementView item : roster->children()) items += item.name() == "item" ? 1 : 0;
        add_values(x, "rostersize", "Roster size", {std::to_string(items)});
      }
      add_values(x, "onlineresources", "Online resources", resources, "text-multi");
      reply_completed(req, {}, "info", std::move(x));
    });
  });
}

void ModAdhoc::on_user_registered(const Event& event) {
  std::string user(event.user());
  if (user.empty()) return;
  read_welcome([this, user](Result<std::optional<std::string>, std::string> text) {
    if (!text || !*text) return;  // none, or the read failed (logged)
    // To the account's bare JID: it has no session yet, so the offline
    // store keeps it (mod_offline) until the first login.
    Element message = host().element("message", "jabber:client");
    message.set_attr("from", domain_).set_attr("to", user + "@" + domain_).set_attr("type", "normal");
    message.add_child("subject", "jabber:client").add_text("Welcome");
    message.add_child("body", "jabber:client").add_text(**text);
    host().route(std::move(message));
  });
}

}  // namespace parley::mod_adhoc
