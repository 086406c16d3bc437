// The host side of the module ABI: the functions of parley_host_api.
#include <spdlog/spdlog.h>
#include <uv.h>

#include <chrono>

#include "core/c2s/c2s_stream.hpp"
#include "core/session/session.hpp"
#include "core/session/session_attach.hpp"
#include "core/modules/element_mutations.hpp"
#include "core/modules/host_api_out_bytes.hpp"
#include "core/modules/hooks.hpp"
#include "core/modules/host_api_admin.hpp"
#include "core/modules/host_api_account_admin.hpp"
#include "core/modules/host_api_archive.hpp"
#include "core/modules/host_api_stores.hpp"
#include "core/modules/host_api_module_sql.hpp"
#include "core/modules/host_api_keys.hpp"
#include "core/modules/host_api_http.hpp"
#include "core/modules/host_api_http_client.hpp"
#include "core/modules/host_api_services.hpp"
#include "core/modules/host_api_sessions.hpp"
#include "core/modules/host_api_support.hpp"
#include "core/modules/module_accounts.hpp"
#include "core/modules/module_instance.hpp"
#include "core/modules/module_manager.hpp"
#include "core/modules/module_storage.hpp"
#include "storage/storage_pool.hpp"
#include "core/router/router.hpp"
#include "core/server/server_context.hpp"
#include "xml/serializer.hpp"
#include "core/export/account_data.hpp"
#include "xml/stream_parser.hpp"

