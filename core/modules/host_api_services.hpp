// The host side of the ABI 1.2 entries for module services, loops and iqs
// sent by modules (register_route, host_routes, loop_count, current_loop,
// post, post_to_session, send_iq). host_api.cpp puts them in the table.
#pragma once

#include "parley/module.h"

namespace parley::host12 {

int register_route(parley_module* m, parley_str domain, parley_str name, parley_route_fn fn);
size_t host_routes(parley_module* m, parley_route_info_fn each, void* arg);
uint32_t loop_count(parley_module* m);
int32_t current_loop(parley_module* m);
int post(parley_module* m, uint32_t loop, parley_task_fn fn, void* arg);
int post_to_session(parley_module* m, parley_session_id session, parley_task_fn fn, void* arg);
int send_iq(parley_module* m, parley_element* iq, uint64_t timeout_ms, parley_iq_reply_fn done, void* arg);
uint32_t metric_register(parley_module* m, parley_str name, uint32_t kind, parley_str help);
void metric_record(parley_module* m, uint32_t metric, int64_t value);

}  // namespace parley::host12
