#include "core/control/account_commands.hpp"

#include <algorithm>
#include <array>
#include <exception>
#include <memory>

#include "core/addr/prep.hpp"
#include "core/control/json_text.hpp"
#include "core/sasl/crypto.hpp"
#include "core/sasl/saslprep.hpp"
#include "core/sasl/scram_credentials.hpp"
#include "storage/sqlite_account_store.hpp"
#include "storage/user_store.hpp"

namespace parley::control {

namespace {

constexpr std::array<AccountCommandSpec, 7> kSpecs = {{
    {"register", "USER HOST PASSWORD", 3, true, "create an account"},
    {"unregister", "USER HOST", 2, true, "delete an account"},
    {"passwd", "USER HOST PASSWORD", 3, true, "change an account's password"},
    {"list-users", "HOST", 1, false, "list the accounts of a host"},
    {"check-password", "USER HOST PASSWORD", 3, false, "exit code 0 if it is the account's password (prints nothing)"},
    // h-admin (XEP-0133 disable-user, ejabberd's ban_account): the account keeps its data.
    {"ban-account", "USER HOST", 2, true, "disable an account: it cannot log in, its sessions end"},
    {"unban-account", "USER HOST", 2, true, "re-enable a disabled account"},
}};

struct Account {
  std::string user;
  std::string host;
  std::string jid() const { return user + "@" + host; }
};

Result<std::string, std::string> check_host(const config::Config& config, std::string_view host) {
  auto prepared = nameprep_domain(host);
  if (!prepared) return unexpected("Invalid host '" + std::string(host) + "'");
  if (std::find(config.hosts.begin(), config.hosts.end(), *prepared) == config.hosts.end()) {
    return unexpected("Unknown host '" + *prepared + "' (not in the hosts of " +
                      (config.file.empty() ? std::string("the configuration") : config.file) + ")");
  }
  return std::move(*prepared);
}

std::string storage_failure(const storage::Error& e) { return "Database error: " + e.message; }

}  // namespace

Result<std::vector<storage::ScramRecord>, std::string> derive_scram_records(std::string_view password) {
  if (password.empty()) return unexpected(std::string("Empty password"));
  auto prepared = sasl::saslprep(password);
  if (!prepared) return unexpected("Invalid password: " + prepared.error());
  if (prepared->empty()) return unexpected(std::string("Empty password"));
  struct Kind {
    sasl::Hash hash;
    const char* mechanism;
  };
  std::vector<storage::ScramRecord> records;
  for (Kind kind : {Kind{sasl::Hash::sha1, "SCRAM-SHA-1"}, Kind{sasl::Hash::sha256, "SCRAM-SHA-256"}}) {
    sasl::ScramCredentials c =
        sasl::derive_scram_credentials(kind.hash, *prepared, sasl::random_bytes(kScramSaltBytes), kScramIterations);
    records.push_back(storage::ScramRecord{kind.mechanism, std::move(c.salt), c.iterations, std::move(c.stored_key),
                                           std::move(c.server_key)});
  }
  return records;
}

namespace {

AccountError fail(AccountFailure kind, std::string message) { return AccountError{kind, std::move(message)}; }

Result<Account, AccountError> checked_account(const config::Config& config, std::string_view user,
                                              std::string_view host) {
  auto prepared_user = nodeprep(user);
  if (!prepared_user || prepared_user->empty())
    return unexpected(fail(AccountFailure::invalid_user, "Invalid user name '" + std::string(user) + "'"));
  auto prepared_host = check_host(config, host);
  if (!prepared_host) return unexpected(fail(AccountFailure::invalid_host, std::move(prepared_host).error()));
  return Account{std::move(*prepared_user), std::move(*prepared_host)};
}

}  // namespace

Result<std::string, AccountError> create_account(storage::AccountBackend& db, const config::Config& config,
                                                 std::string_view user, std::string_view host,
                                                 std::string_view password) {
  auto account = checked_account(config, user, host);
  if (!account) return unexpected(std::move(account).error());
  auto records = derive_scram_records(password);
  if (!records) return unexpected(fail(AccountFailure::invalid_password, std::move(records).error()));
  auto created = db.create_user(account->host, account->user, *records);
  if (!created) return unexpected(fail(AccountFailure::storage, storage_failure(created.error())));
  if (!*created) return unexpected(fail(AccountFailure::exists, "User " + account->jid() + " already registered"));
  return account->jid();
}

Result<std::string, AccountError> delete_account(storage::AccountBackend& db, const config::Config& config,
                                                 std::string_view user, std::string_view host) {
  auto account = checked_account(config, user, host);
  if (!account) return unexpected(std::move(account).error());
  auto removed = db.remove_user(account->host, account->user);
  if (!removed) return unexpected(fail(AccountFailure::storage, storage_failure(removed.error())));
  if (!*removed) return unexpected(fail(AccountFailure::missing, "User " + account->jid() + " does not exist"));
  return account->jid();
}

Result<std::string, AccountError> set_account_password(storage::AccountBackend& db, const config::Config& config,
                                                       std::string_view user, std::string_view host,
                                                       std::string_view password) {
  auto account = checked_account(config, user, host);
  if (!account) return unexpected(std::move(account).error());
  // Looked up first, so that a missing user is reported before any key derivation.
  auto exists = db.user_exists(account->host, account->user);
  if (!exists) return unexpected(fail(AccountFailure::storage, storage_failure(exists.error())));
  if (!*exists) return unexpected(fail(AccountFailure::missing, "User " + account->jid() + " does not exist"));
  auto records = derive_scram_records(password);
  if (!records) return unexpected(fail(AccountFailure::invalid_password, std::move(records).error()));
  auto set = db.set_credentials(account->host, account->user, *records);
  if (!set) return unexpected(fail(AccountFailure::storage, storage_failure(set.error())));
  if (!*set) return unexpected(fail(AccountFailure::missing, "User " + account->jid() + " does not exist"));
  return account->jid();
}

AccountResult register_account(storage::AccountBackend& db, const config::Config& config, std::string_view user,
                               std::string_view host, std::string_view password) {
  auto done = create_account(db, config, user, host, password);
  if (!done) return unexpected(std::move(done).error().message);
  return "User " + *done + " successfully registered";
}

AccountResult unregister_account(storage::AccountBackend& db, const config::Config& config, std::string_view user,
                                 std::string_view host) {
  auto done = delete_account(db, config, user, host);
  if (!done) return unexpected(std::move(done).error().message);
  return "User " + *done + " successfully unregistered";
}

AccountResult change_password(storage::AccountBackend& db, const config::Config& config, std::string_view user,
                              std::string_view host, std::string_view password) {
  auto done = set_account_password(db, config, user, host, password);
  if (!done) return unexpected(std::move(done).error().message);
  return "Password of user " + *done + " changed";
}

AccountResult check_password(storage::AccountBackend& db, const config::Config& config, std::string_view user,
                             std::string_view host, std::string_view password) {
  // Exit code only: a wrong password, an unknown user and an invalid name all fail
  // without a word, so the answer tells nothing more than "no".
  auto account = checked_account(config, user, host);
  if (!account) return unexpected(std::string());
  auto record = db.get_credentials(account->host, account->user, "SCRAM-SHA-256");
  if (!record) return unexpected(storage_failure(record.error()));
  if (!*record) return unexpected(std::string());
  sasl::ScramCredentials creds;
  creds.hash = sasl::Hash::sha256;
  creds.salt = (*record)->salt;
  creds.iterations = (*record)->iterations;
  creds.stored_key = (*record)->stored_key;
  creds.server_key = (*record)->server_key;
  if (!sasl::verify_password(creds, password)) return unexpected(std::string());
  return std::string();
}

AccountResult set_account_disabled(storage::AccountBackend& db, const config::Config& config, std::string_view user,
                                   std::string_view host, bool disabled) {
  auto account = checked_account(config, user, host);
  if (!account) return unexpected(std::move(account).error().message);
  auto changed = db.set_disabled(account->host, account->user, disabled);
  if (!changed) return unexpected(storage_failure(changed.error()));
  if (!*changed) return unexpected("User " + account->jid() + " does not exist");
  return "User " + account->jid() + (disabled ? " disabled" : " re-enabled");
}

AccountResult list_accounts(storage::AccountBackend& db, const config::Config& config, std::string_view host) {
  auto checked = check_host(config, host);
  if (!checked) return unexpected(std::move(checked).error());
  auto users = db.list_users(*checked);
  if (!users) return unexpected(storage_failure(users.error()));
  std::string body;
  for (const auto& u : *users) body += u + "\n";
  return body;
}

Result<std::string, AccountError> create_account(storage::Database& db, const config::Config& config,
                                                 std::string_view user, std::string_view host,
                                                 std::string_view password) {
  storage::SqliteAccountBackend backend(db);
  return create_account(backend, config, user, host, password);
}

Result<std::string, AccountError> delete_account(storage::Database& db, const config::Config& config,
                                                 std::string_view user, std::string_view host) {
  storage::SqliteAccountBackend backend(db);
  return delete_account(backend, config, user, host);
}

Result<std::string, AccountError> set_account_password(storage::Database& db, const config::Config& config,
                                                       std::string_view user, std::string_view host,
                                                       std::string_view password) {
  storage::SqliteAccountBackend backend(db);
  return set_account_password(backend, config, user, host, password);
}

AccountResult register_account(storage::Database& db, const config::Config& config, std::string_view user,
                               std::string_view host, std::string_view password) {
  storage::SqliteAccountBackend backend(db);
  return register_account(backend, config, user, host, password);
}

AccountResult unregister_account(storage::Database& db, const config::Config& config, std::string_view user,
                                 std::string_view host) {
  storage::SqliteAccountBackend backend(db);
  return unregister_account(backend, config, user, host);
}

AccountResult change_password(storage::Database& db, const config::Config& config, std::string_view user,
                              std::string_view host, std::string_view password) {
  storage::SqliteAccountBackend backend(db);
  return change_password(backend, config, user, host, password);
}

AccountResult check_password(storage::Database& db, const config::Config& config, std::string_view user,
                             std::string_view host, std::string_view password) {
  storage::SqliteAccountBackend backend(db);
  return check_password(backend, config, user, host, password);
}

AccountResult list_accounts(storage::Database& db, const config::Config& config, std::string_view host) {
  storage::SqliteAccountBackend backend(db);
  return list_accounts(backend, config, host);
}

AccountResult run_account_command(storage::Database& db, const config::Config& config,
                                  const std::vector<std::string>& argv) {
  storage::SqliteAccountBackend backend(db);
  return run_account_command(backend, config, argv);
}

std::span<const AccountCommandSpec> account_command_specs() { return kSpecs; }

const AccountCommandSpec* find_account_command(std::string_view name) {
  for (const auto& spec : kSpecs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::string account_command_usage(const AccountCommandSpec& spec) {
  return "usage: " + std::string(spec.name) + " " + std::string(spec.arguments);
}

AccountResult run_account_command(storage::AccountBackend& db, const config::Config& config,
                                  const std::vector<std::string>& argv) {
  const AccountCommandSpec* spec = argv.empty() ? nullptr : find_account_command(argv[0]);
  if (!spec) return unexpected("Unknown account command '" + (argv.empty() ? std::string() : argv[0]) + "'");
  if (argv.size() != spec->argument_count + 1) return unexpected(account_command_usage(*spec));
  const std::string& name = argv[0];
  if (name == "register") return register_account(db, config, argv[1], argv[2], argv[3]);
  if (name == "unregister") return unregister_account(db, config, argv[1], argv[2]);
  if (name == "passwd") return change_password(db, config, argv[1], argv[2], argv[3]);
  if (name == "check-password") return check_password(db, config, argv[1], argv[2], argv[3]);
  if (name == "ban-account" || name == "unban-account")
    return set_account_disabled(db, config, argv[1], argv[2], name == "ban-account");
  return list_accounts(db, config, argv[1]);
}

void add_account_commands(ControlServer& server, storage::AccountStore& accounts, const config::Config& config,
                          std::function<void(std::function<void()>)> post_to_loop,
                          std::function<void(const std::vector<std::string>&)> on_success) {
  // Only what the commands read: the whole Config holds YAML nodes, whose shared
  // internals must not be copied or released from the pool's threads.
  auto snapshot = std::make_shared<config::Config>();
  snapshot->file = config.file;
  snapshot->hosts = config.hosts;
  std::shared_ptr<const config::Config> shared_config = std::move(snapshot);
  auto post = std::make_shared<const std::function<void(std::function<void()>)>>(std::move(post_to_loop));
  auto notify = std::make_shared<const std::function<void(const std::vector<std::string>&)>>(std::move(on_success));
  for (const AccountCommandSpec& spec : kSpecs) {
    std::string help = std::string(spec.arguments) + ": " + std::string(spec.help);
    server.add_command(std::string(spec.name), std::move(help),
                       [&accounts, spec, shared_config, post, notify](std::vector<std::string> argv, Reply reply) {
                         // --json (list-users): the lines as a JSON array of strings.
                         if (spec.name == "list-users" && take_json_flag(argv))
                           reply = [reply](bool ok, std::string body) {
                             reply(ok, ok ? json_lines(body) : std::move(body));
                           };
                         if (argv.size() != spec.argument_count + 1) {
                           reply(false, account_command_usage(spec));
                           return;
                         }
                         auto job = [shared_config, post, notify, argv = std::move(argv),
                                     reply = std::move(reply)](storage::AccountBackend& db) {
                           bool ok = false;
                           std::string body;
                           try {
                             auto r = run_account_command(db, *shared_config, argv);
                             ok = r.has_value();
                             body = ok ? std::move(*r) : std::move(r).error();
                           } catch (const std::exception& e) {
                             body = std::string("internal error: ") + e.what();
                           }
                           (*post)([reply, ok, notify, argv, body = std::move(body)]() mutable {
                             if (ok && *notify) (*notify)(argv);
                             reply(ok, std::move(body));
                           });
                         };
                         if (spec.writes) {
                           accounts.write(std::move(job));
                         } else {
                           accounts.read(std::move(job));
                         }
                       });
  }
}

}  // namespace parley::control
