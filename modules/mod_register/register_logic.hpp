// mod_register's decisions (XEP-0077), apart from the SDK so that unit tests
// can drive them: what a <query xmlns='jabber:iq:register'/> asks for, who asks,
// and what the module must do or answer. Standard library only.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::mod_register {

inline constexpr std::string_view ns_register = "jabber:iq:register";
inline constexpr std::string_view ns_data = "jabber:x:data";
inline constexpr std::string_view form_type_register = "jabber:iq:register";
inline constexpr std::string_view form_type_change_password = "jabber:iq:register:changepassword";
inline constexpr std::string_view form_type_cancel = "jabber:iq:register:cancel";

// A XEP-0004 form as submitted: its type and each field's values.
struct FormField {
  std::string var;
  std::vector<std::string> values;
};

struct DataForm {
  std::string type;  // "submit", "cancel", ...
  std::vector<FormField> fields;

  // The first value of `var`; nullopt if the field is absent, "" if it has none.
  std::optional<std::string> value(std::string_view var) const;
};

// What a <query/> of an iq set contains, read off the XML by the module.
struct QueryContent {
  bool remove = false;                  // <remove/>
  std::size_t children = 0;             // element children of <query/>, <remove/> included
  std::optional<std::string> username;  // <username/> present, with its text
  std::optional<std::string> password;  // <password/> present, with its text
  std::optional<DataForm> form;         // <x xmlns='jabber:x:data'/>
};

// Who sends the request, as the module learns it from the scope and addresses.
enum class Requester {
  unauthenticated,  // a stream before SASL (PARLEY_IQ_PREAUTH)
  own_account,      // a user of this host about their own account
  other_account,    // a user about somebody else's account (an iq to another bare JID)
  foreign,          // an entity of another domain
};

struct Policy {
  bool allow_registration = false;
  bool allow_password_change = true;
  bool allow_remove = true;
  std::size_t min_password_length = 0;  // in Unicode code points
};

// The module's answer: an error, or an account operation.
struct Decision {
  enum class Kind { error, register_account, change_password, remove_account };
  Kind kind = Kind::error;
  std::string condition;  // kind == error: an RFC 6120 stanza error condition
  std::string text;       // kind == error: a human-readable explanation
  std::string username;   // register_account / change_password
  std::string password;

  static Decision error(std::string condition, std::string text = {});
  bool is_error() const noexcept { return kind == Kind::error; }
};

// What to do with an iq set. `own_user` is the requester's localpart and
// `domain` this host (both for own_account requests).
Decision decide_set(const QueryContent& query, Requester requester, std::string_view own_user,
                    std::string_view domain, const Policy& policy);

// What an iq get answers: an error, or (kind != error) the form to show; for
// own_account the form says <registered/> with the username.
enum class GetAnswer { registration_form, registered, error };
struct GetDecision {
  GetAnswer answer = GetAnswer::error;
  std::string condition;
  std::string text;
};
GetDecision decide_get(Requester requester, const Policy& policy);

// Whether a submitted username names `own_user` of `domain`: the localpart or
// the bare JID, ASCII letters compared without case (nodeprep case-folds; the
// host prepares what it stores).
bool same_user(std::string_view given, std::string_view own_user, std::string_view domain);

// Unicode code points in UTF-8 text (invalid bytes count as one each).
std::size_t code_points(std::string_view utf8);

// The legacy error code (XEP-0086) and the error type of a defined condition.
struct ErrorShape {
  std::string_view type;
  int code;
};
ErrorShape error_shape(std::string_view condition);

}  // namespace parley::mod_register
