// core/config/config.hpp - parley.yml, the server's ejabberd-like YAML configuration.
//
// The loader is strict: an unknown key at any level, a value of the wrong type or out of
// range refuses to start the server with "file:line:column: reason". A typo that is
// silently ignored is a security setting that silently does not apply.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "parley/result.hpp"

namespace parley::config {

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when the error has no position (e.g. unreadable file)
  int column = 0;  // 1-based; 0 when unknown
  std::string reason;

  // "conf/parley.yml:12:5: unknown key 'prot' in listen entry"; "file: reason" without a position.
  std::string to_string() const;
};

// An external component (XEP-0114) a `module: component` listener accepts:
// its domain and the shared secret of its handshake.
struct ComponentHost {
  std::string domain;    // prepared (nameprep), never a served host, unique over every listener
  std::string password;  // non-empty
  int line = 0;
};

struct Listener {
  std::string ip = "127.0.0.1";  // canonical text form (inet_ntop), IPv4 or IPv6
  uint16_t port = 0;             // required, 1..65535
  // "c2s", or "http": HTTP/1.1 with XMPP over WebSocket (RFC 7395) at
  // /xmpp-websocket and XEP-0156 host-meta (docs/http.md), or "component":
  // XEP-0114 external components (docs/components.md)
  std::string module = "c2s";
  bool tls = false;              // direct TLS (XEP-0368; https for http) instead of STARTTLS
  bool starttls_required = true;  // always false for http: a WebSocket's TLS is the connection's
  int backlog = 511;
  // PLAIN and in-band registration (a cleartext password either way) on a
  // stream that is not encrypted, where STARTTLS is optional. Off: only for
  // load tools that speak nothing else, on a trusted network.
  bool allow_plain_without_tls = false;
  // SCRAM-*-PLUS on TLS 1.3 connections, with tls-exporter and
  // tls-server-end-point (listed per XEP-0440). Off by default: clients that
  // ignore XEP-0440's list (slixmpp 1.8, OpenSSL-based bots) bind every -PLUS
  // with tls-unique, which TLS 1.3 does not define (RFC 9266), and could then
  // not log in at all, since RFC 5802 also forbids their fallback (gs2 'y')
  // while -PLUS is offered. Below TLS 1.3 -PLUS is always offered.
  bool tls13_channel_binding = false;
  // module: component only: the components it accepts (`hosts:`), non-empty.
  std::vector<ComponentHost> component_hosts;

  // Where the entry was written, for messages such as "cannot bind".
  std::string file;
  int line = 0;
};

struct StorageConfig {
  std::string type = "sqlite";  // the backend: "sqlite" or "postgresql" (key backend:, or type:)
  std::string path;  // default: data_dir + "/parley.db"
  unsigned readers = 2;
  // The postgresql backend (issue 11): a libpq connection string (URI or key=value), and
  // the connections Parley opens at most. With it, the accounts and the archive are on
  // PostgreSQL; the main SQLite file (path) keeps the modules' tables.
  std::string url;
  unsigned max_connections = 4;
};