namespace parley {

struct ModuleTimer {
  uv_timer_t handle;
  parley_module* instance;
  parley_timer_fn fn;
  void* arg;
  uint64_t id;
  uint64_t delay_ms;
  uint64_t repeat_ms;
  LoopContext* loop;
  std::chrono::steady_clock::time_point due;  // of a one-shot timer, as started
  bool armed = false;  // uv_timer_init ran (on the timer's loop)
};

namespace {

using host_support::el;
using host_support::handle;
using host_support::session_here;
using host_support::sink_write;
std::string str(parley_str s) { return std::string(from_pstr(s)); }

// The loop a host call is made on; module code off the worker loops (start()
// at load time, for instance) acts on loop 0.
LoopContext& loop_for(parley_module* m) {
  if (LoopContext* current = LoopContext::current()) return *current;
  return *m->ctx->loops.front();
}

void host_log(parley_module* m, int level, parley_str text) {
  static constexpr spdlog::level::level_enum levels[] = {spdlog::level::trace, spdlog::level::debug,
                                                         spdlog::level::info, spdlog::level::warn,
                                                         spdlog::level::err};
  auto lvl = levels[level < 0 ? 0 : (level > 4 ? 4 : level)];
  spdlog::log(lvl, "{}: {}", m ? m->library->name : "module", from_pstr(text));
}

const YAML::Node option_node(parley_module* m, parley_str name) {
  if (!m->options || !m->options.IsMap()) return YAML::Node();
  return m->options[str(name)];
}

int option_string(parley_module* m, parley_str name, parley_sink out) {
  YAML::Node node = option_node(m, name);
  if (!node) return 0;
  if (!node.IsScalar()) return -1;
  sink_write(out, node.Scalar());
  return 1;
}

// 1: set and converted; 0: not set; -1: set to something else.
template <class T, class Out>
int option_as(parley_module* m, parley_str name, Out* out) {
  YAML::Node node = option_node(m, name);
  if (!node) return 0;
  try {
    *out = static_cast<Out>(node.as<T>());
    return 1;
  } catch (const YAML::Exception&) {
    return -1;
  }
}

int option_int(parley_module* m, parley_str name, int64_t* out) { return option_as<int64_t>(m, name, out); }
int option_bool(parley_module* m, parley_str name, int* out) { return option_as<bool>(m, name, out); }

int option_string_list(parley_module* m, parley_str name, parley_sink out) {
  YAML::Node node = option_node(m, name);
  if (!node) return 0;
  if (!node.IsSequence()) return -1;
  for (const auto& item : node) sink_write(out, item.Scalar());
  return 1;
}

parley_str module_host(parley_module* m) { return to_pstr(m->host); }

parley_element* element_new(parley_str name, parley_str xmlns) { return handle(new xml::Element(str(name), str(xmlns))); }

// Parses one element by feeding it to a stream parser inside a synthetic stream.
class OneElement final : public xml::StreamParser::Handler {
 public:
  void on_stream_open(const xml::StreamHeader&) override {}
  void on_stanza(xml::Element&& stanza) override {
    if (!result) result = std::make_unique<xml::Element>(std::move(stanza));
  }
  void on_stream_close() override {}
  void on_parse_error(xml::ParseError, std::string_view) override { failed = true; }
  std::unique_ptr<xml::Element> result;
  bool failed = false;
};

parley_element* element_parse(parley_str text) {
  static const xml::Limits limits{};
  OneElement collector;
  xml::StreamParser parser(collector, limits);
  parser.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
  parser.feed(from_pstr(text));
  parser.feed("</stream:stream>");
  if (collector.failed || !collector.result) return nullptr;
  return handle(collector.result.release());
}

parley_element* element_clone(const parley_element* e) { return e ? handle(new xml::Element(*el(e))) : nullptr; }
void element_free(parley_element* e) { delete el(e); }
parley_str element_name(const parley_element* e) { return to_pstr(el(e)->name()); }
parley_str element_xmlns(const parley_element* e) { return to_pstr(el(e)->xmlns()); }

int element_attr(const parley_element* e, parley_str name, parley_str* value) {
  const std::string* found = el(e)->find_attr(from_pstr(name));
  if (found == nullptr) return 0;
  if (value) *value = to_pstr(*found);
  return 1;
}

void element_set_attr(parley_element* e, parley_str name, parley_str value) {
  count_mutation(el(e));
  el(e)->set_attr(str(name), str(value));
}
void element_remove_attr(parley_element* e, parley_str name) {
  count_mutation(el(e));
  el(e)->remove_attr(from_pstr(name));
}
size_t element_child_count(const parley_element* e) { return el(e)->child_count(); }

parley_element* element_child_at(parley_element* e, size_t index) {
  size_t i = 0;
  for (const auto& node : el(e)->nodes()) {
    if (!node.is_element()) continue;
    if (i++ == index) return handle(node.element.get());
  }
  return nullptr;
}

parley_element* element_find_child(parley_element* e, parley_str name, parley_str xmlns) {
  return handle(el(e)->find_child(from_pstr(name), from_pstr(xmlns)));
}

parley_element* element_add_child(parley_element* parent, parley_element* child) {
  count_mutation(el(parent));
  std::unique_ptr<xml::Element> owned(el(child));
  return handle(&el(parent)->add_child(std::move(*owned)));
}

void element_add_text(parley_element* e, parley_str text) {
  count_mutation(el(e));
  el(e)->add_text(from_pstr(text));
}
void element_remove_children(parley_element* e, parley_str name, parley_str xmlns) {
  count_mutation(el(e));
  el(e)->remove_children(from_pstr(name), from_pstr(xmlns));
}
void element_text(const parley_element* e, parley_sink out) { sink_write(out, el(e)->text()); }
void element_serialize(const parley_element* e, parley_sink out) {
  xml::SerializeContext ctx;
  ctx.default_ns = "jabber:client";
  // Written into a buffer the thread keeps (the sink copies what it needs): mod_mam
  // serializes every archived message. A sink that serializes again gets a string of its own.
  thread_local std::string scratch;
  thread_local bool in_use = false;
  if (in_use) return sink_write(out, xml::serialize(*el(e), ctx));
  in_use = true;
  scratch.clear();
  xml::serialize_to(scratch, *el(e), ctx);
  sink_write(out, scratch);
  if (scratch.capacity() > 64 * 1024) std::string().swap(scratch);  // a large stanza's buffer is not kept
  in_use = false;
}

void route(parley_module* m, parley_element* stanza) {
  std::unique_ptr<xml::Element> owned(el(stanza));
  if (LoopContext* current = LoopContext::current()) {
    m->ctx->router->route(std::move(*owned), current->loop.index());
    return;
  }
  LoopContext* loop = m->ctx->loops.front().get();
  ServerContext* ctx = m->ctx;
  auto shared = std::make_shared<xml::Element>(std::move(*owned));
  loop->loop.post([ctx, loop, shared] { ctx->router->route(std::move(*shared), loop->loop.index()); });
}

void route_shared(parley_module* m, parley_element* stanza, const parley_str* to, size_t count) {
  std::unique_ptr<xml::Element> owned(el(stanza));
  if (!owned) return;
  std::vector<std::string> recipients;
  recipients.reserve(count);
  for (size_t i = 0; i < count; ++i) recipients.emplace_back(from_pstr(to[i]));
  if (LoopContext* current = LoopContext::current()) {
    m->ctx->router->route_shared(std::move(*owned), recipients, current->loop.index());
    return;
  }
  LoopContext* loop = m->ctx->loops.front().get();
  ServerContext* ctx = m->ctx;
  auto held = std::make_shared<std::pair<xml::Element, std::vector<std::string>>>(std::move(*owned),
                                                                                   std::move(recipients));
  loop->loop.post([ctx, loop, held] { ctx->router->route_shared(std::move(held->first), held->second, loop->loop.index()); });
}

void bounce(parley_module* m, const parley_element* stanza, parley_str condition, parley_str text) {
  if (LoopContext* current = LoopContext::current()) {
    m->ctx->router->bounce(*el(stanza), from_pstr(condition), current->loop.index(), from_pstr(text));
    return;
  }
  // Off the loops (start(), a module's own thread): on loop 0, as route()
  // does. The router touches a loop's sessions and route counters, which only
  // that loop's thread may. The stanza is borrowed: a copy travels.
  LoopContext* loop = m->ctx->loops.front().get();
  ServerContext* ctx = m->ctx;
  auto copy = std::make_shared<xml::Element>(*el(stanza));
  loop->loop.post([ctx, loop, copy, condition = str(condition), text = str(text)] {
    ctx->router->bounce(*copy, condition, loop->loop.index(), text);
  });
}

int send_to_session(parley_module* m, parley_session_id session, parley_element* stanza) {
  std::unique_ptr<xml::Element> owned(el(stanza));
  if (session == 0 || loop_of(session) >= m->ctx->loops.size()) return 0;
  auto delivery = std::make_shared<Delivery>(std::move(*owned));
  if (LoopContext* current = LoopContext::current()) {
    m->ctx->router->deliver_to_session(session, std::move(delivery), current->loop.index());
    return 1;
  }
  // Off the loops: dispatched from the session's own loop (see bounce).
  LoopContext* loop = m->ctx->loops[loop_of(session)].get();
  ServerContext* ctx = m->ctx;
  loop->loop.post([ctx, loop, session, delivery] {
    ctx->router->deliver_to_session(session, delivery, loop->loop.index());
  });
  return 1;
}

void on_timer_closed(uv_handle_t* h) { delete static_cast<ModuleTimer*>(h->data); }

void forget_timer(ModuleTimer* timer) {
  {
    std::lock_guard lock(timer->instance->timers_mutex);
    timer->instance->timers.erase(timer->id);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&timer->handle), &on_timer_closed);
}

void on_timer(uv_timer_t* h) {
  auto* timer = static_cast<ModuleTimer*>(h->data);
  bool last = timer->repeat_ms == 0;
  parley_module* instance = timer->instance;
  uint64_t id = timer->id;
  void* arg = timer->arg;
  parley_timer_fn fn = timer->fn;
  // In flight while it runs, counted before a one-shot timer leaves the instance's timers:
  // a reload waiting for the old code (module_reload.cpp, in_flight) saw neither the
  // timer nor a task between the two, and saved the state while the callback ran
  // (CI, session 17: "ran after save_state: timer" in test_reload_storm.py).
  instance->tasks_in_flight.fetch_add(1);
  if (last) forget_timer(timer);  // before the call: the module may start another
  if (instance->started) {        // stopped (unload, shutdown): its code is not called again
    try {
      fn(instance->state, id, arg);
    } catch (...) {
      spdlog::error("module {}: exception escaped a timer callback", instance->library->name);
    }
  }
  instance->tasks_in_flight.fetch_sub(1);
}

uint64_t timer_start(parley_module* m, uint64_t delay_ms, uint64_t repeat_ms, parley_timer_fn fn, void* arg) {
  if (fn == nullptr) return 0;
  auto* timer = new ModuleTimer{};
  timer->handle.data = timer;
  timer->instance = m;
  timer->fn = fn;
  timer->arg = arg;
  timer->id = m->next_timer_id.fetch_add(1);
  timer->delay_ms = delay_ms;
  timer->repeat_ms = repeat_ms;
  timer->due = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms);
  timer->loop = &loop_for(m);
  {
    std::lock_guard lock(m->timers_mutex);
    m->timers[timer->id] = timer;
  }
  auto arm = [timer] {
    uv_timer_init(timer->loop->loop.uv(), &timer->handle);
    timer->armed = true;
    uv_timer_start(&timer->handle, &on_timer, timer->delay_ms, timer->repeat_ms);
  };
  if (LoopContext::current() == timer->loop)
    arm();
  else
    timer->loop->loop.post(arm);
  return timer->id;
}

