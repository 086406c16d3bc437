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

#ifdef __cplusplus
extern "C" {
#endif

#define PARLEY_ABI_MAJOR 1
#define PARLEY_ABI_MINOR 5  /* 1.5: account data (XEP-0227), route_shared, account administration, events 27-31 */

/* The one symbol a module exports. */
#define PARLEY_MODULE_ENTRY_SYMBOL "parley_module_entry"

#if defined(__GNUC__)
#define PARLEY_EXPORT __attribute__((visibility("default")))
#else
#define PARLEY_EXPORT
#endif

typedef struct parley_str {
  const char* ptr; /* not NUL-terminated */
  size_t len;
} parley_str;

typedef struct parley_sink {
  void* ctx;
  void (*append)(void* ctx, const char* data, size_t len);
} parley_sink;

typedef struct parley_element parley_element; /* an XML element (stanza or child) */
typedef struct parley_module parley_module;   /* the host's handle of one loaded module instance */
typedef uint64_t parley_session_id;           /* 0 = none; a closed session's id never comes back */

/* Results of hooks and handlers. */
typedef enum parley_result {
  PARLEY_PASS = 0,    /* not mine / go on: the next hook runs, then the core's default */
  PARLEY_STOP = 1,    /* no further hook runs; the core still does its default */
  PARLEY_HANDLED = 2, /* no further hook runs and the core does nothing more: the module took the stanza */
  PARLEY_ERROR = -1   /* failed: logged with the module's name; a stanza being handled gets internal-server-error */
} parley_result;

typedef enum parley_log_level {
  PARLEY_LOG_TRACE = 0,
  PARLEY_LOG_DEBUG = 1,
  PARLEY_LOG_INFO = 2,
  PARLEY_LOG_WARN = 3,
  PARLEY_LOG_ERROR = 4
} parley_log_level;

/* Events a module can hook (ejabberd's hooks). Filter events pass a mutable
 * stanza. Numbers are part of the ABI and never reused. */
typedef enum parley_event {
  /* A stanza from a bound client, 'from' stamped and 'to' (if any) prepared
   * (RFC 7622, as the router uses it), before routing. Filter. */
  PARLEY_EVENT_STANZA_IN = 1,
  /* A message/presence/iq addressed to a local user (bare or full JID), before
   * the core delivers it. Filter. */
  PARLEY_EVENT_MESSAGE_TO_LOCAL = 2,
  PARLEY_EVENT_PRESENCE_TO_LOCAL = 3,
  PARLEY_EVENT_IQ_TO_LOCAL = 4,
  /* A message for a local user with no available resource (RFC 6121 8.5.2.2).
   * HANDLED = stored; otherwise the core answers service-unavailable.
   * args->session is the sender's session when the sender is a local client
   * whose session lives on the calling loop (1.1), else 0: a module may
   * session_hold it until the message is durable. */
  PARLEY_EVENT_OFFLINE_MESSAGE = 5,
  /* Session life: opened (TCP accepted), bound (resource bound), closed. */
  PARLEY_EVENT_SESSION_OPENED = 6,
  PARLEY_EVENT_SESSION_BOUND = 7,
  PARLEY_EVENT_SESSION_CLOSED = 8,
  /* The session's own presence without 'to' (initial, change, unavailable),
   * before the core reflects it to the user's resources. Filter; HANDLED =
   * the module broadcast it. */
  PARLEY_EVENT_PRESENCE_BROADCAST = 9,
  /* Accounts created or removed through the running server (parleyctl, or a
   * registration module); args->user and args->host name the account. An
   * account removed this way also loses its sessions. */
  PARLEY_EVENT_USER_REGISTERED = 10,
  PARLEY_EVENT_USER_REMOVED = 11,
  /* Fold: the server's disco#info is being built; args->acc is the <query/>,
   * hooks add <identity/> and <feature/> children (XEP-0030). mod_disco runs
   * it through host->run_fold. */
  PARLEY_EVENT_DISCO_INFO = 12,

  /* ---- 1.2 ---- Every one runs on the loop that owns args->session. */
  /* A top-level element that is not a stanza (not message, presence or iq of
   * jabber:client) on an authenticated stream: bound, or authenticated and not
   * bound yet (XEP-0198 <resume/> comes instead of binding). args->stanza is
   * the element (borrowed), args->jid the full JID (bound) or the bare JID.
   * HANDLED or STOP: a module took it (and answers, if at all, with
   * session_write). If no module takes it the core closes the stream with
   * <unsupported-stanza-type/>, as without the hook. */
  PARLEY_EVENT_NONZA_IN = 13,
  /* Filter: every stanza on its way out to a bound session (routed stanzas,
   * the core's own replies and errors, modules' sends) just before it is
   * written; args->stanza is mutable and what the hooks leave is what the
   * client gets. PASS: the next filter runs, then it is written; STOP: written
   * without the later filters; HANDLED: not written now (the module dropped
   * or holds it, and may send it later with session_send_after, which goes on
   * with the filters after its own). session_write is not filtered. Stanzas
   * that waited while the session was detached meet the filters when they are
   * written after re-attaching. */
  PARLEY_EVENT_STANZA_OUT = 14,
  /* A message the router gave to a bound session (RFC 6121 8.5 chose this
   * resource, or it was addressed to it), before the outgoing filters:
   * ejabberd's user_receive_packet (message carbons copy from here).
   * args->stanza must not be changed. HANDLED: not delivered to this resource
   * (the module took it). */
  PARLEY_EVENT_MESSAGE_DELIVERED = 15,
  /* The connection of a bound session ended without a closed stream (EOF,
   * reset, TLS or write error, cut as a slow reader, a timeout): HANDLED from
   * one hook keeps the session DETACHED instead of closing it (XEP-0198
   * resumption). A detached session stays bound and available; stanzas for it
   * wait in a bounded queue of the core (limits.max_detached_stanzas; over it,
   * or after limits.max_detached_seconds, or by session_close, the session is
   * closed and what waited is routed as for a resource that is gone). Bytes the
   * connection had not written at the end are settled as written: the module
   * that detached the session owns what the client has not acknowledged. Not
   * asked for a stream the client or the server closed (</stream:stream>, a
   * stream error), nor at shutdown. */
  PARLEY_EVENT_SESSION_CLOSING = 16,
  /* The session is detached now (after a CLOSING hook kept it). */
  PARLEY_EVENT_SESSION_DETACHED = 17,
  /* The session has a connection again (session_attach), before anything from
   * that connection is processed and before the stanzas that waited are
   * written; args->jid is the session's full JID, as before. */
  PARLEY_EVENT_SESSION_REATTACHED = 18,
  /* ---- issue 11 ---- */
  /* Fold: an account's disco#info, asked by its owner, is being built
   * (XEP-0030 section 3.1); args->acc is the <query/>, args->user and
   * args->host name the account; hooks add <feature/> children
   * (urn:xmpp:mam:2 on the account, as clients look for it there). mod_disco
   * runs it through host->run_fold; a host without it answers -2 there. */
  PARLEY_EVENT_ACCOUNT_DISCO_INFO = 19,
  /* ---- issue 14: push notifications ---- */
  /* A routed stanza has just been queued for a DETACHED session (its
   * connection was lost and a SESSION_CLOSING hook kept it, XEP-0198): its
   * client will not see it until it resumes, so a module may wake it (a
   * XEP-0357 push). On the session's loop; args->session, ->user, ->host and
   * ->jid name the session; args->stanza must not be changed (it may be
   * shared with other sessions). Observe only: the result is ignored, the
   * stanza waits for the session either way. Not raised for what a module
   * sends to the session itself, nor for a stanza that does not fit the
   * session's queue (the session ends). While modules are swapped (hot
   * reload) it runs, with a copy of the stanza, once the new code is in. */
  PARLEY_EVENT_DETACHED_STANZA = 20,
  /* ---- issue 17: disco nodes (XEP-0030 section 3.2 / 4.2) ---- */
  /* Folds: a disco#info (21) or disco#items (22) request to the server's
   * domain that names a node. args->acc is the whole reply being built: an
   * <iq type='result'/> addressed to the requester (its 'to' is the
   * requester's full JID), with the <query node='...'/> child to fill (the
   * request's 'id' and node copied); args->jid is the requester (the
   * reply's 'to'), args->session the requester's session if local. A
   * hook that serves the node fills the query and returns HANDLED: mod_disco routes
   * the reply. A hook that answers the request itself (an error such as
   * forbidden, or later) returns STOP: mod_disco sends nothing. PASS: not
   * this module's node; if every hook passes, mod_disco answers
   * item-not-found. mod_disco runs them through host->run_fold. */
  PARLEY_EVENT_DISCO_NODE_INFO = 21,
  PARLEY_EVENT_DISCO_NODE_ITEMS = 22,
  /* ---- issue 14: wake-ups (push notifications) ---- */
  /* Fold: a stanza that local users' clients will not see now warrants waking
   * them (a XEP-0357 push): raised by modules with run_fold, heard by a push
   * module; the raising module does not know who listens. args->acc is
   *   <wake xmlns='urn:parley:wake:0' reason='R'><user jid='local@host'/>...STANZA</wake>
   * (borrowed; hooks must not change it): one <user/> per recipient (bare JIDs
   * of accounts of args->host) and a copy of the stanza as they would get it.
   * Reasons: 'groupchat' (mod_muc: a room message for members with no joined
   * session), 'csi' (mod_csi: an urgent stanza for a session the client said
   * is inactive, XEP-0352; args->session is that session, on its loop). On
   * the raising module's loop; args->session is 0 unless the reason names a
   * session. Hooks return PASS so that every listener hears it. */
  PARLEY_EVENT_WAKE_UP = 23,
  /* ---- issue 16: personal eventing (events 25-26) ---- */
  /* Fold: an account's disco#items (XEP-0030 section 4.1, without 'node') is
   * being answered, to anyone: the account's PEP nodes are among its items
   * (XEP-0060 section 5.2, filtered by each node's access model). args->acc is
   * the whole reply, <iq type='result'/> with its <query/>: its 'from' is the
   * account's bare JID, its 'to' the requester; args->user and args->host name
   * the account; args->session is the requester's session (or 0). Hooks add
   * <item/> children to the <query/>. A hook whose items live elsewhere (on
   * another loop) takes a copy of acc, returns HANDLED and routes the copy
   * itself once it is complete: the later hooks do not run and mod_disco does
   * not answer. mod_disco runs it through run_fold (-2 from an older host). */
  PARLEY_EVENT_ACCOUNT_DISCO_ITEMS = 25,
  /* Fold: a c2s stream's <stream:features/> is being sent (at every stage:
   * before TLS, before and after authentication), on the stream's loop.
   * args->acc is an element whose children hooks may add: they are written
   * into the features (XEP-0115 section 6.3: the server's own <c/>, added by
   * mod_pep). args->session is the stream's session, args->host its domain.
   * Synchronous: a hook adds what it has now. */
  PARLEY_EVENT_STREAM_FEATURES = 26,
  /* ---- h-admin (issue 17): what modules know of an account, for XEP-0133 (events 27-28) ---- */
  /* Fold: a module serving service administration (mod_adhoc: get-user-roster,
   * get-user-lastlogin, user-stats) asks what the other modules know of an
   * account, without naming them. args->acc is
   *   <query xmlns='urn:parley:admin-user:0' user='LOCALPART' token='T' answers='0'/>
   * (args->user and args->host name the account; run_fold sets args->user from
   * the 'user' attribute). A module that keeps something about accounts adds 1
   * to 'answers' during its hook and returns PASS, so that every listener hears
   * it; it then raises PARLEY_EVENT_ADMIN_USER_ANSWER exactly once, now or
   * later, ON THE LOOP THAT RAN ITS HOOK (a storage or store completion comes
   * back there). The raiser reads 'answers' after run_fold to know how many
   * answers to wait for. On the raising module's loop. */
  PARLEY_EVENT_ADMIN_USER_QUERY = 27,
  /* Fold: one answer, raised with run_fold by the module that counted itself in:
   *   <answer xmlns='urn:parley:admin-user:0' token='T'>PAYLOAD</answer>
   * PAYLOAD: mod_roster's <query xmlns='jabber:iq:roster'> with the account's
   * items (RFC 6121 2.1); mod_last's <last xmlns='jabber:iq:last' stamp='UNIX
   * SECONDS'/> of the last logout (no stamp: none recorded); an empty answer
   * when the module failed to read (it logged why). The module that asked
   * matches the token; hooks must not change acc and return PASS. */
  PARLEY_EVENT_ADMIN_USER_ANSWER = 28,
  /* (issue 15) The server is shutting down gracefully (SIGTERM, server_stop):
   * run once on every worker loop for every served host (args->host), before
   * any stream is closed, so what a hook routes or sends now reaches clients
   * still connected (written before their <system-shutdown/>). A group chat
   * service tells its occupants the rooms go away (XEP-0045 status 332).
   * Synchronous; the result is ignored. */
  PARLEY_EVENT_SERVER_STOPPING = 29,
  /* ---- issue 11: XEP-0227 export and import (events 30-31) ---- */
  /* An account is being exported (parleyctl export): args->user and
   * args->host name it (prepared); args->session is NOT a session here but
   * the export request's handle, for the account_data_* entries. A hook adds
   * the account's data it owns as XEP-0227 children of <user/> (vcard-temp's
   * <vCard/>, a jabber:iq:roster <query/>, ...) with account_data_add, during
   * the call or later: a module whose store reads complete later calls
   * account_data_hold during the hook, account_data_add as they complete and
   * account_data_done once. Runs on a worker loop (the first). One account
   * at a time per parleyctl. Hooks return PASS so that every module
   * contributes. A request whose holds are not all done within 120 s fails. */
  PARLEY_EVENT_ACCOUNT_EXPORT = 30,
  /* An account is being imported: args->acc is the <user xmlns='urn:xmpp:pie:0'/>
   * element of the file (borrowed for the call: clone what you keep; hooks
   * must not change it), args->user and args->host name the account, created
   * already with its credentials; args->session is the request handle as for
   * ACCOUNT_EXPORT. A hook stores the children in its namespaces; if that
   * completes later it calls account_data_hold during the hook and
   * account_data_done when stored (with an error if not: the core then
   * removes the account again, and USER_REMOVED clears what was stored).
   * USER_REGISTERED for the account ran before it (and USER_REMOVED first
   * when an existing account is replaced), on the same loop; hooks return
   * PASS. */
  PARLEY_EVENT_ACCOUNT_IMPORT = 31,
  PARLEY_EVENT_COUNT_ /* not an event; new events are added before it and it grows */
} parley_event;

typedef struct parley_event_args {
  size_t size;               /* sizeof(parley_event_args) of the host */
  uint32_t event;            /* parley_event */
  parley_session_id session; /* the session concerned, or 0 */
  parley_element* stanza;    /* the stanza, or NULL */
  parley_element* acc;       /* fold events: the accumulator, else NULL */
  parley_str user;           /* local user concerned (localpart), may be empty */
  parley_str host;           /* served domain concerned */
  parley_str jid;            /* full JID of the session concerned, may be empty */
} parley_event_args;

/* Returns a parley_result value. The type is int, not the enum, so that the
 * host can check what an arbitrary module returns without undefined behaviour. */
typedef int (*parley_hook_fn)(void* state, const parley_event_args* args);

typedef struct parley_hook_decl {
  uint32_t event;   /* parley_event */
  int32_t priority; /* lower runs first (ejabberd's order); ties: load order */
  parley_hook_fn fn;
} parley_hook_decl;

/* IQ handlers, keyed by scope, type and the payload's namespace. */
typedef enum parley_iq_scope {
  PARLEY_IQ_SERVER = 1, /* to a served domain */
  PARLEY_IQ_ACCOUNT = 2, /* to a local user's bare JID (or no 'to': the sender's account) */
  /* 1.1: on a stream that has not authenticated yet (XEP-0077 registration).
   * request->from and request->to are empty, request->session is the stream;
   * answer with host->session_reply. Offered only where the stream may
   * authenticate (after STARTTLS when it is required) and, as PLAIN, only on
   * an encrypted stream unless the listener sets allow_plain_without_tls
   * (elsewhere the core answers policy-violation). */
  PARLEY_IQ_PREAUTH = 3
} parley_iq_scope;

#define PARLEY_IQ_GET 1u
#define PARLEY_IQ_SET 2u

typedef struct parley_iq_request {
  size_t size;
  const parley_element* iq; /* the whole <iq/>, 'from' stamped, 'to' set */
  parley_str from;          /* full JID of the requester */
  parley_str to;            /* the addressee (domain or bare JID) */
  parley_session_id session; /* the requester's session if local, else 0 */
} parley_iq_request;

/* Must answer with exactly one result or error, now (host->route /
 * host->bounce) or later (keep a clone of the iq). Return PARLEY_HANDLED, or
 * PARLEY_ERROR to have the core answer internal-server-error. */
typedef int (*parley_iq_fn)(void* state, const parley_iq_request* request);

typedef struct parley_iq_decl {
  uint32_t scope; /* parley_iq_scope */
  uint32_t types; /* PARLEY_IQ_GET | PARLEY_IQ_SET */
  const char* xmlns;
  parley_iq_fn fn;
} parley_iq_decl;

/* Declared options: the loader refuses unknown keys and wrong types at start,
 * naming the module and the option, before start() runs. */
typedef enum parley_option_type {
  PARLEY_OPT_STRING = 1,
  PARLEY_OPT_INT = 2,
  PARLEY_OPT_BOOL = 3,
  PARLEY_OPT_STRING_LIST = 4
} parley_option_type;

typedef struct parley_option_decl {
  const char* name;
  uint32_t type; /* parley_option_type */
  int required;  /* non-zero: missing is an error */
} parley_option_decl;

typedef void (*parley_timer_fn)(void* state, uint64_t timer_id, void* arg);

/* Storage values and result rows. */
typedef enum parley_value_type {
  PARLEY_VALUE_NULL = 0,
  PARLEY_VALUE_INT = 1,
  PARLEY_VALUE_TEXT = 2,
  PARLEY_VALUE_BLOB = 3
} parley_value_type;

typedef struct parley_value {
  uint32_t type; /* parley_value_type */
  int64_t integer;
  parley_str bytes; /* TEXT (UTF-8) or BLOB */
} parley_value;

typedef struct parley_rows parley_rows; /* a query's result, borrowed for the callback */

/* One bound session of a user, as host->user_sessions reports it. */
typedef void (*parley_session_fn)(void* arg, parley_session_id session, parley_str full_jid, int available,
                                  int priority);

/* Completion of an account operation (1.1), on the loop that asked:
 * condition.len == 0 on success, else an RFC 6120 stanza error condition. */
typedef void (*parley_account_fn)(void* arg, parley_str condition);

/* Completion of a tracked send (1.2), on the session's loop. written != 0:
 * every byte of the stanza was handed to the connection's socket (the kernel
 * has it: without stream management that is not proof the client read it);
 * 0: the connection ended first (the stanza may not have reached the client:
 * keep it, e.g. stored). Called exactly once per accepted send, in the order
 * of the sends, unless the module has been stopped meanwhile (then never, as
 * for storage completions) or the server is shutting down. */
typedef void (*parley_sent_fn)(void* state, void* arg, int written);

/* error.len > 0: the query failed (rows is then empty). */
typedef void (*parley_rows_fn)(void* state, void* arg, const parley_rows* rows, parley_str error);

/* ---- ABI 1.2 types ---- */

/* A stanza for a module service (register_route): addressed to the service's
 * domain or to any JID at it. Everything is borrowed for the call. */
typedef struct parley_route_request {
  size_t size;             /* sizeof(parley_route_request) of the host */
  parley_element* stanza;  /* 'from' stamped by the server, 'to' at the service */
  parley_str from;         /* the sender, prepared (full JID, bare JID or domain) */
  parley_str to;           /* the addressee, prepared */
  parley_str domain;       /* the service domain it matched */
} parley_route_request;
/* Returns PARLEY_HANDLED (the module took it and answers, if at all, through
 * route/bounce), PARLEY_PASS (the core answers an iq get/set or a message with
 * service-unavailable) or PARLEY_ERROR (internal-server-error). */
typedef int (*parley_route_fn)(void* state, const parley_route_request* request);
/* One module service, as host_routes reports it. */
typedef void (*parley_route_info_fn)(void* arg, parley_str domain, parley_str name);

/* Work posted to a loop (post, post_to_session): runs there as fn(state, arg). */
typedef void (*parley_task_fn)(void* state, void* arg);

/* The answer to an iq the module sent with send_iq: `reply` is the result or
 * error stanza (borrowed for the call), or NULL when no answer came within the
 * timeout. */
typedef void (*parley_iq_reply_fn)(void* state, void* arg, const parley_element* reply);

/* Completion of session_attach (1.2). attached != 0: `session` (the detached
 * session, same id as before) has the connection now; runs on its loop,
 * after the REATTACHED hooks and before anything from the connection is
 * processed or anything that waited is written. 0: not attached (no such
 * detached session of the same account, or the stream went away); runs on
 * the loop that asked, and `session` is the stream, which is unchanged --
 * except when the connection was lost while it moved to the session's loop:
 * then it runs there, and `session` names the stream, which is gone. */
typedef void (*parley_attach_fn)(void* state, void* arg, parley_session_id session, int attached);

/* Typed metrics (1.2), kept per worker loop and summed when read. */
typedef enum parley_metric_kind {
  PARLEY_METRIC_COUNTER = 1,  /* only grows: record(delta >= 0) */
  PARLEY_METRIC_GAUGE = 2,    /* goes up and down: record(+/- delta) */
  PARLEY_METRIC_HISTOGRAM = 3 /* record(observation); buckets 1, 2, 5, 10, 20, 50, ... 5e9, +inf */
} parley_metric_kind;

/* ---- the archive store (issue 11; check with PARLEY_HOST_HAS(host, archive_append)) ----
 * Per-owner append-only logs kept by the host (SQLite today, in a file of its own; the
 * interface names no backend). Each module instance has its own archives: they are keyed
 * by the module's name and host, then by the owner (a bare JID). */

/* One entry, borrowed for the completion call. */
typedef struct parley_archive_entry {
  uint64_t id;          /* unique and increasing within the archive (archive_append made it) */
  int64_t timestamp_us; /* when it was appended: microseconds since the epoch, UTC */
  parley_str with;      /* the other party's JID as appended (full or bare) */
  parley_str payload;   /* the bytes appended */
} parley_archive_entry;

/* A query (borrowed for the call to archive_query; the host copies it). The result set is
 * the entries of `owner` matching every filter; the page is up to `max` of them, counted
 * from after `page_after` or, with from_end, back from before `page_before` (0: from the
 * very end: XEP-0059's empty <before/>). An id given in after_id, before_id, ids,
 * page_after or page_before that is not in the archive is the error "item-not-found". */
typedef struct parley_archive_query {
  size_t size;            /* sizeof(parley_archive_query) of the module */
  parley_str owner;       /* the archive: a bare JID */
  parley_str with;        /* empty: any; a bare JID also matches its full JIDs; a full JID only itself */
  int64_t start_us;       /* inclusive; INT64_MIN: no bound */
  int64_t end_us;         /* inclusive; INT64_MAX: no bound */
  uint64_t after_id;      /* 0: none; else ids above it only */
  uint64_t before_id;     /* 0: none; else ids below it only */
  const uint64_t* ids;    /* non-NULL: only these ids (one not in the archive: item-not-found) */
  size_t id_count;
  uint64_t page_after;
  uint64_t page_before;
  int from_end;
  uint32_t max;           /* 0: no entries, only the count */
} parley_archive_query;

/* A page (or, for append and remove, a summary), borrowed for the completion call. */
typedef struct parley_archive_page {
  size_t size;                          /* sizeof(parley_archive_page) of the host */
  const parley_archive_entry* entries;  /* ascending ids */
  size_t count;
  uint64_t total;  /* query: entries in the result set; remove: entries removed */
  uint64_t index;  /* query: entries of the set before the page's first */
  int complete;    /* query: the page reaches the end of the set in its direction */
} parley_archive_page;

/* Completion of an archive operation, on the loop that asked: error.len == 0 on success
 * (page set), else an RFC 6120 stanza error condition ("item-not-found",
 * "internal-server-error", "resource-constraint") and page NULL. */
typedef void (*parley_archive_fn)(void* state, void* arg, const parley_archive_page* page, parley_str error);

/* ---- issue 11: the keyval store (check with PARLEY_HOST_HAS(host, keyval_remove_user)) ----
 * Per user, per key, a value of bytes (a serialized element is bytes to the store), kept
 * by the host on the server's storage backend (`storage: backend`: SQLite or
 * PostgreSQL). Each module instance has its own keys: they are kept by the module's name
 * and host, then by the user (any string the module picks: a bare JID, a localpart). */

/* One item of a put (borrowed for the call; the host copies it). */
typedef struct parley_keyval_item {
  parley_str key;
  parley_str value;
} parley_keyval_item;

/* keyval_put's flags. */
#define PARLEY_KEYVAL_IF_ABSENT 1u /* a key that has a value keeps it (the item is skipped,
                                    * not an error): moving a module's old rows in */

