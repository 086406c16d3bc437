/* mod_test_old_minor: a module built against an older minor of the ABI, whose
 * parley_module_def ended at iq_handler_count (before disco_features and the
 * schema fields of today's). It declares that smaller size and abi_minor 0; the
 * loader must accept it and treat the missing trailing fields as absent. Answers iq get
 * urn:parley:test:old with <old xmlns='urn:parley:test:old'/>. Plain C, against
 * a local copy of the struct, as an old module binary would have been. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "parley/module.h"

typedef struct old_module_def {
  size_t size;
  uint32_t abi_major;
  uint32_t abi_minor;
  const char* name;
  const char* version;
  const char* const* depends;
  const parley_option_decl* options;
  size_t option_count;
  int (*start)(parley_module* m, const parley_host_api* host, void** state, parley_sink error);
  void (*stop)(void* state);
  int (*save_state)(void* state, parley_sink out);
  int (*restore_state)(void* state, parley_str bytes);
  const parley_hook_decl* hooks;
  size_t hook_count;
  const parley_iq_decl* iq_handlers;
  size_t iq_handler_count;
  /* disco_features, schema and schema_count came later */
} old_module_def;

_Static_assert(offsetof(old_module_def, iq_handler_count) == offsetof(parley_module_def, iq_handler_count),
               "the old layout is a prefix of the current one");
_Static_assert(sizeof(old_module_def) < sizeof(parley_module_def), "the old def is smaller");

#define NS_OLD "urn:parley:test:old"

typedef struct state {
  parley_module* m;
  const parley_host_api* host;
} state;

static parley_str str(const char* s, size_t len) {
  parley_str r = {s, len};
  return r;
}
#define LIT(s) str(s, sizeof(s) - 1)

static int start(parley_module* m, const parley_host_api* host, void** out, parley_sink error) {
  state* s = malloc(sizeof *s);
  if (!s) {
    error.append(error.ctx, "out of memory", 13);
    return 1;
  }
  s->m = m;
  s->host = host;
  *out = s;
  return 0;
}

static void stop(void* s) { free(s); }

static void copy_attr(const parley_host_api* h, const parley_element* from, const char* name, parley_element* to,
                      const char* as) {
  parley_str value;
  if (h->element_attr(from, str(name, strlen(name)), &value) == 1) h->element_set_attr(to, str(as, strlen(as)), value);
}

static int on_old(void* st, const parley_iq_request* request) {
  const state* s = st;
  const parley_host_api* h = s->host;
  parley_element* reply = h->element_new(LIT("iq"), h->element_xmlns(request->iq));
  if (!reply) return PARLEY_ERROR;
  h->element_set_attr(reply, LIT("type"), LIT("result"));
  copy_attr(h, request->iq, "id", reply, "id");
  copy_attr(h, request->iq, "to", reply, "from");
  copy_attr(h, request->iq, "from", reply, "to");
  parley_element* old = h->element_new(LIT("old"), LIT(NS_OLD));
  if (!old) {
    h->element_free(reply);
    return PARLEY_ERROR;
  }
  h->element_add_child(reply, old);
  h->route(s->m, reply);
  return PARLEY_HANDLED;
}

static const parley_iq_decl iqs[] = {{PARLEY_IQ_SERVER, PARLEY_IQ_GET, NS_OLD, on_old}};

static const old_module_def def = {
    .size = sizeof(old_module_def),
    .abi_major = PARLEY_ABI_MAJOR,
    .abi_minor = 0,
    .name = "mod_test_old_minor",
    .version = "0.9.0",
    .start = start,
    .stop = stop,
    .iq_handlers = iqs,
    .iq_handler_count = 1,
};

PARLEY_EXPORT const parley_module_def* parley_module_entry(void) { return (const parley_module_def*)&def; }
