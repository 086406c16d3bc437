#include "fake_host.hpp"

#include <atomic>
#include <cctype>
#include <cstring>

namespace {

std::atomic<long> g_live{0};

// fake::ThreadLoop: what current_loop() answers on this thread.
thread_local bool t_has_loop = false;
thread_local int32_t t_loop = 0;

int32_t loop_of(const parley_module* m) { return t_has_loop ? t_loop : m->loop; }

// The calling loop's lane, if the test uses lanes and the caller plays a loop.
FakeLane* lane_of(parley_module* m) {
  if (m->lanes.empty()) return nullptr;
  int32_t loop = loop_of(m);
  if (loop < 0 || static_cast<size_t>(loop) >= m->lanes.size()) return nullptr;
  return &m->lanes[static_cast<size_t>(loop)];
}

std::string_view sv(parley_str s) { return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view(); }
parley_str ps(std::string_view s) { return parley_str{s.data(), s.size()}; }
void emit(parley_sink out, std::string_view s) { out.append(out.ctx, s.data(), s.size()); }

void escape(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&apos;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
}

void serialize_to(std::string& out, const parley_element* e, std::string_view parent_ns) {
  out += '<';
  out += e->name;
  if (e->xmlns != parent_ns) {
    out += " xmlns='";
    escape(out, e->xmlns);
    out += '\'';
  }
  for (const auto& [k, v] : e->attrs) {
    out += ' ' + k + "='";
    escape(out, v);
    out += '\'';
  }
  if (e->nodes.empty()) {
    out += "/>";
    return;
  }
  out += '>';
  for (const auto& n : e->nodes) {
    if (auto* child = std::get_if<std::unique_ptr<parley_element>>(&n)) serialize_to(out, child->get(), e->xmlns);
    else escape(out, std::get<std::string>(n));
  }
  out += "</" + e->name + '>';
}

// A small recursive-descent parser: elements, attributes, text, the five
// predefined entities. Enough for tests; the real host uses expat.
struct Parser {
  std::string_view in;
  size_t pos = 0;

  bool eof() const { return pos >= in.size(); }
  void skip_ws() {
    while (!eof() && (in[pos] == ' ' || in[pos] == '\n' || in[pos] == '\t' || in[pos] == '\r')) ++pos;
  }
  std::string name() {
    size_t start = pos;
    while (!eof() && (isalnum(static_cast<unsigned char>(in[pos])) || in[pos] == '_' || in[pos] == '-' ||
                      in[pos] == ':' || in[pos] == '.'))
      ++pos;
    return std::string(in.substr(start, pos - start));
  }
  bool unescape(std::string_view raw, std::string& out) {
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '&') {
        out += raw[i];
        continue;
      }
      size_t semi = raw.find(';', i);
      if (semi == std::string_view::npos) return false;
      std::string_view ent = raw.substr(i + 1, semi - i - 1);
      if (ent == "amp") out += '&';
      else if (ent == "lt") out += '<';
      else if (ent == "gt") out += '>';
      else if (ent == "apos") out += '\'';
      else if (ent == "quot") out += '"';
      else return false;
      i = semi;
    }
    return true;
  }
  std::unique_ptr<parley_element> element(std::string_view inherited_ns) {
    if (eof() || in[pos] != '<') return nullptr;
    ++pos;
    auto e = std::make_unique<parley_element>();
    e->name = name();
    if (e->name.empty()) return nullptr;
    e->xmlns = std::string(inherited_ns);
    for (;;) {
      skip_ws();
      if (eof()) return nullptr;
      if (in.substr(pos, 2) == "/>") {
        pos += 2;
        return e;
      }
      if (in[pos] == '>') {
        ++pos;
        break;
      }
      std::string key = name();
      if (key.empty() || eof() || in[pos] != '=') return nullptr;
      ++pos;
      if (eof() || (in[pos] != '\'' && in[pos] != '"')) return nullptr;
      char q = in[pos++];
      size_t end = in.find(q, pos);
      if (end == std::string_view::npos) return nullptr;
      std::string value;
      if (!unescape(in.substr(pos, end - pos), value)) return nullptr;
      pos = end + 1;
      if (key == "xmlns") e->xmlns = value;
      else e->attrs.emplace_back(key, value);
    }
    for (;;) {
      if (eof()) return nullptr;
      if (in.substr(pos, 2) == "</") {
        pos += 2;
        if (name() != e->name) return nullptr;
        skip_ws();
        if (eof() || in[pos] != '>') return nullptr;
        ++pos;
        return e;
      }
      if (in[pos] == '<') {
        auto child = element(e->xmlns);
        if (!child) return nullptr;
        e->nodes.emplace_back(std::move(child));
        continue;
      }
      size_t end = in.find('<', pos);
      if (end == std::string_view::npos) return nullptr;
      std::string text;
      if (!unescape(in.substr(pos, end - pos), text)) return nullptr;
      e->nodes.emplace_back(std::move(text));
      pos = end;
    }
  }
};

