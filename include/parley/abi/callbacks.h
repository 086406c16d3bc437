/* parley/abi/callbacks.h - part of the module ABI (include parley/module.h, which
 * includes every part; its header comment has the rules: versioning, ownership,
 * threads). What a module declares (hooks, iq handlers, options) and the callbacks the host
 * calls it back through (timers, rows, sessions, routes, tasks, iq replies, metrics).
 */
#ifndef PARLEY_ABI_CALLBACKS_H
#define PARLEY_ABI_CALLBACKS_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif

#endif /* PARLEY_ABI_CALLBACKS_H */
