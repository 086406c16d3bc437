// The host side of the h-admin entries of the module ABI (issue 17, XEP-0133):
// account_set_disabled, account_list, user_addresses, for a module serving service
// administration. host_api.cpp puts them in the table.
#pragma once

#include <cstddef>

#include "parley/module.h"

namespace parley::host_account_admin {

void account_set_disabled(parley_module* m, parley_str user, int disabled, parley_account_fn done, void* arg);
void account_list(parley_module* m, int which, parley_str user,
                  void (*done)(void* arg, const parley_str* users, size_t count, parley_str condition), void* arg);
void user_addresses(parley_module* m, parley_str bare_jid,
                    void (*done)(void* arg, const parley_str* full_jids, const parley_str* addresses, size_t count),
                    void* arg);

}  // namespace parley::host_account_admin