struct LimitsConfig {
  size_t max_stanza_bytes = 262144;
  size_t max_xml_depth = 32;
  size_t max_xml_attributes = 64;
  size_t max_attribute_bytes = 8192;
  size_t max_xml_elements = 10000;      // elements in one stanza
  size_t max_connections_per_ip = 1000;
  unsigned max_auth_failures = 3;       // per stream, then policy-violation
  unsigned max_auth_failures_per_ip = 20;  // in auth_failure_window, then temporary-auth-failure; 0 = off
  unsigned auth_failure_window = 300;   // seconds
  unsigned auth_timeout = 30;           // seconds
  unsigned tls_handshake_timeout = 10;  // seconds
  size_t max_bytes_per_second = 0;      // 0 = unlimited
  size_t max_sessions_per_user = 100;
  // Bytes a connection may leave unread in its write backlog before it is cut
  // as a slow reader; and the budget of all backlogs together (each worker
  // loop gets total / workers).
  size_t max_write_backlog = 4 * 1024 * 1024;
  size_t max_write_backlog_total = 256 * 1024 * 1024;
  // A connection cut as a slow reader keeps its socket this long (seconds; 0:
  // closed at once), so the kernel can still deliver what it took (the socket
  // is no orphan to be reset); at most this many such sockets per worker loop.
  unsigned slow_reader_linger = 60;
  size_t max_lingering_sockets = 1024;
  // A session a module keeps on a lost connection (XEP-0198 resumption):
  // stanzas that may wait for its next connection, and for how long.
  size_t max_detached_stanzas = 1000;
  size_t max_detached_bytes = 1024 * 1024;  // their serialized bytes together
  unsigned max_detached_seconds = 300;
  // Stanzas one worker loop may have waiting in another's inbox (a route that
  // leaves the loop): past it, a stanza for a session over there is answered
  // with <resource-constraint/> instead of queued.
  size_t max_route_queue = 100000;
  // HTTP listeners (module: http): request line and headers, a request body,
  // requests on one connection (the last answered with Connection: close),
  // and seconds a connection may stay without a completed request before it
  // is upgraded to a WebSocket.
  size_t http_max_header_bytes = 8192;
  size_t http_max_body_bytes = 65536;
  unsigned http_max_requests_per_connection = 100;
  unsigned http_idle_timeout = 60;
  // Open connections of one address on the HTTP listeners (within
  // max_connections_per_ip); past it a connection's first request gets 503
  // and it closes. 0: no limit of its own.
  size_t http_max_connections_per_ip = 100;
  // issue 14: the HTTP client modules use (http_request): requests in flight
  // per worker loop (past it a request is refused), and the largest response
  // body taken (past it the request fails "too-large").
  size_t http_client_max_requests = 256;
  size_t http_client_max_response_bytes = 1024 * 1024;
  // BOSH (XEP-0124/0206 at /http-bind on the HTTP listeners, issue 13):
  // the most a session may ask for (`wait` seconds a request is held, `hold`
  // requests held at once; `requests` is hold + 1), the seconds without a
  // request before a session ends (`inactivity`) and the longest pause a
  // client may ask for (`maxpause`), the shortest polling interval, a request
  // body (past it 413), and BOSH sessions of one address (past it
  // policy-violation; 0: no limit). A session's output waiting for a request
  // is bounded by max_write_backlog, as a socket's is.
  unsigned bosh_max_wait = 60;
  unsigned bosh_max_hold = 1;
  unsigned bosh_inactivity = 60;
  unsigned bosh_max_pause = 120;
  unsigned bosh_polling = 2;
  size_t bosh_max_body_bytes = 270336;
  size_t bosh_max_sessions_per_ip = 100;
  // Operations waiting for the archive store (issue 11): past it an append is
  // refused (the message is delivered, not archived) instead of queued.
  size_t max_archive_queue = 65536;
  // Past this many operations waiting (and the store working through them), an append
  // for a client's message holds that client's input until that append is stored (ABI
  // 1.11 archive_append_paced): clients send no faster than the archive stores, and what they
  // send is not refused for a full queue. Below max_archive_queue (the loader makes it
  // half of that when a smaller max_archive_queue is given alone).
  size_t archive_pace_queue = 4096;
  // Operations waiting for the keyval store (issue 11: vCards, private XML, last
  // activity): past it an operation fails at once (resource-constraint).
  size_t max_keyval_queue = 65536;
  // Writes of modules' own SQL on PostgreSQL (ABI 1.7) waiting while the database is away
  // (or busy): past it a statement fails at once.
  size_t max_module_sql_queue = 65536;
  // XEP-0227 export and import through the control socket (h-export): the bytes of
  // one request of an import (parleyctl sends a larger account in several: its message
  // archive and offline messages a batch at a time) and the bytes of an export the server
  // keeps for the socket before the modules reading it wait. A per-request bound; an
  // account of any size moves in pieces of it.
  size_t max_account_part_bytes = 8 * 1024 * 1024;
  // Accounts whose SCRAM records (and disabled flag) are kept in memory after a
  // login, for logins while the database fails (storage/caching_account_store.hpp);
  // 0: none kept.
  size_t max_cached_credentials = 10000;
  // Prepared addresses (RFC 7622) kept per worker loop, so that a contact's
  // address is prepared once, not on every stanza (core/addr/jid_cache.hpp);
  // 0: none kept.
  size_t max_cached_addresses = 2048;
  // Seconds without a byte after which a busy online stream's expat parser is
  // freed (after one to two of them: core/c2s/idle_parser_sweep.hpp); a stream
  // is busy once it was read from in two such periods in a row (until then,
  // a login for instance, the parser goes after every read); 0: after every
  // read (least memory, most CPU at a human pace).
  unsigned idle_parser_release = 1;

