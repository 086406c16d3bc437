#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <iterator>
#include <fstream>
#include <string>

#include "core/config/config.hpp"
#include "core/config/names.hpp"

using parley::config::Config;
using parley::config::ConfigError;
using parley::config::load_config_file;
using parley::config::load_config_string;

namespace {

const std::string kMinimal =
    "hosts: [example.org]\n"
    "listen:\n"
    "  - port: 5222\n";

Config load_ok(const std::string& yaml) {
  auto r = load_config_string(yaml, "test.yml");
  if (!r) FAIL("unexpected error: " << r.error().to_string());
  return *r;
}

ConfigError load_err(const std::string& yaml) {
  auto r = load_config_string(yaml, "test.yml");
  if (r) FAIL("expected an error for:\n" << yaml);
  return r.error();
}

void expect_error(const std::string& yaml, int line, int column, const std::string& fragment) {
  ConfigError e = load_err(yaml);
  INFO("yaml:\n" << yaml << "\nerror: " << e.to_string());
  CHECK(e.file == "test.yml");
  CHECK(e.line == line);
  if (column >= 0) CHECK(e.column == column);
  CHECK(e.reason.find(fragment) != std::string::npos);
}

}  // namespace

TEST_CASE("an http listener: no STARTTLS, https with tls: true") {
  auto r = load_config_string("hosts: [a]\nlisten:\n  - port: 5280\n    module: http\n  - port: 5443\n    module: http\n"
                              "    tls: true\n    allow_plain_without_tls: true\n", "t.yml");
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().to_string()));
  REQUIRE(r->listen.size() == 2);
  CHECK(r->listen[0].module == "http");
  CHECK_FALSE(r->listen[0].starttls_required);
  CHECK_FALSE(r->listen[0].tls);
  CHECK(r->listen[1].tls);
  CHECK(r->listen[1].allow_plain_without_tls);
  CHECK(r->limits.http_max_body_bytes == 65536);
  CHECK(r->limits.http_max_requests_per_connection == 100);
}

TEST_CASE("the shipped conf/parley.yml loads") {
  const std::string path = std::string(PARLEY_SOURCE_DIR) + "/conf/parley.yml";
  auto r = load_config_file(path);
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().to_string()));
  const Config& c = *r;
  CHECK(c.file == path);
  CHECK(c.loglevel == "info");
  REQUIRE(c.hosts.size() == 1);
  CHECK(c.hosts[0] == "localhost");
  CHECK(c.workers == 0);
  CHECK(c.data_dir == "data");
  CHECK(c.certfiles.empty());
  REQUIRE(c.listen.size() == 4);
  CHECK(c.listen[0].ip == "127.0.0.1");
  // HTTP on 5280 and HTTPS on 5443, as ejabberd ships (docs/http.md).
  CHECK(c.listen[2].module == "http");
  CHECK(c.listen[2].port == 5280);
  CHECK_FALSE(c.listen[2].tls);
  CHECK_FALSE(c.listen[2].starttls_required);
  CHECK(c.listen[3].module == "http");
  CHECK(c.listen[3].port == 5443);
  CHECK(c.listen[3].tls);
  CHECK(c.limits.http_max_header_bytes == 8192);
  CHECK(c.limits.http_idle_timeout == 60);
  CHECK(c.listen[0].port == 5222);
  CHECK(c.listen[0].module == "c2s");
  CHECK_FALSE(c.listen[0].tls);
  CHECK(c.listen[0].starttls_required);
  CHECK(c.listen[1].port == 5223);
  CHECK(c.listen[1].tls);
  CHECK(c.listen[1].backlog == 511);
  CHECK(c.storage.type == "sqlite");
  CHECK(c.storage.path == "data/parley.db");
  CHECK(c.control_socket == "data/parley.sock");
  CHECK(c.limits.max_stanza_bytes == 262144);
  CHECK(c.limits.max_bytes_per_second == 0);
  CHECK(c.limits.max_auth_failures == 3);
  CHECK(c.limits.max_auth_failures_per_ip == 20);
  CHECK(c.limits.auth_failure_window == 300);
  CHECK(c.limits.max_write_backlog == 4 * 1024 * 1024);
  CHECK(c.limits.max_write_backlog_total == 256 * 1024 * 1024);
  CHECK(c.limits.max_archive_queue == 65536);
  CHECK(c.limits.archive_pace_queue == 4096);
  CHECK(c.limits.max_keyval_queue == 65536);
  CHECK(c.limits.max_component_queue == 10000);
  CHECK(c.limits.max_component_queue_bytes == 16 * 1024 * 1024);
  CHECK(c.metrics_allow == std::vector<std::string>{"127.0.0.1", "::1"});
  CHECK(c.limits.http_max_connections_per_ip == 100);
  const char* const shipped[] = {"mod_disco",    "mod_ping",   "mod_version", "mod_vcard",   "mod_private",
                                 "mod_roster",   "mod_presence", "mod_offline", "mod_blocking", "mod_last",
                                 "mod_csi",      "mod_carbons", "mod_stream_mgmt", "mod_mam",    "mod_push",
                                 "mod_pep",      "mod_pubsub",  "mod_register", "mod_muc",  "mod_http_upload", "mod_adhoc",
                                 "mod_time"};
  REQUIRE(c.modules.size() == std::size(shipped));
  for (size_t i = 0; i < std::size(shipped); ++i) CHECK(c.modules[i].name == shipped[i]);
  CHECK(c.modules[0].options.IsMap());
  CHECK(c.modules[0].options.size() == 0);
  CHECK(c.modules[0].file == path);
  CHECK(c.modules[0].line > 40);
  CHECK(c.modules[1].line == c.modules[0].line + 1);
  CHECK(c.admins.empty());  // shipped commented out (issue 17)
}