int timer_cancel(parley_module* m, uint64_t timer_id) {
  LoopContext* loop = nullptr;
  {
    std::lock_guard lock(m->timers_mutex);
    auto it = m->timers.find(timer_id);
    if (it == m->timers.end()) return 0;
    loop = it->second->loop;
  }
  // By id, on the timer's loop: the timer may fire (and be freed) before a
  // posted cancel runs, so the cancel looks it up again there.
  auto cancel = [m, timer_id] {
    ModuleTimer* timer = nullptr;
    {
      std::lock_guard lock(m->timers_mutex);
      auto it = m->timers.find(timer_id);
      if (it == m->timers.end()) return;
      timer = it->second;
    }
    uv_timer_stop(&timer->handle);
    forget_timer(timer);
  };
  if (LoopContext::current() == loop)
    cancel();
  else
    loop->loop.post(cancel);
  return 1;
}

void counter_add(parley_module* m, parley_str name, int64_t delta) {
  LoopContext* loop = LoopContext::current();
  m->counters->add(std::string_view(name.ptr, name.len), delta, loop ? static_cast<int>(loop->loop.index()) : -1);
}

void server_features(parley_module* m, parley_sink out) {
  const ModuleTables& tables = *loop_for(m).modules;
  auto it = tables.features.find(m->host);
  if (it == tables.features.end()) return;
  for (const auto& feature : it->second) sink_write(out, feature);
}

