// mod_blocking's addresses: parsing, normalization, and which item blocks
// which address (XEP-0191 §"JID Matching", after XEP-0016 §2.1).
#include <doctest/doctest.h>

#include "blocking_jid.hpp"

using mod_blocking::BlockJid;
using mod_blocking::item_blocks;
using mod_blocking::match_forms;
using mod_blocking::parse_jid;

namespace {

BlockJid jid(const char* text) {
  auto parsed = parse_jid(text);
  REQUIRE(parsed.has_value());
  return *parsed;
}

// Whether blocking `item` (as a client would send it) blocks `address`.
bool blocks(const char* item, const char* address) {
  auto parsed = parse_jid(item);
  REQUIRE(parsed.has_value());
  return item_blocks(parsed->full(), jid(address));
}

}  // namespace

TEST_CASE("parse_jid splits the three parts") {
  BlockJid j = jid("romeo@montague.net/orchard");
  CHECK(j.local == "romeo");
  CHECK(j.domain == "montague.net");
  CHECK(j.resource == "orchard");
  CHECK(j.bare() == "romeo@montague.net");
  CHECK(j.full() == "romeo@montague.net/orchard");
  CHECK(jid("montague.net").full() == "montague.net");
  CHECK(jid("montague.net/res").full() == "montague.net/res");
  // The first '/' starts the resource: '@' and '/' after it belong to it.
  BlockJid odd = jid("a@b.example/c@d/e");
  CHECK(odd.local == "a");
  CHECK(odd.resource == "c@d/e");
  CHECK(jid("example.com/a@b").local.empty());
}

TEST_CASE("parse_jid folds the case of the localpart and domain, not of the resource") {
  CHECK(jid("Romeo@Montague.NET/Orchard").full() == "romeo@montague.net/Orchard");
  CHECK(jid("montague.net.").full() == "montague.net");  // the root label
}

TEST_CASE("parse_jid refuses what is not a JID") {
  for (const char* bad : {"", "@montague.net", "romeo@", "romeo@/res", "montague.net/", "romeo@montague.net/",
                          "ro meo@montague.net", "ro\"meo@x.example", "ro&meo@x.example", "ro'meo@x.example",
                          "ro:meo@x.example", "ro<meo@x.example", "ro>meo@x.example", "a@b@c.example",
                          "mon tague.net", "-montague.net", "montague-.net", "montague..net", ".montague.net",
                          "monta_gue.net", "[::1", "[zz::1]", "x.example/\x01", "\xff@x.example",
                          "x.\xc0\xaf.example"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_jid(bad).has_value());
  }
  CHECK_FALSE(parse_jid(std::string(1024, 'a') + "@x.example").has_value());
  CHECK_FALSE(parse_jid(std::string(64, 'a') + ".example").has_value());
  CHECK(parse_jid(std::string(63, 'a') + ".example").has_value());
  CHECK(parse_jid("[::1]").has_value());
  CHECK(parse_jid("127.0.0.1").has_value());
  CHECK(parse_jid("j\xc3\xbcliet@capulet.example").has_value());  // UTF-8 localpart
  CHECK(parse_jid("x.example/with space").has_value());            // resourceprep keeps spaces
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
  CHECK(blocks("Romeo@Montague.net", "romeo@montague.net/orchard"));
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
