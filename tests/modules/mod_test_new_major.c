/* mod_test_new_major: built for the next ABI major. The loader must refuse it
 * before calling anything in it, naming the module and both versions. Plain C,
 * because the C++ wrapper always declares the current major. */
#include "parley/module.h"

static int start(parley_module* m, const parley_host_api* host, void** state, parley_sink error) {
  (void)m;
  (void)host;
  (void)error;
  *state = 0;
  return 0;
}

static void stop(void* state) { (void)state; }

static const parley_module_def def = {
    .size = sizeof(parley_module_def),
    .abi_major = PARLEY_ABI_MAJOR + 1,
    .abi_minor = 0,
    .name = "mod_test_new_major",
    .version = "1.0.0",
    .start = start,
    .stop = stop,
};

PARLEY_EXPORT const parley_module_def* parley_module_entry(void) { return &def; }
