/* parley/module.h - the Parley module ABI (C).
 *
 * This header is the whole contract between parleyd and a module (.so). Only C
 * crosses it: opaque handles, {ptr, len} strings, plain structs, function
 * pointers. No C++ types, no exceptions. The C++ wrapper in parley/module.hpp is
 * compiled into each module and is the comfortable way to write one.
 *
 * Versioning (SQLite's sqlite3_api_routines rule):
 *  - PARLEY_ABI_MAJOR changes only when something is removed or changes meaning.
 *    The host refuses a module built for another major, naming both versions.
 *  - PARLEY_ABI_MINOR grows when something is added. Structs and the host
 *    function table only ever grow at the end; each starts with its size, and a
 *    module checks `host->size` before it calls an entry newer than its minimum
 *    (PARLEY_HOST_HAS). A module built for an older minor loads unchanged.
 *
 * Ownership, stated once for the whole header:
 *  - parley_str passed INTO a module (arguments, args structs) is borrowed for the
 *    duration of the call; copy what you keep.
 *  - parley_element* passed into a hook or handler is borrowed for the call. A
 *    hook of a *filter* event may modify it in place.
 *  - parley_element* returned by element_new/element_parse/element_clone is
 *    owned by the module until handed back to the host by a function documented
 *    as taking ownership (route, send_to_session, element_add_child), or freed
 *    with element_free.
 *  - Children returned by element_child_at/element_find_child are borrowed from
 *    their parent and live as long as it does, unmodified.
 *  - parley_str returned BY the host (element_name, element_attr, module_host)
 *    is borrowed from the element while it is unmodified, or from the module
 *    instance while it runs.
 *  - Text leaves the host through a parley_sink the module provides: the host
 *    calls append() zero or more times during the call and never keeps the sink.
 *
 * Threads: every call from the host into a module for a given event happens on
 * the worker loop handling it; a module may be called on several loops at once.
 * State shared between loops must be protected, or (1.2) kept per loop and
 * reached by posting work to the loop that owns it (post, post_to_session).
 * Host functions may be called from the loop thread that called the module
 * (and, for log/counter_add/post, any thread).
 */
#ifndef PARLEY_MODULE_H
#define PARLEY_MODULE_H

#include <stddef.h>
#include <stdint.h>

/* The ABI's types, by feature (parley/abi/), the module definition among them
 * (abi/module_def.h); this file keeps the version, the entry point and the host table. */
#include "abi/base.h"
#include "abi/events.h"
#include "abi/callbacks.h"
#include "abi/stores.h"
#include "abi/http.h"
#include "abi/module_def.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PARLEY_ABI_MAJOR 1
#define PARLEY_ABI_MINOR 12  /* 1.12: event 34, STREAM_CLOSING (session 17) */
/* 1.11: archive_append_paced (session 16) */
/* 1.10: events 32-33, an account's nodes in disco; parley_archive_query.min_id (session 15) */
/* 1.9: derive_key (session 14) */
/* 1.8: account_data_when_ready, keyval_get_many (session 12) */
/* 1.7: SQL per backend (storage_backend, parley_module_def.backend_schemas); stanza_out_bytes, out_bytes_parts, out_bytes_release (session 11) */
/* 1.6: archive_append_at, account_data_add_to (session 10) */
/* 1.5: account data (XEP-0227), route_shared, account administration, events 27-31 */

/* The one symbol a module exports. */
#define PARLEY_MODULE_ENTRY_SYMBOL "parley_module_entry"

#if defined(__GNUC__)
#define PARLEY_EXPORT __attribute__((visibility("default")))
#else
#define PARLEY_EXPORT
#endif

