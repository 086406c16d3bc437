#include "adhoc_logic.hpp"

#include <algorithm>
#include <charconv>

namespace parley::mod_adhoc {

std::optional<Action> parse_action(std::optional<std::string_view> attr) {
  if (!attr || attr->empty() || *attr == "execute") return Action::execute;
  if (*attr == "next") return Action::next;
  if (*attr == "prev") return Action::prev;
  if (*attr == "complete") return Action::complete;
  if (*attr == "cancel") return Action::cancel;
  return std::nullopt;
}

const char* action_name(Action action) {
  switch (action) {
    case Action::execute: return "execute";
    case Action::next: return "next";
    case Action::prev: return "prev";
    case Action::complete: return "complete";
    case Action::cancel: return "cancel";
  }
  return "execute";
}

std::string Form::single(std::string_view var) const {
  auto it = fields.find(var);
  return it == fields.end() || it->second.empty() ? std::string() : it->second.front();
}

std::vector<std::string> Form::values(std::string_view var) const {
  auto it = fields.find(var);
  return it == fields.end() ? std::vector<std::string>() : it->second;
}

std::string Form::text(std::string_view var) const {
  std::string out;
  for (const std::string& line : values(var)) {
    if (!out.empty()) out += '\n';
    out += line;
  }
  return out;
}

const char* field_type_name(FieldType type) {
  switch (type) {
    case FieldType::hidden: return "hidden";
    case FieldType::text_single: return "text-single";
    case FieldType::text_private: return "text-private";
    case FieldType::text_multi: return "text-multi";
    case FieldType::jid_single: return "jid-single";
    case FieldType::jid_multi: return "jid-multi";
    case FieldType::list_single: return "list-single";
    case FieldType::list_multi: return "list-multi";
  }
  return "text-single";
}

namespace {


FieldSpec form_type() { return FieldSpec{"FORM_TYPE", FieldType::hidden, nullptr}; }

std::vector<std::pair<std::string, std::string>> max_items_options() {
  return {{"25", "25"}, {"50", "50"}, {"75", "75"}, {"100", "100"}, {"150", "150"}, {"200", "200"}, {"None", "none"}};
}

StageSpec users_list_stage(const char* title, const char* instructions) {
  return StageSpec{title, instructions,
                   {form_type(), FieldSpec{"max_items", FieldType::list_single, "Maximum number of items to show",
                                           false, max_items_options()}}};
}

std::vector<CommandSpec> make_commands() {
  std::vector<CommandSpec> c;
  // The forms are XEP-0133's examples (section 4), field for field.
  c.push_back(CommandSpec{
      "http://jabber.org/protocol/admin#add-user", "Add a User", true,
      {StageSpec{"Adding a User", "Fill out this form to add a user.",
                 {form_type(),
                  FieldSpec{"accountjid", FieldType::jid_single, "The Jabber ID for the account to be added", true},
                  FieldSpec{"password", FieldType::text_private, "The password for this account"},
                  FieldSpec{"password-verify", FieldType::text_private, "Retype password"},
                  FieldSpec{"email", FieldType::text_single, "Email address"},
                  FieldSpec{"given_name", FieldType::text_single, "Given name"},
                  FieldSpec{"surname", FieldType::text_single, "Family name"}}}}});
  c.push_back(CommandSpec{
      "http://jabber.org/protocol/admin#delete-user", "Delete a User", true,
      {StageSpec{"Deleting a User", "Fill out this form to delete a user.",
                 {form_type(), FieldSpec{"accountjids", FieldType::jid_multi, "The Jabber ID(s) to delete", true}}}}});
  c.push_back(CommandSpec{
      "http://jabber.org/protocol/admin#end-user-session", "End User Session", true,
      {StageSpec{"Ending a User Session", "Fill out this form to end a user's session.",
                 {form_type(), FieldSpec{"accountjids", FieldType::jid_multi,
                                         "The Jabber ID(s) for which to end sessions", true}}}}});
  c.push_back(CommandSpec{
      "http://jabber.org/protocol/admin#change-user-password", "Change User Password", true,
      {StageSpec{"Changing a User Password", "Fill out this form to change a user's password.",
                 {form_type(), FieldSpec{"accountjid", FieldType::jid_single, "The Jabber ID for this account", true},
                  FieldSpec{"password", FieldType::text_private, "The password for this account", true}}}}});
  c.push_back(CommandSpec{"http://jabber.org/protocol/admin#get-registered-users-num",
                          "Get Number of Registered Users", true, {}});
  c.push_back(CommandSpec{"http://jabber.org/protocol/admin#get-online-users-num", "Get Number of Online Users", true,
                          {}});
  c.push_back(CommandSpec{"http://jabber.org/protocol/admin#get-active-users-num", "Get Number of Active Users", true,
                          {}});
  c.push_back(CommandSpec{"http://jabber.org/protocol/admin#get-online-users-list", "Get List of Online Users", true,
                          {users_list_stage("Requesting List of Online Users",
                                            "Fill out this form to request the online users of this service.")}});
  // The node XEP-0133's example answers with (and ejabberd's name for it).
  c.push_back(CommandSpec{"http://jabber.org/protocol/admin#get-online-users", "Get List of Online Users", true,
                          {users_list_stage("Requesting List of Online Users",
                                            "Fill out this form to request the online users of this service.")}});
  c.push_back(CommandSpec{"http://jabber.org/protocol/admin#get-active-users", "Get List of Active Users", true,
                          {users_list_stage("Requesting List of Active Users",
                                            "Fill out this form to request the active users of this service.")}});
  c.push_back(CommandSpec{
      "http://jabber.org/protocol/admin#announce", "Send Announcement to Online Users", true,
      {StageSpec{"Making an Announcement",
                 "Fill out this form to make an announcement to all active users of this service.",
                 {form_type(), FieldSpec{"announcement", FieldType::text_multi, "Announcement", true}}}}});
  c.push_back(CommandSpec{
      "http://jabber.org/protocol/admin#set-motd", "Set Message of the Day", true,
      {StageSpec{"Setting the Message of the Day", "Fill out this form to set the message of the day.",
                 {form_type(), FieldSpec{"motd", FieldType::text_multi, "Message of the Day", true}}}}});
  c.push_back(CommandSpec{
      "http://jabber.org/protocol/admin#edit-motd", "Edit Message of the Day", true,
      {StageSpec{"Editing the Message of the Day", "Fill out this form to edit the message of the day.",
                 {form_type(), FieldSpec{"motd", FieldType::text_multi, "Message of the Day", true}}}}});
  c.push_back(CommandSpec{"http://jabber.org/protocol/admin#delete-motd", "Delete Message of the Day", true, {}});
  c.push_back(CommandSpec{
      "http://jabber.org/protocol/admin#shutdown", "Shut Down Service", true,
      {StageSpec{"Shutting Down the Service", "Fill out this form to shut down the service.",
                 {form_type(),
                  FieldSpec{"delay", FieldType::list_single, "Time delay before shutting down", false,
                            {{"30 seconds", "30"}, {"60 seconds", "60"}, {"90 seconds", "90"}, {"2 minutes", "120"},
                             {"3 minutes", "180"}, {"4 minutes", "240"}, {"5 minutes", "300"}},
                            true},
                  FieldSpec{"announcement", FieldType::text_multi, "Announcement"}}}}});
  // h-admin: the rest of XEP-0133 section 4 that Parley can do (edit-blacklist,
  // edit-whitelist, get-user-password, edit-admin and restart are not offered:
  // see docs/modules/mod_adhoc.md).
  c.push_back(CommandSpec{
      "http://jabber.org/protocol/admin#disable-user", "Disable a User", true,
      {StageSpec{"Disabling a User", "Fill out this form to disable a user.",
                 {form_type(), FieldSpec{"accountjids", FieldType::jid_multi, "The Jabber ID(s) to disable", true}}}}});
  c.push_back(CommandSpec{
      "http://jabber.org/protocol/admin#reenable-user", "Re-Enable a User", true,
      {StageSpec{"Re-Enabling a User", "Fill out this form to re-enable a user.",
                 {form_type(),
                  FieldSpec{"accountjids", FieldType::jid_multi, "The Jabber ID(s) to re-enable", true}}}}});
  c.push_back(CommandSpec{
      "http://jabber.org/protocol/admin#get-user-roster", "Get User Roster", true,
      {StageSpec{"Getting a User's Roster", "Fill out this form to get a user's roster.",
                 {form_type(), FieldSpec{"accountjids", FieldType::jid_multi,
                                         "The Jabber ID(s) for which to retrieve the roster", true}}}}});
  c.push_back(CommandSpec{
      "http://jabber.org/protocol/admin#get-user-lastlogin", "Get User Last Login Time", true,
      {StageSpec{"Getting a User's Last Login Time", "Fill out this form to get a user's last login time.",
                 {form_type(), FieldSpec{"accountjids", FieldType::jid_multi,
                                         "The Jabber ID(s) for which to retrieve the last login time", true}}}}});
  c.push_back(CommandSpec{
      "http://jabber.org/protocol/admin#user-stats", "Get User Statistics", true,
      {StageSpec{"Get User Statistics", "Fill out this form to gather user statistics.",
                 {form_type(), FieldSpec{"accountjid", FieldType::jid_single, "The Jabber ID for statistics", true}}}}});
  c.push_back(CommandSpec{"http://jabber.org/protocol/admin#get-disabled-users-num", "Get Number of Disabled Users",
                          true, {}});
  c.push_back(CommandSpec{"http://jabber.org/protocol/admin#get-idle-users-num", "Get Number of Idle Users", true,
                          {}});
  c.push_back(CommandSpec{"http://jabber.org/protocol/admin#get-registered-users-list",
                          "Get List of Registered Users", true,
                          {users_list_stage("Requesting List of Registered Users",
                                            "Fill out this form to request the registered users of this service.")}});
  c.push_back(CommandSpec{"http://jabber.org/protocol/admin#get-disabled-users-list", "Get List of Disabled Users",
                          true,
                          {users_list_stage("Requesting List of Disabled Users",
                                            "Fill out this form to request the disabled users of this service.")}});
  c.push_back(CommandSpec{"http://jabber.org/protocol/admin#get-idle-users", "Get List of Idle Users", true,
                          {users_list_stage("Requesting List of Idle Users",
                                            "Fill out this form to request the idle users of this service.")}});
  c.push_back(CommandSpec{
      "http://jabber.org/protocol/admin#set-welcome", "Set Welcome Message", true,
      {StageSpec{"Setting the Welcome Message", "Fill out this form to set the welcome message.",
                 {form_type(), FieldSpec{"welcome", FieldType::text_multi, "Welcome Message", true}}}}});
  c.push_back(CommandSpec{"http://jabber.org/protocol/admin#delete-welcome", "Delete Welcome Message", true, {}});
  // Parley's own (XEP-0133 section 4 allows more): two stages, the second
  // built from the first (the user's resources, to choose which to end).
  c.push_back(CommandSpec{
      "urn:parley:admin#end-sessions", "End Chosen Sessions of a User", true,
      {StageSpec{"Ending Chosen Sessions", "Choose the user whose sessions to end.",
                 {form_type(), FieldSpec{"accountjid", FieldType::jid_single, "The Jabber ID of the user", true}}},
       StageSpec{"Ending Chosen Sessions", "Choose the sessions to end.",
                 {form_type(), FieldSpec{"sessions", FieldType::list_multi, "Sessions to end", true}}}}});
  return c;
}

bool looks_like_jid(std::string_view s) {
  if (s.empty() || s.size() > 3071) return false;
  for (unsigned char ch : s)
    if (ch <= ' ' || ch == '<' || ch == '>' || ch == '"' || ch == '\'' || ch == '&') return false;
  size_t slash = s.find('/');
  std::string_view bare = s.substr(0, slash);
  size_t at = bare.find('@');
  if (at == 0 || (at != std::string_view::npos && bare.find('@', at + 1) != std::string_view::npos)) return false;
  std::string_view domain = at == std::string_view::npos ? bare : bare.substr(at + 1);
  return !domain.empty() && (slash == std::string_view::npos || slash + 1 < s.size());
}

}  // namespace

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> all = make_commands();
  return all;
}

