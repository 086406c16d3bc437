// The host side of the module ABI's session entries (session_set_data ... session_state):
// a module acts on a session of the calling loop by its id. host_api.cpp puts them in the
// table; their ownership and thread rules are in include/parley/module.h.
#pragma once

#include <cstdint>

#include "parley/module.h"

namespace parley::host_sessions {

int session_set_data(parley_module* m, parley_session_id session, void* data, void (*free_fn)(void*));
void* session_get_data(parley_module* m, parley_session_id session);
int session_hold(parley_module* m, parley_session_id session);
int session_release(parley_module* m, parley_session_id session);
int session_reply(parley_module* m, parley_session_id session, parley_element* stanza);
int session_peer_address(parley_module* m, parley_session_id session, parley_sink out);
int session_send_tracked(parley_module* m, parley_session_id session, parley_element* stanza, parley_sent_fn done,
                         void* arg);
int session_write(parley_module* m, parley_session_id session, const parley_element* element);
int session_send_after(parley_module* m, parley_session_id session, parley_element* stanza);
int session_close(parley_module* m, parley_session_id session, parley_str condition);
int session_detach(parley_module* m, parley_session_id session, parley_str condition);
uint32_t session_stanzas_in(parley_module* m, parley_session_id session);
int session_attach(parley_module* m, parley_session_id detached, parley_session_id stream, parley_attach_fn done,
                   void* arg);
int session_cut(parley_module* m, parley_session_id session);
int session_filter_out(parley_module* m, parley_session_id session, int on);
int session_state(parley_module* m, parley_session_id session);

}  // namespace parley::host_sessions