/* The outcome of a keyval operation, borrowed for the completion call. */
typedef struct parley_keyval_result {
  size_t size;      /* sizeof(parley_keyval_result) of the host */
  int found;        /* get: 1 if the key has a value (then in `value`) */
  parley_str value; /* get: the value */
  uint64_t count;   /* remove, remove_user: keys removed */
} parley_keyval_result;

/* Completion of a keyval operation, on the loop that asked: error.len == 0 on success
 * (result set), else an RFC 6120 stanza error condition ("policy-violation": over the
 * put's quota; "resource-constraint": the store's queue is full; "internal-server-error":
 * the database failed or is unreachable) and result NULL. */
typedef void (*parley_keyval_fn)(void* state, void* arg, const parley_keyval_result* result, parley_str error);

/* ---- issue 11: the map store (check with PARLEY_HOST_HAS(host, map_clear)) ----
 * Per user, keyed items (a key and a value of bytes each) with a version: a blocklist,
 * a roster, an offline queue. The version goes up with every change, atomically with it
 * (XEP-0237 roster versioning can build on it); items come back in the order their keys
 * were first put (arrival order), a replaced item keeping its place. Kept by the host
 * beside the keyval store (the same thread: a module's keyval and map operations keep
 * their order with each other), per module instance, then per user. */