// issue 17: the administrators of mod_adhoc's XEP-0133 commands.
TEST_CASE("admins: top level and per host, bare JIDs") {
  Config c = load_ok("hosts: [example.org, example.net]\nlisten:\n  - port: 5222\n"
                     "admins: [Admin@Example.ORG, ops@example.net]\n"
                     "host_config:\n  example.net:\n    admins: [boss@example.net]\n");
  CHECK(c.admins == std::vector<std::string>{"admin@example.org", "ops@example.net"});
  REQUIRE(c.host_admins.count("example.net") == 1);
  CHECK(c.host_admins["example.net"] == std::vector<std::string>{"boss@example.net"});
  CHECK(c.host_admins.count("example.org") == 0);
  CHECK(load_ok(kMinimal).admins.empty());
}

TEST_CASE("admins: errors name the entry's line") {
  expect_error(kMinimal + "admins:\n  - ok@example.org\n  - nobody\n", 6, -1, "not a bare JID");
  expect_error(kMinimal + "admins: [a@example.org/phone]\n", 4, -1, "has a resource");
  expect_error(kMinimal + "admins: [\"@example.org\"]\n", 4, -1, "not a bare JID");
  expect_error(kMinimal + "admins: [a@b@example.org]\n", 4, -1, "not a bare JID");
  expect_error(kMinimal + "admins: [a@-bad-]\n", 4, -1, "domain is not valid");
  expect_error(kMinimal + "admins: [a@example.org, A@example.org]\n", 4, -1, "duplicate admin");
  expect_error(kMinimal + "admins: a@example.org\n", 4, -1, "list of bare JIDs");
  expect_error(kMinimal + "host_config:\n  example.org:\n    admins: [x]\n", 6, -1, "not a bare JID");
}

