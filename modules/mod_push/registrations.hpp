// mod_push's registrations (XEP-0357 §5): per account, one per push service
// (its JID) and node (a device), with the publish-options form the client
// gave. Kept in the account's map of the typed store (issue 11), key
// "SERVICE\nNODE" (no JID holds a control character, RFC 7622), value the
// serialized form ("" for none). The module's own table of before
// (mod_push_registrations) is moved over once, at the first start that finds
// rows in it, then dropped; every operation waits for that move (OldTables).
//
// Completions run on the loop that asked, as the store's do.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/module.hpp"
#include "parley/sdk/old_tables.hpp"

namespace parley::push {

struct Registration {
  std::string jid;
  std::string node;
  std::string options;   // the publish-options <x/>, serialized; "" for none
  bool webhook = false;  // the HTTP webhook (webhook_url), not an XMPP app server
};

std::string registration_key(std::string_view jid, std::string_view node);
// The registration a map item holds; nullopt for a key of another shape.
std::optional<Registration> registration_from(std::string_view key, std::string_view value);

class Registrations {
 public:
  // nullopt: the store failed (logged).
  using ListFn = std::function<void(std::optional<std::vector<Registration>>)>;
  using CountFn = std::function<void(std::optional<uint64_t>)>;
  // "" stored; "policy-violation" over the limit; anything else a failure.
  using PutFn = std::function<void(std::string)>;

  // From the module's start().
  void start(Host& host);

  // The user's registrations, in service and node order.
  void list(const std::string& user, ListFn done);
  // Whether the user has this one.
  void exists(const std::string& user, const std::string& jid, const std::string& node,
              std::function<void(std::optional<bool>)> done);
  // Adds or replaces (the same service and node keeps one, with the newest
  // options, §5); refused if the account would then have more than `max`.
  void put(const std::string& user, const Registration& reg, uint64_t max, PutFn done);
  // Removes one (node given) or every node of the service: how many went.
  void remove(const std::string& user, const std::string& jid, std::optional<std::string> node, CountFn done);
  // The account is gone.
  void clear(const std::string& user);

 private:
  Host* host_ = nullptr;
  OldTables move_;
};

}  // namespace parley::push
