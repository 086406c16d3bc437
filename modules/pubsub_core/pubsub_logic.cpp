#include "pubsub_logic.hpp"

#include "parley/sdk/line_record.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <set>
#include <tuple>

#include <openssl/evp.h>
#include <openssl/sha.h>

namespace parley::pubsub {

namespace {

std::optional<AccessModel> parse_access(std::string_view v) {
  if (v == "open") return AccessModel::open;
  if (v == "presence") return AccessModel::presence;
  if (v == "roster") return AccessModel::roster;
  if (v == "whitelist") return AccessModel::whitelist;
  if (v == "authorize") return AccessModel::authorize;
  return std::nullopt;
}

std::optional<SendLast> parse_send_last(std::string_view v) {
  if (v == "never") return SendLast::never;
  if (v == "on_sub") return SendLast::on_sub;
  if (v == "on_sub_and_presence") return SendLast::on_sub_and_presence;
  return std::nullopt;
}

// max_items: a count >= 1 up to the limit, or "max".
std::optional<int64_t> parse_max_items(std::string_view v, const Limits& limits) {
  if (v == "max") return -1;
  if (v.empty() || v.size() > 18) return std::nullopt;
  int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  if (n < 1 || n > limits.max_items) return std::nullopt;
  return n;
}

const char* bool_str(bool b) { return b ? "1" : "0"; }

std::string first(const FormField& f) { return f.values.empty() ? std::string() : f.values.front(); }

}  // namespace

std::string_view to_string(AccessModel m) {
  switch (m) {
    case AccessModel::open: return "open";
    case AccessModel::presence: return "presence";
    case AccessModel::roster: return "roster";
    case AccessModel::whitelist: return "whitelist";
    case AccessModel::authorize: return "authorize";
  }
  return "presence";
}

std::string_view to_string(SendLast s) {
  switch (s) {
    case SendLast::never: return "never";
    case SendLast::on_sub: return "on_sub";
    case SendLast::on_sub_and_presence: return "on_sub_and_presence";
  }
  return "never";
}

std::optional<bool> parse_bool(std::string_view v) {
  if (v == "1" || v == "true") return true;
  if (v == "0" || v == "false") return false;
  return std::nullopt;
}

int64_t NodeConfig::effective_max_items(const Limits& limits) const {
  if (max_items < 0 || max_items > limits.max_items) return limits.max_items;
  return max_items;
}

std::optional<std::string> form_value(const Form& form, std::string_view var) {
  for (const FormField& f : form)
    if (f.var == var) return first(f);
  return std::nullopt;
}

std::optional<FormError> apply_config(NodeConfig& config, const Form& form, const Limits& limits) {
  NodeConfig next = config;
  for (const FormField& f : form) {
    const std::string v = first(f);
    auto boolean = [&](bool& out) -> bool {
      auto b = parse_bool(v);
      if (b) out = *b;
      return b.has_value();
    };
    bool ok = true;
    if (f.var == "FORM_TYPE") {
      ok = v == node_config_form_type || v == publish_options_form_type;
    } else if (f.var == "pubsub#access_model") {
      auto m = parse_access(v);
      ok = m.has_value() && (limits.service ? (*m == AccessModel::open || *m == AccessModel::whitelist ||
                                                *m == AccessModel::authorize)
                                             : *m != AccessModel::authorize);
      if (ok) next.access = *m;
    } else if (f.var == "pubsub#max_items") {
      auto n = parse_max_items(v, limits);
      ok = n.has_value();
      if (ok) next.max_items = *n;
    } else if (f.var == "pubsub#persist_items") {
      ok = boolean(next.persist_items);
    } else if (f.var == "pubsub#send_last_published_item") {
      auto s = parse_send_last(v);
      ok = s.has_value() && (!limits.service || *s != SendLast::on_sub_and_presence);
      if (ok) next.send_last = *s;
    } else if (f.var == "pubsub#notify_retract") {
      ok = boolean(next.notify_retract);
    } else if (f.var == "pubsub#notify_delete") {
      ok = boolean(next.notify_delete);
    } else if (f.var == "pubsub#notify_config") {
      ok = boolean(next.notify_config);
    } else if (f.var == "pubsub#deliver_payloads") {
      ok = boolean(next.deliver_payloads);
    } else if (f.var == "pubsub#deliver_notifications") {
      ok = boolean(next.deliver_notifications);
    } else if (f.var == "pubsub#roster_groups_allowed" && !limits.service) {
      next.roster_groups = f.values;
    } else if (f.var == "pubsub#item_expire" && limits.service) {
      // Whole seconds, at most ten years ("" or 0: items never expire).
      int64_t secs = 0;
      ok = v.size() <= 9 && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
      for (char c : v) secs = secs * 10 + (c - '0');
      ok = ok && secs <= 315360000;
      if (ok) next.item_expire = secs;
    } else if (f.var == "pubsub#title") {
      next.title = v;
    } else if (f.var == "pubsub#type") {
      next.type = v;
    } else if (f.var == "pubsub#publish_model") {
      // Open publishing on a personal node is not offered.
      ok = v == "publishers" || (limits.service && (v == "subscribers" || v == "open"));
      if (ok) next.publish_model = v;
    } else {
      return FormError{f.var, "unsupported configuration field"};
    }
    if (!ok) return FormError{f.var, "unacceptable value '" + v + "'"};
  }
  config = std::move(next);
  return std::nullopt;
}

std::optional<std::string> precondition_mismatch(const NodeConfig& config, const Form& options,
                                                 const Limits& limits) {
  for (const FormField& f : options) {
    if (f.var == "FORM_TYPE") continue;
    // Apply the option alone to a copy: it matches when nothing changes.
    NodeConfig probe = config;
    if (apply_config(probe, Form{f}, limits)) return f.var;
    if (f.var == "pubsub#max_items") {
      // "max" and the limit itself are the same node.
      if (probe.effective_max_items(limits) != config.effective_max_items(limits)) return f.var;
      continue;
    }
    if (serialize_config(probe) != serialize_config(config)) return f.var;
  }
  return std::nullopt;
}

NodeConfig service_defaults() {
  NodeConfig c;
  c.access = AccessModel::open;
  c.max_items = 10;
  c.send_last = SendLast::never;
  return c;
}

std::vector<ConfigField> config_fields(const NodeConfig& c, bool service) {
  std::vector<ConfigField> out;
  out.push_back({"FORM_TYPE", "hidden", "", {std::string(node_config_form_type)}, {}});
  out.push_back({"pubsub#title", "text-single", "A friendly name for the node", {c.title}, {}});
  out.push_back({"pubsub#deliver_notifications", "boolean", "Deliver event notifications",
                 {bool_str(c.deliver_notifications)}, {}});
  out.push_back({"pubsub#deliver_payloads", "boolean", "Deliver payloads with event notifications",
                 {bool_str(c.deliver_payloads)}, {}});
  out.push_back({"pubsub#notify_config", "boolean", "Notify subscribers when the node configuration changes",
                 {bool_str(c.notify_config)}, {}});
  out.push_back({"pubsub#notify_delete", "boolean", "Notify subscribers when the node is deleted",
                 {bool_str(c.notify_delete)}, {}});
  out.push_back({"pubsub#notify_retract", "boolean", "Notify subscribers when items are removed from the node",
                 {bool_str(c.notify_retract)}, {}});
  out.push_back({"pubsub#persist_items", "boolean", "Persist items to storage", {bool_str(c.persist_items)}, {}});
  out.push_back({"pubsub#max_items", "text-single", "Max # of items to persist",
                 {c.max_items < 0 ? std::string("max") : std::to_string(c.max_items)}, {}});
  out.push_back({"pubsub#access_model", "list-single", "Specify the subscriber model",
                 {std::string(to_string(c.access))},
                 service ? std::vector<std::string>{"authorize", "open", "whitelist"}
                         : std::vector<std::string>{"open", "presence", "roster", "whitelist"}});
  if (!service)
    out.push_back({"pubsub#roster_groups_allowed", "list-multi", "Roster groups allowed to subscribe",
                   c.roster_groups, {}});
  out.push_back({"pubsub#publish_model", "list-single", "Specify the publisher model", {c.publish_model},
                 service ? std::vector<std::string>{"publishers", "subscribers", "open"}
                         : std::vector<std::string>{"publishers"}});
  out.push_back({"pubsub#send_last_published_item", "list-single", "When to send the last published item",
                 {std::string(to_string(c.send_last))},
                 service ? std::vector<std::string>{"never", "on_sub"}
                         : std::vector<std::string>{"never", "on_sub", "on_sub_and_presence"}});
  out.push_back({"pubsub#type", "text-single", "Specify the semantic type of payload data to be provided",
                 {c.type}, {}});
  if (service)
    out.push_back({"pubsub#item_expire", "text-single", "Number of seconds after which to automatically purge items",
                   {std::to_string(c.item_expire)}, {}});
  return out;
}

// One "key value" per line; list entries repeat their key. Values contain no
// newline (a submitted one is cut at it: see escape_line()).
namespace {
using parley::escape_line;
using parley::unescape_line;
}  // namespace

std::string serialize_config(const NodeConfig& c) {
  std::string out = "v1\n";
  auto line = [&](std::string_view k, std::string_view v) {
    out.append(k).append(" ").append(escape_line(v)).append("\n");
  };
  line("access", to_string(c.access));
  line("max_items", std::to_string(c.max_items));
  line("persist_items", bool_str(c.persist_items));
  line("send_last", to_string(c.send_last));
  line("notify_retract", bool_str(c.notify_retract));
  line("notify_delete", bool_str(c.notify_delete));
  line("notify_config", bool_str(c.notify_config));
  line("deliver_payloads", bool_str(c.deliver_payloads));
  line("deliver_notifications", bool_str(c.deliver_notifications));
  line("title", c.title);
  line("type", c.type);
  line("publish_model", c.publish_model);
  if (c.item_expire > 0) line("item_expire", std::to_string(c.item_expire));
  for (const auto& g : c.roster_groups) line("group", g);
  for (const auto& j : c.whitelist) line("member", j);
  for (const auto& j : c.outcasts) line("outcast", j);
  return out;
}

NodeConfig parse_config(std::string_view stored) {
  NodeConfig c;
  while (!stored.empty()) {
    auto nl = stored.find('\n');
    std::string_view line = stored.substr(0, nl);
    stored.remove_prefix(nl == std::string_view::npos ? stored.size() : nl + 1);
    auto sp = line.find(' ');
    if (sp == std::string_view::npos) continue;
    std::string_view k = line.substr(0, sp);
    std::string v = unescape_line(line.substr(sp + 1));
    auto b = parse_bool(v);
    if (k == "access") c.access = parse_access(v).value_or(c.access);
    else if (k == "max_items") {
      if (v == "-1") c.max_items = -1;
      else if (auto n = parse_max_items(v, Limits{INT64_MAX / 2, 0, 0})) c.max_items = *n;
    } else if (k == "persist_items" && b) c.persist_items = *b;
    else if (k == "send_last") c.send_last = parse_send_last(v).value_or(c.send_last);
    else if (k == "notify_retract" && b) c.notify_retract = *b;
    else if (k == "notify_delete" && b) c.notify_delete = *b;
    else if (k == "notify_config" && b) c.notify_config = *b;
    else if (k == "deliver_payloads" && b) c.deliver_payloads = *b;
    else if (k == "deliver_notifications" && b) c.deliver_notifications = *b;
    else if (k == "title") c.title = v;
    else if (k == "type") c.type = v;
    else if (k == "publish_model") c.publish_model = v;
    else if (k == "item_expire") {
      int64_t secs = 0;
      for (char ch : v) secs = ch >= '0' && ch <= '9' && secs < 315360000 ? secs * 10 + (ch - '0') : secs;
      c.item_expire = secs;
    }
    else if (k == "group") c.roster_groups.push_back(v);
    else if (k == "member") c.whitelist.push_back(v);
    else if (k == "outcast") c.outcasts.push_back(v);
  }
  return c;
}

Access check_access(const NodeConfig& config, bool is_owner, std::string_view requester_bare, bool subscribed_from,
                    const std::vector<std::string>& groups) {
  if (is_owner) return Access::allowed;
  auto listed = [&](const std::vector<std::string>& list) {
    return std::find(list.begin(), list.end(), requester_bare) != list.end();
  };
  if (listed(config.outcasts)) return Access::outcast;
  switch (config.access) {
    case AccessModel::open: return Access::allowed;
    case AccessModel::presence: return subscribed_from ? Access::allowed : Access::presence_required;
    case AccessModel::roster:
      for (const auto& g : groups)
        if (std::find(config.roster_groups.begin(), config.roster_groups.end(), g) != config.roster_groups.end())
          return Access::allowed;
      return Access::not_in_group;
    case AccessModel::whitelist: return listed(config.whitelist) ? Access::allowed : Access::not_whitelisted;
    case AccessModel::authorize: return Access::not_whitelisted;  // a personal node never has it
  }
  return Access::presence_required;
}

std::string_view to_string(Affiliation a) {
  switch (a) {
    case Affiliation::none: return "none";
    case Affiliation::owner: return "owner";
    case Affiliation::publisher: return "publisher";
    case Affiliation::publish_only: return "publish-only";
    case Affiliation::member: return "member";
    case Affiliation::outcast: return "outcast";
  }
  return "none";
}

std::optional<Affiliation> parse_affiliation(std::string_view v) {
  if (v == "none") return Affiliation::none;
  if (v == "owner") return Affiliation::owner;
  if (v == "publisher") return Affiliation::publisher;
  if (v == "publish-only") return Affiliation::publish_only;
  if (v == "member") return Affiliation::member;
  if (v == "outcast") return Affiliation::outcast;
  return std::nullopt;
}

Verdict may_subscribe(const NodeConfig& config, Affiliation aff) {
  if (aff == Affiliation::outcast || aff == Affiliation::publish_only) return Verdict::forbidden;
  if (config.access == AccessModel::whitelist && aff == Affiliation::none) return Verdict::closed_node;
  return Verdict::allowed;
}

Verdict may_retrieve(const NodeConfig& config, Affiliation aff, bool subscribed) {
  const Verdict v = may_subscribe(config, aff);
  if (v == Verdict::allowed && !subscribed && needs_approval(config, aff)) return Verdict::not_subscribed;
  return v;
}

bool needs_approval(const NodeConfig& config, Affiliation aff) {
  return config.access == AccessModel::authorize &&
         (aff == Affiliation::none);  // owners, publishers and members are approved by their affiliation
}

std::optional<FormError> apply_sub_options(SubOptions& options, const Form& form) {
  SubOptions next = options;
  for (const FormField& f : form) {
    const std::string v = first(f);
    std::optional<bool> b = parse_bool(v);
    if (f.var == "FORM_TYPE") {
      if (v != subscribe_options_form_type) return FormError{f.var, "not a subscribe_options form"};
    } else if (f.var == "pubsub#deliver") {
      if (!b) return FormError{f.var, "unacceptable value '" + v + "'"};
      next.deliver = *b;
    } else if (f.var == "pubsub#include_body") {
      if (!b) return FormError{f.var, "unacceptable value '" + v + "'"};
      next.include_body = *b;
    } else {
      return FormError{f.var, "unsupported subscription option"};
    }
  }
  options = next;
  return std::nullopt;
}

std::vector<ConfigField> sub_option_fields(const SubOptions& o) {
  return {{"FORM_TYPE", "hidden", "", {std::string(subscribe_options_form_type)}, {}},
          {"pubsub#deliver", "boolean", "Enable delivery?", {bool_str(o.deliver)}, {}},
          {"pubsub#include_body", "boolean", "Receive message body in addition to payload?",
           {bool_str(o.include_body)}, {}}};
}

std::string serialize_sub_options(const SubOptions& o) {
  if (o == SubOptions{}) return {};
  return std::string("deliver ") + bool_str(o.deliver) + "\ninclude_body " + bool_str(o.include_body) + "\n";
}

SubOptions parse_sub_options(std::string_view stored) {
  SubOptions o;
  while (!stored.empty()) {
    auto nl = stored.find('\n');
    std::string_view line = stored.substr(0, nl);
    stored.remove_prefix(nl == std::string_view::npos ? stored.size() : nl + 1);
    auto sp = line.find(' ');
    if (sp == std::string_view::npos) continue;
    auto b = parse_bool(line.substr(sp + 1));
    if (!b) continue;
    if (line.substr(0, sp) == "deliver") o.deliver = *b;
    else if (line.substr(0, sp) == "include_body") o.include_body = *b;
  }
  return o;
}

std::string atom_summary(std::string_view title, std::string_view summary) {
  std::string out(title);
  if (!summary.empty()) {
    if (!out.empty()) out += "\n";
    out += summary;
  }
  return out;
}

bool may_publish(const NodeConfig& config, Affiliation aff, bool subscribed) {
  switch (aff) {
    case Affiliation::owner:
    case Affiliation::publisher:
    case Affiliation::publish_only: return true;
    case Affiliation::outcast: return false;
    case Affiliation::member:
    case Affiliation::none:
      if (config.publish_model == "open") return true;
      return config.publish_model == "subscribers" && subscribed;
  }
  return false;
}

bool may_retract(Affiliation aff, bool own_item) {
  if (aff == Affiliation::owner) return true;
  return (aff == Affiliation::publisher || aff == Affiliation::publish_only) && own_item;
}

std::vector<std::string> decode_roster_groups(std::string_view stored) {
  std::vector<std::string> out;
  while (!stored.empty()) {
    const auto colon = stored.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 9) break;
    std::size_t len = 0;
    for (char c : stored.substr(0, colon)) {
      if (c < '0' || c > '9') return out;
      len = len * 10 + static_cast<std::size_t>(c - '0');
    }
    stored.remove_prefix(colon + 1);
    if (len > stored.size()) break;
    out.emplace_back(stored.substr(0, len));
    stored.remove_prefix(len);
  }
  return out;
}