TEST_CASE("defaults and derived paths") {
  Config c = load_ok(kMinimal);
  CHECK(c.file == "test.yml");
  CHECK(c.hosts == std::vector<std::string>{"example.org"});
  CHECK(c.listen.size() == 1);
  CHECK(c.listen[0].ip == "127.0.0.1");
  CHECK(c.listen[0].line == 3);
  CHECK(c.storage.path == "data/parley.db");
  CHECK(c.storage.readers == 2);
  CHECK(c.control_socket == "data/parley.sock");
  CHECK(c.module_paths.empty());
  CHECK(c.modules.empty());
  CHECK(c.limits.max_xml_depth == 32);

  c = load_ok(kMinimal + "data_dir: /var/lib/parley\n");
  CHECK(c.storage.path == "/var/lib/parley/parley.db");
  CHECK(c.control_socket == "/var/lib/parley/parley.sock");

  c = load_ok(kMinimal + "data_dir: /x\nstorage: {path: /db/p.db, readers: 8}\ncontrol_socket: /run/p.sock\n");
  CHECK(c.storage.path == "/db/p.db");
  CHECK(c.storage.readers == 8);
  CHECK(c.control_socket == "/run/p.sock");

  c = load_ok(kMinimal + "storage: {backend: postgresql, url: \"postgresql://parley@db/parley\", max_connections: 8}\n");
  CHECK(c.storage.type == "postgresql");
  CHECK(c.storage.url == "postgresql://parley@db/parley");
  CHECK(c.storage.max_connections == 8);

  // The keyval store's queue (issue 11), bounded as the archive's.
  c = load_ok(kMinimal + "limits:\n  max_keyval_queue: 200\n");
  CHECK(c.limits.max_keyval_queue == 200);
  expect_error(kMinimal + "limits:\n  max_keyval_queue: 0\n", 5, 21, "must be between 16");

  // The credential cache (issue 11): 0 turns it off.
  CHECK(load_ok(kMinimal).limits.max_cached_credentials == 10000);
  c = load_ok(kMinimal + "limits:\n  max_cached_credentials: 0\n");
  CHECK(c.limits.max_cached_credentials == 0);
  expect_error(kMinimal + "limits:\n  max_cached_credentials: 100000001\n", 5, 27, "must be between 0");
  CHECK(load_ok(kMinimal).limits.max_cached_addresses == 2048);
  CHECK(load_ok(kMinimal + "limits:\n  max_cached_addresses: 0\n").limits.max_cached_addresses == 0);
  expect_error(kMinimal + "limits:\n  max_cached_addresses: 1000001\n", 5, 25, "must be between 0");
}

TEST_CASE("every key is read") {
  Config c = load_ok(
      "loglevel: debug\n"
      "hosts: [Example.ORG, chat.example.net]\n"
      "workers: 4\n"
      "certfiles: [/etc/a.pem, b.pem]\n"
      "module_paths: [/usr/lib/parley]\n"
      "listen:\n"
      "  - {port: 5222, ip: '::1', backlog: 128, starttls_required: no}\n"
      "  - {port: 5222, ip: 127.0.0.1}\n"
      "  - {port: 5223, ip: '::', tls: true}\n"
      "limits:\n"
      "  max_stanza_bytes: 10000\n"
      "  max_xml_depth: 10\n"
      "  max_xml_attributes: 5\n"
      "  max_attribute_bytes: 100\n"
      "  max_connections_per_ip: 7\n"
      "  max_auth_failures: 1\n"
      "  auth_timeout: 5\n"
      "  tls_handshake_timeout: 2\n"
      "  max_bytes_per_second: 1024\n"
      "  max_sessions_per_user: 3\n"
      "  max_write_backlog: 65536\n"
      "  max_write_backlog_total: 1048576\n"
      "  max_archive_queue: 100\n"
      "modules:\n"
      "  mod_roster: {versioning: true, store: [a, b]}\n"
      "  mod_ping:\n");
  CHECK(c.loglevel == "debug");
  CHECK(c.hosts == std::vector<std::string>{"example.org", "chat.example.net"});
  CHECK(c.workers == 4);
  CHECK(c.certfiles == std::vector<std::string>{"/etc/a.pem", "b.pem"});
  CHECK(c.module_paths == std::vector<std::string>{"/usr/lib/parley"});
  REQUIRE(c.listen.size() == 3);
  CHECK(c.listen[0].ip == "::1");
  CHECK(c.listen[0].backlog == 128);
  CHECK_FALSE(c.listen[0].starttls_required);
  CHECK(c.listen[2].ip == "::");
  CHECK(c.listen[2].tls);
  CHECK(c.limits.max_stanza_bytes == 10000);
  CHECK(c.limits.max_xml_depth == 10);
  CHECK(c.limits.max_xml_attributes == 5);
  CHECK(c.limits.max_attribute_bytes == 100);
  CHECK(c.limits.max_connections_per_ip == 7);
  CHECK(c.limits.max_auth_failures == 1);
  CHECK(c.limits.auth_timeout == 5);
  CHECK(c.limits.tls_handshake_timeout == 2);
  CHECK(c.limits.max_bytes_per_second == 1024);
  CHECK(c.limits.max_sessions_per_user == 3);
  CHECK(c.limits.max_write_backlog == 65536);
  CHECK(c.limits.max_write_backlog_total == 1048576);
  CHECK(c.limits.max_archive_queue == 100);
  CHECK(c.limits.archive_pace_queue == 50);  // the default 4096 would be past it: half of it
  REQUIRE(c.modules.size() == 2);
  CHECK(c.modules[0].name == "mod_roster");
  CHECK(c.modules[0].line == 25);
  CHECK(c.modules[0].options["versioning"].as<bool>());
  CHECK(c.modules[0].options["store"].size() == 2);
  CHECK(c.modules[1].name == "mod_ping");
  CHECK(c.modules[1].options.IsMap());
}

