// storage/user_store.hpp - accounts and their SCRAM credentials.
//
// Passwords are never stored, in clear or otherwise: only the SCRAM records derived
// from them (RFC 5802: salt, iteration count, StoredKey, ServerKey), one per mechanism.
// Host and user are stored as given: the caller normalizes them (nameprep, nodeprep).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "parley/result.hpp"
#include "storage/database.hpp"
#include "storage/error.hpp"

namespace parley::storage {

struct ScramRecord {
  std::string mechanism;  // "SCRAM-SHA-1" | "SCRAM-SHA-256"
  std::string salt;       // raw bytes
  uint32_t iterations = 0;
  std::string stored_key;  // raw bytes
  std::string server_key;  // raw bytes
  // Read by get_credentials only (ignored when written): the account is
  // disabled (XEP-0133 disable-user), so a login that proves the password is
  // answered <account-disabled/> (RFC 6120 6.5.1). One query for both.
  bool account_disabled = false;
};

namespace user_store {

// The "users" component's schema steps (run by migrate_builtin).
std::span<const std::string_view> migrations();

// false: the user exists already (nothing changed).
Result<bool, Error> create_user(Database& db, std::string_view host, std::string_view user,
                                const std::vector<ScramRecord>& credentials);
// false: no such user. Removes the user's credentials with it.
Result<bool, Error> remove_user(Database& db, std::string_view host, std::string_view user);
// Replaces all of the user's records by these. false: no such user.
Result<bool, Error> set_credentials(Database& db, std::string_view host, std::string_view user,
                                    const std::vector<ScramRecord>& credentials);
// nullopt: no such user, or no record for that mechanism.
Result<std::optional<ScramRecord>, Error> get_credentials(Database& db, std::string_view host,
                                                          std::string_view user, std::string_view mechanism);
Result<bool, Error> user_exists(Database& db, std::string_view host, std::string_view user);
// The host's user names, sorted (bytewise, i.e. by code point).
Result<std::vector<std::string>, Error> list_users(Database& db, std::string_view host);

// Disables (or re-enables) the account; it keeps its data. false: no such user.
Result<bool, Error> set_disabled(Database& db, std::string_view host, std::string_view user, bool disabled);
// The host's disabled user names, sorted as list_users.
Result<std::vector<std::string>, Error> list_disabled(Database& db, std::string_view host);

}  // namespace user_store
}  // namespace parley::storage
