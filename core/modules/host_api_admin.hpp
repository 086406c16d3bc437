// The host side of the service administration entries of the module ABI (issue 17:
// is_admin, host_sessions, account_count, server_stop), for a module serving XEP-0133.
// host_api.cpp puts them in the table.
#pragma once

#include <cstddef>
#include <cstdint>

#include "parley/module.h"

namespace parley::host_admin {

int is_admin(parley_module* m, parley_str jid);
size_t host_sessions(parley_module* m, parley_session_fn each, void* arg);
void account_count(parley_module* m, void (*done)(void* arg, int64_t count, parley_str condition), void* arg);
int server_stop(parley_module* m);

}  // namespace parley::host_admin