TEST_CASE("error format") {
  ConfigError e{"conf/parley.yml", 12, 5, "unknown key 'prot' in listen entry"};
  CHECK(e.to_string() == "conf/parley.yml:12:5: unknown key 'prot' in listen entry");
  CHECK(ConfigError{"f.yml", 0, 0, "cannot open"}.to_string() == "f.yml: cannot open");
  CHECK(ConfigError{"f.yml", 3, 0, "x"}.to_string() == "f.yml:3: x");
}

TEST_CASE("unknown keys at every level, with their line") {
  expect_error(kMinimal + "hots: [a]\n", 4, 1, "unknown key 'hots' in the top level");
  expect_error("hosts: [a]\nlisten:\n  - port: 5222\n    prot: 1\n", 4, 5, "unknown key 'prot' in listen entry");
  ConfigError e = load_err("hosts: [a]\nlisten:\n  - port: 5222\n    prot: 1\n");
  CHECK(e.to_string() == "test.yml:4:5: unknown key 'prot' in listen entry (did you mean 'port'?)");
  expect_error(kMinimal + "limits:\n  max_stanza_bytez: 10000\n", 5, 3, "unknown key 'max_stanza_bytez' in limits");
  expect_error(kMinimal + "storage:\n  type: sqlite\n  file: x\n", 6, 3, "unknown key 'file' in storage");
  expect_error(kMinimal + "limits:\n  deeper:\n    nested: 1\n", 5, 3, "unknown key 'deeper'");
  // A suggestion only for near misses.
  e = load_err(kMinimal + "completely_else: 1\n");
  CHECK(e.reason.find("did you mean") == std::string::npos);
}

TEST_CASE("duplicate keys") {
  expect_error(kMinimal + "workers: 1\nworkers: 2\n", 5, 1, "duplicate key 'workers'");
  expect_error("hosts: [a]\nlisten:\n  - port: 1\n    port: 2\n", 4, 5, "duplicate key 'port' in listen entry");
  expect_error(kMinimal + "modules:\n  mod_a: {}\n  mod_a: {}\n", 6, 3, "duplicate key 'mod_a'");
}