// A storage call's completion, on the calling loop.
void finish_storage_call(parley_module* m, LoopContext* loop, std::shared_ptr<parley_rows> rows, parley_rows_fn done,
                         void* arg) {
  if (m->gate.starting()) {  // made in start(), which has not returned: next turn
    loop->loop.post([m, loop, rows, done, arg] { finish_storage_call(m, loop, rows, done, arg); });
    return;
  }
  // A call made by stop() (or racing it) completes without the
  // module's code: its state is being or has been freed.
  if (done != nullptr) {
    m->gate.run([&] {
      const std::string& error = rows->result.error;
      try {
        done(m->state, arg, rows.get(), parley_str{error.data(), error.size()});
      } catch (...) {
        spdlog::error("module {}: exception escaped a storage callback", m->library->name);
      }
    });
  }
  m->storage_in_flight.fetch_sub(1);
}

void storage_query(parley_module* m, parley_str sql, const parley_value* params, size_t param_count, int write,
                   parley_rows_fn done, void* arg) {
  std::vector<StoredValue> values(param_count);
  for (size_t i = 0; i < param_count; ++i) {
    values[i].type = params[i].type;
    values[i].integer = params[i].integer;
    values[i].bytes = str(params[i].bytes);
  }
  LoopContext* loop = &loop_for(m);
  std::string text = str(sql);
  // ABI 1.7: a module that declared PostgreSQL steps, on a PostgreSQL server.
  if (m->storage_backend == PARLEY_BACKEND_POSTGRESQL)
    return host_module_sql::storage_query(m, loop, std::move(text), std::move(values), write != 0, done, arg,
                                          &finish_storage_call);
  std::string module = m->library->name;
  // ABI 1.1: the tables of the modules this one depends on are readable.
  std::vector<std::string> readable;
  const parley_module_def* def = m->library->def;
  if (def->depends != nullptr)
    for (const char* const* d = def->depends; *d != nullptr; ++d) readable.emplace_back(*d);
  m->storage_in_flight.fetch_add(1);
  auto job = [m, loop, text, module, readable = std::move(readable), values = std::move(values), done,
              arg](storage::Database& db) {
    auto rows = std::make_shared<parley_rows>();
    rows->result = run_module_query(db, module, text, values, readable);
    loop->loop.post([m, loop, rows, done, arg] { finish_storage_call(m, loop, rows, done, arg); });
  };
  if (write)
    m->ctx->storage->write(std::move(job));
  else
    m->ctx->storage->read(std::move(job));
}

