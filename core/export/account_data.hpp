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

// Bounds of one request (one account): the bytes modules add to an export, and how long a
// request may wait for modules' holds before it fails.
inline constexpr size_t kMaxExportBytes = 64 * 1024 * 1024;
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

}  // namespace account_data
}  // namespace parley
