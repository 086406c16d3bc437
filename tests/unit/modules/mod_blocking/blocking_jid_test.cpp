// mod_blocking's matching: which item blocks which address (XEP-0191
// §"JID Matching", after XEP-0016 §2.1). Parsing and preparation are the
// host's (parley::Jid, tested in tests/unit/sdk/jid_test.cpp and the core's
// jid tests): items and addresses here are already prepared.
#include <doctest/doctest.h>

#include "blocking_jid.hpp"

using mod_blocking::item_blocks;
using mod_blocking::match_forms;

namespace {

parley::Jid jid(const char* prepared) { return parley::Jid::prepared(prepared); }

// Whether blocking `item` (prepared) blocks `address`.
bool blocks(const char* item, const char* address) { return item_blocks(jid(item).full(), jid(address)); }

}  // namespace

TEST_CASE("the prepared parts a match is built from") {
  parley::Jid odd = jid("a@b.example/c@d/e");  // the first '/' starts the resource
  CHECK(odd.local() == "a");
  CHECK(odd.resource() == "c@d/e");
  CHECK(jid("example.com/a@b").local().empty());
}

TEST_CASE("a full JID item blocks only that resource") {
  CHECK(blocks("romeo@montague.net/orchard", "romeo@montague.net/orchard"));
  CHECK_FALSE(blocks("romeo@montague.net/orchard", "romeo@montague.net/garden"));
  CHECK_FALSE(blocks("romeo@montague.net/orchard", "romeo@montague.net"));
  CHECK_FALSE(blocks("romeo@montague.net/orchard", "montague.net/orchard"));
  CHECK_FALSE(blocks("romeo@montague.net/orchard", "romeo@montague.net/Orchard"));  // resources keep case
}

TEST_CASE("a bare JID item blocks any resource of that user") {
  CHECK(blocks("romeo@montague.net", "romeo@montague.net"));
  CHECK(blocks("romeo@montague.net", "romeo@montague.net/orchard"));
  CHECK_FALSE(blocks("romeo@montague.net", "benvolio@montague.net"));
  CHECK_FALSE(blocks("romeo@montague.net", "montague.net"));
  CHECK_FALSE(blocks("romeo@montague.net", "romeo@montague.org"));
  CHECK_FALSE(blocks("romeo@montague.net", "romeo@sub.montague.net"));
}

TEST_CASE("a domain/resource item blocks only that resource at that domain") {
  CHECK(blocks("montague.net/orchard", "montague.net/orchard"));
  // XEP-0016 compares the address's domain/resource form: any user's.
  CHECK(blocks("montague.net/orchard", "romeo@montague.net/orchard"));
  CHECK_FALSE(blocks("montague.net/orchard", "montague.net"));
  CHECK_FALSE(blocks("montague.net/orchard", "romeo@montague.net"));
  CHECK_FALSE(blocks("montague.net/orchard", "montague.net/garden"));
}

TEST_CASE("a domain item blocks the domain, its users, its resources and its subdomains") {
  CHECK(blocks("montague.net", "montague.net"));
  CHECK(blocks("montague.net", "romeo@montague.net"));
  CHECK(blocks("montague.net", "romeo@montague.net/orchard"));
  CHECK(blocks("montague.net", "montague.net/orchard"));
  CHECK(blocks("montague.net", "chat.montague.net"));
  CHECK(blocks("montague.net", "friar@cell.chat.montague.net/x"));
  CHECK_FALSE(blocks("montague.net", "notmontague.net"));
  CHECK_FALSE(blocks("montague.net", "montague.net.example"));
  CHECK_FALSE(blocks("chat.montague.net", "montague.net"));
  CHECK_FALSE(blocks("montague.net", "capulet.com"));
}

TEST_CASE("match_forms lists the address's forms in XEP-0016 order") {
  auto forms = match_forms(jid("romeo@chat.montague.net/orchard"));
  std::vector<std::string> expected{"romeo@chat.montague.net/orchard", "romeo@chat.montague.net",
                                    "chat.montague.net/orchard", "chat.montague.net", "montague.net", "net"};
  CHECK(forms == expected);
  CHECK(match_forms(jid("montague.net")) == std::vector<std::string>{"montague.net", "net"});
  // IP literals have no parent domains.
  CHECK(match_forms(jid("127.0.0.1")) == std::vector<std::string>{"127.0.0.1"});
}