const CommandSpec* find_command(std::string_view node) {
  for (const CommandSpec& c : commands())
    if (node == c.node) return &c;
  return nullptr;
}

std::optional<std::string> check_submission(const StageSpec& stage, const Form& form) {
  if (form.has("FORM_TYPE") && form.single("FORM_TYPE") != ns_admin)
    return std::string("FORM_TYPE is not ") + ns_admin;
  for (const FieldSpec& field : stage.fields) {
    if (field.type == FieldType::hidden) continue;
    std::vector<std::string> values = form.values(field.var);
    bool empty = values.empty() || std::all_of(values.begin(), values.end(), [](auto& v) { return v.empty(); });
    if (field.required && empty) return std::string("the field '") + field.var + "' is required";
    bool single = field.type == FieldType::text_single || field.type == FieldType::text_private ||
                  field.type == FieldType::jid_single || field.type == FieldType::list_single;
    if (single && values.size() > 1) return std::string("the field '") + field.var + "' takes one value";
    if (field.type == FieldType::jid_single || field.type == FieldType::jid_multi)
      for (const std::string& v : values)
        if (!v.empty() && !looks_like_jid(v)) return "'" + v + "' is not a JID";
    if (field.type == FieldType::list_single && !field.open && !field.options.empty())
      for (const std::string& v : values)
        if (!v.empty() && std::none_of(field.options.begin(), field.options.end(),
                                       [&](const auto& o) { return o.second == v; }))
          return "'" + v + "' is not an option of '" + field.var + "'";
    if (std::string_view(field.var) == "delay" && !values.empty() && !values.front().empty() &&
        !parse_delay(values.front()))
      return "the delay is a number of seconds, at most 86400";
  }
  if (form.has("password-verify") && form.single("password-verify") != form.single("password"))
    return std::string("the passwords do not match");
  return std::nullopt;
}

