// parley/sdk/host.hpp - the host as one module instance sees it
// (Host): logging, options, routing, timers, storage calls, and the callbacks
// not run yet (kept per worker loop without a lock: parley/sdk/pending.hpp).
// The class is declared here; its longer members are defined in
// host_pending.hpp (callback bookkeeping) and host_calls.hpp (calls that
// complete later), included at the end.
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "parley/module.h"
#include "parley/result.hpp"
#include "parley/sdk/detail.hpp"
#include "parley/sdk/element.hpp"
#include "parley/sdk/pending.hpp"
#include "parley/sdk/archive.hpp"
#include "parley/sdk/keyval.hpp"
#include "parley/sdk/storage.hpp"

namespace parley {

class Host;


// The host as seen by one module instance: the module handle and the function
// table. Timers, storage completions, tracked sends and attaches are
// std::functions kept by the module until they ran or were cancelled: in the
// table of the worker loop that registered them, which only that loop's thread
// touches (no lock), or in the locked fallback for the rare rest
// (parley/sdk/pending.hpp says which).
class Host {
 public:
  using TimerFn = std::function<void(uint64_t timer_id)>;
  using RowsFn = std::function<void(Result<Rows, std::string>)>;

  Host() = default;
  Host(parley_module* m, const parley_host_api* api) noexcept { attach(m, api); }
  ~Host() {
    forget_all();
    detail::Shared::get().give_back(ticket_);
  }
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // Also sizes the per-loop tables (ABI 1.2: loop_count(); the loops are
  // fixed for the server's life). Before any callback is registered.
  void attach(parley_module* m, const parley_host_api* api) noexcept;
  parley_module* handle() const noexcept { return m_; }
  const parley_host_api* api() const noexcept { return api_; }
  // For entries newer than 1.0: `if (host.supports(PARLEY_HOST_ENTRY_END(foo))) host.api()->foo(...)`.
  bool supports(std::size_t entry_end) const noexcept { return api_ && api_->size >= entry_end; }

  void log(parley_log_level level, std::string_view text) const noexcept {
    if (api_) api_->log(m_, level, detail::to_c(text));
  }
  void trace(std::string_view t) const noexcept { log(PARLEY_LOG_TRACE, t); }
  void debug(std::string_view t) const noexcept { log(PARLEY_LOG_DEBUG, t); }
  void info(std::string_view t) const noexcept { log(PARLEY_LOG_INFO, t); }
  void warn(std::string_view t) const noexcept { log(PARLEY_LOG_WARN, t); }
  void error(std::string_view t) const noexcept { log(PARLEY_LOG_ERROR, t); }

  // Options of this module for this host; nullopt if unset (or of another type).
  std::optional<std::string> option_string(std::string_view name) const {
    detail::StringSink s;
    if (table()->option_string(m_, detail::to_c(name), s.sink()) != 1) return std::nullopt;
    return s.take();
  }
  std::optional<int64_t> option_int(std::string_view name) const {
    int64_t v = 0;
    if (table()->option_int(m_, detail::to_c(name), &v) != 1) return std::nullopt;
    return v;
  }
  std::optional<bool> option_bool(std::string_view name) const {
    int v = 0;
    if (table()->option_bool(m_, detail::to_c(name), &v) != 1) return std::nullopt;
    return v != 0;
  }
  std::optional<std::vector<std::string>> option_string_list(std::string_view name) const {
    detail::ListSink s;
    if (table()->option_string_list(m_, detail::to_c(name), s.sink()) != 1) return std::nullopt;
    return s.take();
  }
  // The served domain this instance was started for.
  std::string module_host() const { return std::string(detail::to_sv(table()->module_host(m_))); }

  Element element(std::string_view name, std::string_view xmlns = {}) const {
    return Element::create(table(), name, xmlns);
  }
  std::optional<Element> parse(std::string_view xml) const { return Element::parse(table(), xml); }