size_t rows_count(const parley_rows* rows) { return rows ? rows->result.rows.size() : 0; }
size_t rows_columns(const parley_rows* rows) { return rows ? rows->result.columns : 0; }

parley_value rows_value(const parley_rows* rows, size_t row, size_t column) {
  parley_value value{PARLEY_VALUE_NULL, 0, {nullptr, 0}};
  if (!rows || row >= rows->result.rows.size() || column >= rows->result.rows[row].size()) return value;
  const StoredValue& v = rows->result.rows[row][column];
  value.type = v.type;
  value.integer = v.integer;
  value.bytes = to_pstr(v.bytes);
  return value;
}

int64_t rows_changes(const parley_rows* rows) { return rows ? rows->result.changes : 0; }

int run_fold(parley_module* m, uint32_t event, parley_element* acc, parley_session_id session) {
  const bool account_node_fold =
      event == PARLEY_EVENT_ACCOUNT_NODE_INFO || event == PARLEY_EVENT_ACCOUNT_NODE_ITEMS;
  const bool node_fold =
      event == PARLEY_EVENT_DISCO_NODE_INFO || event == PARLEY_EVENT_DISCO_NODE_ITEMS || account_node_fold;
  if ((event != PARLEY_EVENT_DISCO_INFO && event != PARLEY_EVENT_ACCOUNT_DISCO_INFO &&
       event != PARLEY_EVENT_ACCOUNT_DISCO_ITEMS && event != PARLEY_EVENT_WAKE_UP && !node_fold &&
       event != PARLEY_EVENT_ADMIN_USER_QUERY && event != PARLEY_EVENT_ADMIN_USER_ANSWER) ||
      acc == nullptr)
    return -2;
  parley_event_args args{};
  args.session = session;
  args.acc = acc;
  args.host = to_pstr(m->host);
  // issue 17: a node's fold names the requester, the reply's addressee
  // (copied: the hooks change the reply).
  std::string requester;
  if (node_fold) {
    requester = std::string(el(acc)->attr("to"));
    args.jid = to_pstr(requester);
  }
  LoopContext& loop = loop_for(m);
  // The account's fold names the account: the session's, which is its owner's
  // (mod_disco answers an account's disco#info to its owner only).
  std::string user;
  if (event == PARLEY_EVENT_ACCOUNT_DISCO_INFO)
    if (Session* s = session_here(m, session)) {
      user = s->jid().local();
      args.user = to_pstr(user);
    }
  // (issue 16) An account's disco#items is answered to anyone: the account is
  // the reply's 'from', not the requester; so are its nodes (1.10).
  if (event == PARLEY_EVENT_ACCOUNT_DISCO_ITEMS || account_node_fold)
    if (auto account = Jid::parse(el(acc)->attr("from"))) {
      user = account->local();
      args.user = to_pstr(user);
    }
  // (h-admin) The account asked about names itself.
  if (event == PARLEY_EVENT_ADMIN_USER_QUERY) {
    user = std::string(el(acc)->attr("user"));
    args.user = to_pstr(user);
  }
  // A fold is synchronous, so it cannot wait out a reload: it leaves out the
  // module being swapped (whose state may be being saved) until the end of it.
  return run_hooks(*loop.modules, static_cast<parley_event>(event), m->host, args, &loop.module_pause);
}

