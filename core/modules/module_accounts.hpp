// Accounts changed through the running server (parleyctl, or a module through
// the host API): the database work on the storage writer, then the modules
// told (USER_REGISTERED / USER_REMOVED) and a removed account's sessions closed.
#pragma once

#include <string_view>

#include "parley/module.h"

namespace parley {

class ServerContext;
class Jid;

// After an account was created or removed: runs the hook on a worker loop and,
// for a removal, closes the account's sessions (RFC 6120 §4.9.3.17 not-authorized).
void announce_account_change(ServerContext& ctx, const Jid& account, bool removed);

// h-admin: ends every bound session of `account` with <not-authorized/> and
// `text` (an account disabled), each on its own loop. Any thread.
void close_account_sessions(ServerContext& ctx, const Jid& account, std::string_view text);

// The parley_host_api account entries (ABI 1.1).
void module_account_create(parley_module* m, parley_str user, parley_str password, parley_account_fn done, void* arg);
void module_account_set_password(parley_module* m, parley_str user, parley_str password, parley_account_fn done,
                                 void* arg);
void module_account_remove(parley_module* m, parley_str user, parley_account_fn done, void* arg);

}  // namespace parley