TEST_CASE("types and ranges") {
  expect_error(kMinimal + "workers: abc\n", 4, 10, "workers: expected an integer, got 'abc'");
  expect_error(kMinimal + "workers: \"4\"\n", 4, 10, "expected an integer, got the quoted string");
  expect_error(kMinimal + "workers: 1025\n", 4, 10, "between 0 and 1024");
  expect_error(kMinimal + "workers: -1\n", 4, 10, "between 0 and 1024");
  expect_error(kMinimal + "workers: 99999999999999999999999\n", 4, 10, "between 0 and 1024");
  expect_error(kMinimal + "workers: 0x10\n", 4, 10, "expected an integer");
  expect_error(kMinimal + "workers: [1]\n", 4, 10, "expected an integer, got a list");
  expect_error(kMinimal + "workers:\n", 4, 1, "expected an integer, got nothing");
  expect_error(kMinimal + "data_dir:\n", 4, 1, "data_dir: expected a string, got nothing");
  expect_error(kMinimal + "data_dir: ''\n", 4, 11, "must not be empty");
  expect_error(kMinimal + "data_dir: {a: b}\n", 4, 11, "expected a string, got a mapping");
  expect_error(kMinimal + "loglevel: verbose\n", 4, 11, "unknown level 'verbose'");
  expect_error(kMinimal + "certfiles: a.pem\n", 4, 12, "certfiles: expected a list");
  expect_error(kMinimal + "certfiles: [a.pem, [b]]\n", 4, 20, "certfiles[1]: expected a string");
  expect_error(kMinimal + "limits:\n  max_stanza_bytes: 0\n", 5, 21, "limits.max_stanza_bytes: must be between 10000");
  expect_error(kMinimal + "limits:\n  max_xml_depth: 0\n", 5, 18, "between 1 and");
  expect_error(kMinimal + "limits:\n  auth_timeout: 0\n", 5, 17, "between 1 and");
  expect_error(kMinimal + "limits: 5\n", 4, 9, "limits: expected a mapping");
  expect_error(kMinimal + "limits:\n  max_write_backlog: 1000\n", 5, 22, "limits.max_write_backlog: must be between 65536");
  expect_error(kMinimal + "limits:\n  max_write_backlog_total: 0\n", 5, 28, "must be between 65536");
  expect_error(kMinimal + "limits:\n  max_archive_queue: 0\n", 5, 22, "must be between 16");
  // Clients are paced before appends are refused, never after (issue 11).
  expect_error(kMinimal + "limits:\n  max_archive_queue: 100\n  archive_pace_queue: 100\n", 6, 23,
               "limits.archive_pace_queue: must be below max_archive_queue (100)");
  expect_error(kMinimal + "limits:\n  archive_pace_queue: 0\n", 5, 23, "must be between 1");
  expect_error(kMinimal + "storage:\n  type: postgres\n", 5, 9, "sqlite or postgresql");
  // The postgresql backend (issue 11): a connection string is required, and is for it only.
  expect_error(kMinimal + "storage:\n  backend: postgresql\n", 5, 3, "needs url:");
  expect_error(kMinimal + "storage:\n  backend: postgresql\n  url: localhost\n", 6, 8, "not a PostgreSQL connection");
  expect_error(kMinimal + "storage:\n  url: postgresql://h/db\n", 5, 8, "for the postgresql backend");
  expect_error(kMinimal + "storage:\n  backend: postgresql\n  url: postgresql://h/db\n  max_connections: 0\n", 7, 20,
               "between 1 and 100");
  expect_error(kMinimal + "storage:\n  type: sqlite\n  backend: postgresql\n  url: postgresql://h/db\n", 6, 12,
               "contradicts");
  expect_error(kMinimal + "limits:\n  http_max_header_bytes: 10\n", 5, 26, "between 1024");
  expect_error(kMinimal + "limits:\n  http_idle_timeout: 0\n", 5, 22, "between 1 and");
  // RFC 7395: a WebSocket's TLS is the connection's; an http listener has no STARTTLS.
  expect_error("hosts: [a]\nlisten:\n  - port: 5280\n    module: http\n    starttls_required: true\n", 5, 24,
               "no STARTTLS");
  expect_error(kMinimal + "storage:\n  readers: 0\n", 5, 12, "between 1 and 64");
  expect_error("hosts: [a]\nlisten:\n  - port: 5222\n    tls: maybe\n", 4, 10, "expected true or false");
  expect_error("hosts: [a]\nlisten:\n  - port: 5222\n    tls: 'true'\n", 4, 10, "expected true or false");
  expect_error("hosts: [a]\nlisten:\n  - port: 0\n", 3, 11, "between 1 and 65535");
  expect_error("hosts: [a]\nlisten:\n  - port: 65536\n", 3, 11, "between 1 and 65535");
  expect_error("hosts: [a]\nlisten:\n  - port: 1\n    backlog: 0\n", 4, 14, "between 1 and 65535");
  expect_error("hosts: [a]\nlisten:\n  - port: 1\n    module: s2s\n", 4, 13, "c2s, http or component");
  expect_error("hosts: [a]\nlisten:\n  - ip: 127.0.0.1\n", 3, 5, "missing required key 'port' in listen entry");
  expect_error("hosts: [a]\nlisten:\n  - 5222\n", 3, 5, "listen entry: expected a mapping");
}

