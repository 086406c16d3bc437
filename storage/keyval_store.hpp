// storage/keyval_store.hpp - the keyval store (issue 11): per scope (a module instance:
// "mod_vcard/example.org"), per user (a bare JID or a localpart: the module's choice),
// per key, a value of bytes (a serialized XML element is bytes to the store): vCards,
// private XML, last activity, settings.
//
// Backend-neutral: nothing here names SQLite or PostgreSQL. A backend runs every operation
// off the caller's thread and calls the completion on one of its own threads (the core
// posts it back to the loop that asked). Operations of one store run in the order they
// were queued, so one user's operations keep their order (a get queued after a put of
// the same key sees it).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "parley/result.hpp"

namespace parley::storage {

struct KeyvalOwner {
  std::string scope;  // the module instance ("mod_vcard/example.org")
  std::string user;
};

struct KeyvalItem {
  std::string key;
  std::string value;
};

// condition: an RFC 6120 stanza error condition ("policy-violation": over a put's quota;
// "resource-constraint": the queue is full; "internal-server-error"); message: for the log.
struct KeyvalError {
  std::string condition;
  std::string message;
};

// What a put does with a key that has a value already.
enum class KeyvalPut {
  replace,    // the new value replaces it
  if_absent,  // the key keeps its value, the item is skipped (not an error): data migrations
};

class KeyvalStore {
 public:
  using GetDone = std::function<void(Result<std::optional<std::string>, KeyvalError>)>;
  using PutDone = std::function<void(Result<void, KeyvalError>)>;
  using RemoveDone = std::function<void(Result<uint64_t, KeyvalError>)>;  // keys removed
  using ListDone = std::function<void(Result<std::vector<KeyvalItem>, KeyvalError>)>;  // by key
  // get_many: one item per user found, its key the user (bytewise order of the users).
  using GetManyDone = std::function<void(Result<std::vector<KeyvalItem>, KeyvalError>)>;

  virtual ~KeyvalStore() = default;

  // Completions run on a thread of the store, exactly once each (also when the store is
  // stopping or its queue is full: then with an error, possibly during the call). They
  // must not throw.
  virtual void get(KeyvalOwner owner, std::string key, GetDone done) = 0;
  // Stores every item or none (one transaction). max_user_bytes > 0: refused with
  // policy-violation, storing nothing, if the user's values (bytes of every value of
  // the owner, the items' replacing the values of their keys) would go over it: a quota
  // checked atomically with the write (two puts racing cannot both pass it).
  virtual void put(KeyvalOwner owner, std::vector<KeyvalItem> items, uint64_t max_user_bytes, KeyvalPut mode,
                   PutDone done) = 0;
  virtual void remove(KeyvalOwner owner, std::string key, RemoveDone done) = 0;
  // Every key of the user (an account removed).
  virtual void remove_user(KeyvalOwner owner, RemoveDone done) = 0;
  // Every key of the user with its value, in key order (XEP-0227 export, issue 11).
  virtual void list(KeyvalOwner owner, ListDone done) = 0;

  // One key of many users of one scope, as one operation in the queue (so, as a get, it
  // sees every operation queued before it, of any of those users): the value of `key`
  // for each of `users` that has one (a user without it is simply absent; a user given
  // twice is reported once). The backend reads them kGetManyChunk users per statement
  // (a login's probe answers: a statement each, not a round trip per contact).
  virtual void get_many(std::string scope, std::vector<std::string> users, std::string key, GetManyDone done) = 0;
  static constexpr size_t kGetManyChunk = 256;

  // Operations waiting (the health gauge).
  virtual size_t queue_length() const = 0;
  // Finishes what is queued, then stops. Idempotent.
  virtual void stop() = 0;
};

}  // namespace parley::storage