  // External components (XEP-0114): stanzas (and their bytes) that may wait
  // for one component that does not read fast enough; past either, a stanza
  // for it is answered with <resource-constraint/> instead of queued.
  size_t max_component_queue = 10000;
  size_t max_component_queue_bytes = 16 * 1024 * 1024;

  // Issue 17 (parleyctl reload-config): a changed limit is named and refused (the loops
  // read limits without synchronization, so they cannot change under them).
  bool operator==(const LimitsConfig&) const = default;
};

struct ModuleConfig {
  std::string name;      // mod_[a-z0-9_]+
  YAML::Node options;    // always a map (empty when the file says `{}` or nothing); marks kept
  std::string file;
  int line = 0;          // 1-based line of the module's name
};

struct Config {
  std::string file;                       // path it was loaded from
  std::string loglevel = "info";          // trace debug info warn error critical off
  std::vector<std::string> hosts;         // non-empty, lowercased, valid domains, no duplicates
  unsigned workers = 0;                   // 0 = hardware_concurrency; at most 1024
  std::string data_dir = "data";
  std::vector<std::string> certfiles;
  std::vector<Listener> listen;           // non-empty; no duplicate ip:port
  StorageConfig storage;
  std::string control_socket;             // default: data_dir + "/parley.sock"
  std::vector<std::string> module_paths;
  LimitsConfig limits;
  // Addresses the HTTP listeners answer /metrics to (issue 13); others get 403.
  std::vector<std::string> metrics_allow{"127.0.0.1", "::1"};
  std::vector<ModuleConfig> modules;      // in file order
  // host_config: HOST: {modules: ...}: modules enabled for that host only, or
  // other options there for a module of `modules` (ejabberd's host_config).
  std::map<std::string, std::vector<ModuleConfig>> host_modules;
  // ---- issue 17: service administration (XEP-0133 ad-hoc commands) ----
  // `admins:` at the top level (administrators of every host) and in a
  // host_config entry (of that host only): bare JIDs "user@domain", the
  // localpart ASCII-lowercased and the domain normalized. Not changed by a
  // reload (reload-config refuses a change: restart to apply it).
  std::vector<std::string> admins;
  std::map<std::string, std::vector<std::string>> host_admins;
  // ---- issue 17: operator logs ----
  // "text" (spdlog's lines) or "json" (one JSON object per line, the same
  // fields: core/server/log_format.hpp). Read at start only.
  std::string log_format = "text";
};

// Larger configuration files are refused outright: a config is a page of text, and the
// parser's cost should not be attacker-sized if the file ever comes from elsewhere.
inline constexpr size_t kMaxConfigBytes = 1 << 20;

// Never throws; every yaml-cpp exception becomes a ConfigError.
Result<Config, ConfigError> load_config_file(const std::string& path);
Result<Config, ConfigError> load_config_string(std::string_view yaml, std::string_view file_name);

}  // namespace parley::config