TEST_CASE("listeners: addresses and duplicates") {
  for (const char* good : {"0.0.0.0", "'::'", "\"::1\"", "'::1'", "192.168.1.10", "fe80::1", "'0:0:0:0:0:0:0:1'"}) {
    Config c = load_ok(std::string("hosts: [a]\nlisten:\n  - port: 5222\n    ip: ") + good + "\n");
    CHECK(!c.listen[0].ip.empty());
  }
  CHECK(load_ok("hosts: [a]\nlisten:\n  - {port: 1, ip: '0:0:0:0:0:0:0:1'}\n").listen[0].ip == "::1");
  CHECK(load_ok("hosts: [a]\nlisten:\n  - port: 1\n    ip: ::1\n").listen[0].ip == "::1");
  // yaml-cpp cannot read the plain scalar "::": say so.
  expect_error("hosts: [a]\nlisten:\n  - port: 1\n    ip: ::\n", 4, -1, "quote values that start with ':'");
  for (const char* bad : {"256.1.1.1", "localhost", "'[::1]'", "'::1%eth0'", "1.2.3", "'127.0.0.1:5222'", "''"}) {
    std::string yaml = std::string("hosts: [a]\nlisten:\n  - port: 5222\n    ip: ") + bad + "\n";
    ConfigError e = load_err(yaml);
    INFO(bad << " -> " << e.to_string());
    CHECK(e.line == 4);
    CHECK(e.column == 9);
  }
  expect_error("hosts: [a]\nlisten:\n  - port: 5222\n  - port: 5222\n", 4, 5,
               "duplicate listener 127.0.0.1 port 5222 (line 3)");
  expect_error("hosts: [a]\nlisten:\n  - {port: 5222, ip: '::1'}\n  - {port: 5222, ip: '0::1'}\n", 4, 5,
               "duplicate listener ::1 port 5222");
  expect_error("hosts: [a]\nlisten:\n  - {port: 5222, ip: 0.0.0.0}\n  - {port: 5222}\n", 4, 5, "overlaps 0.0.0.0");
  // Different ports, or an IPv4 and an IPv6 address on one port, are fine.
  CHECK(load_ok("hosts: [a]\nlisten:\n  - {port: 5222}\n  - {port: 5223}\n  - {port: 5222, ip: '::1'}\n")
            .listen.size() == 3);
  expect_error("hosts: [a]\nlisten: []\n", 2, 9, "at least one listener");
  expect_error("hosts: [a]\n", 1, 1, "missing required key 'listen'");
}

TEST_CASE("hosts") {
  expect_error("hosts: []\nlisten: [{port: 1}]\n", 1, 8, "at least one host");
  expect_error("listen: [{port: 1}]\n", 1, 1, "missing required key 'hosts'");
  expect_error("hosts: example.org\nlisten: [{port: 1}]\n", 1, 8, "expected a list");
  expect_error("hosts:\n  - example.org\n  - Example.Org\nlisten: [{port: 1}]\n", 3, 5, "duplicate host 'example.org'");
  expect_error("hosts: ['exa mple.org']\nlisten: [{port: 1}]\n", 1, 9, "not a valid host name");
  expect_error("hosts: ['-a.org']\nlisten: [{port: 1}]\n", 1, 9, "starting with '-'");
  expect_error("hosts: ['a..org']\nlisten: [{port: 1}]\n", 1, 9, "empty label");
  expect_error("hosts: ['a.org.']\nlisten: [{port: 1}]\n", 1, 9, "end with a dot");
  expect_error("hosts: ['b\xc3\xbc\x63her.de']\nlisten: [{port: 1}]\n", 1, 9, "A-label");
  expect_error("hosts: ['" + std::string(64, 'a') + ".org']\nlisten: [{port: 1}]\n", 1, 9, "longer than 63");
  expect_error("hosts:\n  -\nlisten: [{port: 1}]\n", 2, 3, "hosts[0]: expected a host name, got nothing");
  CHECK(load_ok("hosts: [xn--bcher-kva.de, LOCALHOST]\nlisten: [{port: 1}]\n").hosts ==
        std::vector<std::string>{"xn--bcher-kva.de", "localhost"});
}