std::vector<parley_element*> element_children(const parley_element* e) {
  std::vector<parley_element*> out;
  for (const auto& n : e->nodes)
    if (auto* c = std::get_if<std::unique_ptr<parley_element>>(&n)) out.push_back(c->get());
  return out;
}

// --- the table -------------------------------------------------------------

void h_log(parley_module* m, int level, parley_str text) { m->logs.emplace_back(level, std::string(sv(text))); }

const FakeOption* find_option(parley_module* m, parley_str name) {
  auto it = m->options.find(std::string(sv(name)));
  return it == m->options.end() ? nullptr : &it->second;
}
int h_option_string(parley_module* m, parley_str name, parley_sink out) {
  const FakeOption* o = find_option(m, name);
  if (!o) return 0;
  auto* s = std::get_if<std::string>(o);
  if (!s) return -1;
  emit(out, *s);
  return 1;
}
int h_option_int(parley_module* m, parley_str name, int64_t* out) {
  const FakeOption* o = find_option(m, name);
  if (!o) return 0;
  auto* v = std::get_if<int64_t>(o);
  if (!v) return -1;
  *out = *v;
  return 1;
}
int h_option_bool(parley_module* m, parley_str name, int* out) {
  const FakeOption* o = find_option(m, name);
  if (!o) return 0;
  auto* v = std::get_if<bool>(o);
  if (!v) return -1;
  *out = *v ? 1 : 0;
  return 1;
}
int h_option_string_list(parley_module* m, parley_str name, parley_sink out) {
  const FakeOption* o = find_option(m, name);
  if (!o) return 0;
  auto* v = std::get_if<std::vector<std::string>>(o);
  if (!v) return -1;
  for (const auto& item : *v) out.append(out.ctx, item.data(), item.size());
  return 1;
}
parley_str h_module_host(parley_module* m) { return ps(m->host); }

