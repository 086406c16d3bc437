/* parley/abi/base.h - part of the module ABI (include parley/module.h, which
 * includes every part; its header comment has the rules: versioning, ownership,
 * threads). The ABI's basic types: strings, sinks, opaque handles, results and log levels.
 */
#ifndef PARLEY_ABI_BASE_H
#define PARLEY_ABI_BASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
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
/* (ABI 1.7) The bytes a stanza is written as, held by reference: module.h stanza_out_bytes. */
typedef struct parley_out_bytes parley_out_bytes;

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

#ifdef __cplusplus
}
#endif

#endif /* PARLEY_ABI_BASE_H */