std::optional<std::string> check_choices(const Form& form, std::string_view var,
                                         const std::vector<std::string>& allowed) {
  for (const std::string& v : form.values(var))
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
      return "'" + v + "' is not one of the choices offered";
  return std::nullopt;
}

bool acceptable_language(std::string_view tag) {
  // RFC 5646's shape (what xml:lang holds): subtags of 1 to 8 letters or
  // digits joined by '-', the first letters only (or the private "x", "i").
  if (tag.empty() || tag.size() > 64) return false;
  size_t start = 0;
  bool first = true;
  while (start <= tag.size()) {
    size_t end = tag.find('-', start);
    if (end == std::string_view::npos) end = tag.size();
    std::string_view sub = tag.substr(start, end - start);
    if (sub.empty() || sub.size() > 8) return false;
    for (char c : sub) {
      bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      bool digit = c >= '0' && c <= '9';
      if (!letter && !(digit && !first)) return false;
    }
    first = false;
    start = end + 1;
  }
  return true;
}

std::optional<size_t> parse_max_items(std::string_view value) {
  if (value.empty() || value == "none") return size_t{0};
  size_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n == 0) return std::nullopt;
  return n;
}

std::optional<uint64_t> parse_delay(std::string_view value) {
  if (value.empty()) return uint64_t{0};
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n > 86400) return std::nullopt;
  return n;
}