/* The outcome of a map operation, borrowed for the completion call. */
typedef struct parley_map_result {
  size_t size;                     /* sizeof(parley_map_result) of the host */
  uint64_t version;                /* the map's version (after the change); 0: never changed */
  const parley_keyval_item* items; /* map_get: the items, in the order first put */
  size_t count;
  uint64_t changed;                /* map_put, map_remove, map_clear: items put or removed */
} parley_map_result;

/* Completion of a map operation, on the loop that asked: error.len == 0 on success
 * (result set), else a condition as for the keyval store ("policy-violation": over a
 * put's max_items) and result NULL. */
typedef void (*parley_map_fn)(void* state, void* arg, const parley_map_result* result, parley_str error);

/* ---- issue 13: HTTP routes (check with PARLEY_HOST_HAS(host, http_data_dir)) ----
 * A module serves paths of the server's HTTP listeners (`module: http`). An exchange is
 * one request and its answer, on the loop of the connection that carries it; every call
 * for it (the route's callbacks, and the module's http_* calls, which must come from
 * that loop: a callback, or a task posted there with post()) names it by its id. */

/* A request's head, borrowed for the call. */
typedef struct parley_http_request {
  size_t size;              /* sizeof(parley_http_request) of the host */
  uint64_t exchange;        /* this exchange's id (never reused) */
  parley_str method;        /* "GET", "PUT", ... */
  parley_str target;        /* as sent: path and query */
  parley_str path;          /* without the query, not decoded */
  parley_str query;         /* after '?', may be empty */
  parley_str host;          /* the Host header, may be empty */
  parley_str peer_ip;
  int64_t content_length;   /* -1: no Content-Length (chunked, or no body) */
  uint32_t port;            /* the listener's port */
  int secure;               /* https */
  uint32_t loop;            /* the loop that owns the exchange (for post()) */
} parley_http_request;

