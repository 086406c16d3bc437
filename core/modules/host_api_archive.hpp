// The host side of the archive store entries of the module ABI (issue 11:
// archive_append, archive_query, archive_remove). host_api.cpp puts them in the table.
#pragma once

#include <cstdint>

#include "parley/module.h"

namespace parley {
class ServerContext;
}

namespace parley::host_archive {

uint64_t archive_append(parley_module* m, parley_str owner, parley_str with, parley_str payload,
                        parley_archive_fn done, void* arg);
int archive_query(parley_module* m, const parley_archive_query* query, parley_archive_fn done, void* arg);
int archive_remove(parley_module* m, parley_str owner, int64_t before_us, parley_archive_fn done, void* arg);
// ABI 1.6: an append with a given timestamp (XEP-0227 import).
uint64_t archive_append_at(parley_module* m, parley_str owner, parley_str with, parley_str payload,
                           int64_t timestamp_us, parley_archive_fn done, void* arg);
// ABI 1.11: an append for a client's stanza, its input held while the archive is behind.
uint64_t archive_append_paced(parley_module* m, parley_session_id session, parley_str owner, parley_str with,
                              parley_str payload, int64_t timestamp_us);
// The archive store lost its database (its thread): every client archive_append_paced
// held is released, on its loop (each is otherwise released when its own append is stored).
void on_archive_unavailable(ServerContext& ctx);

}  // namespace parley::host_archive
