#include "mam_logic.hpp"

#include <charconv>

#include "parley/sdk/stamp.hpp"

namespace parley::mod_mam {

namespace {

bool matches(std::string_view entry, std::string_view with) {
  if (entry == with) return true;
  // A bare JID in the list covers every resource of it.
  return entry.find('/') == std::string_view::npos && with.size() > entry.size() && with.substr(0, entry.size()) == entry &&
         with[entry.size()] == '/';
}

}  // namespace

void ArchivableScan::add(ChildName c) {
  if (c.ns == ns_hints && (c.name == "no-store" || c.name == "no-permanent-store")) refused_ = true;
  if (c.ns == ns_hints && c.name == "store") store_ = true;
  if (c.name == "body" && c.ns == ns_client) body_ = true;
}

bool ArchivableScan::result(std::string_view type) const {
  if (type == "error" || type == "groupchat" || type == "headline" || refused_) return false;
  return body_ || store_;
}

bool archivable(std::string_view type, const std::vector<ChildName>& children) {
  ArchivableScan scan;
  for (const ChildName& c : children) scan.add(c);
  return scan.result(type);
}

std::optional<Mode> parse_mode(std::string_view text) {
  if (text == "always") return Mode::always;
  if (text == "roster") return Mode::roster;
  if (text == "never") return Mode::never;
  return std::nullopt;
}

std::string_view mode_name(Mode mode) {
  switch (mode) {
    case Mode::always:
      return "always";
    case Mode::roster:
      return "roster";
    case Mode::never:
      return "never";
  }
  return "always";
}

bool should_archive(const Prefs& prefs, std::string_view with) {
  for (const std::string& j : prefs.never)
    if (matches(j, with)) return false;
  for (const std::string& j : prefs.always)
    if (matches(j, with)) return true;
  return prefs.default_mode != Mode::never;
}

Decision decide(const Prefs& prefs, std::string_view with) {
  for (const std::string& j : prefs.never)
    if (matches(j, with)) return Decision::skip;
  for (const std::string& j : prefs.always)
    if (matches(j, with)) return Decision::archive;
  switch (prefs.default_mode) {
    case Mode::always: return Decision::archive;
    case Mode::never: return Decision::skip;
    case Mode::roster: return Decision::ask_roster;
  }
  return Decision::archive;
}

std::string encode_prefs(const Prefs& prefs) {
  std::string out(mode_name(prefs.default_mode));
  for (const std::string& j : prefs.always) out += "\nalways " + j;
  for (const std::string& j : prefs.never) out += "\nnever " + j;
  return out;
}

std::optional<Prefs> decode_prefs(std::string_view text) {
  Prefs prefs;
  size_t pos = 0;
  bool first = true;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (first) {
      auto mode = parse_mode(line);
      if (!mode) return std::nullopt;
      prefs.default_mode = *mode;
      first = false;
    } else if (line.substr(0, 7) == "always " && line.size() > 7) {
      prefs.always.emplace_back(line.substr(7));
    } else if (line.substr(0, 6) == "never " && line.size() > 6) {
      prefs.never.emplace_back(line.substr(6));
    } else {
      return std::nullopt;
    }
    pos = end + 1;
  }
  if (first) return std::nullopt;
  return prefs;
}

std::optional<int64_t> parse_datetime(std::string_view s) { return parley::xep0082_parse_us(s); }

std::optional<uint64_t> parse_positive(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v == 0 || v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return v;
}

std::optional<int64_t> parse_duration(std::string_view text) {
  if (text == "never" || text == "0") return 0;
  if (text.empty()) return std::nullopt;
  int64_t unit = 1;
  std::string_view number = text;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    case 'w':
      unit = 7 * 86400;
      break;
    default:
      unit = 0;
  }
  if (unit != 0) number = text.substr(0, text.size() - 1);
  else unit = 1;
  if (number.empty() || number.size() > 12) return std::nullopt;
  int64_t v = 0;
  for (char c : number) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v * unit;
}

QueryResultOrError parse_query(const std::vector<FormField>& fields, const RsmIn& rsm, bool flip,
                               const QueryLimits& limits, const ArchiveIds& ids) {
  auto fail = [](std::string condition, std::string text) {
    return QueryResultOrError{std::nullopt, QueryError{std::move(condition), std::move(text)}};
  };
  ParsedQuery q;
  q.flip = flip;
  for (const FormField& f : fields) {
    auto single = [&]() -> std::optional<std::string> {
      if (f.values.size() != 1) return std::nullopt;
      return f.values[0];
    };
    if (f.var == "FORM_TYPE") {
      if (f.values.size() != 1 || (f.values[0] != ns_mam))
        return fail("bad-request", "FORM_TYPE must be urn:xmpp:mam:2");
    } else if (f.var == "with") {
      auto v = single();
      if (!v || v->empty()) return fail("bad-request", "'with' takes one JID");
      q.with = *v;
    } else if (f.var == "start" || f.var == "end") {
      auto v = single();
      auto t = v ? parse_datetime(*v) : std::nullopt;
      if (!t) return fail("bad-request", "'" + f.var + "' is not an XEP-0082 DateTime");
      (f.var == "start" ? q.start_us : q.end_us) = *t;
    } else if (f.var == "before-id" || f.var == "after-id") {
      auto v = single();
      if (!v) return fail("bad-request", "'" + f.var + "' takes one id");
      // Section 4.1.3: ids are opaque strings to the client; one this archive never
      // made (no id of its key) is simply not in it: item-not-found.
      auto id = ids.decode(*v);
      if (!id) return fail("item-not-found", "'" + f.var + "' names no entry of this archive");
      (f.var == "after-id" ? q.after_id : q.before_id) = *id;
    } else if (f.var == "ids") {
      if (f.values.empty()) return fail("bad-request", "'ids' needs at least one id");
      if (f.values.size() > limits.max_ids) return fail("policy-violation", "too many ids");
      q.by_ids = true;
      for (const std::string& v : f.values) {
        auto id = ids.decode(v);
        if (!id) return fail("item-not-found", "'ids' names an entry that is not in this archive");
        q.ids.push_back(*id);
      }
    } else {
      // XEP-0313 section 4.1.5: a field the server does not recognise.
      return fail("feature-not-implemented", "unknown field '" + f.var + "'");
    }
  }
  if (q.start_us > q.end_us) return fail("bad-request", "'start' is after 'end'");
  q.max = limits.default_page;
  if (rsm.max) {
    auto n = parse_positive(*rsm.max);
    if (*rsm.max == "0") n = 0;
    if (!n) return fail("bad-request", "<max/> is not a non-negative integer");
    q.max = *n > limits.max_page ? limits.max_page : static_cast<uint32_t>(*n);
  }
  if (rsm.index_present) return fail("feature-not-implemented", "RSM <index/> is not supported");
  if (rsm.after && rsm.before) return fail("bad-request", "<after/> and <before/> together");
  if (rsm.after) {
    auto id = ids.decode(*rsm.after);
    if (!id) return fail("item-not-found", "<after/> names no entry of this archive");
    q.page_after = *id;
  }
  if (rsm.before) {
    q.from_end = true;
    if (!rsm.before->empty()) {
      auto id = ids.decode(*rsm.before);
      if (!id) return fail("item-not-found", "<before/> names no entry of this archive");
      q.page_before = *id;
    }
  }
  return QueryResultOrError{std::move(q), std::nullopt};
}

}  // namespace parley::mod_mam