/* A route, borrowed for the call to http_route (the host copies it). */
typedef struct parley_http_route {
  size_t size;              /* sizeof(parley_http_route) of the module */
  parley_str methods;       /* comma-separated ("GET,HEAD,PUT,OPTIONS"); others get 405 */
  parley_str prefix;        /* a path prefix starting with '/'; the longest matching route wins */
  uint32_t port;            /* 0: every http listener; else the listener on that port only */
  uint64_t max_body_bytes;  /* a request body past it: 413 (by Content-Length before any byte) */
  /* The head of a request: answer now or later (http_respond...), or take the body
   * first. Return PARLEY_HANDLED; PARLEY_ERROR: the host answers 500. */
  int (*on_request)(void* state, void* arg, const parley_http_request* request);
  /* A piece of the body, in order; last != 0 once it is complete (chunk may be empty).
   * May be NULL: the body is read and dropped. */
  void (*on_body)(void* state, void* arg, uint64_t exchange, parley_str chunk, int last);
  /* The bytes written with http_write left the connection's backlog (below the low
   * mark): write more. May be NULL. */
  void (*on_writable)(void* state, void* arg, uint64_t exchange);
  /* The exchange ended before the module's http_end: the connection went, the body
   * broke the route's limit or was malformed (the host answered 413/400 if nothing was
   * written yet). Called once, last; never after http_end; the id is dead after it.
   * May be NULL. */
  void (*on_closed)(void* state, void* arg, uint64_t exchange);
  void* arg;
  parley_str host;          /* the Host header's name (no port, any case) served; empty: any */
} parley_http_route;