Page rsm_page(std::size_t total, std::optional<std::size_t> after, std::optional<std::size_t> before, bool from_end,
              std::size_t max) {
  if (before || from_end) {
    const std::size_t end = before ? std::min(*before, total) : total;
    return Page{end > max ? end - max : 0, end};
  }
  const std::size_t begin = after ? std::min(*after + 1, total) : 0;
  return Page{begin, std::min(total, begin + max)};
}

std::string encode_strings(const std::vector<std::string>& strings) {
  std::string out;
  for (const auto& s : strings) out += std::to_string(s.size()) + ":" + s;
  return out;
}

std::string xml_attr(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&apos;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// ---- XEP-0115 ----

std::optional<std::string> caps_ver(const CapsInfo& info) {
  auto ids = info.identities;
  std::sort(ids.begin(), ids.end(), [](const CapsIdentity& a, const CapsIdentity& b) {
    return std::tie(a.category, a.type, a.lang, a.name) < std::tie(b.category, b.type, b.lang, b.name);
  });
  for (std::size_t i = 1; i < ids.size(); ++i)
    if (std::tie(ids[i].category, ids[i].type, ids[i].lang, ids[i].name) ==
        std::tie(ids[i - 1].category, ids[i - 1].type, ids[i - 1].lang, ids[i - 1].name))
      return std::nullopt;  // §5.4 3.b: duplicate identity
  auto features = info.features;
  std::sort(features.begin(), features.end());
  if (std::adjacent_find(features.begin(), features.end()) != features.end()) return std::nullopt;  // 3.c
  auto forms = info.forms;
  std::sort(forms.begin(), forms.end(),
            [](const CapsForm& a, const CapsForm& b) { return a.form_type < b.form_type; });
  for (std::size_t i = 1; i < forms.size(); ++i)
    if (forms[i].form_type == forms[i - 1].form_type) return std::nullopt;  // 3.d
  std::string s;
  for (const auto& id : ids) s += id.category + "/" + id.type + "/" + id.lang + "/" + id.name + "<";
  for (const auto& f : features) s += f + "<";
  for (auto form : forms) {
    s += form.form_type + "<";
    std::sort(form.fields.begin(), form.fields.end(),
              [](const FormField& a, const FormField& b) { return a.var < b.var; });
    for (auto field : form.fields) {
      s += field.var + "<";
      std::sort(field.values.begin(), field.values.end());
      for (const auto& v : field.values) s += v + "<";
    }
  }
  return base64(sha1(s));
}

std::string sha1(std::string_view data) {
  std::string out(SHA_DIGEST_LENGTH, '\0');
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), reinterpret_cast<unsigned char*>(out.data()));
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

std::optional<std::string> base64_decode(std::string_view text) {
  std::string clean;
  clean.reserve(text.size());
  for (char c : text)
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') clean.push_back(c);
  if (clean.size() % 4 != 0) return std::nullopt;
  std::string out(clean.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(clean.data()), static_cast<int>(clean.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding's bytes too.
  std::size_t pad = 0;
  if (!clean.empty() && clean.back() == '=') pad = clean.size() >= 2 && clean[clean.size() - 2] == '=' ? 2 : 1;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

}  // namespace parley::pubsub