parley_element* h_element_new(parley_str name, parley_str xmlns) {
  auto* e = new parley_element;
  e->name = std::string(sv(name));
  e->xmlns = std::string(sv(xmlns));
  return e;
}
parley_element* h_element_parse(parley_str xml) { return fake::parse(sv(xml)); }
parley_element* clone(const parley_element* e) {
  auto* c = new parley_element;
  c->name = e->name;
  c->xmlns = e->xmlns;
  c->attrs = e->attrs;
  for (const auto& n : e->nodes) {
    if (auto* child = std::get_if<std::unique_ptr<parley_element>>(&n))
      c->nodes.emplace_back(std::unique_ptr<parley_element>(clone(child->get())));
    else c->nodes.emplace_back(std::get<std::string>(n));
  }
  return c;
}
parley_element* h_element_clone(const parley_element* e) { return clone(e); }
void h_element_free(parley_element* e) { delete e; }
parley_str h_element_name(const parley_element* e) { return ps(e->name); }
parley_str h_element_xmlns(const parley_element* e) { return ps(e->xmlns); }
int h_element_attr(const parley_element* e, parley_str name, parley_str* value) {
  for (const auto& [k, v] : e->attrs) {
    if (k == sv(name)) {
      *value = ps(v);
      return 1;
    }
  }
  return 0;
}
void h_element_set_attr(parley_element* e, parley_str name, parley_str value) {
  for (auto& [k, v] : e->attrs) {
    if (k == sv(name)) {
      v = std::string(sv(value));
      return;
    }
  }
  e->attrs.emplace_back(std::string(sv(name)), std::string(sv(value)));
}
void h_element_remove_attr(parley_element* e, parley_str name) {
  std::erase_if(e->attrs, [&](const auto& a) { return a.first == sv(name); });
}
size_t h_element_child_count(const parley_element* e) { return element_children(e).size(); }
parley_element* h_element_child_at(parley_element* e, size_t index) {
  auto children = element_children(e);
  return index < children.size() ? children[index] : nullptr;
}
parley_element* h_element_find_child(parley_element* e, parley_str name, parley_str xmlns) {
  for (parley_element* c : element_children(e))
    if (c->name == sv(name) && (xmlns.len == 0 || c->xmlns == sv(xmlns))) return c;
  return nullptr;
}
parley_element* h_element_add_child(parley_element* parent, parley_element* child) {
  parent->nodes.emplace_back(std::unique_ptr<parley_element>(child));
  return child;
}
void h_element_add_text(parley_element* e, parley_str text) {
  if (!e->nodes.empty())
    if (auto* s = std::get_if<std::string>(&e->nodes.back())) {
      *s += sv(text);
      return;
    }
  e->nodes.emplace_back(std::string(sv(text)));
}
void h_element_remove_children(parley_element* e, parley_str name, parley_str xmlns) {
  std::erase_if(e->nodes, [&](const auto& n) {
    auto* c = std::get_if<std::unique_ptr<parley_element>>(&n);
    return c && (*c)->name == sv(name) && (xmlns.len == 0 || (*c)->xmlns == sv(xmlns));
  });
}
void h_element_text(const parley_element* e, parley_sink out) {
  for (const auto& n : e->nodes)
    if (auto* s = std::get_if<std::string>(&n)) emit(out, *s);
}
void h_element_serialize(const parley_element* e, parley_sink out) { emit(out, fake::serialize(e)); }

void h_route(parley_module* m, parley_element* stanza) {
  m->routed.push_back(fake::serialize(stanza));
  delete stanza;
}
void h_bounce(parley_module* m, const parley_element* stanza, parley_str condition, parley_str text) {
  m->bounces.push_back({fake::serialize(stanza), std::string(sv(condition)), std::string(sv(text))});
}
int h_send_to_session(parley_module* m, parley_session_id session, parley_element* stanza) {
  std::unique_ptr<parley_element> owned(stanza);
  if (!m->sessions.count(session)) return 0;
  m->sent.emplace_back(session, fake::serialize(stanza));
  return 1;
}
int h_session_send_tracked(parley_module* m, parley_session_id session, parley_element* stanza, parley_sent_fn done,
                           void* arg) {
  std::unique_ptr<parley_element> owned(stanza);
  if (!m->sessions.count(session) || done == nullptr) return 0;
  FakeSend send{session, fake::serialize(stanza), done, arg};
  if (FakeLane* lane = lane_of(m)) lane->tracked.push_back(std::move(send));
  else m->tracked.push_back(std::move(send));
  return 1;
}
uint64_t h_timer_start(parley_module* m, uint64_t delay_ms, uint64_t repeat_ms, parley_timer_fn fn, void* arg) {
  if (FakeLane* lane = lane_of(m)) {
    uint64_t id = (static_cast<uint64_t>(lane->loop) + 1) << 32 | lane->next_timer++;
    lane->timers[id] = FakeTimer{delay_ms, repeat_ms, fn, arg};
    return id;
  }
  uint64_t id = m->next_timer++;
  m->timers[id] = FakeTimer{delay_ms, repeat_ms, fn, arg};
  return id;
}
int h_timer_cancel(parley_module* m, uint64_t timer_id) {
  if (FakeLane* lane = lane_of(m)) {
    lane->cancelled.push_back(timer_id);
    if ((timer_id >> 32) == static_cast<uint64_t>(lane->loop) + 1) return lane->timers.erase(timer_id) ? 1 : 0;
    // Another loop's timer: parleyd posts the cancel there, and the timer may
    // fire before it arrives. The fake never gets there: the timer stays in
    // its lane, and may fire; the SDK must not run it any more.
    return 1;
  }
  m->cancelled.push_back(timer_id);
  return m->timers.erase(timer_id) ? 1 : 0;
}
void h_counter_add(parley_module* m, parley_str name, int64_t delta) { m->counters[std::string(sv(name))] += delta; }
void h_server_features(parley_module* m, parley_sink out) {
  for (const auto& f : m->features) emit(out, f);
}

