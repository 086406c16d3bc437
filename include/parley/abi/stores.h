/* parley/abi/stores.h - part of the module ABI (include parley/module.h, which
 * includes every part; its header comment has the rules: versioning, ownership,
 * threads). The typed stores' types (issue 11): the archive, keyval and map stores.
 */
#ifndef PARLEY_ABI_STORES_H
#define PARLEY_ABI_STORES_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- ABI 1.7 (issue 11): SQL per backend ---- */
/* The backends a module's own tables (storage_query) can be on: host->storage_backend. */
#define PARLEY_BACKEND_SQLITE 1
#define PARLEY_BACKEND_POSTGRESQL 2

/* A module's schema steps for one backend (parley_module_def.backend_schemas): `count`
 * SQL texts in that backend's dialect, static (the def's lifetime). */
typedef struct parley_backend_schema {
  uint32_t backend; /* PARLEY_BACKEND_POSTGRESQL */
  const char* const* steps;
  size_t count;
} parley_backend_schema;

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
  /* ---- 1.10 (a host reads it only from a struct this large) ---- */
  uint64_t min_id;        /* 0: none; else only ids at or above it, without item-not-found: a
                           * retention bound (an id is never below its entry's time in µs, so
                           * the oldest time kept hides what the removal of old entries has not
                           * reached yet); the whole archive's size stays kept by the store */
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

#ifdef __cplusplus
}
#endif

#endif /* PARLEY_ABI_STORES_H */
