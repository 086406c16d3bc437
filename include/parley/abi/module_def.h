/* parley/abi/module_def.h - part of the module ABI (include parley/module.h, which
 * includes every part; its header comment has the rules: versioning, ownership,
 * threads). What a module is: the definition its entry point returns (name, version,
 * options, start and stop, hooks, iq handlers, schema), grown at the end as the host
 * table is.
 */
#ifndef PARLEY_ABI_MODULE_DEF_H
#define PARLEY_ABI_MODULE_DEF_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "callbacks.h"
#include "stores.h"

#ifdef __cplusplus
extern "C" {
#endif

struct parley_host_api; /* parley/module.h */

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
  int (*start)(parley_module* m, const struct parley_host_api* host, void** state, parley_sink error);
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

  /* ---- ABI 1.7 (issue 11): SQL per backend ---- */
  /* The module's schema steps for backends other than SQLite (whose steps are `schema`
   * above, as before), one entry per backend (PARLEY_BACKEND_POSTGRESQL), each entry's
   * steps in that backend's dialect and versioned on their own (run once each, in order,
   * in one transaction, before start; PostgreSQL: in the module's schema, under the
   * migration lock, recorded in parley_schema as component "module:NAME"). Declaring
   * PostgreSQL steps puts the module's tables on PostgreSQL when the server runs that
   * backend (host->storage_backend); a module without them keeps its tables in the SQLite
   * file whatever the backend. An entry for PARLEY_BACKEND_SQLITE, an unknown backend or
   * a backend given twice is refused at load. NULL/0: none (as for an older minor). */
  const parley_backend_schema* backend_schemas;
  size_t backend_schema_count;
} parley_module_def;

typedef const parley_module_def* (*parley_module_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* PARLEY_ABI_MODULE_DEF_H */