void h_storage_query(parley_module* m, parley_str sql, const parley_value* params, size_t count, int write,
                     parley_rows_fn done, void* arg) {
  FakeQuery q{std::string(sv(sql)), {}, {}, write != 0, done, arg};
  for (size_t i = 0; i < count; ++i) {
    q.param_types.push_back(params[i].type);
    if (params[i].type == PARLEY_VALUE_INT) q.params.emplace_back(params[i].integer);
    else if (params[i].type == PARLEY_VALUE_NULL) q.params.emplace_back(std::vector<std::string>{});
    else q.params.emplace_back(std::string(sv(params[i].bytes)));
  }
  if (FakeLane* lane = lane_of(m)) lane->queries.push_back(std::move(q));
  else m->queries.push_back(std::move(q));
}
size_t h_rows_count(const parley_rows* rows) { return rows ? rows->rows.size() : 0; }
size_t h_rows_columns(const parley_rows* rows) { return rows ? rows->columns : 0; }
parley_value h_rows_value(const parley_rows* rows, size_t row, size_t column) {
  if (!rows || row >= rows->rows.size() || column >= rows->rows[row].size()) return parley_value{PARLEY_VALUE_NULL, 0, {}};
  return rows->rows[row][column];
}
int64_t h_rows_changes(const parley_rows* rows) { return rows ? rows->changes : 0; }

// Session slots of live sessions (m->sessions); folds: the fake host has no other modules.
int h_session_set_data(parley_module* m, parley_session_id session, void* data, void (*free_fn)(void*)) {
  // Refused: the data stays the caller's, as with parleyd (set_session_slot frees it).
  if (!m->sessions.count(session)) return 0;
  m->slots[session] = std::make_unique<FakeSlot>(data, free_fn);  // frees the one it replaces
  return 1;
}
void* h_session_get_data(parley_module* m, parley_session_id session) {
  auto it = m->slots.find(session);
  return it == m->slots.end() ? nullptr : it->second->data;
}
int h_run_fold(parley_module*, uint32_t event, parley_element* acc, parley_session_id) {
  return event == PARLEY_EVENT_DISCO_INFO && acc ? PARLEY_PASS : -2;
}

size_t h_user_sessions(parley_module*, parley_str, parley_session_fn, void*) { return 0; }

