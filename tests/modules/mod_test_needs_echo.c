/* mod_test_needs_echo: declares a dependency on mod_test_echo and does nothing
 * else; the loader must refuse it without mod_test_echo, start it after
 * mod_test_echo otherwise, and refuse to unload mod_test_echo under it. */
#include <stddef.h>

#include "parley/module.h"

static int start(parley_module* m, const parley_host_api* host, void** state, parley_sink error) {
  (void)m;
  (void)host;
  (void)error;
  *state = NULL;
  return 0;
}

static const char* const depends[] = {"mod_test_echo", NULL};

static const parley_module_def def = {
    .size = sizeof(parley_module_def),
    .abi_major = PARLEY_ABI_MAJOR,
    .abi_minor = PARLEY_ABI_MINOR,
    .name = "mod_test_needs_echo",
    .version = "1.0.0",
    .depends = depends,
    .start = start,
};

PARLEY_EXPORT const parley_module_def* parley_module_entry(void) { return &def; }
