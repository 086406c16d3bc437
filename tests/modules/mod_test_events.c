/* mod_test_events: a module in plain C, against parley/module.h alone. It
 * counts the events it sees (parleyctl status shows the counters) and takes
 * offline messages whose body is "keep" (PARLEY_HANDLED), so the integration
 * tests can check when each hook runs and what its result does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/module.h"

static const parley_host_api* host_api;
static parley_module* instance; /* one host in the tests */

static parley_str str(const char* s) {
  parley_str out = {s, strlen(s)};
  return out;
}

static int start(parley_module* m, const parley_host_api* host, void** state, parley_sink error) {
  (void)error;
  host_api = host;
  instance = m;
  *state = m;
  return 0;
}

static void stop(void* state) { (void)state; }

static int count(void* state, const char* name) {
  host_api->counter_add((parley_module*)state, str(name), 1);
  return PARLEY_PASS;
}

static int on_opened(void* s, const parley_event_args* a) { (void)a; return count(s, "session_opened"); }
/* Per-session data: a stanza counter, freed by the core. */
static void free_slot(void* data) {
  free(data);
  host_api->counter_add(instance, str("slot_freed"), 1);
}

static int on_bound(void* s, const parley_event_args* a) {
  long* stanzas = (long*)calloc(1, sizeof(long));
  if (stanzas != NULL && !host_api->session_set_data((parley_module*)s, a->session, stanzas, free_slot)) free(stanzas);
  return count(s, "session_bound");
}
static int on_closed(void* s, const parley_event_args* a) { (void)a; return count(s, "session_closed"); }
static int on_registered(void* s, const parley_event_args* a) {
  (void)a;
  return count(s, "user_registered");
}
static int on_removed(void* s, const parley_event_args* a) { (void)a; return count(s, "user_removed"); }
static int on_broadcast(void* s, const parley_event_args* a) { (void)a; return count(s, "presence_broadcast"); }
static int on_stanza_in(void* s, const parley_event_args* a) {
  long* stanzas = (long*)host_api->session_get_data((parley_module*)s, a->session);
  if (stanzas != NULL && ++*stanzas == 3) count(s, "third_stanza_of_a_session");
  return count(s, "stanza_in");
}

struct text_buffer {
  char data[32];
  size_t len;
};

static void append_text(void* ctx, const char* data, size_t len) {
  struct text_buffer* buffer = (struct text_buffer*)ctx;
  size_t room = sizeof(buffer->data) - 1 - buffer->len;
  if (len > room) len = room;
  memcpy(buffer->data + buffer->len, data, len);
  buffer->len += len;
  buffer->data[buffer->len] = '\0';
}

/* Takes (pretends to store) offline messages whose body is "keep". */
static int on_offline(void* s, const parley_event_args* a) {
  count(s, "offline_message");
  parley_element* body = host_api->element_find_child(a->stanza, str("body"), str(""));
  if (body == NULL) return PARLEY_PASS;
  struct text_buffer text = {{0}, 0};
  parley_sink sink = {&text, append_text};
  host_api->element_text(body, sink);
  return strcmp(text.data, "keep") == 0 ? PARLEY_HANDLED : PARLEY_PASS;
}

/* Fold: adds an identity and a feature to the server's disco#info. */
static int on_disco_info(void* s, const parley_event_args* a) {
  (void)s;
  const char* ns = "http://jabber.org/protocol/disco#info";
  parley_element* identity = host_api->element_new(str("identity"), str(ns));
  host_api->element_set_attr(identity, str("category"), str("automation"));
  host_api->element_set_attr(identity, str("type"), str("parley-test"));
  host_api->element_add_child(a->acc, identity);
  parley_element* feature = host_api->element_new(str("feature"), str(ns));
  host_api->element_set_attr(feature, str("var"), str("urn:parley:test:fold"));
  host_api->element_add_child(a->acc, feature);
  return PARLEY_PASS;
}

/* iq get urn:parley:test:sessions: the requester's own sessions, as the host
 * lists them: <sessions><session jid='...' available='0|1' priority='N'/>... */