// A plausible RFC 7622 preparation (the real one, with stringprep and IDNA,
// is the core's and is tested there): the structure, 1023 bytes per part,
// well-formed UTF-8, the ASCII a localpart or a domain label refuses, a
// trailing dot dropped, ASCII case folded in the localpart and the domain.
bool fake_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 9;
    if (n == 9 || (n > 0 && i + n >= s.size())) return false;
    if (n == 1 && c < 0xC2) return false;  // overlong
    for (size_t k = 1; k <= n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    if (n == 2 && c == 0xED && static_cast<unsigned char>(s[i + 1]) >= 0xA0) return false;  // surrogate
    i += n + 1;
  }
  return true;
}
std::string fake_fold(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}
int h_jid_prepare(parley_str text, parley_sink out) {
  std::string_view rest = sv(text), local, resource;
  bool has_local = false, has_resource = false;
  if (rest.empty() || !fake_utf8(rest)) return 0;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    resource = rest.substr(slash + 1), rest = rest.substr(0, slash), has_resource = true;
  }
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    local = rest.substr(0, at), rest = rest.substr(at + 1), has_local = true;
  }
  if (!rest.empty() && rest.back() == '.') rest.remove_suffix(1);
  if ((has_local && (local.empty() || local.size() > 1023)) || rest.empty() || rest.size() > 1023 ||
      (has_resource && (resource.empty() || resource.size() > 1023)))
    return 0;
  for (char ch : local) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7F || std::string_view("\"&'/:<>@").find(ch) != std::string_view::npos) return 0;
  }
  for (char ch : rest) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x80 && !std::isalnum(c) && ch != '-' && ch != '.') return 0;
  }
  if (rest.find("..") != std::string_view::npos || rest.front() == '.') return 0;
  for (char ch : resource)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7F) return 0;
  std::string prepared = has_local ? fake_fold(local) + "@" + fake_fold(rest) : fake_fold(rest);
  if (has_resource) prepared += "/" + std::string(resource);
  emit(out, prepared);
  return 1;
}

// ---- ABI 1.2 ----
int h_register_route(parley_module* m, parley_str domain, parley_str name, parley_route_fn fn) {
  if (!m->starting || fn == nullptr || domain.len == 0) return 0;
  for (const auto& r : m->routes)
    if (r.domain == sv(domain)) return 0;
  m->routes.push_back({std::string(sv(domain)), std::string(sv(name)), fn});
  return 1;
}
size_t h_host_routes(parley_module* m, parley_route_info_fn each, void* arg) {
  for (const auto& r : m->routes)
    if (each) each(arg, parley_str{r.domain.data(), r.domain.size()}, parley_str{r.name.data(), r.name.size()});
  return m->routes.size();
}
uint32_t h_loop_count(parley_module* m) { return m->loops; }
int32_t h_current_loop(parley_module* m) { return loop_of(m); }
int h_post(parley_module* m, uint32_t loop, parley_task_fn fn, void* arg) {
  if (loop >= m->loops || fn == nullptr) return 0;
  m->posted.push_back({loop, fn, arg});
  return 1;
}
int h_post_to_session(parley_module* m, parley_session_id session, parley_task_fn fn, void* arg) {
  if (m->sessions.count(session) == 0) return 0;
  return h_post(m, 0, fn, arg);
}
int h_send_iq(parley_module* m, parley_element* iq, uint64_t, parley_iq_reply_fn done, void* arg) {
  std::unique_ptr<parley_element> owned(iq);
  if (!owned || owned->name != "iq" || done == nullptr) return 0;
  h_element_set_attr(owned.get(), parley_str{"id", 2}, parley_str{"fake1", 5});
  m->iqs.push_back({fake::serialize(owned.get()), done, arg});
  return 1;
}
uint32_t h_metric_register(parley_module* m, parley_str name, uint32_t kind, parley_str) {
  if (!m->starting || name.len == 0 || kind < PARLEY_METRIC_COUNTER || kind > PARLEY_METRIC_HISTOGRAM) return 0;
  for (const auto& [n, k] : m->metric_decls)
    if (n == sv(name)) return 0;
  m->metric_decls.emplace_back(std::string(sv(name)), kind);
  return static_cast<uint32_t>(m->metric_decls.size());
}
void h_metric_record(parley_module* m, uint32_t metric, int64_t value) {
  if (metric == 0 || metric > m->metric_decls.size()) return;
  m->metric_values[metric] += m->metric_decls[metric - 1].second == PARLEY_METRIC_HISTOGRAM ? 1 : value;
}