size_t user_sessions(parley_module* m, parley_str bare_jid, parley_session_fn each, void* arg) {
  // The table's keys are prepared bare JIDs: a text found as it is is one (preparing it
  // again changes nothing), and needs no stringprep (mod_mam asks the count per message,
  // and a parse of user@host cost it ~1 us). Not found, it may be an unprepared form.
  if (each == nullptr)
    if (size_t n = m->ctx->sessions.count_of(from_pstr(bare_jid)); n > 0) return n;
  std::string bare(from_pstr(bare_jid));
  std::vector<SessionRef> sessions;
  if (each != nullptr) sessions = m->ctx->sessions.sessions_of(bare);
  if (sessions.empty()) {
    auto jid = Jid::parse(bare);
    if (!jid || !jid->has_local() || jid->bare_str() == bare) return 0;  // prepared already: none
    bare = jid->bare_str();
    if (each == nullptr) return m->ctx->sessions.count_of(bare);
    sessions = m->ctx->sessions.sessions_of(bare);
  }
  for (const SessionRef& ref : sessions) {
    std::string full = bare + "/" + ref.resource;
    if (each) each(arg, ref.id, to_pstr(full), ref.available ? 1 : 0, ref.priority);
  }
  return sessions.size();
}

int jid_prepare(parley_str text, parley_sink out) {
  auto jid = Jid::parse(from_pstr(text));
  if (!jid) return 0;
  sink_write(out, jid->full());
  return 1;
}

void offer_stream_features(parley_module* m, int after_auth, int offer) {
  (after_auth ? m->offer_session_features : m->offer_preauth_features).store(offer != 0);
}

int hook_mode(parley_module* m, uint32_t event, int mode) {
  // From start() only: the tables that run the hooks are built after it.
  if (m->started || event == 0 || event >= PARLEY_EVENT_COUNT_) return 0;
  static_assert(PARLEY_EVENT_COUNT_ <= 64, "hook_mode keeps one bit per event");
  uint64_t bit = uint64_t{1} << event;
  switch (mode) {
    case PARLEY_HOOKS_ALWAYS:
      m->hooks_off.fetch_and(~bit);
      m->hooks_per_session.fetch_and(~bit);
      return 1;
    case PARLEY_HOOKS_OFF:
      m->hooks_off.fetch_or(bit);
      m->hooks_per_session.fetch_and(~bit);
      return 1;
    case PARLEY_HOOKS_PER_SESSION:
      if (event != PARLEY_EVENT_STANZA_OUT) return 0;
      m->hooks_off.fetch_and(~bit);
      m->hooks_per_session.fetch_or(bit);
      return 1;
    default:
      return 0;
  }
}

