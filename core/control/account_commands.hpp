// core/control/account_commands.hpp - register, unregister, passwd, list-users,
// check-password: the
// account logic shared by the running server (through the storage pool) and by parleyctl
// when no server runs (directly on the database file).
//
// Each check happens here once: the user name is nodeprep'd, the host nameprep'd and
// looked up in the configured hosts, the password SASLprep'd, and only SCRAM records
// (SHA-1 and SHA-256, 16-byte random salt, 4096 iterations) reach the database.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.hpp"
#include "core/control/control_server.hpp"
#include "parley/result.hpp"
#include "storage/account_store.hpp"
#include "storage/database.hpp"
#include "storage/storage_pool.hpp"
#include "storage/user_store.hpp"

namespace parley::control {

inline constexpr size_t kScramSaltBytes = 16;
inline constexpr uint32_t kScramIterations = 4096;

// The message for the user either way: "User alice@localhost successfully registered",
// "User alice@localhost already registered".
using AccountResult = Result<std::string, std::string>;

// Why an account operation failed, for callers that answer with a protocol
// condition (the module host) rather than with text (parleyctl).
enum class AccountFailure { invalid_user, invalid_host, invalid_password, exists, missing, storage };
struct AccountError {
  AccountFailure kind;
  std::string message;
};
// On success the prepared "user@host". The operations run on an account store's backend
// (storage/account_store.hpp), on a thread of the store; the storage::Database& overloads
// further down are the SQLite backend on that connection (parleyctl without a server).
Result<std::string, AccountError> create_account(storage::AccountBackend& db, const config::Config& config,
                                                 std::string_view user, std::string_view host,
                                                 std::string_view password);
Result<std::string, AccountError> delete_account(storage::AccountBackend& db, const config::Config& config,
                                                 std::string_view user, std::string_view host);
Result<std::string, AccountError> set_account_password(storage::AccountBackend& db, const config::Config& config,
                                                       std::string_view user, std::string_view host,
                                                       std::string_view password);

AccountResult register_account(storage::AccountBackend& db, const config::Config& config, std::string_view user,
                               std::string_view host, std::string_view password);
AccountResult unregister_account(storage::AccountBackend& db, const config::Config& config, std::string_view user,
                                 std::string_view host);
AccountResult change_password(storage::AccountBackend& db, const config::Config& config, std::string_view user,
                              std::string_view host, std::string_view password);
// Success (empty) if `password` is the account's; an empty error otherwise (a wrong
// password, no such account, an invalid name), or a database error's text.
AccountResult check_password(storage::AccountBackend& db, const config::Config& config, std::string_view user,
                             std::string_view host, std::string_view password);
// The host's users, one per line, sorted; empty when there are none.
AccountResult list_accounts(storage::AccountBackend& db, const config::Config& config, std::string_view host);
// ban-account / unban-account (h-admin, XEP-0133 disable-user): the account store's
// disabled flag; the running server also ends a banned account's sessions.
AccountResult set_account_disabled(storage::AccountBackend& db, const config::Config& config, std::string_view user,
                                   std::string_view host, bool disabled);

// SCRAM-SHA-1 and SCRAM-SHA-256 records for a password (SASLprep'd here).
Result<std::vector<storage::ScramRecord>, std::string> derive_scram_records(std::string_view password);

struct AccountCommandSpec {
  std::string_view name;       // "register"
  std::string_view arguments;  // "USER HOST PASSWORD"
  size_t argument_count;       // 3 (without the name)
  bool writes;                 // runs on the storage writer, else on a reader
  std::string_view help;
};
std::span<const AccountCommandSpec> account_command_specs();
const AccountCommandSpec* find_account_command(std::string_view name);
// "usage: register USER HOST PASSWORD"
std::string account_command_usage(const AccountCommandSpec& spec);

// argv[0] names one of the account commands; checks the argument count, then runs it.
AccountResult run_account_command(storage::AccountBackend& db, const config::Config& config,
                                  const std::vector<std::string>& argv);

// The same on a SQLite connection of the main file (parleyctl when no server runs, tests).
Result<std::string, AccountError> create_account(storage::Database& db, const config::Config& config,
                                                 std::string_view user, std::string_view host,
                                                 std::string_view password);
Result<std::string, AccountError> delete_account(storage::Database& db, const config::Config& config,
                                                 std::string_view user, std::string_view host);
Result<std::string, AccountError> set_account_password(storage::Database& db, const config::Config& config,
                                                       std::string_view user, std::string_view host,
                                                       std::string_view password);
AccountResult register_account(storage::Database& db, const config::Config& config, std::string_view user,
                               std::string_view host, std::string_view password);
AccountResult unregister_account(storage::Database& db, const config::Config& config, std::string_view user,
                                 std::string_view host);
AccountResult change_password(storage::Database& db, const config::Config& config, std::string_view user,
                              std::string_view host, std::string_view password);
AccountResult check_password(storage::Database& db, const config::Config& config, std::string_view user,
                             std::string_view host, std::string_view password);
AccountResult list_accounts(storage::Database& db, const config::Config& config, std::string_view host);
AccountResult run_account_command(storage::Database& db, const config::Config& config,
                                  const std::vector<std::string>& argv);

// Registers the account commands on the server. Each runs on the pool (the database work
// and the key derivation stay off the loop), then replies through post_to_loop, which must
// run its function on the server's loop thread. The hosts are copied from the config:
// later reloads do not reach these commands. `accounts` must outlive the server.
// `on_success` (optional) runs on the loop, before the reply, with the argv of
// every command that succeeded (the server tells its modules about accounts).
void add_account_commands(ControlServer& server, storage::AccountStore& accounts, const config::Config& config,
                          std::function<void(std::function<void()>)> post_to_loop,
                          std::function<void(const std::vector<std::string>&)> on_success = {});

}  // namespace parley::control