int h_session_state(parley_module* m, parley_session_id session) {
  if (!m->sessions.count(session)) return 0;
  auto it = m->states.find(session);
  return it == m->states.end() ? PARLEY_SESSION_BOUND : it->second;
}
int h_session_write(parley_module* m, parley_session_id session, const parley_element* element) {
  int state = h_session_state(m, session);
  if (!element || state == 0 || state == PARLEY_SESSION_DETACHED) return 0;
  m->written.emplace_back(session, fake::serialize(element));
  return 1;
}
int h_session_send_after(parley_module* m, parley_session_id session, parley_element* stanza) {
  std::unique_ptr<parley_element> owned(stanza);
  if (!owned || !m->sessions.count(session)) return 0;
  m->sent_after.emplace_back(session, fake::serialize(stanza));
  return 1;
}
int h_session_close(parley_module* m, parley_session_id session, parley_str condition) {
  if (!m->sessions.count(session)) return 0;
  m->closed.emplace_back(session, std::string(sv(condition)));
  m->sessions.erase(session);
  m->slots.erase(session);
  return 1;
}
int h_session_cut(parley_module* m, parley_session_id session) {
  if (h_session_state(m, session) != PARLEY_SESSION_BOUND) return 0;
  m->cut.push_back(session);
  return 1;
}
int h_session_attach(parley_module* m, parley_session_id detached, parley_session_id stream, parley_attach_fn done,
                     void* arg) {
  if (!done || h_session_state(m, stream) != PARLEY_SESSION_UNBOUND) return 0;
  for (const auto& a : m->attaches)
    if (a.stream == stream && !a.completed) return 0;  // one under way for it
  m->attaches.push_back(FakeAttach{detached, stream, done, arg});
  return 1;
}

parley_host_api make_api() {
  parley_host_api a{};
  a.size = sizeof(parley_host_api);
  a.abi_major = PARLEY_ABI_MAJOR;
  a.abi_minor = PARLEY_ABI_MINOR;
  a.log = h_log;
  a.option_string = h_option_string;
  a.option_int = h_option_int;
  a.option_bool = h_option_bool;
  a.option_string_list = h_option_string_list;
  a.module_host = h_module_host;
  a.element_new = h_element_new;
  a.element_parse = h_element_parse;
  a.element_clone = h_element_clone;
  a.element_free = h_element_free;
  a.element_name = h_element_name;
  a.element_xmlns = h_element_xmlns;
  a.element_attr = h_element_attr;
  a.element_set_attr = h_element_set_attr;
  a.element_remove_attr = h_element_remove_attr;
  a.element_child_count = h_element_child_count;
  a.element_child_at = h_element_child_at;
  a.element_find_child = h_element_find_child;
  a.element_add_child = h_element_add_child;
  a.element_add_text = h_element_add_text;
  a.element_remove_children = h_element_remove_children;
  a.element_text = h_element_text;
  a.element_serialize = h_element_serialize;
  a.route = h_route;
  a.bounce = h_bounce;
  a.send_to_session = h_send_to_session;
  a.timer_start = h_timer_start;
  a.timer_cancel = h_timer_cancel;
  a.counter_add = h_counter_add;
  a.server_features = h_server_features;
  a.storage_query = h_storage_query;
  a.rows_count = h_rows_count;
  a.rows_columns = h_rows_columns;
  a.rows_value = h_rows_value;
  a.rows_changes = h_rows_changes;
  a.session_set_data = h_session_set_data;
  a.session_get_data = h_session_get_data;
  a.run_fold = h_run_fold;
  a.user_sessions = h_user_sessions;
  a.session_send_tracked = h_session_send_tracked;
  // 1.1 entries are not faked (nothing the SDK tests run calls them), but for
  // jid_prepare, which parley::Jid is built on.
  a.jid_prepare = h_jid_prepare;
  a.register_route = h_register_route;
  a.host_routes = h_host_routes;
  a.loop_count = h_loop_count;
  a.current_loop = h_current_loop;
  a.post = h_post;
  a.post_to_session = h_post_to_session;
  a.send_iq = h_send_iq;
  a.metric_register = h_metric_register;
  a.metric_record = h_metric_record;
  a.session_write = h_session_write;
  a.session_send_after = h_session_send_after;
  a.session_close = h_session_close;
  a.session_attach = h_session_attach;
  a.session_state = h_session_state;
  a.session_cut = h_session_cut;
  return a;
}

}  // namespace