  void route(Element&& stanza) const {
    if (!stanza) detail::fail("parley: route of a null element");
    table()->route(m_, stanza.release());
  }
  // An error reply (RFC 6120 8.3) to `stanza` with a defined condition name.
  void bounce(ElementView stanza, std::string_view condition, std::string_view text = {}) const {
    if (!stanza) detail::fail("parley: bounce of a null element");
    table()->bounce(m_, stanza.raw(), detail::to_c(condition), detail::to_c(text));
  }
  // false if the session is gone (the stanza is freed either way).
  bool send_to_session(parley_session_id session, Element&& stanza) const {
    if (!stanza) detail::fail("parley: send of a null element");
    return table()->send_to_session(m_, session, stanza.release()) == 1;
  }

  // Per-session data of this module (see parley_host_api.session_set_data):
  // `data` is owned by the host from here and freed with `free_fn`. Call on
  // the session's loop. false if the session is not on this loop.
  bool session_set_data(parley_session_id session, void* data, void (*free_fn)(void*)) const {
    return table()->session_set_data(m_, session, data, free_fn) == 1;
  }
  void* session_get_data(parley_session_id session) const { return table()->session_get_data(m_, session); }
  // A typed slot: the object is deleted by the host with the session.
  template <class T>
  T* session_slot(parley_session_id session) const {
    return static_cast<T*>(session_get_data(session));
  }
  template <class T>
  T* set_session_slot(parley_session_id session, std::unique_ptr<T> value) const {
    T* raw = value.get();
    if (!session_set_data(session, raw, [](void* p) { delete static_cast<T*>(p); })) return nullptr;
    value.release();
    return raw;
  }

  // A bound session of a local user, as user_sessions reports it.
  struct UserSession {
    parley_session_id id;
    std::string full_jid;
    bool available;
    int priority;
  };
  // The bound sessions of a local user ("user@host"), on every loop.
  std::vector<UserSession> user_sessions(std::string_view bare_jid) const {
    std::vector<UserSession> out;
    table()->user_sessions(
        m_, detail::to_c(bare_jid),
        [](void* arg, parley_session_id id, parley_str full, int available, int priority) {
          static_cast<std::vector<UserSession>*>(arg)->push_back(
              UserSession{id, std::string(detail::to_sv(full)), available != 0, priority});
        },
        &out);
    return out;
  }

  // How many sessions a local user ("user@host") has bound, on every loop (cheaper than
  // user_sessions: nothing is copied).
  size_t user_session_count(std::string_view bare_jid) const {
    return table()->user_sessions(m_, detail::to_c(bare_jid), nullptr, nullptr);
  }

  // Runs a fold event (PARLEY_EVENT_DISCO_INFO) over this host's hooks.
  int run_fold(parley_event event, ElementRef acc, parley_session_id session = 0) const {
    return table()->run_fold(m_, static_cast<uint32_t>(event), acc.raw(), session);
  }

  // ---- ABI 1.1 (each throws on a host without its entry: check supports_1_1()
  // for all of them, or supports(PARLEY_HOST_ENTRY_END(entry)) for one) ----
  bool supports_1_1() const noexcept { return supports(PARLEY_HOST_ENTRY_END(offer_stream_features)); }