/* ---- issue 14: the HTTP client (check with PARLEY_HOST_HAS(host, http_request)) ----
 * A module asks the core for an HTTP request (a webhook, an API call); the core
 * runs it on the calling worker loop's HTTP client (libcurl's multi interface
 * driven by the loop: nothing blocks) and completes it there. */

/* A request, borrowed for the call to http_request (the host copies it). */
typedef struct parley_http_client_request {
  size_t size;         /* sizeof(parley_http_client_request) of the module */
  parley_str method;   /* an upper-case token: "GET", "POST", "PUT", "DELETE", "HEAD", ... */
  parley_str url;      /* http:// or https:// (redirects are not followed; https is verified) */
  parley_str headers;  /* "Name: value\r\n" lines, may be empty */
  parley_str body;     /* sent as is (POST, PUT, ...), may be empty */
  uint64_t timeout_ms; /* the whole exchange, connect to last byte; 0: 30 s; capped at 10 minutes */
} parley_http_client_request;

/* The outcome, borrowed for the completion call. */
typedef struct parley_http_client_response {
  size_t size;      /* sizeof(parley_http_client_response) of the host */
  int status;       /* the HTTP status (any: 200, 404, 500, ...); 0 when no response came */
  parley_str body;  /* the response body (at most limits.http_client_max_response_bytes) */
  parley_str error; /* empty when a response came; else "timeout", "connect", "too-large",
                     * "cancelled" or the transport's description */
  int stopped;      /* 1: cancelled because the module stopped: `state` is NULL and the
                     * completion must only free `arg` */
} parley_http_client_response;