/* The host's functions. Grows at the end only. */
typedef struct parley_host_api {
  size_t size; /* sizeof(parley_host_api) of the host */
  uint32_t abi_major;
  uint32_t abi_minor;

  /* Logging, tagged with the module's name. Any thread. */
  void (*log)(parley_module* m, int level, parley_str text);

  /* Options of this module for this host. 1 if set (value written), 0 if not
   * set, -1 if set with another type (cannot happen for declared options). */
  int (*option_string)(parley_module* m, parley_str name, parley_sink out);
  int (*option_int)(parley_module* m, parley_str name, int64_t* out);
  int (*option_bool)(parley_module* m, parley_str name, int* out);
  /* Calls out.append once per list item. */
  int (*option_string_list)(parley_module* m, parley_str name, parley_sink out);
  /* The served domain this instance was started for. */
  parley_str (*module_host)(parley_module* m);

  /* Elements. */
  parley_element* (*element_new)(parley_str name, parley_str xmlns);
  parley_element* (*element_parse)(parley_str xml); /* one element; NULL if not well-formed */
  parley_element* (*element_clone)(const parley_element* e);
  void (*element_free)(parley_element* e);
  parley_str (*element_name)(const parley_element* e);
  parley_str (*element_xmlns)(const parley_element* e);
  /* 1 and *value set if present, else 0. */
  int (*element_attr)(const parley_element* e, parley_str name, parley_str* value);
  void (*element_set_attr)(parley_element* e, parley_str name, parley_str value);
  void (*element_remove_attr)(parley_element* e, parley_str name);
  size_t (*element_child_count)(const parley_element* e); /* element children */
  parley_element* (*element_child_at)(parley_element* e, size_t index);
  /* xmlns.len == 0: any namespace. */
  parley_element* (*element_find_child)(parley_element* e, parley_str name, parley_str xmlns);
  /* Takes ownership of child; returns it, now borrowed from parent. */
  parley_element* (*element_add_child)(parley_element* parent, parley_element* child);
  void (*element_add_text)(parley_element* e, parley_str text);
  void (*element_remove_children)(parley_element* e, parley_str name, parley_str xmlns);
  void (*element_text)(const parley_element* e, parley_sink out);
  void (*element_serialize)(const parley_element* e, parley_sink out);

  /* Stanzas. route/send take ownership of the stanza. */
  void (*route)(parley_module* m, parley_element* stanza);
  /* An error reply (RFC 6120 8.3) to `stanza`; nothing if it is an error. */
  void (*bounce)(parley_module* m, const parley_element* stanza, parley_str condition, parley_str text);
  /* 1: handed to the session's loop (a session that closed meanwhile gets the
   * RFC 6121 rules for a resource that is gone); 0: no such loop (freed). */
  int (*send_to_session)(parley_module* m, parley_session_id session, parley_element* stanza);

  /* Timers on the calling loop. Return an id (never 0) / 1 if cancelled. The
   * callback runs on that loop. Unload is refused while timers are pending; a
   * reload waits up to 5 s for one-shot timers due within that time and is
   * refused for a repeating one or a later one. */
  uint64_t (*timer_start)(parley_module* m, uint64_t delay_ms, uint64_t repeat_ms, parley_timer_fn fn, void* arg);
  int (*timer_cancel)(parley_module* m, uint64_t timer_id);

  /* Metrics: a named counter of this module (shown by parleyctl status). */
  void (*counter_add)(parley_module* m, parley_str name, int64_t delta);

  /* The disco#info features every module started for this module's host
   * declared (parley_module_def.disco_features), one append() per feature. */
  void (*server_features)(parley_module* m, parley_sink out);

  /* Storage: the module's own tables, in the server's database (the SQLite file; on
   * PostgreSQL for a module that declared steps for it: storage_backend, ABI 1.7).
   * Every table a module touches must be named after it (mod_offline_*): the
   * host refuses any other, and ATTACH/PRAGMA. A module may also *read* the
   * tables of the modules it `depends` on (mod_presence reads mod_roster_*;
   * 1.1). One statement per call, `?`
   * parameters. Runs on the storage threads (write != 0: the single writer,
   * in order; else a reader); done() runs later on the calling loop, unless the
   * module has been stopped meanwhile (a call made by stop() is still carried
   * out, its done() is not called). Unload is refused while calls are in
   * flight; a reload waits up to 5 s for them, then is refused. */
  void (*storage_query)(parley_module* m, parley_str sql, const parley_value* params, size_t param_count, int write,
                        parley_rows_fn done, void* arg);
  size_t (*rows_count)(const parley_rows* rows);
  size_t (*rows_columns)(const parley_rows* rows);
  /* Borrowed for the callback; NULL value for an index out of range. */
  parley_value (*rows_value)(const parley_rows* rows, size_t row, size_t column);
  /* Rows changed by a write. */
  int64_t (*rows_changes)(const parley_rows* rows);

  /* Per-session data of this module: a slot the core keeps with the session
   * and frees (free_fn(data), if not NULL) when the session ends, when the
   * slot is set again, and before the module is unloaded or reloaded. Call on
   * the session's loop (from its events or its iq requests). 1 if done; 0 if
   * the session is not on this loop or is gone. */
  int (*session_set_data)(parley_module* m, parley_session_id session, void* data, void (*free_fn)(void* data));
  void* (*session_get_data)(parley_module* m, parley_session_id session);

  /* Runs a fold event (PARLEY_EVENT_DISCO_INFO) over the hooks of this
   * module's host: each adds to `acc` (borrowed, not consumed), in priority
   * order, until one returns STOP or HANDLED. Returns the last result; -2 if
   * `event` is not a fold event. */
  int (*run_fold)(parley_module* m, uint32_t event, parley_element* acc, parley_session_id session);
  /* (issue 11: PARLEY_EVENT_ACCOUNT_DISCO_INFO is a fold event too; run_fold
   * sets args->user from the requesting session's account.) */

  /* The bound sessions of a local user ("user@host"), each reported once to
   * `each` during the call (available: sent initial presence; its priority).
   * Returns how many; 0 for a malformed JID or a user with none. `each` may
   * be NULL: only the count, nothing copied. */
  size_t (*user_sessions)(parley_module* m, parley_str bare_jid, parley_session_fn each, void* arg);

  /* ---- ABI 1.1 ---- */

  /* Stops taking stanzas from a session (the core stops reading it; stanzas
   * already read wait) until session_release. Holds nest. For a module that
   * must finish something, an offline message's commit for instance, before
   * the sender's next stanza is processed. Call on the session's loop (from
   * its events or its requests). 1 if done, 0 if the session is not here. */
  int (*session_hold)(parley_module* m, parley_session_id session);
  int (*session_release)(parley_module* m, parley_session_id session);
  /* Writes `stanza` (owned) to a session on the calling loop as it is, in any
   * state after the stream opened: the answer to a PARLEY_IQ_PREAUTH request.
   * 1 if written, 0 if the session is not here or closing (freed). */
  int (*session_reply)(parley_module* m, parley_session_id session, parley_element* stanza);
  /* The client's IP address as text (a session on the calling loop). 1 if
   * written. */
  int (*session_peer_address)(parley_module* m, parley_session_id session, parley_sink out);
  /* Accounts of this module's host, done on the storage writer; `done` runs
   * later on the calling loop. Conditions: "conflict" (exists),
   * "item-not-found" (no such account), "jid-malformed" (not a valid
   * localpart), "not-acceptable" (empty or oversized password),
   * "internal-server-error". Creation and removal run USER_REGISTERED /
   * USER_REMOVED; a removed account's sessions are closed. Passwords are kept
   * as SCRAM-SHA-1 and SCRAM-SHA-256 verifiers only. As for storage, `done`
   * is not called once the module has been stopped. */
  void (*account_create)(parley_module* m, parley_str user, parley_str password, parley_account_fn done, void* arg);
  void (*account_set_password)(parley_module* m, parley_str user, parley_str password, parley_account_fn done,
                               void* arg);
  void (*account_remove)(parley_module* m, parley_str user, parley_account_fn done, void* arg);
  /* A JID prepared by the server's own rules (RFC 7622: nodeprep, nameprep,
   * resourceprep; IDNA), the same the core applies to every address it
   * stamps: 1 and the canonical "local@domain/resource" written to `out`, or
   * 0 if it is not a valid JID. Any thread. */
  int (*jid_prepare)(parley_str jid, parley_sink out);
  /* Whether this instance offers the stream features its def declares
   * (after_auth 0: preauth_features, 1: session_features); offered unless a
   * module says otherwise, from start() (mod_register without open
   * registration): read when the server builds its module tables, after
   * start() and after every load, unload or reload. */
  void (*offer_stream_features)(parley_module* m, int after_auth, int offer);

  /* ---- ABI 1.2 ---- */

  /* Like send_to_session, for a session on the CALLING loop, with a
   * completion: the way to push bulk output (an offline queue, pending
   * subscription requests, probe answers, later MAM pages and MUC history)
   * paced by what the connection actually writes: send a batch, send the next
   * when its completions came. Takes ownership of stanza. 1: accepted, `done`
   * will run (later, never during this call); 0: the session is not on this
   * loop, not bound or closing, or the stanza would take its write backlog
   * over the limits (the session is then cut as a slow reader), or modules
   * are being swapped (hot reload: send it again later) (stanza freed, done
   * never runs). It passes the outgoing filters (PARLEY_EVENT_STANZA_OUT)
   * as every stanza to the client does (stream management counts it); one
   * that takes it (HANDLED: client state indication holds it) owns it, and
   * the send completes as written. Call on the session's loop. */
  int (*session_send_tracked)(parley_module* m, parley_session_id session, parley_element* stanza,
                              parley_sent_fn done, void* arg);

  /* Module services. From start() only: this instance serves `domain` (a
   * subdomain such as "conference.example.org"; not a served host, not another
   * module's): every stanza to the domain or to any JID at it goes to `fn`, on
   * the loop that routes it (any worker loop). `name` is what the host's
   * disco#items shows for it. The route is removed when the instance stops.
   * The module answers disco#info/#items sent to its domain itself. 1 if
   * registered; 0 if refused (malformed, taken, a served host, or not called
   * from start()). */
  int (*register_route)(parley_module* m, parley_str domain, parley_str name, parley_route_fn fn);
  /* The module services of this instance's host (every module's), and the
   * external components (XEP-0114) connected now on its subdomains (with an
   * empty name), each reported once to `each` during the call. Returns how
   * many. Any loop. */
  size_t (*host_routes)(parley_module* m, parley_route_info_fn each, void* arg);

  /* Loops. The server runs loop_count() worker loops, numbered from 0; a
   * module keeps per-loop state in an array of that size, indexes it with
   * current_loop() and never locks it. current_loop: the calling thread's
   * loop, or -1 off the worker loops (start() and stop() run off them). */
  uint32_t (*loop_count)(parley_module* m);
  int32_t (*current_loop)(parley_module* m);
  /* Runs fn(state, arg) on worker loop `loop`, after the tasks already posted
   * there; any thread. post_to_session picks the loop that owns `session`.
   * The loop is woken only when its queue was empty, and drains a bounded
   * batch per turn. 1 if queued: fn runs exactly once, unless the module is
   * stopped first (then never: unload and reload wait until no posted task of
   * the module is pending, so this happens only at shutdown; `arg` is then
   * the module's to lose). 0 if there is no such loop or session (fn never
   * runs). */
  int (*post)(parley_module* m, uint32_t loop, parley_task_fn fn, void* arg);
  int (*post_to_session)(parley_module* m, parley_session_id session, parley_task_fn fn, void* arg);

  /* Sends an iq get/set (owned by the host from here) and calls `done` with
   * the answer on the calling loop. The host sets its 'id'. Its 'from' must be
   * this module's host domain, one of this instance's service domains, or the
   * bare JID of an account of this host (the module asks on the user's
   * behalf); its 'to' any valid address. The answer must come from the 'to'
   * (or, for a bare JID, from that account's server or one of its resources);
   * anything else with the id is not taken for it. No answer within timeout_ms
   * (capped at 10 minutes; 0 = 30 s): done(..., NULL). A stanza error the
   * router raises (no such user, unreachable domain) is an answer. `done` runs
   * exactly once unless the module is stopped first (unload and reload wait
   * for pending iqs). Call on a worker loop. 1 if sent; 0 if refused (not an
   * iq get/set, bad 'from'/'to', or off the loops): the stanza is freed and
   * done never runs. */
  int (*send_iq)(parley_module* m, parley_element* iq, uint64_t timeout_ms, parley_iq_reply_fn done, void* arg);

  /* Typed metrics. metric_register, from start() only and before the first
   * metric_record: declares a metric of this instance (name: [A-Za-z0-9_],
   * at most 64; kind: parley_metric_kind; help: what it counts, in which
   * unit) and returns its id (> 0), or 0 if refused. metric_record: any
   * thread; on a worker loop it writes memory only that loop writes (no
   * shared atomic), off the loops a shared atomic add. The host sums the
   * loops when it reads them (parleyctl status: "MODULE.HOST.NAME: VALUE";
   * a histogram shows count, sum, p50 and p99 bucket bounds). Unknown id or
   * a negative counter delta: nothing. A reload starts the metrics at 0. */
  uint32_t (*metric_register)(parley_module* m, parley_str name, uint32_t kind, parley_str help);
  void (*metric_record)(parley_module* m, uint32_t metric, int64_t value);

  /* Sessions and their connections. Every one of these is called on the loop
   * that owns `session` (from its hooks, iq requests, tracked-send
   * completions or a post_to_session task) and returns 0 anywhere else. */
  /* Writes `element` (borrowed) to the session's connection as it is, without
   * the outgoing filters and without routing: the answer to a nonza (XEP-0198
   * <a h='3'/>, <enabled/>, <resumed/>). In any state after the stream opened.
   * 1 if queued for the socket; 0 if the session is not here, is detached or
   * is closing. */
  int (*session_write)(parley_module* m, parley_session_id session, const parley_element* element);
  /* Sends `stanza` (owned) to a bound session through the outgoing filters
   * that come after this module's own PARLEY_EVENT_STANZA_OUT hook (all of
   * them if it has none): a stanza a filter held, released (client state
   * indication). 1 if accepted (written, or held by a later filter, or
   * waiting for a detached session); 0 if not (freed). */
  int (*session_send_after)(parley_module* m, parley_session_id session, parley_element* stanza);
  /* Ends a session: an attached one with the stream error `condition` (an
   * RFC 6120 stream error condition; empty: a plain </stream:stream>), a
   * detached one at once. SESSION_CLOSED runs, the user's contacts get
   * unavailable, stanzas that waited are routed as for a resource that is
   * gone. 1 if done, 0 if the session is not here or is closing already. */
  int (*session_close)(parley_module* m, parley_session_id session, parley_str condition);
  /* Moves the connection of `stream` (the calling loop's stream of an
   * authenticated, unbound client: where its <resume/> nonza arrived) to the
   * detached session `detached` of the same account, on whichever loop that
   * session lives: the connection migrates there (its socket, TLS and parser
   * state handed over while no thread touches them) and the session keeps its
   * id, slots, presence and waiting stanzas. The stream's own session ends
   * (SESSION_CLOSED, never bound). `done` runs once, as parley_attach_fn
   * says, unless the module is stopped first. Nothing the client sends is
   * processed meanwhile. 1 if under way; 0 if refused now (`stream` is not an
   * authenticated unbound stream on this loop, or an attach is under way for
   * it): done never runs. */
  int (*session_attach)(parley_module* m, parley_session_id detached, parley_session_id stream,
                        parley_attach_fn done, void* arg);
  /* Whether `session` (on the calling loop) is bound (1), detached (2), an
   * unbound stream (3); 0: not here. */
  int (*session_state)(parley_module* m, parley_session_id session);

  /* ---- after 1.2 (mobile sessions): check each with PARLEY_HOST_HAS(host, entry) ---- */

  /* Cuts the connection of a bound, attached session as if it had been lost:
   * no </stream:stream> and no stream error, the socket is closed as after a
   * reset. SESSION_CLOSING is asked, so a module may keep the session detached
   * (XEP-0198); if none does, the session ends as for any lost connection.
   * For a module that found the connection dead (a XEP-0199 ping the client
   * did not answer). Done after the call returns, on the session's loop: no
   * hook runs inside it. Owns nothing. Call on the loop that owns `session`.
   * 1 if under way; 0 if the session is not here, not bound, detached or
   * closing already. */
  int (*session_cut)(parley_module* m, parley_session_id session);
  /* Ends the connection of a bound session and keeps the session, detached,
   * as if the connection had been lost and a SESSION_CLOSING hook had kept it
   * (CLOSING is not asked; SESSION_DETACHED runs): the connection gets the
   * stream error `condition` (an RFC 6120 stream error condition; empty: a
   * plain </stream:stream>) and is closed once what it has queued is written;
   * bytes it had not written are settled as written, as for a lost
   * connection. The session stays bound and available, with its id, slots and
   * presence; it then ends as any detached session (session_close,
   * limits.max_detached_*). For XEP-0198: a <resume/> that arrives while the
   * old connection is still open takes the session from it. Call on the
   * session's loop (from its hooks, iq requests, completions or a
   * post_to_session task); nothing is owned or kept. 1 if detached; 0 if the
   * session is not here, not bound with a connection, or closing, or
   * `condition` is not a condition name (lower-case letters and '-'). */
  int (*session_detach)(parley_module* m, parley_session_id session, parley_str condition);
  /* How many stanzas (message, presence, iq of jabber:client) the session's
   * client has sent since it bound, modulo 2^32, each counted when the core took it in,
   * whatever became of it (routed, answered, refused with an error before any
   * hook saw it, taken by a module): XEP-0198's h is the difference from the
   * value at <enable/>, modulo 2^32. Nonzas are not counted. The count stays
   * with the session across detach and re-attach. Call on the session's
   * loop; 0 if the session is not here. */
  uint32_t (*session_stanzas_in)(parley_module* m, parley_session_id session);

  /* ---- after 1.2 (mobile sessions): what a session does not use costs nothing ---- */

  /* From start() only (read when the server builds its module tables, as
   * offer_stream_features is): how this instance's hooks of `event` run.
   * PARLEY_HOOKS_ALWAYS: for everything, as without this call.
   * PARLEY_HOOKS_OFF: never (left out of the tables): a hook the module's
   * options make useless costs nothing (mod_ping without send_pings).
   * PARLEY_HOOKS_PER_SESSION, for PARLEY_EVENT_STANZA_OUT only: the filter
   * runs only for the sessions that turned it on with session_filter_out; a
   * stanza to a session with no filter on is written without any dispatch.
   * A module built for an older ABI never calls it: its hooks run always.
   * Owns nothing; called on the thread running start(). 1 if taken; 0 if
   * refused (not from start(), an unknown mode, PER_SESSION for another
   * event). */
  int (*hook_mode)(parley_module* m, uint32_t event, int mode);
  /* Turns this instance's PER_SESSION outgoing filter on (on != 0) or off for
   * `session`. It stays on with the session, across detach and re-attach,
   * until turned off, the session ends, or the module is unloaded or reloaded
   * (the slot rule: the new code turns it on again, from
   * restore_session_data). Stanzas already past the filters are not filtered
   * again. Call on the loop that owns `session` (its hooks, iq requests,
   * completions or a post_to_session task); owns nothing. 1 if done; 0 if
   * the session is not here. */
  int (*session_filter_out)(parley_module* m, parley_session_id session, int on);

  /* ---- issue 11: the archive store (check with PARLEY_HOST_HAS(host, archive_remove)) ----
   * Operations run off the loops, on the archive store's own thread, in the order they
   * were made (one owner's appends stay in order; a query sees every append made before
   * it); `done` runs later on the calling loop, exactly once, unless the module has been
   * stopped meanwhile (then never, as for storage_query). Unload is refused while
   * operations are in flight; a reload waits for them. Call on a worker loop. */
  /* Appends an entry to `owner`'s archive (owner: a bare JID; with: the other party's
   * JID; payload: any bytes, e.g. a serialized stanza; all borrowed, copied) and returns
   * its id at once, so that a stanza can carry it before the append completes. Ids are
   * made as the append is queued: unique in the server and never reused, and increasing
   * in the order appends are queued, so a query (queued after them) that sees an id sees
   * every smaller one. 0: refused (not on a worker loop, empty owner, no archive store,
   * its queue full): nothing appended, done never runs. done may be NULL (the cheap
   * way: the loop is not woken for the append; a failure is logged by the host); it gets
   * a page with no entries once the entry is committed, or an error (not stored). */
  uint64_t (*archive_append)(parley_module* m, parley_str owner, parley_str with, parley_str payload,
                             parley_archive_fn done, void* arg);
  /* Runs `query` (borrowed, copied during the call; its size says which fields the module
   * knows). 1 if under way; 0 if refused (off the loops, no owner, no store): done never
   * runs. */
  int (*archive_query)(parley_module* m, const parley_archive_query* query, parley_archive_fn done, void* arg);
  /* Removes the entries of `owner`'s archive (empty: of every archive of this module
   * instance) appended before before_us (INT64_MAX: all); done gets page->total = how
   * many. 1 if under way; 0 if refused (off the loops, no store): done never runs. */
  int (*archive_remove)(parley_module* m, parley_str owner, int64_t before_us, parley_archive_fn done, void* arg);
  /* ---- issue 13: HTTP routes (check with PARLEY_HOST_HAS(host, http_data_dir)) ---- */
  /* From start() only (routes go into the tables built after it): serves route->prefix
   * on the HTTP listeners (route->port: one of them, 0: all) for route->methods, with
   * route->max_body_bytes. The core's own paths (/xmpp-websocket, /.well-known/, the
   * configured /metrics) cannot be taken. 1 if taken; 0 if refused (not from start(), a
   * bad prefix, taken already). Owns nothing. */
  int (*http_route)(parley_module* m, const parley_http_route* route);
  /* A request header of `exchange` (names compare case-insensitively): 1 and its value
   * through out; 0 if absent or no such exchange here. On the exchange's loop. */
  int (*http_header)(parley_module* m, uint64_t exchange, parley_str name, parley_sink out);
  /* The answer's status and headers ("Name: value\r\n" lines, borrowed; Content-Length,
   * Transfer-Encoding and Connection are the host's). content_length >= 0: the body will
   * be that many bytes; -1: sent chunked. Once per exchange; a HEAD request's answer
   * carries no body whatever is written. 1 if written; 0 if not (no such exchange
   * here, answered already, bad headers). On the exchange's loop. */
  int (*http_respond)(parley_module* m, uint64_t exchange, int status, parley_str headers, int64_t content_length);
  /* Body bytes (borrowed, copied). 1: written, write more; 0: written, but the
   * connection's backlog is past the high mark: wait for on_writable; -1: not written
   * (no such exchange here, not answered yet). On the exchange's loop. */
  int (*http_write)(parley_module* m, uint64_t exchange, parley_str bytes);
  /* The answer is complete (a response not started is answered 500 first); the id is
   * dead after it and on_closed is not called. A request pipelined behind it on the
   * connection is parsed now: its on_request (a new exchange) may run before this
   * returns. 1 if done, 0 if no such exchange here. On the exchange's loop. */
  int (*http_end)(parley_module* m, uint64_t exchange);
  /* Backpressure on the request body: paused != 0 stops on_body after the current
   * chunk (the connection stops reading) until called with 0, which delivers what
   * waited (on_body, possibly on_closed) before it returns. 1 if done, 0 if no such
   * exchange here. On the exchange's loop. */
  int (*http_read_pause)(parley_module* m, uint64_t exchange, int paused);
  /* The server's data_dir (a directory the module may keep files under), through out.
   * Any thread. 1. */
  int (*http_data_dir)(parley_module* m, parley_sink out);
  /* ---- issue 14: the HTTP client (check with PARLEY_HOST_HAS(host, http_request)) ---- */
  /* Starts an HTTP request (borrowed, copied during the call) on the calling worker
   * loop's client and returns its id (never 0). `done` runs exactly once, later (never
   * during this call), on the calling loop: with the response, or an error
   * (parley_http_client_response); at shutdown with "cancelled" while the module is still
   * running. When the module stops (unload, reload, a failed start) its requests are
   * cancelled at once and `done` runs with stopped = 1 and state NULL: free `arg`, touch
   * nothing else. Each loop runs at most limits.http_client_max_requests at a time. 0:
   * refused (not on a worker loop, a malformed request, that many in flight here, the
   * server stopping): done never runs. Owns nothing after the call. */
  uint64_t (*http_request)(parley_module* m, const parley_http_client_request* request, parley_http_client_fn done,
                           void* arg);
  /* ---- issue 11: the keyval store (check with PARLEY_HOST_HAS(host, keyval_remove_user)) ----
   * Operations run off the loops, on the keyval store's own thread, in the order they were
   * made: one user's operations keep their order (a get made after a put of the same key
   * sees it). `done` runs later on the calling loop, exactly once, unless the module has
   * been stopped meanwhile (then never, as for storage_query); it may be NULL. Unload is
   * refused while operations are in flight; a reload waits for them. Everything passed is
   * borrowed and copied during the call; nothing is owned. Call on a worker loop, or from
   * start() (done then runs on a worker loop). Each returns 1 if under way; 0 if refused
   * (off the loops and not in start(), an empty user, no keyval store): done never runs. */
  /* The value of `key` for `user`: result->found and result->value. */
  int (*keyval_get)(parley_module* m, parley_str user, parley_str key, parley_keyval_fn done, void* arg);
  /* Stores items[0..count) for `user`, every one or none (one transaction). flags:
   * PARLEY_KEYVAL_IF_ABSENT or 0 (replace). max_user_bytes > 0: refused with
   * "policy-violation", storing nothing, if the bytes of all of the user's values (the
   * items' replacing those of their keys) would go over it; checked with the write,
   * atomically (two puts racing cannot both pass it). */
  int (*keyval_put)(parley_module* m, parley_str user, const parley_keyval_item* items, size_t count,
                    uint64_t max_user_bytes, uint32_t flags, parley_keyval_fn done, void* arg);
  /* Removes `key` of `user` (result->count: 1 or 0). */
  int (*keyval_remove)(parley_module* m, parley_str user, parley_str key, parley_keyval_fn done, void* arg);
  /* Removes every key of `user` (an account removed; result->count: how many). */
  int (*keyval_remove_user)(parley_module* m, parley_str user, parley_keyval_fn done, void* arg);
  /* ---- issue 11: the map store (check with PARLEY_HOST_HAS(host, map_clear)) ----
   * As the keyval entries above: the same thread, order, completion and refusal rules
   * (1 if under way; 0 if refused: done never runs). Everything passed is borrowed. */
  /* The user's items and the map's version. */
  int (*map_get)(parley_module* m, parley_str user, parley_map_fn done, void* arg);
  /* Puts items[0..count) (a key that is there gets the new value and keeps its place),
   * every one or none, and bumps the version once. max_items > 0: refused with
   * "policy-violation", storing nothing, if the map would then hold more items. */
  int (*map_put)(parley_module* m, parley_str user, const parley_keyval_item* items, size_t count,
                 uint64_t max_items, parley_map_fn done, void* arg);
  /* Removes the keys that are there (result->changed: how many); bumps the version if any. */
  int (*map_remove)(parley_module* m, parley_str user, const parley_str* keys, size_t count, parley_map_fn done,
                    void* arg);
  /* Removes every item of the user's map (an account removed, a list cleared); the
   * version goes on. */
  int (*map_clear)(parley_module* m, parley_str user, parley_map_fn done, void* arg);
  /* ---- issue 17: service administration (XEP-0133; check with PARLEY_HOST_HAS(host, server_stop)) ---- */
  /* Whether `jid` (a full or bare JID; its bare part is compared) is an
   * administrator of this module's host: listed in the configuration's
   * `admins` (top level, for every host) or in that host's
   * host_config `admins`. Owns nothing; any thread. 1 yes, 0 no. */
  int (*is_admin)(parley_module* m, parley_str jid);
  /* The bound sessions of this module's host, on every loop, each reported
   * once to `each` during the call (as user_sessions: its id, full JID,
   * available, priority) from a snapshot of the session directory (a session
   * binding or ending meanwhile may or may not be in it). Returns how many.
   * Any worker loop; owns nothing. */
  size_t (*host_sessions)(parley_module* m, parley_session_fn each, void* arg);
  /* Counts the accounts of this module's host on the account store's reader;
   * `done` runs later on the calling loop with the count and an empty
   * condition, or -1 and "internal-server-error". As for account_create,
   * `done` is not called once the module has been stopped. Call on a worker
   * loop. */
  void (*account_count)(parley_module* m, void (*done)(void* arg, int64_t count, parley_str condition), void* arg);
  /* Asks the server to shut down gracefully, as SIGTERM does (every stream
   * gets <system-shutdown/> after what was queued for it, including what was
   * sent to sessions before this call). Returns at once (1); the shutdown
   * runs on the main loop after the call. Any thread. */
  int (*server_stop)(parley_module* m);
  /* ---- issue 11: XEP-0227 export and import (check with
   * PARLEY_HOST_HAS(host, keyval_list)) ----
   * For the ACCOUNT_EXPORT and ACCOUNT_IMPORT hooks: `request` is the hook's
   * args->session. hold: on the loop that runs the hook, during it. add and
   * done: on any worker loop (a module whose per-user work runs on another
   * loop answers from there; the request's state stays on its own loop, where
   * the call is posted, in order). Each returns 1, or 0 if there is no such
   * request (finished, timed out) or the call is out of turn (hold after the
   * hook returned). Owns nothing. */
  /* During the hook only: this module answers later; the request waits for its
   * account_data_done (a module may hold more than once, and owes one done per hold). */
  int (*account_data_hold)(parley_module* m, uint64_t request);
  /* Export: a copy of `element` (borrowed; serialized during the call) becomes a
   * child of the account's <user/>, in the order added. The request's bytes are
   * bounded (the core's limit): over it the export of that account fails.
   * During the hook or while holding. */
  int (*account_data_add)(parley_module* m, uint64_t request, const parley_element* element);
  /* Ends one hold. error.len == 0: done (`summary`, borrowed, e.g. "3 roster
   * items", is reported to the operator); else the request fails with `error`
   * (the export of the account, or its import, which is then undone). */
  int (*account_data_done)(parley_module* m, uint64_t request, parley_str summary, parley_str error);
  /* Every key of `user` in this module instance's keyval store, with its value, in key
   * order (bytewise), as a parley_map_result (version 0) through `done`: what an
   * export needs of a module whose keys are not known in advance (mod_private's
   * namespaces). As the keyval entries: the same thread, order, completion and refusal
   * rules; 1 if under way, 0 if refused. */
  int (*keyval_list)(parley_module* m, parley_str user, parley_map_fn done, void* arg);

  /* ---- issues 15 and 18: a broadcast serialized once ---- */
  /* Routes `stanza` (its 'from' set; any 'to' is replaced) to each of the
   * `count` JIDs in `to`, with only 'to' differing: as `count` calls of route
   * with a copy each, except that the stanza is serialized once and every
   * recipient's bytes are those with its 'to' spliced in; the recipients'
   * MESSAGE_TO_LOCAL / PRESENCE_TO_LOCAL hooks run in turn on one element
   * with that recipient's 'to' (a hook that changes it gets that recipient
   * its own serialization); the deliveries to another loop's sessions go in
   * one post per loop. Takes ownership of `stanza` (a message or presence;
   * anything else is routed copy by copy); `to` is borrowed for the call.
   * Call on a worker loop (elsewhere it is posted to loop 0, as route). */
  void (*route_shared)(parley_module* m, parley_element* stanza, const parley_str* to, size_t count);
  /* ---- h-admin (issue 17): disabled accounts, account lists, session addresses (XEP-0133;
   * check with PARLEY_HOST_HAS(host, user_addresses)) ---- */
  /* Disables (disabled != 0) or re-enables the account `user` (a localpart) of this
   * module's host. The flag is kept with the account in the account store (SQLite or
   * PostgreSQL, as the accounts); a disabled account keeps its data, and a login that
   * proves its password is answered <failure><account-disabled/></failure> (RFC 6120
   * 6.5.1). Disabling ends the account's sessions (stream error <not-authorized/>).
   * `done` runs later on the calling loop as account_create's: "" or "item-not-found"
   * (no such account), "jid-malformed", "internal-server-error"; never once the module
   * has been stopped. Call on a worker loop; owns nothing. */
  void (*account_set_disabled)(parley_module* m, parley_str user, int disabled, parley_account_fn done, void* arg);
  /* The accounts of this module's host (which = 0: all of them; 1: the disabled ones),
   * sorted bytewise; with a non-empty `user` (a localpart), only that account, if it is
   * one of them (an existence check: 0 or 1 names). `done` runs later on the calling
   * loop with their localparts (borrowed for the call) and an empty condition, or count
   * 0 and "internal-server-error". Never once the module has been stopped. Call on a
   * worker loop; owns nothing. */
  void (*account_list)(parley_module* m, int which, parley_str user,
                       void (*done)(void* arg, const parley_str* users, size_t count, parley_str condition),
                       void* arg);
  /* The remote address (IP) of each bound session of the local user `bare_jid` of this
   * module's host: each session's loop is asked (the connection is its); `done` runs
   * later on the calling loop, exactly once, with the sessions' full JIDs and addresses
   * (parallel arrays of `count`, borrowed for the call; a session that ended meanwhile
   * is left out). Never once the module has been stopped. Call on a worker loop; owns
   * nothing. */
  void (*user_addresses)(parley_module* m, parley_str bare_jid,
                         void (*done)(void* arg, const parley_str* full_jids, const parley_str* addresses,
                                      size_t count),
                         void* arg);

  /* ---- issue 11, ABI 1.6: the message archive in XEP-0227 export/import
   * (check with PARLEY_HOST_HAS(host, account_data_add_to)) ---- */
  /* As archive_append, with the entry's timestamp given (microseconds since the epoch,
   * UTC; > 0) instead of now: an import keeps the time a message was archived at on the
   * server it comes from. The id is made as archive_append's (increasing in queue
   * order, whatever the timestamp): a back-dated entry sorts by id after the entries
   * already there. 0: refused (also timestamp_us <= 0). Same thread, ownership and
   * completion rules as archive_append. */
  uint64_t (*archive_append_at)(parley_module* m, parley_str owner, parley_str with, parley_str payload,
                                int64_t timestamp_us, parley_archive_fn done, void* arg);
  /* Export: a copy of `element` (borrowed; serialized during the call) becomes a child of
   * the container <name xmlns='ns'/> in the account's <user/> (made at the first call
   * with that name and namespace, written after the elements account_data_add added, in
   * the order of first use). A module streams a long list this way, a page at a time
   * (mod_mam's <archive xmlns='urn:xmpp:pie:0#mam'/>), without holding the whole of it;
   * calls of one module land in the order made, and another module's calls never land
   * inside it. Same bound, threads and return values as account_data_add. */
  int (*account_data_add_to)(parley_module* m, uint64_t request, parley_str name, parley_str ns,
                             const parley_element* element);

  /* ---- issue 11, ABI 1.7: SQL per backend (check with PARLEY_HOST_HAS(host, storage_backend)) ---- */
  /* Where this module's own tables are, so that it writes storage_query's SQL in that
   * backend's dialect: PARLEY_BACKEND_POSTGRESQL if the server runs `storage: backend:
   * postgresql` and the module declared PostgreSQL schema steps
   * (parley_module_def.backend_schemas), else PARLEY_BACKEND_SQLITE (the main SQLite
   * file, as on every older host). Fixed for the life of the instance. Any thread; owns
   * nothing. On PostgreSQL storage_query runs the statement in the module's own schema
   * (named after the module: its search_path), `$1` parameters, one SELECT, INSERT,
   * UPDATE, DELETE, WITH or VALUES statement per call (tables are made by the schema
   * steps); a statement that reads or writes a table of another schema (another module's,
   * the server's) is refused. The same completion, order and stop rules as on SQLite;
   * while the database is away a read (write == 0) fails at once and a write waits in a
   * bounded queue (limits.max_module_sql_queue) and completes once it is stored. */
  uint32_t (*storage_backend)(parley_module* m);
  /* ---- issue 15, ABI 1.7: what an outgoing filter keeps of a stanza, shared with a
   * broadcast (check with PARLEY_HOST_HAS(host, out_bytes_release)) ---- */
  /* The bytes `stanza` is written as (default namespace jabber:client), for a filter that
   * keeps what was sent (stream management's unacknowledged queue). Called from a
   * PARLEY_EVENT_STANZA_OUT hook with its event's stanza: when that is a broadcast's
   * (route_shared) and no filter has changed it, the handle refers to the broadcast's one
   * serialization (shared by every recipient, with this recipient's 'to' as a piece of
   * its own): nothing is serialized for this session. Any other element (another
   * event's, one a filter changed, one the module built) is serialized now, as
   * element_serialize would. NULL if `stanza` is NULL.
   * Thread: the loop thread that called the module. OWNERSHIP: the handle is the
   * module's, immutable, until out_bytes_release; it does not borrow `stanza` (the
   * element may be changed or freed meanwhile) and may be released on any thread (the
   * shared serialization is reference-counted atomically). */
  parley_out_bytes* (*stanza_out_bytes)(parley_module* m, const parley_element* stanza);
  /* The handle's text in order, in at most `max` pieces written to `parts` (at most 3:
   * the shared start tag up to its name, this recipient's ` to='...'`, the rest);
   * returns how many pieces the text has (more than `max`: only `max` were written). The
   * pieces' concatenation is the stanza as written. Borrowed from the handle while it
   * lives. Any thread. */
  size_t (*out_bytes_parts)(const parley_out_bytes* bytes, parley_str* parts, size_t max);
  /* Frees the handle (NULL: nothing). Any thread. */
  void (*out_bytes_release)(parley_out_bytes* bytes);

  /* ---- h-export, ABI 1.8: an export of any size, paced by its reader (check with
   * PARLEY_HOST_HAS(host, account_data_when_ready)) ---- */
  /* Export: `ready(arg)` runs once the request's buffered bytes (added, not yet written
   * to parleyctl) are below limits.max_account_part_bytes: a module adding a long list a
   * page at a time (account_data_add_to) asks before reading its next page, so that the
   * server never holds more than about one bound and one page of an account whatever its
   * size. `ready` runs on the request's loop (the loop its hook ran on), never during
   * this call, exactly once: also if the request fails or its reader goes away meanwhile
   * (the next account_data_add_to then returns 0), not if the module is stopped first.
   * Call it with a hold only (between account_data_hold and account_data_done). 1:
   * `ready` will run; 0: refused (an unknown request, an import, another thread): it
   * never runs. OWNERSHIP: `arg` stays the module's. */
  int (*account_data_when_ready)(parley_module* m, uint64_t request, void (*ready)(void* state, void* arg),
                                 void* arg);
  /* ---- issue 11, ABI 1.8: one key of many users (check with
   * PARLEY_HOST_HAS(host, keyval_get_many)) ---- */
  /* The value of `key` for each of users[0..count) in this module instance's keyval store,
   * as one operation: result->items[i].key is a user and .value that user's value, for
   * each user that has one (a user without it is simply absent; a user given twice is
   * reported once), in bytewise order of the users; result->count how many; version and
   * changed 0. The store reads 256 users per statement (a login's probe answers: one
   * statement per 256 contacts, not a round trip each). Order: as the keyval entries above
   * (one queue, in the order made): it sees every keyval_put, keyval_remove and
   * keyval_remove_user of those users made before it (from the calling loop: every one
   * made before this call; from another loop: every one whose call returned before it),
   * none made after it. Completion: `done` runs once, later (never during this call), on
   * the calling loop, with every user found at once (the module bounds `count`: the
   * values are all held until then), unless the module has been stopped meanwhile (then
   * never); it may be NULL. Errors as keyval_get's ("internal-server-error" also at once
   * while a PostgreSQL database is away; "resource-constraint": the queue is full), then
   * result NULL. Ownership: everything passed is borrowed and copied during the call;
   * the result is borrowed for the completion call. Thread: call on a worker loop, or
   * from start() (done then runs on a worker loop). 1 if under way (count 0 too: done gets
   * no items); 0 if refused (off the loops and not in start(), users NULL with count > 0,
   * an empty user, no keyval store): done never runs. */
  int (*keyval_get_many)(parley_module* m, const parley_str* users, size_t count, parley_str key,
                         parley_map_fn done, void* arg);

  /* ---- issue 11, ABI 1.9: a key of the module's own (check with
   * PARLEY_HOST_HAS(host, derive_key)) ---- */
  /* Fills out[0..len) (len from 1 to 32) with key bytes derived from the server's
   * persistent secret (data_dir/sasl_secret, made at the first start and kept), this
   * instance's module name and host, and `label` (HMAC-SHA-256 of them under the
   * secret): the same on every start of this server, different for every module, host
   * and label, and not computable without the secret. What a module needs to make
   * values others must not predict or forge and that must survive a restart (XEP-0313's
   * unpredictable archive ids). Ownership: everything is the caller's (`label` borrowed,
   * `out` written). Any thread, start() included. 1 if done; 0 if len is 0 or above 32
   * or out is NULL (out untouched). */
  int (*derive_key)(parley_module* m, parley_str label, uint8_t* out, size_t len);

  /* ---- issue 11, ABI 1.11: appends paced by the archive (check with
   * PARLEY_HOST_HAS(host, archive_append_paced)) ---- */
  /* As archive_append_at with no completion (timestamp_us 0: now), for a stanza that
   * `session` sent: a client's session on the calling loop (0: none; then exactly
   * archive_append_at). While the archive store is behind (more than
   * limits.archive_pace_queue operations wait and it is working through them; not while
   * a PostgreSQL archive database is away, when appends wait up to
   * limits.max_archive_queue and are refused past it), the host holds that session's
   * input (as session_hold) until this append is stored or failed, or the store is away,
   * and releases it itself then, later (never during this call), whatever became of the
   * module. So
   * clients send no faster than the archive stores, and what they send is not refused for
   * a full queue. The host logs refused and failed appends (at most one line every 10
   * seconds, with a count). Ownership: everything is borrowed and copied during the call.
   * Thread: a worker loop. Returns the entry's id; 0 if refused (as archive_append). */
  uint64_t (*archive_append_paced)(parley_module* m, parley_session_id session, parley_str owner, parley_str with,
                                   parley_str payload, int64_t timestamp_us);
} parley_host_api;

#define PARLEY_HOOKS_ALWAYS 0
#define PARLEY_HOOKS_OFF 1
#define PARLEY_HOOKS_PER_SESSION 2

#define PARLEY_SESSION_BOUND 1
#define PARLEY_SESSION_DETACHED 2
#define PARLEY_SESSION_UNBOUND 3

#define PARLEY_HOST_HAS(host, member) \
  ((host)->size >= offsetof(parley_host_api, member) + sizeof(((parley_host_api*)0)->member))


#ifdef __cplusplus
}
#endif

#endif /* PARLEY_MODULE_H */