parley_element::parley_element() { ++g_live; }
parley_element::~parley_element() { --g_live; }

bool parley_module::logged(std::string_view needle) const {
  for (const auto& [level, text] : logs)
    if (text.find(needle) != std::string::npos) return true;
  return false;
}

void parley_module::fire(uint64_t timer_id) {
  auto it = timers.find(timer_id);
  if (it == timers.end()) return;
  FakeTimer t = it->second;
  if (t.repeat_ms == 0) timers.erase(it);
  t.fn(state, timer_id, t.arg);
}

void parley_module::complete(size_t i, const parley_rows& rows, std::string_view error) {
  FakeQuery q = queries.at(i);
  q.done(state, q.arg, &rows, parley_str{error.data(), error.size()});
}

void parley_module::sent_done(size_t i, bool written) {
  FakeSend send = tracked.at(i);
  send.done(state, send.arg, written ? 1 : 0);
}

void parley_module::attach_done(size_t i, bool attached) {
  attaches.at(i).completed = true;
  FakeAttach a = attaches.at(i);
  a.done(state, a.arg, attached ? a.detached : a.stream, attached ? 1 : 0);
}

void parley_module::use_lanes(uint32_t count) {
  loops = count;
  lanes.resize(count);
  for (uint32_t i = 0; i < count; ++i) lanes[i].loop = static_cast<int32_t>(i);
}

void FakeLane::fire(void* state, uint64_t timer_id) {
  auto it = timers.find(timer_id);
  if (it == timers.end()) return;
  FakeTimer t = it->second;
  if (t.repeat_ms == 0) timers.erase(it);
  t.fn(state, timer_id, t.arg);
}

void FakeLane::complete(void* state, size_t i, const parley_rows& rows) {
  FakeQuery q = queries.at(i);
  q.done(state, q.arg, &rows, parley_str{nullptr, 0});
}

void FakeLane::sent_done(void* state, size_t i, bool written) {
  FakeSend send = tracked.at(i);
  send.done(state, send.arg, written ? 1 : 0);
}

namespace fake {

ThreadLoop::ThreadLoop(int32_t loop) : had_(t_has_loop), previous_(t_loop) {
  t_has_loop = true;
  t_loop = loop;
}
ThreadLoop::~ThreadLoop() {
  t_has_loop = had_;
  t_loop = previous_;
}

long live_elements() { return g_live.load(); }

const parley_host_api* api() {
  static const parley_host_api table = make_api();
  return &table;
}

parley_host_api api_with_size(size_t size) {
  parley_host_api a = make_api();
  a.size = size;
  return a;
}

std::string serialize(const parley_element* e) {
  std::string out;
  serialize_to(out, e, "");
  return out;
}

parley_element* parse(std::string_view xml) {
  Parser p{xml};
  p.skip_ws();
  auto e = p.element("");
  if (!e) return nullptr;
  p.skip_ws();
  if (!p.eof()) return nullptr;
  return e.release();
}

}  // namespace fake
