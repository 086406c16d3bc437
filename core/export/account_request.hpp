// core/export/account_request.hpp - inside core/export: what the import
// (account_import.cpp) needs of the requests account_data.cpp runs.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/addr/jid.hpp"
#include "core/control/control_server.hpp"
#include "xml/element.hpp"

namespace parley {

class ServerContext;

namespace account_data {

// Runs its function on the control socket's loop.
using Post = std::function<void(std::function<void()>)>;

bool served(const ServerContext& ctx, const std::string& host);

// Raises ACCOUNT_IMPORT for `account` with `user` (one <user/>, or one part of it) on the
// first worker loop; `done` runs there once every module's hold is done (error empty:
// imported; summaries: the modules' lines).
void run_import_request(ServerContext& ctx, const Jid& account, std::shared_ptr<xml::Element> user,
                        std::function<void(std::string error, std::vector<std::string> summaries)> done);

// The bytes of one control request: one part of an account (limits.max_account_part_bytes,
// at most twice it when an element that cannot be cut is there), which its serialization
// may exceed a little.
size_t request_bound(const ServerContext& ctx);

// import-user DOCUMENT [--replace] [--parts], then import-part DOCUMENT [--last].
void import_user(ServerContext& ctx, const Post& post, std::vector<std::string> args,
                 std::shared_ptr<control::Exchange> exchange);

}  // namespace account_data
}  // namespace parley
