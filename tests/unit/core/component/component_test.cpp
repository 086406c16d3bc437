// XEP-0114 external components: the handshake digest and its check, and the
// `module: component` listener of parley.yml (validated at start with
// file:line and a reason, as every key).
#include <doctest/doctest.h>

#include <string>

#include "core/component/component_directory.hpp"
#include "core/config/config.hpp"

using parley::component::handshake_digest;
using parley::component::handshake_matches;
using parley::config::load_config_string;

namespace {

std::string with_listener(const std::string& listener, const std::string& rest = {}) {
  return "hosts: [localhost]\n"
         "listen:\n"
         "  - port: 5222\n" +
         listener + rest;
}

const std::string kComponent =
    "  - port: 5347\n"
    "    module: component\n"
    "    hosts:\n"
    "      push.localhost: {password: SECRET}\n"
    "      other.localhost:\n"
    "        password: 'p&ss'\n";

void expect_error(const std::string& yaml, int line, const std::string& fragment) {
  auto r = load_config_string(yaml, "test.yml");
  REQUIRE_FALSE(r);
  INFO(r.error().to_string());
  CHECK(r.error().line == line);
  CHECK(r.error().reason.find(fragment) != std::string::npos);
}

}  // namespace

TEST_CASE("the handshake digest is SHA-1 of stream id + secret in lowercase hex") {
  CHECK(handshake_digest("3BF96D32", "secret") == "b09ea9b3b7f586be8a08d0a3dd7466f110aeb136");
  // The secret's bytes as they are (UTF-8), no escaping.
  CHECK(handshake_digest("abc", "p\xc3\xa4sswo\xcc\x88rd&<") != handshake_digest("abc", "passw"));
  CHECK(handshake_digest("abc", "p\xc3\xa4ssw\xc3\xb6rd&<") == "a90eb226507eef4c3aa8f12a338a8c5262042870");
}

TEST_CASE("the handshake check") {
  const std::string good = handshake_digest("id1", "secret");
  CHECK(handshake_matches(good, "id1", "secret"));
  std::string upper = good;
  for (char& c : upper)
    if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
  CHECK(handshake_matches(upper, "id1", "secret"));
  CHECK_FALSE(handshake_matches(good, "id2", "secret"));        // another stream's
  CHECK_FALSE(handshake_matches(good, "id1", "secreT"));        // another secret
  CHECK_FALSE(handshake_matches("", "id1", "secret"));
  CHECK_FALSE(handshake_matches(good.substr(0, 39), "id1", "secret"));
  CHECK_FALSE(handshake_matches(good + "0", "id1", "secret"));
  CHECK_FALSE(handshake_matches(" " + good, "id1", "secret"));
  CHECK_FALSE(handshake_matches("secret", "id1", "secret"));     // the secret itself
}

TEST_CASE("a component listener is read") {
  auto r = load_config_string(with_listener(kComponent, "limits: {max_component_queue: 50, "
                                                        "max_component_queue_bytes: 65536}\n"),
                              "test.yml");
  REQUIRE_MESSAGE(r, r.error().to_string());
  REQUIRE(r->listen.size() == 2);
  const auto& l = r->listen[1];
  CHECK(l.module == "component");
  CHECK(l.ip == "127.0.0.1");
  CHECK_FALSE(l.starttls_required);
  REQUIRE(l.component_hosts.size() == 2);
  CHECK(l.component_hosts[0].domain == "push.localhost");
  CHECK(l.component_hosts[0].password == "SECRET");
  CHECK(l.component_hosts[0].line == 7);
  CHECK(l.component_hosts[1].domain == "other.localhost");
  CHECK(l.component_hosts[1].password == "p&ss");
  CHECK(r->listen[0].component_hosts.empty());
  CHECK(r->limits.max_component_queue == 50);
  CHECK(r->limits.max_component_queue_bytes == 65536);

  parley::ComponentDirectory directory(*r);
  CHECK(directory.find("push.localhost") != nullptr);
  CHECK(directory.find("other.localhost") != nullptr);
  CHECK(directory.find("localhost") == nullptr);
  CHECK(directory.find("push.localhost")->loop.load() == -1);
  CHECK(directory.entries().size() == 2);
}

TEST_CASE("component domains are prepared") {
  auto r = load_config_string(with_listener("  - port: 5347\n    module: component\n"
                                            "    hosts: {PUSH.LocalHost: {password: s}}\n"),
                              "test.yml");
  REQUIRE_MESSAGE(r, r.error().to_string());
  CHECK(r->listen[1].component_hosts[0].domain == "push.localhost");
}

TEST_CASE("component listener errors name the line and the reason") {
  expect_error(with_listener("  - port: 5347\n    module: component\n"), 4, "hosts");
  expect_error(with_listener("  - port: 5347\n    hosts: {a.localhost: {password: s}}\n"), 5,
               "'hosts' is for a listener with module: component");
  expect_error(with_listener("  - port: 5347\n    module: component\n    hosts: {}\n"), 6, "at least one component");
  expect_error(with_listener("  - port: 5347\n    module: component\n    hosts: {a.localhost: {}}\n"), 6,
               "password");
  expect_error(with_listener("  - port: 5347\n    module: component\n    hosts: {a.localhost: {password: ''}}\n"), 6,
               "");
  expect_error(with_listener("  - port: 5347\n    module: component\n"
                             "    hosts: {a.localhost: {password: s, secret: t}}\n"),
               6, "secret");
  expect_error(with_listener("  - port: 5347\n    module: component\n    hosts: {'bad domain': {password: s}}\n"), 6,
               "not a valid component domain");
  expect_error(with_listener("  - port: 5347\n    module: component\n    tls: true\n"
                             "    hosts: {a.localhost: {password: s}}\n"),
               7, "no TLS");
  expect_error(with_listener("  - port: 5347\n    module: component\n"
                             "    hosts:\n      localhost: {password: s}\n"),
               7, "is a host of this server");
  expect_error(with_listener("  - port: 5347\n    module: component\n"
                             "    hosts:\n      a.localhost: {password: s}\n"
                             "  - port: 5348\n    module: component\n"
                             "    hosts:\n      A.localhost: {password: t}\n"),
               11, "also on the listener of line 4");
  expect_error(with_listener("  - port: 5347\n    module: kompo\n"), 5, "c2s, http or component");
  expect_error(with_listener(kComponent, "limits: {max_component_queue: 0}\n"), 10, "max_component_queue");
}
