// storage/account_store.hpp - the account store (issue 11): accounts and their SCRAM
// credentials behind an interface, so that c2s, the router and the control socket never
// name a database or SQL.
//
// Two halves. AccountBackend is the operations themselves, synchronous, on a thread of
// the store (never a loop): a job gets one and may chain several operations (the control
// socket's passwd looks the user up, derives keys, then writes). AccountStore runs jobs
// off the loops, in FIFO order per queue: read() for look-ups that may run beside others
// (a login's credentials), write() for changes and for look-ups that must stay in order
// with them (the router's "does this account exist" before it stores an offline message).
// Jobs deliver their own results (the core posts back to its loop).
//
// Backends: SQLite (the main file's StoragePool: readers and its one writer, as before)
// and PostgreSQL (threads and connections of the store's own). Passwords never reach a
// backend: only SCRAM records (see user_store.hpp).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/result.hpp"
#include "storage/error.hpp"
#include "storage/user_store.hpp"

namespace parley::storage {

class AccountBackend {
 public:
  virtual ~AccountBackend() = default;
  // false: the user exists already (nothing changed).
  virtual Result<bool, Error> create_user(std::string_view host, std::string_view user,
                                          const std::vector<ScramRecord>& credentials) = 0;
  // false: no such user. Removes the user's credentials with it.
  virtual Result<bool, Error> remove_user(std::string_view host, std::string_view user) = 0;
  // Replaces all of the user's records by these. false: no such user.
  virtual Result<bool, Error> set_credentials(std::string_view host, std::string_view user,
                                              const std::vector<ScramRecord>& credentials) = 0;
  // nullopt: no such user, or no record for that mechanism.
  virtual Result<std::optional<ScramRecord>, Error> get_credentials(std::string_view host, std::string_view user,
                                                                    std::string_view mechanism) = 0;
  virtual Result<bool, Error> user_exists(std::string_view host, std::string_view user) = 0;
  // The host's user names, sorted bytewise.
  virtual Result<std::vector<std::string>, Error> list_users(std::string_view host) = 0;
  // XEP-0133 disable-user / reenable-user: the flag (get_credentials reports it in
  // ScramRecord::account_disabled). false: no such user.
  virtual Result<bool, Error> set_disabled(std::string_view host, std::string_view user, bool disabled) = 0;
  // The host's disabled user names, sorted bytewise.
  virtual Result<std::vector<std::string>, Error> list_disabled(std::string_view host) = 0;
};

class AccountStore {
 public:
  using Job = std::function<void(AccountBackend&)>;
  virtual ~AccountStore() = default;
  // Every job queued before stop() runs exactly once, also when the database is away (its
  // operations then return errors). After stop(), the SQLite store's pool drops a job and
  // reports it to its error handler; the PostgreSQL store runs it at once, failing. Jobs
  // must not throw.
  virtual void read(Job job) = 0;
  virtual void write(Job job) = 0;
  // Jobs waiting (the health gauge).
  virtual size_t queue_length() const = 0;
  // Runs what is queued, then stops. Idempotent.
  virtual void stop() = 0;
};

}  // namespace parley::storage