TEST_CASE("modules") {
  expect_error(kMinimal + "modules:\n  roster: {}\n", 5, 3, "'roster' is not a module name");
  expect_error(kMinimal + "modules:\n  mod_Roster: {}\n", 5, 3, "is not a module name");
  expect_error(kMinimal + "modules:\n  mod_roster: [a]\n", 5, 15, "must be a mapping");
  expect_error(kMinimal + "modules:\n  mod_roster: yes\n", 5, 15, "must be a mapping");
  expect_error(kMinimal + "modules: [mod_a]\n", 4, 10, "modules: expected a mapping");
  // Options go to modules as YAML: cycles and alias bombs stop here.
  expect_error(kMinimal + "modules:\n  mod_a: &x {self: *x}\n", 5, -1, "modules.mod_a: nested deeper than 32 levels");
  std::string bomb = kMinimal + "modules:\n  mod_a:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'h'; ++c) {
    bomb += std::string("    ") + c + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + static_cast<char>(c - 1);
    bomb += "]\n";
  }
  ConfigError e = load_err(bomb);
  CHECK(e.reason.find("too many values") != std::string::npos);
  std::string deep = kMinimal + "modules:\n  mod_a: {a: ";
  for (int i = 0; i < 40; ++i) deep += "[";
  for (int i = 0; i < 40; ++i) deep += "]";
  deep += "}\n";
  e = load_err(deep);
  CHECK(e.reason.find("nested deeper than 32") != std::string::npos);
  CHECK(load_ok(kMinimal + "modules:\n").modules.empty());
  CHECK(load_ok(kMinimal + "modules: {}\n").modules.empty());
}

TEST_CASE("malformed YAML") {
  ConfigError e = load_err("hosts: [a]\nlisten:\n\t- port: 5222\n");
  INFO(e.to_string());
  CHECK(e.line == 3);
  CHECK(e.reason.find("invalid YAML") != std::string::npos);
  CHECK(e.reason.find("tab") != std::string::npos);

  e = load_err("hosts: [a\nlisten: []\n");
  CHECK(e.line >= 1);
  CHECK(e.reason.find("invalid YAML") != std::string::npos);

  e = load_err("hosts: [\"unterminated]\n");
  CHECK(e.reason.find("invalid YAML") != std::string::npos);

  expect_error("", 0, 0, "the configuration is empty");
  expect_error("# only a comment\n", 0, 0, "the configuration is empty");
  expect_error("- a\n- b\n", 1, 1, "the top level: expected a mapping, got a list");
  expect_error("just a string\n", 1, 1, "expected a mapping");
  expect_error(kMinimal + "---\nhosts: [b]\n", 4, 1, "more than one YAML document");
  expect_error(kMinimal + "? [a, b]\n: c\n", 4, 3, "must be a plain name");
  load_err(std::string("hosts: [a]\0\nlisten: []\n", 23));
  load_err("\xff\xfe\x00h\x00o");
  load_err("*unknown\n");
  // yaml-cpp's LoadAll() never returns on these.
  expect_error(",", 1, 1, "invalid YAML");
  expect_error("# comment\n, a\n", 2, 1, "invalid YAML");
  load_err("hosts: !!binary 'zz'\n");
}

TEST_CASE("huge and deep documents fail cleanly") {
  std::string huge = kMinimal + "data_dir: '" + std::string(parley::config::kMaxConfigBytes, 'x') + "'\n";
  ConfigError e = load_err(huge);
  CHECK(e.reason.find("larger than") != std::string::npos);

  std::string deep_flow = "hosts: " + std::string(100000, '[') + std::string(100000, ']') + "\n";
  e = load_err(deep_flow);
  CHECK(!e.reason.empty());

  std::string deep_block = "hosts:\n";
  for (int i = 1; i < 1200; ++i) deep_block += std::string(static_cast<size_t>(i), ' ') + "k:\n";
  e = load_err(deep_block);
  CHECK(!e.reason.empty());

  std::string many_keys = kMinimal + "modules:\n";
  for (int i = 0; i < 5000; ++i) many_keys += "  mod_m" + std::to_string(i) + ": {}\n";
  CHECK(load_ok(many_keys).modules.size() == 5000);
}

TEST_CASE("load_config_file errors") {
  auto r = load_config_file("/nonexistent/parley.yml");
  REQUIRE_FALSE(r);
  CHECK(r.error().file == "/nonexistent/parley.yml");
  CHECK(r.error().line == 0);
  CHECK(r.error().reason.find("cannot open") != std::string::npos);

  r = load_config_file("/");
  REQUIRE_FALSE(r);
  CHECK(r.error().reason.find("directory") != std::string::npos);

  const std::string path = std::filesystem::temp_directory_path() / "parley_config_test.yml";
  {
    std::ofstream out(path);
    out << kMinimal << "workers: many\n";
  }
  r = load_config_file(path);
  std::remove(path.c_str());
  REQUIRE_FALSE(r);
  CHECK(r.error().to_string() == path + ":4:10: workers: expected an integer, got 'many'");
}

