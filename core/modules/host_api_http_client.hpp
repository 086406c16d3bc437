// The host side of the issue 14 entry http_request: a module's HTTP request on
// the calling worker loop's client (core/http_client, made with the loop's
// first request). host_api.cpp puts it in the table.
#pragma once

#include "parley/module.h"

namespace parley {
struct LoopContext;
}

namespace parley::host_http_client {

uint64_t http_request(parley_module* m, const parley_http_client_request* request, parley_http_client_fn done,
                      void* arg);

// On `loop`: cancels the requests of a stopped instance (their completions
// run with stopped = 1).
void drop_requests(LoopContext& loop, parley_module* m);
// On `loop`, at shutdown while modules still run: cancels every request
// (completions with "cancelled") and closes the client's handles.
void close(LoopContext& loop);

}  // namespace parley::host_http_client
