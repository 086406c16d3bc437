// mod_adhoc's logic that needs no host: XEP-0050 actions and command
// sessions, XEP-0004 forms as submitted, and the XEP-0133 commands' fields
// (what the forms show and what a submission must hold). Unit-tested in
// tests/unit/modules/mod_adhoc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::mod_adhoc {

inline constexpr const char* ns_commands = "http://jabber.org/protocol/commands";
inline constexpr const char* ns_admin = "http://jabber.org/protocol/admin";
inline constexpr const char* ns_data = "jabber:x:data";  // XEP-0004

// ---- XEP-0050 actions ----

enum class Action { execute, next, prev, complete, cancel };
// The 'action' attribute: absent or empty is execute (section 4.4's default);
// anything not in the schema is nullopt (malformed-action).
std::optional<Action> parse_action(std::optional<std::string_view> attr);
const char* action_name(Action action);

// ---- XEP-0004 forms as submitted ----

struct Form {
  std::string type;  // "submit" (or "cancel", read as submit: XEP-0050 section 3.4.1)
  std::map<std::string, std::vector<std::string>, std::less<>> fields;

  bool has(std::string_view var) const { return fields.find(var) != fields.end(); }
  // The first value, or "" (absent field or no value).
  std::string single(std::string_view var) const;
  // All values ([] if absent).
  std::vector<std::string> values(std::string_view var) const;
  // A text-multi field's lines joined with '\n' (XEP-0004 section 3.3).
  std::string text(std::string_view var) const;
};

// ---- the commands' fields ----

enum class FieldType { hidden, text_single, text_private, text_multi, jid_single, jid_multi, list_single, list_multi };
const char* field_type_name(FieldType type);

struct FieldSpec {
  const char* var;
  FieldType type;
  const char* label;
  bool required = false;
  std::vector<std::pair<std::string, std::string>> options = {};  // (label, value) of list fields
  bool open = false;  // a list-single that takes values outside its options (the shutdown delay)
};

struct StageSpec {
  const char* title;
  const char* instructions;
  std::vector<FieldSpec> fields;  // FORM_TYPE first
};

struct CommandSpec {
  const char* node;  // the full disco node
  const char* name;  // the disco item's name
  bool admin;        // only administrators of the host may see and run it
  std::vector<StageSpec> stages;  // the forms shown before it completes (none: it completes at once)
};

// Every command mod_adhoc offers, in the order disco#items lists them.
const std::vector<CommandSpec>& commands();
const CommandSpec* find_command(std::string_view node);

// What a submission of `stage` lacks or gets wrong (bad-payload), or nullopt
// if it is acceptable: FORM_TYPE, when given, is the admin namespace;
// required fields have a non-empty value; a single-valued field has at most
// one value; a closed list-single's value is one of its options; jid fields
// look like JIDs (the host prepares them afterwards); passwords match
// (add-user); the shutdown delay is a number of seconds up to a day.
std::optional<std::string> check_submission(const StageSpec& stage, const Form& form);
// `options` of a list field shown at run time (end-sessions' resources) are
// given by the caller; this checks the values against them.
std::optional<std::string> check_choices(const Form& form, std::string_view var,
                                         const std::vector<std::string>& allowed);

// XEP-0050 section 3.5 / 4.6: the xml:lang a requester put on <command/>.
// Answers are in English whatever language is asked (xml:lang='en' says so),
// so every well-formed language tag is accepted; one that is not a language
// tag at all (RFC 5646's shape) is bad-locale.
bool acceptable_language(std::string_view tag);

// max_items of get-online-users-list: a positive count, or 0 for "none" (no limit).
std::optional<size_t> parse_max_items(std::string_view value);
// The shutdown delay: seconds, 0 if not given.
std::optional<uint64_t> parse_delay(std::string_view value);

// ---- XEP-0050 sessions ----

struct CommandSession {
  std::string id;
  std::string node;
  std::string requester;  // the full JID that started it: only it may go on with it
  size_t stage = 0;
  // Values submitted so far, by var (later stages' submissions add theirs).
  std::map<std::string, std::vector<std::string>, std::less<>> values;
  // Choices shown at run time (end-sessions: the resources offered).
  std::vector<std::string> offered;
  int64_t expires_ms = 0;
  // Its completion is under way (an account or storage call): no other
  // action is taken until it answered (a second complete would run it twice).
  bool busy = false;
};

// The sessions of one worker loop (a requester's stanzas all come through the
// loop of its session). Bounded: `max_per_requester` live sessions per full
// JID; ended ids are remembered (up to kRemembered) so that using one again
// is session-expired rather than bad-sessionid.
class SessionStore {
 public:
  static constexpr size_t kRemembered = 256;
  SessionStore() = default;
  SessionStore(size_t max_per_requester, int64_t timeout_ms) : max_(max_per_requester), timeout_ms_(timeout_ms) {}

  // A new session; nullptr if the requester has max_per_requester already.
  CommandSession* create(std::string_view requester, std::string_view node, int64_t now_ms);

  enum class Found { ok, unknown, ended };
  // The requester's live session `id` (its expiry renewed), or why not:
  // unknown (never given to this requester) or ended (completed, canceled,
  // or timed out).
  Found find(std::string_view requester, std::string_view id, int64_t now_ms, CommandSession*& out);
  void end(std::string_view id);
  // Ends the sessions past their expiry.
  void expire(int64_t now_ms);
  size_t size() const { return live_.size(); }

 private:
  void remember(std::string id);
  size_t max_ = 10;
  int64_t timeout_ms_ = 600000;
  uint64_t serial_ = 0;
  std::map<std::string, CommandSession, std::less<>> live_;
  std::deque<std::string> ended_;  // bounded: kRemembered
};

}  // namespace parley::mod_adhoc