CommandSession* SessionStore::create(std::string_view requester, std::string_view node, int64_t now_ms) {
  size_t mine = 0;
  for (const auto& [id, s] : live_) mine += s.requester == requester;
  if (mine >= max_) return nullptr;
  // Unique within the loop (the serial), and not guessable from another
  // requester's (a session is only found with its requester anyway).
  std::string_view name = node.substr(node.find('#') == std::string_view::npos ? 0 : node.find('#') + 1);
  std::string id = std::string(name) + ":" + std::to_string(now_ms) + "-" + std::to_string(++serial_);
  CommandSession& s = live_[id];
  s.id = id;
  s.node = std::string(node);
  s.requester = std::string(requester);
  s.expires_ms = now_ms + timeout_ms_;
  return &s;
}

SessionStore::Found SessionStore::find(std::string_view requester, std::string_view id, int64_t now_ms,
                                       CommandSession*& out) {
  expire(now_ms);
  out = nullptr;
  auto it = live_.find(id);
  if (it != live_.end() && it->second.requester == requester) {
    it->second.expires_ms = now_ms + timeout_ms_;
    out = &it->second;
    return Found::ok;
  }
  std::string key = std::string(requester) + "\n" + std::string(id);
  if (std::find(ended_.begin(), ended_.end(), key) != ended_.end()) return Found::ended;
  return Found::unknown;
}

void SessionStore::end(std::string_view id) {
  auto it = live_.find(id);
  if (it == live_.end()) return;
  remember(it->second.requester + "\n" + it->second.id);
  live_.erase(it);
}

void SessionStore::expire(int64_t now_ms) {
  for (auto it = live_.begin(); it != live_.end();) {
    if (it->second.expires_ms <= now_ms) {
      remember(it->second.requester + "\n" + it->second.id);
      it = live_.erase(it);
    } else {
      ++it;
    }
  }
}

void SessionStore::remember(std::string key) {
  ended_.push_back(std::move(key));
  while (ended_.size() > kRemembered) ended_.pop_front();
}

}  // namespace parley::mod_adhoc
