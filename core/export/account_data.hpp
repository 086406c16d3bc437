// core/export/account_data.hpp - XEP-0227 export and import on the running server
// (issue 11): the control commands parleyctl export/import drive, one account per
// command, and the module ABI entries (account_data_hold/add/done) through which modules
// contribute the data they own (events ACCOUNT_EXPORT and ACCOUNT_IMPORT).
//
// The core owns the account and its credentials (SCRAM records as
// <scram-credentials xmlns='urn:xmpp:pie:0#scram'/>, or a plain password='' hashed at
// import); everything else in a <user/> belongs to the module that owns its namespace.
// A request's hooks run on the first worker loop and the request lives there until every
// hold is done; its reply goes back to the control socket's loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/control/control_server.hpp"
#include "parley/module.h"

namespace parley {

class ServerContext;

namespace account_data {

// Bounds of one request (one account). An export streams to parleyctl: what modules add
// goes out as they add it, and a module adding a long list waits (when_ready) while
// limits.max_account_part_bytes are on their way; elements added while a container
// streams are held and written after it, at most kMaxHeldBytes. A request whose modules
// do nothing (no add, no done, nothing written) for kRequestTimeoutMs fails.
inline constexpr size_t kMaxHeldBytes = 64 * 1024 * 1024;
inline constexpr uint64_t kRequestTimeoutMs = 120000;

// export-user USER HOST -> the account's <user xmlns='urn:xmpp:pie:0'/> as text.
// import-user DOCUMENT [--replace] -> one line per account of the document (a
// <server-data/> with one <host/> and one <user/>, as parleyctl sends it).
void add_commands(control::ControlServer& server, ServerContext& ctx,
                  std::function<void(std::function<void()>)> post_to_control_loop);

// The host table entries.
int hold(parley_module* m, uint64_t request);
int add(parley_module* m, uint64_t request, const parley_element* element);
int done(parley_module* m, uint64_t request, parley_str summary, parley_str error);
// ABI 1.6: a child of a container element (<archive xmlns='urn:xmpp:pie:0#mam'/>).
int add_to(parley_module* m, uint64_t request, parley_str name, parley_str ns, const parley_element* element);
// ABI 1.8: `ready` once the export's bytes on their way to parleyctl are under the bound.
int when_ready(parley_module* m, uint64_t request, void (*ready)(void* state, void* arg), void* arg);

}  // namespace account_data
}  // namespace parley