typedef void (*parley_http_client_fn)(void* state, void* arg, const parley_http_client_response* response);

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

  /* Storage: the module's own tables, in the server's database (SQLite today).
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
   * Returns how many; 0 for a malformed JID or a user with none. */
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
} parley_host_api;

#define PARLEY_HOOKS_ALWAYS 0
#define PARLEY_HOOKS_OFF 1
#define PARLEY_HOOKS_PER_SESSION 2

#define PARLEY_SESSION_BOUND 1
#define PARLEY_SESSION_DETACHED 2
#define PARLEY_SESSION_UNBOUND 3

#define PARLEY_HOST_HAS(host, member) \
  ((host)->size >= offsetof(parley_host_api, member) + sizeof(((parley_host_api*)0)->member))

typedef struct parley_module_def {
  size_t size; /* sizeof(parley_module_def) the module was built with */
  uint32_t abi_major;
  uint32_t abi_minor;
  const char* name;    /* "mod_ping"; must match the name in the config */
  const char* version; /* the module's own version, for parleyctl module list */
  const char* const* depends; /* NULL-terminated module names, or NULL */

  const parley_option_decl* options;
  size_t option_count;

  /* Start for one host: return 0 and set *state, or non-zero with a reason in
   * `error` (the host logs it with the module's name and refuses to start). */
  int (*start)(parley_module* m, const parley_host_api* host, void** state, parley_sink error);
  void (*stop)(void* state);
  /* Optional (NULL): hot reload carries state as bytes from the old code to
   * the new. Both return 0 on success. */
  int (*save_state)(void* state, parley_sink out);
  int (*restore_state)(void* state, parley_str bytes);

  const parley_hook_decl* hooks;
  size_t hook_count;
  const parley_iq_decl* iq_handlers;
  size_t iq_handler_count;
  /* NULL-terminated disco#info features of the server this module adds. */
  const char* const* disco_features;

  /* The module's schema as migration steps (SQL, each run once, in order, in
   * a transaction, before start). The host records how many have run. */
  const char* const* schema;
  size_t schema_count;

  /* ---- ABI 1.1 ---- */
  /* NULL-terminated stream features this module offers before authentication,
   * as XML ("<register xmlns='http://jabber.org/features/iq-register'/>"),
   * shown next to the SASL mechanisms. */
  const char* const* preauth_features;
  /* NULL-terminated stream features offered after authentication, next to
   * resource binding ("<ver xmlns='urn:xmpp:features:rosterver'/>"). */
  const char* const* session_features;

  /* ---- ABI 1.2 ---- */
  /* Optional (NULL; both or neither): session slots across a hot reload.
   * With the module's entry points paused and before save_state, on each
   * session's loop, the old code's save_session_data writes each of its slots
   * (`data` is what it set with session_set_data) to `out`; the slot is then
   * freed with its free_fn as in 1.1. After restore_state, on each session's
   * loop and before the new code sees any event there, the new code's
   * restore_session_data gets those bytes for each session still there and
   * sets its slot again with session_set_data. Both return 0 on success; a
   * failed save or restore loses that slot only (logged). If the new code
   * does not start or refuses the saved state, the old code goes on without
   * the slots it saved. */
  int (*save_session_data)(void* state, parley_session_id session, void* data, parley_sink out);
  int (*restore_session_data)(void* state, parley_session_id session, parley_str bytes);
} parley_module_def;

typedef const parley_module_def* (*parley_module_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* PARLEY_MODULE_H */
