// The host side of the issue 13 entries: HTTP routes of modules (http_route,
// http_header, http_respond, http_write, http_end, http_read_pause) and
// http_data_dir. host_api.cpp puts them in the table; the exchanges
// themselves live in core/net/http_transport.
#pragma once

#include "parley/module.h"

namespace parley::host_http {

int http_route(parley_module* m, const parley_http_route* route);
int http_header(parley_module* m, uint64_t exchange, parley_str name, parley_sink out);
int http_respond(parley_module* m, uint64_t exchange, int status, parley_str headers, int64_t content_length);
int http_write(parley_module* m, uint64_t exchange, parley_str bytes);
int http_end(parley_module* m, uint64_t exchange);
int http_read_pause(parley_module* m, uint64_t exchange, int paused);
int http_data_dir(parley_module* m, parley_sink out);

// Ends the calling loop's open exchanges of a stopped instance.
void drop_exchanges(parley_module* m);

}  // namespace parley::host_http
