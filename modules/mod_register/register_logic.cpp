#include "register_logic.hpp"

#include <initializer_list>
#include <string>
#include <utility>

namespace parley::mod_register {

namespace {

bool has_text(const std::optional<std::string>& v) { return v && !v->empty(); }

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equal_ascii_nocase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

// The username and password a set submits: from the data form when there is
// one (XEP-0077 section 6: the form takes precedence), else the plain fields.
// An error if the form is not a submission of an accepted FORM_TYPE.
struct Submitted {
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::optional<Decision> error;
};

Submitted submitted(const QueryContent& query, std::initializer_list<std::string_view> form_types) {
  Submitted s;
  if (!query.form) {
    s.username = query.username;
    s.password = query.password;
    return s;
  }
  const DataForm& form = *query.form;
  if (form.type != "submit") {
    s.error = Decision::error("bad-request", "the data form must be of type 'submit'");
    return s;
  }
  if (auto type = form.value("FORM_TYPE")) {
    bool known = false;
    for (std::string_view t : form_types) known = known || *type == t;
    if (!known) {
      s.error = Decision::error("bad-request", "unexpected FORM_TYPE '" + *type + "'");
      return s;
    }
  }
  s.username = form.value("username");
  s.password = form.value("password");
  return s;
}

Decision decide_registration(const QueryContent& query, const Policy& policy) {
  if (!policy.allow_registration) return Decision::error("service-unavailable", "in-band registration is disabled");
  // XEP-0077 section 3.2: a stream that has not authenticated has no account to cancel.
  if (query.remove) return Decision::error("unexpected-request", "authenticate before cancelling a registration");
  Submitted s = submitted(query, {form_type_register});
  if (s.error) return *s.error;
  // Section 3.1: every field of the form, the password too, must be provided
  // (an empty <password/> is not a password).
  if (!has_text(s.username)) return Decision::error("not-acceptable", "a username is required");
  if (!has_text(s.password)) return Decision::error("not-acceptable", "a password is required");
  if (code_points(*s.password) < policy.min_password_length)
    return Decision::error("not-acceptable", "the password must have at least " +
                                                 std::to_string(policy.min_password_length) + " characters");
  Decision d;
  d.kind = Decision::Kind::register_account;
  d.username = std::move(*s.username);
  d.password = std::move(*s.password);
  return d;
}

Decision decide_own(const QueryContent& query, std::string_view own_user, std::string_view domain,
                    const Policy& policy) {
  if (query.remove) {
    // Section 3.2, the unregister error cases.
    if (query.children != 1) return Decision::error("bad-request", "<remove/> must be the only child of <query/>");
    if (!policy.allow_remove) return Decision::error("not-allowed", "accounts cannot be removed in-band here");
    Decision d;
    d.kind = Decision::Kind::remove_account;
    d.username = std::string(own_user);
    return d;
  }
  Submitted s = submitted(query, {form_type_change_password, form_type_register});
  if (s.error) return *s.error;
  // Section 3.3, the password change error cases.
  if (!s.username && !s.password) return Decision::error("bad-request", "nothing to do: no <remove/> and no password");
  if (!policy.allow_password_change) return Decision::error("not-allowed", "passwords cannot be changed in-band here");
  if (!has_text(s.username)) return Decision::error("bad-request", "a password change needs the <username/>");
  // Another account's name: forbidden (RFC 6120 8.3.3.6, no permission), as
  // for that account's <remove/>. Section 3.3 gives not-authorized its own
  // meaning ("the channel is not safe enough"), which a client would show.
  if (!same_user(*s.username, own_user, domain))
    return Decision::error("forbidden", "a user can change only their own password");
  // "MUST NOT change the password to a null value, but instead MUST maintain the existing password".
  if (!has_text(s.password)) return Decision::error("bad-request", "the new password must not be empty");
  if (code_points(*s.password) < policy.min_password_length)
    return Decision::error("not-acceptable", "the password must have at least " +
                                                 std::to_string(policy.min_password_length) + " characters");
  Decision d;
  d.kind = Decision::Kind::change_password;
  d.username = std::string(own_user);
  d.password = std::move(*s.password);
  return d;
}

}  // namespace

std::optional<std::string> DataForm::value(std::string_view var) const {
  for (const FormField& f : fields) {
    if (f.var != var) continue;
    if (f.values.empty()) return std::string();
    return f.values.front();
  }
  return std::nullopt;
}

Decision Decision::error(std::string condition, std::string text) {
  Decision d;
  d.kind = Kind::error;
  d.condition = std::move(condition);
  d.text = std::move(text);
  return d;
}

Decision decide_set(const QueryContent& query, Requester requester, std::string_view own_user,
                    std::string_view domain, const Policy& policy) {
  switch (requester) {
    case Requester::unauthenticated:
      return decide_registration(query, policy);
    case Requester::own_account:
      return decide_own(query, own_user, domain, policy);
    case Requester::other_account:
      return Decision::error("forbidden", "only the account's owner may change its registration");
    case Requester::foreign:
      break;
  }
  return Decision::error("service-unavailable", "no in-band registration for entities of other domains");
}

GetDecision decide_get(Requester requester, const Policy& policy) {
  switch (requester) {
    case Requester::unauthenticated:
      // Section 3.1: "If the host does not support In-Band Registration, it
      // MUST return a <service-unavailable/> error."
      if (!policy.allow_registration) return {GetAnswer::error, "service-unavailable", "in-band registration is disabled"};
      return {GetAnswer::registration_form, {}, {}};
    case Requester::own_account:
      return {GetAnswer::registered, {}, {}};
    case Requester::other_account:
      return {GetAnswer::error, "forbidden", "only the account's owner may see its registration"};
    case Requester::foreign:
      break;
  }
  return {GetAnswer::error, "service-unavailable", "no in-band registration for entities of other domains"};
}

bool same_user(std::string_view given, std::string_view own_user, std::string_view domain) {
  std::size_t at = given.find('@');
  if (at != std::string_view::npos) {
    if (!equal_ascii_nocase(given.substr(at + 1), domain)) return false;
    given = given.substr(0, at);
  }
  return !given.empty() && equal_ascii_nocase(given, own_user);
}

std::size_t code_points(std::string_view utf8) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < utf8.size(); ++n) {
    auto c = static_cast<unsigned char>(utf8[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    std::size_t j = 1;
    while (j < len && i + j < utf8.size() && (static_cast<unsigned char>(utf8[i + j]) & 0xC0) == 0x80) ++j;
    i += j;  // a truncated sequence counts as one
  }
  return n;
}

ErrorShape error_shape(std::string_view condition) {
  // RFC 6120 section 8.3.3 types; XEP-0086 codes (XEP-0077 section 9: old and new style both).
  static constexpr std::pair<std::string_view, ErrorShape> shapes[] = {
      {"bad-request", {"modify", 400}},
      {"conflict", {"cancel", 409}},
      {"feature-not-implemented", {"cancel", 501}},
      {"forbidden", {"auth", 403}},
      {"internal-server-error", {"cancel", 500}},
      {"item-not-found", {"cancel", 404}},
      {"jid-malformed", {"modify", 400}},
      {"not-acceptable", {"modify", 406}},
      {"not-allowed", {"cancel", 405}},
      {"not-authorized", {"auth", 401}},
      {"policy-violation", {"modify", 0}},
      {"registration-required", {"auth", 407}},
      {"resource-constraint", {"wait", 500}},
      {"service-unavailable", {"cancel", 503}},
      {"undefined-condition", {"modify", 500}},
      {"unexpected-request", {"wait", 400}},
  };
  for (const auto& [name, shape] : shapes)
    if (name == condition) return shape;
  return {"cancel", 500};
}

}  // namespace parley::mod_register