  // Whether this instance offers its declared stream features (offered by
  // default); call from start().
  void offer_preauth_features(bool offer) const {
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(offer_stream_features));
    api->offer_stream_features(m_, 0, offer ? 1 : 0);
  }
  void offer_session_features(bool offer) const {
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(offer_stream_features));
    api->offer_stream_features(m_, 1, offer ? 1 : 0);
  }

  // The canonical form of a JID (the server's stringprep/IDNA rules); nullopt
  // if it is not a valid JID. Compare addresses only in this form.
  std::optional<std::string> prepare_jid(std::string_view jid) const {
    detail::StringSink s;
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(jid_prepare));
    if (api->jid_prepare(detail::to_c(jid), s.sink()) != 1) return std::nullopt;
    return s.take();
  }

  // Holds the session's input until release_session (nesting).
  bool hold_session(parley_session_id session) const {
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(session_hold));
    return api->session_hold(m_, session) == 1;
  }
  bool release_session(parley_session_id session) const {
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(session_release));
    return api->session_release(m_, session) == 1;
  }
  // Writes to a session as is (the answer to a PARLEY_IQ_PREAUTH request).
  bool session_reply(parley_session_id session, Element&& stanza) const {
    if (!stanza) detail::fail("parley: reply with a null element");
    return table_with(PARLEY_HOST_ENTRY_END(session_reply))->session_reply(m_, session, stanza.release()) == 1;
  }
  std::optional<std::string> session_peer_address(parley_session_id session) const {
    detail::StringSink s;
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(session_peer_address));
    if (api->session_peer_address(m_, session, s.sink()) != 1) return std::nullopt;
    return s.take();
  }

  // ---- ABI 1.2 ----
  // Every 1.2 entry (the last one added is session_state; services.hpp has the rest of 1.2).
  bool supports_1_2() const noexcept { return supports(PARLEY_HOST_ENTRY_END(session_state)); }

  // Sessions and their connections (1.2). Each is for the loop that owns
  // `session`: call it from the session's hooks, its iq requests, a
  // completion that runs there or a post_to_session task; elsewhere the host
  // refuses (false / SessionState::gone). Each throws on a host without its entry.
  //
  // Writes `element` (borrowed: it stays the caller's) to the session's
  // connection as it is: not routed, not filtered (PARLEY_EVENT_STANZA_OUT
  // does not see it). The answer to a nonza: <a h='3'/>, <enabled/>,
  // <resumed/>. false: the session is not here, detached, or closing.
  bool session_write(parley_session_id session, const ElementView& element) const {
    if (!element) detail::fail("parley: session_write of a null element");
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(session_write));
    if (!api->session_write) detail::fail("parley: this host lacks session_write");
    return api->session_write(m_, session, element.raw()) == 1;
  }
  // Sends `stanza` (taken, freed if refused) to a bound session through the
  // outgoing filters after this module's own STANZA_OUT hook: the release of
  // a stanza the module's filter held. true: written, held by a later filter,
  // or waiting for a detached session.
  bool session_send_after(parley_session_id session, Element&& stanza) const {
    if (!stanza) detail::fail("parley: session_send_after of a null element");
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(session_send_after));
    if (!api->session_send_after) detail::fail("parley: this host lacks session_send_after");
    return api->session_send_after(m_, session, stanza.release()) == 1;
  }
  // Ends a session: an attached one with the stream error `condition` (RFC
  // 6120 4.9.3; empty: a plain </stream:stream>), a detached one at once.
  // SESSION_CLOSED runs and what waited for it is routed as for a resource
  // that is gone. false: not here, or closing already.
  bool session_close(parley_session_id session, std::string_view condition = {}) const {
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(session_close));
    if (!api->session_close) detail::fail("parley: this host lacks session_close");
    return api->session_close(m_, session, detail::to_c(condition)) == 1;
  }
  // Moves the connection of `stream` (this loop's authenticated, unbound
  // stream, where a <resume/> arrived) onto the detached session `detached` of
  // the same account, on whichever loop that one lives. `done(session,
  // attached)` runs once: attached, on the session's loop with its id (after
  // the REATTACHED hooks, before anything from the connection is processed or
  // anything that waited is written); not attached, on this loop with
  // `stream`. So `done` may run on another loop than the caller: what it
  // captures must be safe to touch there. false: refused now (not an
  // authenticated unbound stream of this loop, or an attach is under way for
  // it), and `done` never runs. If the module stops first, `done` is dropped.
  using AttachFn = std::function<void(parley_session_id session, bool attached)>;
  bool session_attach(parley_session_id detached, parley_session_id stream, AttachFn done) const;
  std::size_t pending_attaches() const noexcept { return count_pending(detail::PendingKind::attach); }
  // Where `session` stands on the calling loop (gone: not here).
  enum class SessionState : int {
    gone = 0,
    bound = PARLEY_SESSION_BOUND,
    detached = PARLEY_SESSION_DETACHED,
    unbound = PARLEY_SESSION_UNBOUND,
  };
  SessionState session_state(parley_session_id session) const {
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(session_state));
    if (!api->session_state) detail::fail("parley: this host lacks session_state");
    int state = api->session_state(m_, session);
    switch (state) {
      case PARLEY_SESSION_BOUND: return SessionState::bound;
      case PARLEY_SESSION_DETACHED: return SessionState::detached;
      case PARLEY_SESSION_UNBOUND: return SessionState::unbound;
      default: return SessionState::gone;  // 0, or a state a newer host adds
    }
  }
  // Takes a bound session from its open connection and keeps it detached
  // (SESSION_DETACHED runs; CLOSING is not asked): the connection gets the
  // stream error `condition` (empty: </stream:stream>) and closes. XEP-0198: a
  // <resume/> racing the old connection. false: not here, not bound with an
  // open connection. Check supports(PARLEY_HOST_ENTRY_END(session_detach)).
  bool session_detach(parley_session_id session, std::string_view condition = {}) const {
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(session_detach));
    if (!api->session_detach) detail::fail("parley: this host lacks session_detach");
    return api->session_detach(m_, session, detail::to_c(condition)) == 1;
  }
  // Stanzas the session's client sent since it bound (modulo 2^32), each counted when the
  // core took it in, whatever became of it (an error before any hook
  // included); nonzas not. XEP-0198 h = the difference from <enable/>'s
  // value, modulo 2^32. 0 if not here. Check
  // supports(PARLEY_HOST_ENTRY_END(session_stanzas_in)).
  uint32_t session_stanzas_in(parley_session_id session) const {
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(session_stanzas_in));
    if (!api->session_stanzas_in) detail::fail("parley: this host lacks session_stanzas_in");
    return api->session_stanzas_in(m_, session);
  }

  // Cuts the connection of a bound, attached session as if it had been lost
  // (no stream error, no </stream:stream>): SESSION_CLOSING is asked, so
  // stream management may keep the session detached. Done after this call
  // returns, on the session's loop. false: not here, not bound, detached, or
  // closing. Throws on a host without the entry (after 1.2:
  // supports(PARLEY_HOST_ENTRY_END(session_cut))).
  bool session_cut(parley_session_id session) const {
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(session_cut));
    if (!api->session_cut) detail::fail("parley: this host lacks session_cut");
    return api->session_cut(m_, session) == 1;
  }

  // From start() only: how this instance's hooks of `event` run
  // (PARLEY_HOOKS_ALWAYS, _OFF: left out, _PER_SESSION: an outgoing filter
  // that runs only for the sessions that turned it on with filter_out).
  // false if refused, or on a host without the entry (then the hooks run
  // always, as before: a module stays correct, it just pays for them).
  bool hook_mode(parley_event event, int mode) const {
    if (!supports(PARLEY_HOST_ENTRY_END(session_filter_out)) || !api()->hook_mode) return false;
    return api()->hook_mode(m_, event, mode) == 1;
  }
  // Turns this instance's per-session outgoing filter on or off for a session
  // on the calling loop. false if the session is not here, or on a host
  // without the entry.
  bool filter_out(parley_session_id session, bool on) const {
    if (!supports(PARLEY_HOST_ENTRY_END(session_filter_out)) || !api()->session_filter_out) return false;
    return api()->session_filter_out(m_, session, on ? 1 : 0) == 1;
  }

  // Sends to a session on the calling loop and calls `done` later, on that
  // loop: done(true) once every byte of the stanza was handed to the socket,
  // done(false) if the connection ended first (keep what it carried). false:
  // not accepted (the session is not here, not bound, closing, or over its
  // write backlog): `done` never runs. Push bulk output in batches, the next
  // one from the completions of the last (see docs/plugins.md, "ABI 1.2").
  bool send_tracked(parley_session_id session, Element&& stanza, std::function<void(bool written)> done) const;
  std::size_t pending_sends() const noexcept { return count_pending(detail::PendingKind::sent); }

  // Account operations on this module's host; `done` gets "" on success or a
  // stanza error condition, later, on the calling loop.
  using AccountFn = std::function<void(std::string_view condition)>;
  void create_account(std::string_view user, std::string_view password, AccountFn done) const {
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(account_create));
    api->account_create(m_, detail::to_c(user), detail::to_c(password), &Host::on_account,
                        new AccountFn(std::move(done)));
  }
  void set_password(std::string_view user, std::string_view password, AccountFn done) const {
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(account_set_password));
    api->account_set_password(m_, detail::to_c(user), detail::to_c(password), &Host::on_account,
                              new AccountFn(std::move(done)));
  }
  void remove_account(std::string_view user, AccountFn done) const {
    const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(account_remove));
    api->account_remove(m_, detail::to_c(user), &Host::on_account, new AccountFn(std::move(done)));
  }

  void counter_add(std::string_view name, int64_t delta = 1) const {
    table()->counter_add(m_, detail::to_c(name), delta);
  }
  std::vector<std::string> server_features() const {
    detail::ListSink s;
    table()->server_features(m_, s.sink());
    return s.take();
  }

  // Timers run `fn` on the calling loop; fn may take the timer id. The
  // function is kept until it fired (one-shot) or was cancelled. The host
  // refuses a reload while timers are pending. cancel_timer works from any
  // thread: after it returned true the function never starts again. Cancelled
  // from another loop than the timer's, the function is freed (and
  // pending_timers() drops) when the timer's loop next enters this Host's
  // callbacks, or at stop.
  template <class F>
  uint64_t start_timer(std::chrono::milliseconds delay, F&& fn) {
    return start_timer_impl(delay, std::chrono::milliseconds(0), wrap(std::forward<F>(fn)));
  }
  template <class F>
  uint64_t start_repeating_timer(std::chrono::milliseconds delay, std::chrono::milliseconds every, F&& fn) {
    if (every.count() <= 0) detail::fail("parley: a repeating timer needs a period");
    return start_timer_impl(delay, every, wrap(std::forward<F>(fn)));
  }
  bool cancel_timer(uint64_t id);
  std::size_t pending_timers() const noexcept { return count_pending(detail::PendingKind::timer); }

  // Storage: one SQL statement on the module's own tables (named mod_NAME_*),
  // `?` parameters. `done` runs later on the calling loop with the rows (valid
  // during the call) or the error text. query() reads; execute() writes, in
  // order, on the single writer. Needs a host with storage (else throws).
  void query(std::string_view sql, std::initializer_list<Value> params, RowsFn done) {
    storage_call(sql, params.begin(), params.size(), false, std::move(done));
  }
  void execute(std::string_view sql, std::initializer_list<Value> params, RowsFn done = {}) {
    storage_call(sql, params.begin(), params.size(), true, std::move(done));
  }
  void storage_call(std::string_view sql, const Value* params, std::size_t count, bool write, RowsFn done);
  std::size_t pending_storage_calls() const noexcept { return count_pending(detail::PendingKind::rows); }
  // ABI 1.7: where this module's tables are, so that query()/execute() speak its dialect:
  // PARLEY_BACKEND_POSTGRESQL (`$1` parameters, the module's own schema) if the server runs
  // PostgreSQL and the module declared schema_for(PARLEY_BACKEND_POSTGRESQL, ...), else
  // PARLEY_BACKEND_SQLITE (`?` parameters; also on a host older than 1.7).
  uint32_t storage_backend() const noexcept {
    if (!supports(PARLEY_HOST_ENTRY_END(storage_backend))) return PARLEY_BACKEND_SQLITE;
    return api()->storage_backend(m_);
  }

  // The archive store (module.h, issue 11; supports(PARLEY_HOST_ENTRY_END(archive_remove))).
  // Each `done` runs later on the calling loop with the page (borrowed for the call) or
  // an error condition; call on a worker loop. archive_append returns the new entry's id
  // at once (0: refused, done never runs).
  using ArchiveFn = std::function<void(Result<ArchivePage, std::string>)>;
  bool supports_archive() const noexcept { return supports(PARLEY_HOST_ENTRY_END(archive_remove)); }
  uint64_t archive_append(std::string_view owner, std::string_view with, std::string_view payload,
                          ArchiveFn done = {}) const;
  bool archive_query(const ArchiveQuery& query, ArchiveFn done) const;
  // ABI 1.6 (supports(PARLEY_HOST_ENTRY_END(archive_append_at))): as archive_append, with
  // the entry's timestamp given (microseconds since the epoch, > 0): a XEP-0227 import.
  uint64_t archive_append_at(std::string_view owner, std::string_view with, std::string_view payload,
                             int64_t timestamp_us, ArchiveFn done = {}) const;
  bool archive_remove(std::string_view owner, int64_t before_us, ArchiveFn done = {}) const;
  // ABI 1.11: as archive_append with no completion, for a stanza `session` (a client's
  // session on this loop, its event's) sent: while the archive is behind, the host holds
  // that session's input until the append is stored (module.h: archive_append_paced). An
  // older host: archive_append, unpaced.
  uint64_t archive_append_paced(parley_session_id session, std::string_view owner, std::string_view with,
                                std::string_view payload) const;
  std::size_t pending_archive_calls() const noexcept { return count_pending(detail::PendingKind::archive); }

  // The keyval store (module.h, issue 11; supports_keyval(); parley/sdk/keyval.hpp). Each
  // `done` runs later on the calling loop with the result (borrowed) or an error
  // condition; false: refused, done never runs. put: every item or none; max_user_bytes
  // (0: none) a quota on all of the user's values; flags PARLEY_KEYVAL_IF_ABSENT or 0.
  using KeyvalFn = std::function<void(Result<KeyvalResult, std::string>)>;
  bool supports_keyval() const noexcept { return supports(PARLEY_HOST_ENTRY_END(keyval_remove_user)); }
  bool keyval_get(std::string_view user, std::string_view key, KeyvalFn done) const;
  bool keyval_put(std::string_view user, std::string_view key, std::string_view value, KeyvalFn done = {}) const;
  bool keyval_put(std::string_view user, const std::vector<KeyvalItem>& items, uint64_t max_user_bytes,
                  uint32_t flags, KeyvalFn done = {}) const;
  bool keyval_remove(std::string_view user, std::string_view key, KeyvalFn done = {}) const;
  bool keyval_remove_user(std::string_view user, KeyvalFn done = {}) const;
  // The map store (issue 11; supports_map()): per user, keyed items with a version.
  using MapFn = std::function<void(Result<MapResult, std::string>)>;
  bool supports_map() const noexcept { return supports(PARLEY_HOST_ENTRY_END(map_clear)); }
  bool map_get(std::string_view user, MapFn done) const;
  bool map_put(std::string_view user, const std::vector<KeyvalItem>& items, uint64_t max_items, MapFn done = {}) const;
  bool map_remove(std::string_view user, const std::vector<std::string>& keys, MapFn done = {}) const;
  bool map_clear(std::string_view user, MapFn done = {}) const;
  // ABI 1.8 (supports_keyval_get_many()): `key` of each of `users` as one keyval operation
  // (module.h keyval_get_many: the store's order, 256 users per statement): done(result)
  // with result.at(i).key a user and .value its value, for each user that has one (the
  // others absent), in bytewise order of the users; or done(error condition). false:
  // refused (an empty user, no keyval store), done never runs.
  bool supports_keyval_get_many() const noexcept { return supports(PARLEY_HOST_ENTRY_END(keyval_get_many)); }
  bool keyval_get_many(const std::vector<std::string>& users, std::string_view key, MapFn done) const;
  // ABI 1.9 (supports_derive_key()): `len` (1-32) key bytes derived from the server's
  // persistent secret, this module's name and host, and `label` (module.h derive_key):
  // the same on every start, not computable without the secret. nullopt: refused.
  bool supports_derive_key() const noexcept { return supports(PARLEY_HOST_ENTRY_END(derive_key)); }
  std::optional<std::string> derive_key(std::string_view label, std::size_t len) const {
    if (!supports_derive_key() || !api()->derive_key) return std::nullopt;
    std::string out(len, '\0');
    if (api()->derive_key(m_, detail::to_c(label), reinterpret_cast<uint8_t*>(out.data()), len) != 1)
      return std::nullopt;
    return out;
  }
  // Keyval and map calls in flight.
  std::size_t pending_keyval_calls() const noexcept { return count_pending(detail::PendingKind::store); }

  // Cancels this instance's timers at the host and drops every pending
  // callback (completions then find nothing). Run by the destructor. It walks
  // every loop's table, so call it only when no callback of this instance can
  // run on another thread: from stop() or the module's destructor (the core
  // has closed the instance's gate then: module.h), or from the one thread
  // that uses this Host (tests).
  void forget_all() noexcept;

  // issues 15 and 18: a broadcast serialized once (module.h route_shared;
  // parley/sdk/broadcast.hpp). On a host without the entry: a copy routed each.
  bool supports_route_shared() const noexcept;
  void route_shared(Element&& stanza, const std::vector<std::string>& to) const;

 private:
  const parley_host_api* table() const {
    if (!api_) detail::fail("parley: host not attached");
    return api_;
  }
  // The table, if the host has the entry ending at `entry_end` (each wrapper
  // checks its own entry, so a host with part of a minor still serves it).
  const parley_host_api* table_with(std::size_t entry_end) const {
    if (!supports(entry_end)) detail::fail("parley: this host predates the module ABI entry used");
    return table();
  }
  // The host calls `done` once, unless the module was stopped meanwhile (then
  // the function is not freed: a small leak only at unload, not a crash).
  static void on_account(void* arg, parley_str condition) noexcept {
    std::unique_ptr<AccountFn> fn(static_cast<AccountFn*>(arg));
    try {
      if (*fn) (*fn)(detail::to_sv(condition));
    } catch (...) {
    }
  }
  template <class F>
  static TimerFn wrap(F&& fn) {
    if constexpr (std::is_invocable_v<F&, uint64_t>) {
      return TimerFn(std::forward<F>(fn));
    } else {
      return [f = std::forward<F>(fn)](uint64_t) mutable { f(); };
    }
  }
  uint64_t start_timer_impl(std::chrono::milliseconds delay, std::chrono::milliseconds every, TimerFn fn);
  std::size_t count_pending(detail::PendingKind kind) const noexcept;
  static void on_timer(void* state, uint64_t timer_id, void* arg) noexcept;
  static void on_rows(void* state, void* arg, const parley_rows* rows, parley_str error) noexcept;
  static void on_archive(void* state, void* arg, const parley_archive_page* page, parley_str error) noexcept;
  uint64_t archive_keep(ArchiveFn done) const;
  static void on_keyval(void* state, void* arg, const parley_keyval_result* result, parley_str error) noexcept;  // keyval
  uint64_t keyval_keep(KeyvalFn done) const;  // keyval
  static void on_map(void* state, void* arg, const parley_map_result* result, parley_str error) noexcept;  // map
  uint64_t map_keep(MapFn done) const;  // map
  static void on_sent(void* state, void* arg, int written) noexcept;
  static void on_attached(void* state, void* arg, parley_session_id session, int attached) noexcept;

  // The calling loop's table and index (null: off the worker loops, a host
  // older than 1.2, or no ticket): where a callback registered now is kept.
  detail::LoopTable* loop_here(uint32_t* loop) const noexcept;
  // Keeps `p` (its owner set): in the calling loop's table, else in the
  // fallback. Returns the key to pass as the C ABI's `arg`.
  uint64_t keep(std::unique_ptr<detail::Pending> p) const;
  // A registration the host refused: its callback never runs (same thread).
  void unkeep(uint64_t key, detail::PendingKind kind) const noexcept;
  // A one-shot completion takes its callback out (null: gone, ran already,
  // or not of that kind).
  static std::unique_ptr<detail::Pending> take(void* arg, detail::PendingKind kind) noexcept;
  // The loop table a loop key names: its Host is alive, and the caller runs
  // on that loop (otherwise the host broke module.h: logged, dropped).
  static detail::LoopTable* table_of(const detail::LoopKey& key) noexcept;
  static void run_timer(detail::Pending& p, uint64_t timer_id) noexcept;

  parley_module* m_ = nullptr;
  const parley_host_api* api_ = nullptr;
  // Per worker loop: loops_[i] is read and written by loop i's thread only
  // (pending.hpp: LoopTable); loop_count_ == 0 without them.
  mutable std::unique_ptr<detail::LoopTable[]> loops_;
  uint32_t loop_count_ = 0;
  uint32_t ticket_ = 0;  // names this Host in loop keys (0: none)
  // This Host's callbacks in the fallback, by kind (changed under its lock,
  // read anywhere).
  mutable std::atomic<std::size_t> fallback_counts_[detail::pending_kinds] = {};
};

}  // namespace parley

// The definitions of Host's members, split by concern.
#include "parley/sdk/host_pending.hpp"
#include "parley/sdk/host_calls.hpp"
#define PARLEY_SDK_KEYVAL_CALLS
#include "parley/sdk/keyval.hpp"
#include "parley/sdk/broadcast.hpp"
