// mod_muc's pure logic: see muc_logic.hpp.
#include "muc_logic.hpp"

#include "parley/sdk/line_record.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "parley/sdk/stamp.hpp"

namespace muc {

std::string_view to_string(Affiliation a) noexcept {
  switch (a) {
    case Affiliation::outcast: return "outcast";
    case Affiliation::none: return "none";
    case Affiliation::member: return "member";
    case Affiliation::admin: return "admin";
    case Affiliation::owner: return "owner";
  }
  return "none";
}

std::string_view to_string(Role r) noexcept {
  switch (r) {
    case Role::none: return "none";
    case Role::visitor: return "visitor";
    case Role::participant: return "participant";
    case Role::moderator: return "moderator";
  }
  return "none";
}

std::optional<Affiliation> parse_affiliation(std::string_view s) noexcept {
  if (s == "outcast") return Affiliation::outcast;
  if (s == "none") return Affiliation::none;
  if (s == "member") return Affiliation::member;
  if (s == "admin") return Affiliation::admin;
  if (s == "owner") return Affiliation::owner;
  return std::nullopt;
}

std::optional<Role> parse_role(std::string_view s) noexcept {
  if (s == "none") return Role::none;
  if (s == "visitor") return Role::visitor;
  if (s == "participant") return Role::participant;
  if (s == "moderator") return Role::moderator;
  return std::nullopt;
}

Role default_role(Affiliation a, bool moderated) noexcept {
  switch (a) {
    case Affiliation::owner:
    case Affiliation::admin: return Role::moderator;
    case Affiliation::member: return Role::participant;
    case Affiliation::none: return moderated ? Role::visitor : Role::participant;
    case Affiliation::outcast: return Role::none;
  }
  return Role::none;
}

static bool is_admin_or_owner(Affiliation a) noexcept { return a == Affiliation::admin || a == Affiliation::owner; }

std::string check_role_change(Affiliation actor_aff, Role actor_role, Affiliation target_aff, Role target_role,
                              Role to, bool self) noexcept {
  if (actor_role != Role::moderator) return "forbidden";
  // Granting or revoking moderation is for admins and owners (§9.6, §9.7),
  // and an admin's or owner's moderation stays.
  if (to == Role::moderator || (target_role == Role::moderator && to != Role::none)) {
    if (!is_admin_or_owner(actor_aff)) return "forbidden";
    if (to != Role::moderator && is_admin_or_owner(target_aff)) return "not-allowed";
    return "";
  }
  if (to == Role::none) {
    // Kick (§8.2): not oneself (a MAY: conflict), not by a moderator of a
    // lower affiliation (not-allowed).
    if (self) return "conflict";
    if (static_cast<int>(target_aff) > static_cast<int>(actor_aff)) return "not-allowed";
    return "";
  }
  // Voice (§8.3-8.5): never taken from an admin or owner, nor from anyone
  // whose affiliation is at or above the moderator's (§8.4: MUST); granted to
  // anyone not above it.
  if (is_admin_or_owner(target_aff)) return "not-allowed";
  if (to == Role::visitor && static_cast<int>(target_aff) >= static_cast<int>(actor_aff)) return "not-allowed";
  if (static_cast<int>(target_aff) > static_cast<int>(actor_aff)) return "not-allowed";
  return "";
}

std::string check_affiliation_change(Affiliation actor_aff, Affiliation target_aff, Affiliation to,
                                     std::size_t owners, bool self) noexcept {
  if (!is_admin_or_owner(actor_aff)) return "forbidden";
  // §9.1: an admin or owner may not ban himself.
  if (self && to == Affiliation::outcast) return "conflict";
  if (actor_aff == Affiliation::admin) {
    // An admin manages members and outcasts only (§9.1-9.4).
    if (to == Affiliation::admin || to == Affiliation::owner) return "forbidden";
    if (is_admin_or_owner(target_aff)) return "not-allowed";
    return "";
  }
  // The room keeps an owner (§10.9: the last one may not step down).
  if (target_aff == Affiliation::owner && to != Affiliation::owner && owners <= 1) return "conflict";
  return "";
}

bool may_list_role(Affiliation actor_aff, Role actor_role, Role listed) noexcept {
  if (listed == Role::moderator) return actor_role == Role::moderator || is_admin_or_owner(actor_aff);
  return actor_role == Role::moderator;  // voice list (participant), visitors
}

bool may_list_affiliation(Affiliation actor_aff, Role actor_role, Affiliation listed,
                          const std::set<Role>& member_list_roles) noexcept {
  switch (listed) {
    case Affiliation::owner:
    case Affiliation::admin:
    case Affiliation::outcast: return is_admin_or_owner(actor_aff);
    case Affiliation::member:
      return is_admin_or_owner(actor_aff) || member_list_roles.count(actor_role) > 0;
    case Affiliation::none: return false;
  }
  return false;
}

std::string_view to_string(AllowPm p) noexcept {
  switch (p) {
    case AllowPm::anyone: return "anyone";
    case AllowPm::participants: return "participants";
    case AllowPm::moderators: return "moderators";
    case AllowPm::none: return "none";
  }
  return "anyone";
}

std::optional<AllowPm> parse_allowpm(std::string_view s) noexcept {
  if (s == "anyone") return AllowPm::anyone;
  if (s == "participants") return AllowPm::participants;
  if (s == "moderators") return AllowPm::moderators;
  if (s == "none") return AllowPm::none;
  return std::nullopt;
}

bool may_send_pm(AllowPm p, Role sender) noexcept {
  switch (p) {
    case AllowPm::anyone: return sender != Role::none;
    case AllowPm::participants: return sender == Role::participant || sender == Role::moderator;
    case AllowPm::moderators: return sender == Role::moderator;
    case AllowPm::none: return false;
  }
  return false;
}

std::optional<bool> parse_form_bool(std::string_view s) noexcept {
  if (s == "1" || s == "true") return true;
  if (s == "0" || s == "false") return false;
  return std::nullopt;
}

namespace {

const std::string* single(const FormValues& form, const std::string& var) {
  auto it = form.find(var);
  if (it == form.end()) return nullptr;
  static const std::string empty;
  return it->second.empty() ? &empty : &it->second.front();
}

}  // namespace

std::optional<std::string> apply_config(RoomConfig& config, const FormValues& form, int64_t max_users_limit,
                                        ConfigChange& change) {
  RoomConfig next = config;
  const std::string p = "muc#roomconfig_";
  auto text = [&](const char* var, std::string& out) {
    if (const std::string* v = single(form, p + var)) out = *v;
  };
  std::optional<std::string> error;
  auto flag = [&](const char* var, bool& out) {
    if (const std::string* v = single(form, p + var)) {
      auto b = parse_form_bool(*v);
      if (!b) error = std::string("field ") + p + var + " is not a boolean";
      else out = *b;
    }
  };
  auto roles = [&](const char* var, std::set<Role>& out) {
    auto it = form.find(p + var);
    if (it == form.end()) return;
    std::set<Role> got;
    for (const std::string& v : it->second) {
      auto r = parse_role(v);
      if (!r || *r == Role::none) error = std::string("field ") + p + var + ": unknown role " + v;
      else got.insert(*r);
    }
    out = std::move(got);
  };
  text("roomname", next.name);
  text("roomdesc", next.description);
  text("lang", next.lang);
  flag("persistentroom", next.persistent);
  flag("publicroom", next.public_room);
  flag("membersonly", next.members_only);
  flag("moderatedroom", next.moderated);
  flag("passwordprotectedroom", next.password_protected);
  text("roomsecret", next.secret);
  flag("allowinvites", next.allow_invites);
  flag("changesubject", next.change_subject);
  flag("enablelogging", next.logging);
  roles("presencebroadcast", next.presence_broadcast);
  roles("getmemberlist", next.get_member_list);
  if (const std::string* v = single(form, p + "maxusers")) {
    int64_t n = 0;
    if (v->empty() || *v == "none") {
      n = max_users_limit;
    } else {
      auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
      if (ec != std::errc() || end != v->data() + v->size() || n < 1)
        error = "field muc#roomconfig_maxusers is not a positive number";
    }
    next.max_users = std::min(n, max_users_limit);
  }
  if (const std::string* v = single(form, p + "whois")) {
    if (*v == "anyone") next.non_anonymous = true;
    else if (*v == "moderators") next.non_anonymous = false;
    else error = "field muc#roomconfig_whois must be anyone or moderators";
  }
  if (const std::string* v = single(form, p + "allowpm")) {
    auto pm = parse_allowpm(*v);
    if (!pm) error = "field muc#roomconfig_allowpm must be anyone, participants, moderators or none";
    else next.allow_pm = *pm;
  }
  if (auto it = form.find(p + "roomadmins"); it != form.end()) {
    change.has_admins = true;
    change.admins = it->second;
  }
  if (auto it = form.find(p + "roomowners"); it != form.end()) {
    change.has_owners = true;
    change.owners = it->second;
  }
  if (next.password_protected && next.secret.empty()) error = "a password-protected room needs a secret";
  if (error) return error;
  change.whois_changed = next.non_anonymous != config.non_anonymous;
  change.logging_changed = next.logging != config.logging;
  change.became_members_only = next.members_only && !config.members_only;
  change.any = next.name != config.name || next.description != config.description || next.lang != config.lang ||
               next.persistent != config.persistent || next.public_room != config.public_room ||
               next.members_only != config.members_only || next.moderated != config.moderated ||
               next.password_protected != config.password_protected || next.secret != config.secret ||
               next.max_users != config.max_users || next.non_anonymous != config.non_anonymous ||
               next.allow_invites != config.allow_invites || next.change_subject != config.change_subject ||
               next.logging != config.logging || next.presence_broadcast != config.presence_broadcast ||
               next.get_member_list != config.get_member_list || next.allow_pm != config.allow_pm;
  {
    // The same comparison with the privacy fields (whois, logging) kept as they were.
    RoomConfig same_privacy = next;
    same_privacy.non_anonymous = config.non_anonymous;
    same_privacy.logging = config.logging;
    change.not_privacy = change.any && encode_config(same_privacy) != encode_config(config);
  }
  config = std::move(next);
  return std::nullopt;
}

std::size_t select_history(const std::vector<HistoryMark>& entries, const HistoryRequest& request, int64_t now_ms,
                           std::size_t limit) noexcept {
  std::size_t first = entries.size();
  std::size_t taken = 0;
  int64_t chars = 0;
  while (first > 0) {
    const HistoryMark& e = entries[first - 1];
    if (taken >= limit) break;
    if (request.maxstanzas && static_cast<int64_t>(taken) >= *request.maxstanzas) break;
    if (request.maxchars && chars + static_cast<int64_t>(e.chars) > *request.maxchars) break;
    if (request.seconds && e.ms < now_ms - *request.seconds * 1000) break;
    if (request.since_ms && e.ms <= *request.since_ms) break;
    chars += static_cast<int64_t>(e.chars);
    ++taken;
    --first;
  }
  return first;
}

std::optional<int64_t> parse_datetime_ms(std::string_view s) noexcept {
  auto us = parley::xep0082_parse_us(s);
  if (!us) return std::nullopt;
  return *us >= 0 ? *us / 1000 : -((-*us + 999) / 1000);  // whole milliseconds, down
}

std::string sha256(std::string_view data) {
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string base64(std::string_view data) {
  // EVP_EncodeBlock writes a terminating NUL: the string's own one takes it.
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string sha1_hex(std::string_view data) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  std::string clean;
  clean.reserve(text.size());
  for (char c : text)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') clean += c;
  if (clean.size() % 4 != 0) return std::nullopt;
  std::string out(clean.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(clean.data()), static_cast<int>(clean.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding's bytes as zeros: drop them.
  std::size_t len = static_cast<std::size_t>(n);
  for (std::size_t i = clean.size(); i > 0 && clean[i - 1] == '=' && len > 0; --i) --len;
  out.resize(len);
  return out;
}

std::string occupant_id(std::string_view room_secret, std::string_view real_bare_jid) {
  // The secret first and a separator the JID cannot hold: one room's ids say
  // nothing about another's, and ids cannot be computed without the secret.
  std::string in(room_secret);
  in.push_back('\0');
  in.append(real_bare_jid);
  return base64(sha256(in).substr(0, 18));
}

bool RateBucket::take(int64_t now_ms, int64_t per_minute, int64_t burst) noexcept {
  if (per_minute <= 0) return true;
  if (tokens < 0) {
    tokens = static_cast<double>(burst);
    last_ms = now_ms;
  }
  tokens = std::min<double>(static_cast<double>(burst),
                            tokens + static_cast<double>(now_ms - last_ms) * static_cast<double>(per_minute) / 60000.0);
  last_ms = now_ms;
  if (tokens < 1.0) return false;
  tokens -= 1.0;
  return true;
}

}  // namespace muc

namespace muc {

namespace {

using parley::escape_line;
using parley::unescape_line;

std::string roles_text(const std::set<Role>& roles) {
  std::string out;
  for (Role r : roles) {
    if (!out.empty()) out += ',';
    out += to_string(r);
  }
  return out;
}

}  // namespace

std::string encode_config(const RoomConfig& c) {
  std::string out;
  auto line = [&](const char* key, std::string_view value) {
    out += key;
    out += '=';
    out += escape_line(value);
    out += '\n';
  };
  auto flag = [&](const char* key, bool v) { line(key, v ? "1" : "0"); };
  line("name", c.name);
  line("description", c.description);
  line("lang", c.lang);
  flag("persistent", c.persistent);
  flag("public", c.public_room);
  flag("members_only", c.members_only);
  flag("moderated", c.moderated);
  flag("password_protected", c.password_protected);
  line("secret", c.secret);
  line("max_users", std::to_string(c.max_users));
  flag("non_anonymous", c.non_anonymous);
  flag("allow_invites", c.allow_invites);
  flag("change_subject", c.change_subject);
  flag("logging", c.logging);
  line("presence_broadcast", roles_text(c.presence_broadcast));
  line("get_member_list", roles_text(c.get_member_list));
  line("allow_pm", to_string(c.allow_pm));
  if (!c.vcard.empty()) line("vcard", c.vcard);
  // One line per hat: JID, URI and title, tab-separated (a JID and a URI hold
  // no tab; a title's tabs were replaced when it was set).
  for (const auto& [jid, hats] : c.hats)
    for (const Hat& h : hats) line("hat", jid + '\t' + h.uri + '\t' + h.title);
  return out;
}

RoomConfig decode_config(std::string_view text, int64_t max_users_limit) {
  RoomConfig c;
  c.max_users = max_users_limit;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = line.substr(0, eq);
    std::string value = unescape_line(line.substr(eq + 1));
    bool on = value == "1";
    auto roles = [&]() {
      std::set<Role> out;
      std::string_view v = value;
      while (!v.empty()) {
        std::size_t comma = v.find(',');
        if (auto r = parse_role(v.substr(0, comma))) out.insert(*r);
        v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
      }
      return out;
    };
    if (key == "name") c.name = value;
    else if (key == "description") c.description = value;
    else if (key == "lang") c.lang = value;
    else if (key == "persistent") c.persistent = on;
    else if (key == "public") c.public_room = on;
    else if (key == "members_only") c.members_only = on;
    else if (key == "moderated") c.moderated = on;
    else if (key == "password_protected") c.password_protected = on;
    else if (key == "secret") c.secret = value;
    else if (key == "max_users") {
      int64_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec == std::errc() && n > 0) c.max_users = std::min(n, max_users_limit);
    } else if (key == "non_anonymous") c.non_anonymous = on;
    else if (key == "allow_invites") c.allow_invites = on;
    else if (key == "change_subject") c.change_subject = on;
    else if (key == "logging") c.logging = on;
    else if (key == "presence_broadcast") c.presence_broadcast = roles();
    else if (key == "get_member_list") c.get_member_list = roles();
    else if (key == "allow_pm") c.allow_pm = parse_allowpm(value).value_or(AllowPm::anyone);
    else if (key == "vcard") c.vcard = value;
    else if (key == "hat") {
      const std::size_t a = value.find('\t'), b = a == std::string::npos ? a : value.find('\t', a + 1);
      if (b != std::string::npos && a > 0 && b > a + 1)
        c.hats[value.substr(0, a)].push_back(Hat{value.substr(a + 1, b - a - 1), value.substr(b + 1)});
    }
  }
  return c;
}

}  // namespace muc
