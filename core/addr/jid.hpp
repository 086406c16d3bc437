// core/addr/jid.hpp - an XMPP address (RFC 7622): localpart@domainpart/resourcepart.
#pragma once

#include <compare>
#include <cstddef>
#include <string>
#include <string_view>

#include "core/addr/jid_error.hpp"
#include "core/addr/prep.hpp"
#include "parley/result.hpp"

namespace parley {

// Always holds prepared (canonical) parts, so comparison is plain string comparison.
// A default-constructed Jid is empty(): no domain.
class Jid {
 public:
  Jid() = default;

  // Splits (the first '/' starts the resource, then the first '@' ends the local
  // part) and prepares every part.
  static Result<Jid, JidError> parse(std::string_view text);
  // Prepares each part; an empty local or resource means "none".
  static Result<Jid, JidError> make(std::string_view local, std::string_view domain,
                                    std::string_view resource = {});

  const std::string& local() const { return local_; }
  const std::string& domain() const { return domain_; }
  const std::string& resource() const { return resource_; }

  bool empty() const { return domain_.empty(); }
  bool is_bare() const { return resource_.empty(); }
  bool has_local() const { return !local_.empty(); }

  Jid bare() const;
  // `resource` must already be prepared (server-generated, or resourceprep'd by the caller).
  Jid with_resource(std::string_view resource) const;

  std::string full() const;      // "local@domain/resource", parts omitted when absent
  std::string bare_str() const;  // "local@domain"

  bool operator==(const Jid&) const = default;
  std::strong_ordering operator<=>(const Jid&) const = default;

 private:
  std::string local_;
  std::string domain_;
  std::string resource_;
};

struct JidHash {
  size_t operator()(const Jid& jid) const noexcept;
};

}  // namespace parley
