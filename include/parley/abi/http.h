/* parley/abi/http.h - part of the module ABI (include parley/module.h, which
 * includes every part; its header comment has the rules: versioning, ownership,
 * threads). HTTP types: the routes a module serves (issue 13) and the HTTP client (issue 14).
 */
#ifndef PARLEY_ABI_HTTP_H
#define PARLEY_ABI_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif

#endif /* PARLEY_ABI_HTTP_H */