const parley_host_api table = {
    sizeof(parley_host_api),
    PARLEY_ABI_MAJOR,
    PARLEY_ABI_MINOR,
    &host_log,
    &option_string,
    &option_int,
    &option_bool,
    &option_string_list,
    &module_host,
    &element_new,
    &element_parse,
    &element_clone,
    &element_free,
    &element_name,
    &element_xmlns,
    &element_attr,
    &element_set_attr,
    &element_remove_attr,
    &element_child_count,
    &element_child_at,
    &element_find_child,
    &element_add_child,
    &element_add_text,
    &element_remove_children,
    &element_text,
    &element_serialize,
    &route,
    &bounce,
    &send_to_session,
    &timer_start,
    &timer_cancel,
    &counter_add,
    &server_features,
    &storage_query,
    &rows_count,
    &rows_columns,
    &rows_value,
    &rows_changes,
    &host_sessions::session_set_data,
    &host_sessions::session_get_data,
    &run_fold,
    &user_sessions,
    &host_sessions::session_hold,
    &host_sessions::session_release,
    &host_sessions::session_reply,
    &host_sessions::session_peer_address,
    &module_account_create,
    &module_account_set_password,
    &module_account_remove,
    &jid_prepare,
    &offer_stream_features,
    // ABI 1.2
    &host_sessions::session_send_tracked,
    &host12::register_route,
    &host12::host_routes,
    &host12::loop_count,
    &host12::current_loop,
    &host12::post,
    &host12::post_to_session,
    &host12::send_iq,
    &host12::metric_register,
    &host12::metric_record,
    &host_sessions::session_write,
    &host_sessions::session_send_after,
    &host_sessions::session_close,
    &host_sessions::session_attach,
    &host_sessions::session_state,
    // issue 12
    &host_sessions::session_cut,
    &host_sessions::session_detach,
    &host_sessions::session_stanzas_in,
    &hook_mode,
    &host_sessions::session_filter_out,
    // issue 11: the archive store
    &host_archive::archive_append,
    &host_archive::archive_query,
    &host_archive::archive_remove,
    // issue 13: HTTP routes
    &host_http::http_route,
    &host_http::http_header,
    &host_http::http_respond,
    &host_http::http_write,
    &host_http::http_end,
    &host_http::http_read_pause,
    &host_http::http_data_dir,
    // issue 14: the HTTP client
    &host_http_client::http_request,
    // issue 11: the keyval store
    &host_stores::keyval_get,
    &host_stores::keyval_put,
    &host_stores::keyval_remove,
    &host_stores::keyval_remove_user,
    // issue 11: the map store
    &host_stores::map_get,
    &host_stores::map_put,
    &host_stores::map_remove,
    &host_stores::map_clear,
    // issue 17: service administration
    &host_admin::is_admin,
    &host_admin::host_sessions,
    &host_admin::account_count,
    &host_admin::server_stop,
    // issue 11: XEP-0227 export and import
    &account_data::hold,
    &account_data::add,
    &account_data::done,
    &host_stores::keyval_list,
    // issues 15 and 18: a broadcast serialized once
    &route_shared,
    // h-admin (issue 17): disabled accounts, account lists, session addresses
    &host_account_admin::account_set_disabled,
    &host_account_admin::account_list,
    &host_account_admin::user_addresses,
    // Issue 11, ABI 1.6: the message archive in XEP-0227 export/import
    &host_archive::archive_append_at,
    &account_data::add_to,
    // Issue 11, ABI 1.7: SQL per backend
    &host_module_sql::storage_backend,
    // Issue 15, ABI 1.7: what an outgoing filter keeps, shared with a broadcast
    &host_out_bytes::stanza_out_bytes,
    &host_out_bytes::out_bytes_parts,
    &host_out_bytes::out_bytes_release,
    // h-export, ABI 1.8: an export of any size, paced by its reader
    &account_data::when_ready,
    // Issue 11, ABI 1.8: one key of many users
    &host_stores::keyval_get_many,
    // Issue 11, ABI 1.9: a module's own keys
    &host_keys::derive_key,
    // Issue 11, ABI 1.11: appends paced by the archive
    &host_archive::archive_append_paced,
};

}  // namespace

const parley_host_api* host_api() { return &table; }

void complete_tracked_send(parley_module& m, parley_sent_fn done, void* arg, bool written) {
  // As for storage: a stopped instance's code is not run (its state is
  // being or has been freed).
  m.gate.run([&] {
    try {
      done(m.state, arg, written ? 1 : 0);
    } catch (...) {
      spdlog::error("module {}: exception escaped a send completion", m.library->name);
    }
  });
  m.sends_in_flight.fetch_sub(1);
}

bool timer_repeats(const ModuleTimer& timer) { return timer.repeat_ms != 0; }
std::chrono::steady_clock::time_point timer_due(const ModuleTimer& timer) { return timer.due; }

void release_stopped_timers(parley_module& instance) {
  std::lock_guard lock(instance.timers_mutex);
  for (auto it = instance.timers.begin(); it != instance.timers.end();) {
    ModuleTimer* timer = it->second;
    // A handle its stopped loop closed (without a callback), or one never
    // armed because its loop stopped first: nothing refers to it any more.
    if (!timer->armed || uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer->handle))) {
      delete timer;
      it = instance.timers.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace parley
