// mod_adhoc: XEP-0050 Ad-Hoc Commands on the server's domain, and the
// XEP-0133 service administration commands on it for the host's admins.
// The class is shared by mod_adhoc.cpp (the XEP-0050 engine, disco nodes,
// the message of the day at login) and admin_commands.cpp (what each command
// does when it completes).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adhoc_logic.hpp"
#include "parley/module.hpp"
#include "parley/sdk/old_tables.hpp"

namespace parley::mod_adhoc {

// One request being answered (maybe later, after storage or the account store).
struct Request {
  Element iq;              // a clone of the request
  std::string requester;   // its full JID
  std::string session_id;  // the command session's id
  const CommandSpec* command = nullptr;
};
using RequestPtr = std::shared_ptr<Request>;

// The message of the day as stored (motd_store.cpp): its id changes with
// each set-motd, and a user's marker holds the id of the one they had.
struct Motd {
  std::string id;
  std::string text;
};
std::string encode_motd(const Motd& motd);
std::optional<Motd> decode_motd(std::string_view value);
std::string new_motd_id();
// The keyval store's user for the host's own values (no localpart holds '@').
inline constexpr const char* host_user = "@";

class ModAdhoc : public Module {
 public:
  Result<void, std::string> start() override;

  void on_command(const IqRequest& request);
  parley_result on_node_info(const Event& event);
  parley_result on_node_items(const Event& event);
  parley_result on_presence(const Event& event);
  void on_user_removed(const Event& event);

 private:
  // ---- XEP-0050 (mod_adhoc.cpp) ----
  bool may_run(std::string_view requester, const CommandSpec& command) const;
  void render_stage(const RequestPtr& req, CommandSession& session);
  void finish(const RequestPtr& req, const Form& last);
  Element command_reply(const RequestPtr& req, std::string_view status) const;

 public:  // used by the commands (admin_commands.cpp)
  // The answers. Each ends the request; completed/canceled end the session too.
  void reply_completed(const RequestPtr& req, std::string_view note = {}, std::string_view note_type = "info",
                       Element form = Element());
  void reply_error(const RequestPtr& req, std::string_view condition, std::string_view specific = {},
                   std::string_view text = {});
  Element result_form(std::string_view type) const;  // <x type=...> with FORM_TYPE
  void send_to_online(std::string_view text);       // a message to every bound session of the host
  void send_motd_to(parley_session_id session, const std::string& full_jid, const Motd& motd);

  // ---- the keyval store (motd_store.cpp); each waits for the move of the old tables ----
  void read_motd(std::function<void(Result<std::optional<Motd>, std::string>)> done);  // error: logged
  void write_motd(const Motd& motd, std::function<void(bool)> done);                   // false: failed, logged
  void delete_motd_value(std::function<void(bool)> done);
  void read_welcome(std::function<void(Result<std::optional<std::string>, std::string>)> done);
  void write_welcome(std::string text, std::function<void(bool)> done);
  void delete_welcome(std::function<void(bool)> done);

 private:
  // ---- XEP-0133 (admin_commands.cpp) ----
  void complete_command(const RequestPtr& req, const Form& form, const CommandSession& session);
  void add_user(const RequestPtr& req, const Form& form);
  struct DeleteProgress;
  void delete_next(const RequestPtr& req, std::shared_ptr<DeleteProgress> progress);
  void end_user_sessions(const RequestPtr& req, const Form& form);
  void change_password(const RequestPtr& req, const Form& form);
  void count_online(const RequestPtr& req, bool active_only, const char* var, const char* label);
  void list_online(const RequestPtr& req, const Form& form, bool active_only, const char* var, const char* label);
  void set_motd(const RequestPtr& req, const Form& form, bool edit);
  void delete_motd(const RequestPtr& req);
  void shutdown(const RequestPtr& req, const Form& form);
  void end_chosen_sessions(const RequestPtr& req, const Form& form, const CommandSession& session);
  // The accountjid(s) prepared and checked to be of this host: the local
  // parts (or full JIDs with keep_resource), or an error already answered.
  std::optional<std::vector<std::string>> accounts_of_host(const RequestPtr& req, const std::vector<std::string>& jids,
                                                           bool keep_resource);
  // Fills stage `stage`'s form for fields known only at run time.
  void fill_stage(const RequestPtr& req, CommandSession& session, ElementRef x, std::function<void()> send);

  // ---- h-admin: the commands about accounts (user_commands.cpp) ----
 public:
  parley_result on_admin_answer(const Event& event);
  void on_user_registered(const Event& event);

 private:
  // True if `req` is one of them (then answered, now or later).
  bool complete_user_command(const RequestPtr& req, const Form& form);
  struct ToggleProgress;
  void toggle_next(const RequestPtr& req, std::shared_ptr<ToggleProgress> progress);
  void count_accounts(const RequestPtr& req);
  void list_registered(const RequestPtr& req, const Form& form, AccountListing which, const char* var,
                       const char* label);
  // The one account of this host `jids` names, if it exists: then(localpart), or
  // the error answered.
  void with_existing_account(const RequestPtr& req, const std::vector<std::string>& jids,
                             std::function<void(const std::string&)> then);
  void user_roster(const RequestPtr& req, const std::string& user);
  void user_lastlogin(const RequestPtr& req, const std::string& user);
  void user_stats(const RequestPtr& req, const std::string& user);
  // Asks the other modules (event 27, want = "roster" | "last") and gathers their
  // payloads (event 28), on this loop; done() with what came within kAskTimeout.
  using Answers = std::vector<Element>;
  void ask_modules(const std::string& user, const char* want, std::function<void(Answers)> done);
  void finish_ask(const std::string& token);
  struct PendingAsk {
    int64_t expected = -1;  // known once the fold returned
    int64_t received = 0;
    Answers answers;
    std::function<void(Answers)> done;
    uint64_t timer = 0;
  };
  PerLoop<std::map<std::string, PendingAsk>> asks_;  // by token; each loop's, touched by it only
  std::atomic<uint64_t> ask_serial_{0};

  PerLoop<SessionStore> stores_;  // each loop's command sessions, touched by that loop only
  std::string domain_;

  // ---- motd_store.cpp ----
  void start_store();
  void host_get(std::string key, std::function<void(Result<std::optional<std::string>, std::string>)> done);
  void host_put(std::string key, std::string value, std::function<void(bool)> done);
  void host_remove(std::string key, std::function<void(bool)> done);
  void mark_motd(parley_session_id session, const std::string& full_jid, const Motd& motd, const std::string& user);
  OldTables move_;  // the tables of before the keyval store, moved at start
  // Per owner loop (a hash of the localpart): the users whose marker is being
  // read and written, with the message's id (two logins at once send it once).
  PerLoop<std::unordered_map<std::string, std::string>> marking_;

 public:  // the message of the day's state, for admin_commands.cpp too
  // Logins need no storage read while there is no message of the day: set,
  // edit and delete move motd_generation_ on before they write; a login's
  // read that found none records the generation it was made at, and logins
  // skip the read while the two are equal (atomics, no lock on the login path).
  std::atomic<uint64_t> motd_generation_{1};
  std::atomic<uint64_t> no_motd_at_{0};
};

int64_t steady_ms();

}  // namespace parley::mod_adhoc