TEST_CASE("names") {
  using parley::config::normalize_ip;
  CHECK(normalize_ip("127.0.0.1") == "127.0.0.1");
  CHECK(normalize_ip("::ffff:1.2.3.4") == "::ffff:1.2.3.4");
  CHECK_FALSE(normalize_ip("01.2.3.4"));
  CHECK_FALSE(normalize_ip(std::string(100, '1')));
  CHECK(parley::config::is_module_name("mod_mam2_x"));
  CHECK_FALSE(parley::config::is_module_name("mod_"));
  CHECK_FALSE(parley::config::is_module_name("mod-x"));
}

TEST_CASE("host_config: per-host modules (ejabberd's host_config)") {
  Config c = load_ok(kMinimal +
                     "modules:\n  mod_ping: {}\n"
                     "host_config:\n  Example.ORG:\n    modules:\n      mod_echo: {word: hi}\n      mod_ping: {}\n");
  REQUIRE(c.host_modules.count("example.org") == 1);
  const auto& modules = c.host_modules.at("example.org");
  REQUIRE(modules.size() == 2);
  CHECK(modules[0].name == "mod_echo");
  CHECK(modules[0].options["word"].as<std::string>() == "hi");
  CHECK(modules[0].line == 9);
  expect_error(kMinimal + "host_config:\n  other.org:\n    modules: {}\n", 5, 3, "not in hosts");
  expect_error(kMinimal + "host_config:\n  example.org:\n    listen: []\n", 6, 5, "unknown key 'listen'");
  expect_error(kMinimal + "host_config:\n  example.org:\n    modules:\n      ping: {}\n", 7, 7, "not a module name");
}

TEST_CASE("listeners: allow_plain_without_tls is an explicit opt-in") {
  Config c = load_ok(kMinimal);
  CHECK_FALSE(c.listen[0].allow_plain_without_tls);
  c = load_ok("hosts: [example.org]\nlisten:\n  - port: 5222\n    starttls_required: false\n"
              "    allow_plain_without_tls: true\n");
  CHECK(c.listen[0].allow_plain_without_tls);
  expect_error("hosts: [example.org]\nlisten:\n  - port: 5222\n    allow_plain_without_tls: maybe\n", 4, -1,
               "allow_plain_without_tls");
}

TEST_CASE("listeners: tls13_channel_binding is an explicit opt-in") {
  Config c = load_ok(kMinimal);
  CHECK_FALSE(c.listen[0].tls13_channel_binding);
  c = load_ok("hosts: [example.org]\nlisten:\n  - port: 5222\n    tls13_channel_binding: true\n");
  CHECK(c.listen[0].tls13_channel_binding);
  expect_error("hosts: [example.org]\nlisten:\n  - port: 5222\n    tls13_channel_binding: 1.3\n", 4, -1,
               "tls13_channel_binding");
}

TEST_CASE("limits: a cut slow reader's socket lingers, bounded") {
  Config c = load_ok(kMinimal);
  CHECK(c.limits.slow_reader_linger == 60);
  CHECK(c.limits.max_lingering_sockets == 1024);
  c = load_ok(kMinimal + "limits:\n  slow_reader_linger: 0\n  max_lingering_sockets: 10\n");
  CHECK(c.limits.slow_reader_linger == 0);
  CHECK(c.limits.max_lingering_sockets == 10);
  expect_error(kMinimal + "limits:\n  slow_reader_linger: 7200\n", 5, -1, "slow_reader_linger");
}

TEST_CASE("limits: an idle stream's parser is freed after idle_parser_release seconds (0: after every read)") {
  Config c = load_ok(kMinimal);
  CHECK(c.limits.idle_parser_release == 1);
  c = load_ok(kMinimal + "limits:\n  idle_parser_release: 0\n");
  CHECK(c.limits.idle_parser_release == 0);
  expect_error(kMinimal + "limits:\n  idle_parser_release: 7200\n", 5, -1, "idle_parser_release");
  expect_error(kMinimal + "limits:\n  idle_parser_release: -1\n", 5, -1, "idle_parser_release");
}

// issue 17: the operator log's format.
TEST_CASE("log_format: text or json") {
  CHECK(load_ok(kMinimal).log_format == "text");
  CHECK(load_ok(kMinimal + "log_format: json\n").log_format == "json");
  expect_error(kMinimal + "log_format: xml\n", 4, -1, "unknown log format 'xml'");
}
