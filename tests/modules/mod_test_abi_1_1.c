/* mod_test_abi_1_1: a module built against the ABI 1.1 header (a frozen copy
 * in tests/modules/abi_1_1/), as a binary built before 1.2 was. The host must
 * load it unchanged and serve its 1.0 and 1.1 entries. Answers iq get
 * urn:parley:test:abi11 with <abi11 xmlns='urn:parley:test:abi11' minor='1'>IP</abi11>,
 * IP being the requester's address (session_peer_address, a 1.1 entry). */
#include <stdlib.h>
#include <string.h>

#include "parley/module.h"

#if PARLEY_ABI_MINOR != 1
#error "mod_test_abi_1_1 must be built against the frozen 1.1 header"
#endif

#define NS "urn:parley:test:abi11"

typedef struct state {
  parley_module* m;
  const parley_host_api* host;
} state;

typedef struct text {
  char buf[128];
  size_t len;
} text;

static parley_str str(const char* s, size_t len) {
  parley_str r = {s, len};
  return r;
}
#define LIT(s) str(s, sizeof(s) - 1)

static void text_append(void* ctx, const char* data, size_t len) {
  text* t = ctx;
  if (t->len + len > sizeof t->buf) len = sizeof t->buf - t->len;
  memcpy(t->buf + t->len, data, len);
  t->len += len;
}

static int start(parley_module* m, const parley_host_api* host, void** out, parley_sink error) {
  if (!PARLEY_HOST_HAS(host, offer_stream_features)) {
    error.append(error.ctx, "host without ABI 1.1", 20);
    return 1;
  }
  state* s = malloc(sizeof *s);
  if (!s) return 1;
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

static int on_abi11(void* st, const parley_iq_request* request) {
  const state* s = st;
  const parley_host_api* h = s->host;
  parley_element* reply = h->element_new(LIT("iq"), h->element_xmlns(request->iq));
  h->element_set_attr(reply, LIT("type"), LIT("result"));
  copy_attr(h, request->iq, "id", reply, "id");
  copy_attr(h, request->iq, "to", reply, "from");
  copy_attr(h, request->iq, "from", reply, "to");
  parley_element* payload = h->element_new(LIT("abi11"), LIT(NS));
  h->element_set_attr(payload, LIT("minor"), LIT("1"));
  text ip = {{0}, 0};
  parley_sink sink = {&ip, text_append};
  if (h->session_peer_address(s->m, request->session, sink) == 1) h->element_add_text(payload, str(ip.buf, ip.len));
  h->element_add_child(reply, payload);
  h->route(s->m, reply);
  return PARLEY_HANDLED;
}

static const parley_iq_decl iqs[] = {{PARLEY_IQ_SERVER, PARLEY_IQ_GET, NS, on_abi11}};

static const parley_module_def def = {
    .size = sizeof(parley_module_def),
    .abi_major = PARLEY_ABI_MAJOR,
    .abi_minor = PARLEY_ABI_MINOR,
    .name = "mod_test_abi_1_1",
    .version = "1.1.0",
    .start = start,
    .stop = stop,
    .iq_handlers = iqs,
    .iq_handler_count = 1,
};

PARLEY_EXPORT const parley_module_def* parley_module_entry(void) { return &def; }