struct session_list {
  parley_element* out;
};

static void add_session(void* arg, parley_session_id id, parley_str full_jid, int available, int priority) {
  (void)id;
  struct session_list* list = (struct session_list*)arg;
  char number[16];
  parley_element* session = host_api->element_new(str("session"), str("urn:parley:test:sessions"));
  host_api->element_set_attr(session, str("jid"), full_jid);
  host_api->element_set_attr(session, str("available"), str(available ? "1" : "0"));
  int len = snprintf(number, sizeof number, "%d", priority);
  host_api->element_set_attr(session, str("priority"), (parley_str){number, (size_t)len});
  host_api->element_add_child(list->out, session);
}

static int on_sessions(void* s, const parley_iq_request* request) {
  parley_module* m = (parley_module*)s;
  parley_element* reply = host_api->element_new(str("iq"), str("jabber:client"));
  parley_str id = {0, 0};
  host_api->element_attr(request->iq, str("id"), &id);
  host_api->element_set_attr(reply, str("type"), str("result"));
  host_api->element_set_attr(reply, str("id"), id);
  host_api->element_set_attr(reply, str("from"), request->to);
  host_api->element_set_attr(reply, str("to"), request->from);
  struct session_list list = {host_api->element_add_child(
      reply, host_api->element_new(str("sessions"), str("urn:parley:test:sessions")))};
  /* The JID asked about (<sessions jid='...'/>), else the requester's bare JID: its full
   * JID up to the '/'. The count alone (no callback) goes on the answer too. */
  size_t bare = 0;
  while (bare < request->from.len && request->from.ptr[bare] != '/') ++bare;
  parley_str who = {request->from.ptr, bare};
  /* The entry takes a mutable element (it also serves finding one to change); this one is only read. */
  parley_element* query =
      host_api->element_find_child((parley_element*)request->iq, str("sessions"), str("urn:parley:test:sessions"));
  parley_str asked = {0, 0};
  if (query != NULL && host_api->element_attr(query, str("jid"), &asked)) who = asked;
  char count[32];
  int len = snprintf(count, sizeof count, "%zu", host_api->user_sessions(m, who, NULL, NULL));
  host_api->element_set_attr(list.out, str("count"), (parley_str){count, (size_t)len});
  host_api->user_sessions(m, who, add_session, &list);
  host_api->route(m, reply);
  return PARLEY_HANDLED;
}

static const parley_iq_decl iq_handlers[] = {
    {PARLEY_IQ_SERVER, PARLEY_IQ_GET, "urn:parley:test:sessions", on_sessions},
};

static const parley_hook_decl hooks[] = {
    {PARLEY_EVENT_SESSION_OPENED, 50, on_opened},     {PARLEY_EVENT_SESSION_BOUND, 50, on_bound},
    {PARLEY_EVENT_SESSION_CLOSED, 50, on_closed},     {PARLEY_EVENT_USER_REGISTERED, 50, on_registered},
    {PARLEY_EVENT_USER_REMOVED, 50, on_removed},      {PARLEY_EVENT_PRESENCE_BROADCAST, 50, on_broadcast},
    {PARLEY_EVENT_STANZA_IN, 50, on_stanza_in},       {PARLEY_EVENT_OFFLINE_MESSAGE, 50, on_offline},
    {PARLEY_EVENT_DISCO_INFO, 50, on_disco_info},
};

static const parley_module_def def = {
    .size = sizeof(parley_module_def),
    .abi_major = PARLEY_ABI_MAJOR,
    .abi_minor = PARLEY_ABI_MINOR,
    .name = "mod_test_events",
    .version = "1.0.0",
    .start = start,
    .stop = stop,
    .hooks = hooks,
    .hook_count = sizeof(hooks) / sizeof(hooks[0]),
    .iq_handlers = iq_handlers,
    .iq_handler_count = 1,
};

PARLEY_EXPORT const parley_module_def* parley_module_entry(void) { return &def; }
