// The schema of parley.yml: every key, its type and its range, in one place.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <new>
#include <optional>
#include <sstream>

#include <yaml-cpp/eventhandler.h>

#include "core/config/config.hpp"
#include "core/config/names.hpp"
#include "core/config/yaml_reader.hpp"

namespace parley::config {

using detail::Field;
using detail::Invalid;
using detail::MapReader;
using detail::read_bool;
using detail::read_string;
using detail::read_string_list;
using detail::read_uint;

std::string ConfigError::to_string() const {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line);
    if (column > 0) out += ":" + std::to_string(column);
  }
  return out + ": " + reason;
}

namespace {

constexpr uint64_t kMiB = 1024 * 1024;

void read_hosts(const Field& f, Config& c) {
  if (!f.value.IsSequence()) f.fail("expected a list of host names");
  if (f.value.size() == 0) f.fail("at least one host is required");
  size_t i = 0;
  for (const YAML::Node& item : f.value) {
    Field element{f.key, item, f.path + "[" + std::to_string(i++) + "]"};
    if (item.IsNull()) detail::fail(f.value, element.path + ": expected a host name, got nothing");
    std::string why;
    auto host = normalize_domain(read_string(element), why);
    if (!host) element.fail("'" + item.Scalar() + "' is not a valid host name: it " + why);
    for (const std::string& seen : c.hosts) {
      if (seen == *host) element.fail("duplicate host '" + *host + "'");
    }
    c.hosts.push_back(std::move(*host));
  }
}

// module: component (XEP-0114): `hosts: {DOMAIN: {password: SECRET}}` as in
// ejabberd; no TLS of its own (the protocol has no STARTTLS: keep it on a
// trusted address, 127.0.0.1 by default).
void read_component_listener(MapReader& m, Listener& l) {
  auto given = m.take("hosts");
  if (l.module != "component") {
    if (given) given->fail("'hosts' is for a listener with module: component");
    return;
  }
  const Field hosts_field = given ? *given : m.require("hosts");  // require fails, naming the entry
  const Field* hosts = &hosts_field;
  if (l.tls) detail::fail(hosts->value, "a component listener has no TLS (XEP-0114): remove tls: true");
  l.starttls_required = false;
  MapReader per_domain(hosts->value, "component hosts", hosts->path);
  for (const Field& entry : per_domain.take_all()) {
    ComponentHost host;
    host.line = detail::line_of(entry.key);
    std::string why;
    auto domain = normalize_domain(entry.key.Scalar(), why);
    if (!domain) detail::fail(entry.key, "'" + entry.key.Scalar() + "' is not a valid component domain: it " + why);
    for (const ComponentHost& seen : l.component_hosts)
      if (seen.domain == *domain) detail::fail(entry.key, "duplicate component '" + *domain + "'");
    host.domain = std::move(*domain);
    MapReader options(entry.value, "component host", entry.path);
    host.password = read_string(options.require("password"));
    options.finish();
    l.component_hosts.push_back(std::move(host));
  }
  if (l.component_hosts.empty()) detail::fail(hosts->value, hosts->path + ": at least one component is required");
}

Listener read_listener(const YAML::Node& node, const std::string& path, const std::string& file) {
  MapReader m(node, "listen entry", path);
  Listener l;
  l.file = file;
  l.line = detail::line_of(node);
  l.port = static_cast<uint16_t>(read_uint(m.require("port"), 1, 65535));
  if (auto f = m.take("ip")) {
    const std::string text = read_string(*f);
    auto ip = normalize_ip(text);
    if (!ip) f->fail("'" + text + "' is not an IPv4 or IPv6 address literal (no brackets, no port)");
    l.ip = std::move(*ip);
  }
  if (auto f = m.take("module")) {
    l.module = read_string(*f);
    if (l.module != "c2s" && l.module != "http" && l.module != "component")
      f->fail("unknown listener module '" + l.module + "' (c2s, http or component)");
  }
  if (auto f = m.take("tls")) l.tls = read_bool(*f);
  if (auto f = m.take("starttls_required")) {
    l.starttls_required = read_bool(*f);
    // RFC 7395: a WebSocket's TLS is its connection's (https); no STARTTLS.
    if (l.module == "http" && l.starttls_required) f->fail("an http listener has no STARTTLS (use tls: true)");
  }
  if (l.module == "http") l.starttls_required = false;
  if (auto f = m.take("backlog")) l.backlog = static_cast<int>(read_uint(*f, 1, 65535));
  if (auto f = m.take("allow_plain_without_tls")) l.allow_plain_without_tls = read_bool(*f);
  if (auto f = m.take("tls13_channel_binding")) l.tls13_channel_binding = read_bool(*f);
  read_component_listener(m, l);
  m.finish();
  return l;
}

void read_listen(const Field& f, Config& c) {
  if (!f.value.IsSequence()) f.fail("expected a list of listeners");
  if (f.value.size() == 0) f.fail("at least one listener is required");
  size_t i = 0;
  for (const YAML::Node& item : f.value) {
    const std::string path = f.path + "[" + std::to_string(i++) + "]";
    Listener l = read_listener(item, path, c.file);
    for (const Listener& other : c.listen) {
      if (other.port != l.port) continue;
      const std::string where = " (line " + std::to_string(other.line) + ")";
      if (other.ip == l.ip) {
        detail::fail(item, path + ": duplicate listener " + l.ip + " port " + std::to_string(l.port) + where);
      }
      // 0.0.0.0 covers every IPv4 address (:: every IPv6 one): both cannot be bound.
      if (is_ipv6(other.ip) == is_ipv6(l.ip) && (is_wildcard_ip(other.ip) || is_wildcard_ip(l.ip))) {
        detail::fail(item, path + ": listener " + l.ip + " port " + std::to_string(l.port) + " overlaps " +
                               other.ip + " port " + std::to_string(other.port) + where);
      }
    }
    c.listen.push_back(std::move(l));
  }
}

void read_storage(const Field& f, Config& c, bool& path_given) {
  MapReader m(f.value, "storage", f.path);
  // backend: (type: is its older name; both may be given only if they agree).
  std::optional<std::string> chosen;
  for (const char* key : {"type", "backend"}) {
    auto t = m.take(key);
    if (!t) continue;
    std::string backend = read_string(*t);
    if (backend != "sqlite" && backend != "postgresql")
      t->fail("unknown storage backend '" + backend + "' (sqlite or postgresql)");
    if (chosen && *chosen != backend) t->fail("backend '" + backend + "' contradicts type '" + *chosen + "'");
    chosen = backend;
  }
  if (chosen) c.storage.type = *chosen;
  if (auto p = m.take("path")) c.storage.path = read_string(*p), path_given = true;
  if (auto r = m.take("readers")) c.storage.readers = static_cast<unsigned>(read_uint(*r, 1, 64));
  auto url = m.take("url");
  if (url) {
    c.storage.url = read_string(*url);
    if (c.storage.type != "postgresql") url->fail("url is for the postgresql backend (backend: postgresql)");
    const std::string& u = c.storage.url;
    // libpq takes a URI or "key=value ..." pairs; anything else is a typo.
    if (u.rfind("postgresql://", 0) != 0 && u.rfind("postgres://", 0) != 0 && u.find('=') == std::string::npos)
      url->fail("'" + u + "' is not a PostgreSQL connection string (postgresql://user@host:port/db, or host=... dbname=...)");
  }
  if (auto n = m.take("max_connections")) {
    c.storage.max_connections = static_cast<unsigned>(read_uint(*n, 1, 100));
    if (c.storage.type != "postgresql") n->fail("max_connections is for the postgresql backend (backend: postgresql)");
  }
  if (c.storage.type == "postgresql" && !url) f.fail("the postgresql backend needs url: (a libpq connection string)");
  m.finish();
}

void read_limits(const Field& f, LimitsConfig& l) {
  MapReader m(f.value, "limits", f.path);
  // RFC 6120 section 13.12: a server must accept stanzas of at least 10000 bytes.
  if (auto v = m.take("max_stanza_bytes")) l.max_stanza_bytes = read_uint(*v, 10000, 64 * kMiB);
  if (auto v = m.take("max_xml_depth")) l.max_xml_depth = read_uint(*v, 1, 1024);
  if (auto v = m.take("max_xml_attributes")) l.max_xml_attributes = read_uint(*v, 1, 10000);
  if (auto v = m.take("max_attribute_bytes")) l.max_attribute_bytes = read_uint(*v, 1, 64 * kMiB);
  if (auto v = m.take("max_xml_elements")) l.max_xml_elements = read_uint(*v, 1, 65535);
  if (auto v = m.take("max_connections_per_ip")) l.max_connections_per_ip = read_uint(*v, 1, 10000000);
  if (auto v = m.take("max_auth_failures")) l.max_auth_failures = static_cast<unsigned>(read_uint(*v, 1, 1000));
  if (auto v = m.take("max_auth_failures_per_ip"))
    l.max_auth_failures_per_ip = static_cast<unsigned>(read_uint(*v, 0, 1000000));
  if (auto v = m.take("auth_failure_window")) l.auth_failure_window = static_cast<unsigned>(read_uint(*v, 1, 86400));
  if (auto v = m.take("auth_timeout")) l.auth_timeout = static_cast<unsigned>(read_uint(*v, 1, 86400));
  if (auto v = m.take("tls_handshake_timeout")) l.tls_handshake_timeout = static_cast<unsigned>(read_uint(*v, 1, 3600));
  if (auto v = m.take("max_bytes_per_second")) l.max_bytes_per_second = read_uint(*v, 0, 1ull << 40);
  if (auto v = m.take("max_sessions_per_user")) l.max_sessions_per_user = read_uint(*v, 1, 100000);
  // Below one maximal stanza a session could never be sent one.
  if (auto v = m.take("max_write_backlog")) l.max_write_backlog = read_uint(*v, 64 * 1024, 1ull << 40);
  if (auto v = m.take("max_write_backlog_total")) l.max_write_backlog_total = read_uint(*v, 64 * 1024, 1ull << 44);
  if (auto v = m.take("slow_reader_linger")) l.slow_reader_linger = static_cast<unsigned>(read_uint(*v, 0, 3600));
  if (auto v = m.take("max_lingering_sockets")) l.max_lingering_sockets = read_uint(*v, 0, 1000000);
  if (auto v = m.take("max_route_queue")) l.max_route_queue = read_uint(*v, 1000, 100000000);
  if (auto v = m.take("max_archive_queue")) l.max_archive_queue = read_uint(*v, 16, 100000000);
  if (auto v = m.take("archive_pace_queue")) {
    l.archive_pace_queue = read_uint(*v, 1, 100000000);
    if (l.archive_pace_queue >= l.max_archive_queue)
      v->fail("must be below max_archive_queue (" + std::to_string(l.max_archive_queue) +
              "): clients are paced before appends are refused");
  } else if (l.archive_pace_queue >= l.max_archive_queue) {
    l.archive_pace_queue = l.max_archive_queue / 2;
  }
  if (auto v = m.take("max_keyval_queue")) l.max_keyval_queue = read_uint(*v, 16, 100000000);
  if (auto v = m.take("max_module_sql_queue")) l.max_module_sql_queue = read_uint(*v, 16, 100000000);
  if (auto v = m.take("max_account_part_bytes")) l.max_account_part_bytes = read_uint(*v, 16384, 256 * 1024 * 1024);
  if (auto v = m.take("max_cached_credentials")) l.max_cached_credentials = read_uint(*v, 0, 100000000);
  if (auto v = m.take("max_cached_addresses")) l.max_cached_addresses = read_uint(*v, 0, 1000000);
  if (auto v = m.take("idle_parser_release"))
    l.idle_parser_release = static_cast<unsigned>(read_uint(*v, 0, 3600));
  if (auto v = m.take("max_component_queue")) l.max_component_queue = read_uint(*v, 1, 100000000);
  // Below one maximal stanza a component could never be queued one.
  if (auto v = m.take("max_component_queue_bytes"))
    l.max_component_queue_bytes = read_uint(*v, 64 * 1024, 1ull << 40);
  if (auto v = m.take("max_detached_stanzas")) l.max_detached_stanzas = read_uint(*v, 1, 1000000);
  // Below one maximal stanza a detached session could never keep one.
  if (auto v = m.take("max_detached_bytes")) l.max_detached_bytes = read_uint(*v, 64 * 1024, 1ull << 34);
  if (auto v = m.take("max_detached_seconds"))
    l.max_detached_seconds = static_cast<unsigned>(read_uint(*v, 1, 86400));
  if (auto v = m.take("http_max_header_bytes")) l.http_max_header_bytes = read_uint(*v, 1024, 1024 * 1024);
  if (auto v = m.take("http_max_body_bytes")) l.http_max_body_bytes = read_uint(*v, 0, 64 * kMiB);
  if (auto v = m.take("http_max_requests_per_connection"))
    l.http_max_requests_per_connection = static_cast<unsigned>(read_uint(*v, 1, 1000000));
  if (auto v = m.take("http_idle_timeout")) l.http_idle_timeout = static_cast<unsigned>(read_uint(*v, 1, 3600));
  if (auto v = m.take("http_max_connections_per_ip")) l.http_max_connections_per_ip = read_uint(*v, 0, 1000000);
  if (auto v = m.take("http_client_max_requests")) l.http_client_max_requests = read_uint(*v, 1, 1000000);
  if (auto v = m.take("http_client_max_response_bytes"))
    l.http_client_max_response_bytes = read_uint(*v, 1024, 64 * kMiB);
  // BOSH (issue 13).
  if (auto v = m.take("bosh_max_wait")) l.bosh_max_wait = static_cast<unsigned>(read_uint(*v, 1, 3600));
  if (auto v = m.take("bosh_max_hold")) l.bosh_max_hold = static_cast<unsigned>(read_uint(*v, 0, 16));
  if (auto v = m.take("bosh_inactivity")) l.bosh_inactivity = static_cast<unsigned>(read_uint(*v, 1, 86400));
  if (auto v = m.take("bosh_max_pause")) l.bosh_max_pause = static_cast<unsigned>(read_uint(*v, 0, 86400));
  if (auto v = m.take("bosh_polling")) l.bosh_polling = static_cast<unsigned>(read_uint(*v, 0, 3600));
  if (auto v = m.take("bosh_max_body_bytes")) l.bosh_max_body_bytes = read_uint(*v, 1024, 64 * kMiB);
  if (auto v = m.take("bosh_max_sessions_per_ip")) l.bosh_max_sessions_per_ip = read_uint(*v, 0, 1000000);
  m.finish();
}

void read_modules(const Field& f, Config& c, std::vector<ModuleConfig>& out) {
  MapReader m(f.value, "modules", f.path, /*allow_null=*/true);
  for (const Field& mod : m.take_all()) {
    const std::string& name = mod.key.Scalar();
    if (!is_module_name(name)) {
      detail::fail(mod.key, "'" + name + "' is not a module name (expected mod_ followed by a-z, 0-9 or _)");
    }
    ModuleConfig mc;
    mc.name = name;
    mc.file = c.file;
    mc.line = detail::line_of(mod.key);
    if (mod.value.IsNull()) {
      mc.options = YAML::Node(YAML::NodeType::Map);
    } else if (mod.value.IsMap()) {
      detail::check_bounded(mod.value, mod.path, 32, 10000);
      mc.options = mod.value;
    } else {
      mod.fail("module options must be a mapping (use {} for none)");
    }
    out.push_back(std::move(mc));
  }
}

// issue 17: `admins:` (top level or per host): bare JIDs of administrators.
// Checked for shape here (one '@', a localpart, a valid domain, no resource);
// host_api_admin.cpp compares them with the requester's prepared bare JID.
std::vector<std::string> read_admins(const Field& f) {
  if (!f.value.IsSequence()) f.fail("expected a list of bare JIDs (user@host)");
  std::vector<std::string> out;
  size_t i = 0;
  for (const YAML::Node& item : f.value) {
    Field element{f.key, item, f.path + "[" + std::to_string(i++) + "]"};
    if (item.IsNull()) detail::fail(f.value, element.path + ": expected a bare JID, got nothing");
    std::string jid = read_string(element);
    size_t at = jid.find('@');
    if (at == std::string::npos || at == 0 || jid.find('@', at + 1) != std::string::npos)
      element.fail("'" + jid + "' is not a bare JID (user@host)");
    if (jid.find('/') != std::string::npos) element.fail("'" + jid + "' has a resource: an admin is a bare JID");
    std::string local = jid.substr(0, at);
    for (char ch : local)
      if (static_cast<unsigned char>(ch) <= ' ' || std::string_view("\"&'/:<>").find(ch) != std::string_view::npos)
        element.fail("'" + jid + "': the localpart has a character JIDs do not allow");
    for (auto& ch : local) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::string why;
    auto domain = normalize_domain(std::string_view(jid).substr(at + 1), why);
    if (!domain) element.fail("'" + jid + "': the domain is not valid: it " + why);
    std::string bare = local + "@" + *domain;
    if (std::find(out.begin(), out.end(), bare) != out.end()) element.fail("duplicate admin '" + bare + "'");
    out.push_back(std::move(bare));
  }
  return out;
}

// ejabberd's host_config: per-host module lists that add modules for one host
// or replace a module's options there.
void read_host_config(const Field& f, Config& c) {
  MapReader hosts(f.value, "host_config", f.path);
  for (const Field& entry : hosts.take_all()) {
    std::string host = entry.key.Scalar();
    for (auto& ch : host) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (std::find(c.hosts.begin(), c.hosts.end(), host) == c.hosts.end())
      detail::fail(entry.key, "host_config for '" + host + "', which is not in hosts");
    MapReader per_host(entry.value, "host_config entry", entry.path);
    std::vector<ModuleConfig> modules;
    if (auto m = per_host.take("modules")) read_modules(*m, c, modules);
    if (auto a = per_host.take("admins")) c.host_admins[host] = read_admins(*a);
    per_host.finish();
    c.host_modules[host] = std::move(modules);
  }
}

// A component's domain is served by it alone: not a host of ours, not
// another listener's component.
void check_component_domains(const Config& c) {
  for (size_t i = 0; i < c.listen.size(); ++i) {
    for (const ComponentHost& host : c.listen[i].component_hosts) {
      auto fail = [&](const std::string& reason) {
        throw Invalid{host.line, 0, "component '" + host.domain + "': " + reason};
      };
      if (std::find(c.hosts.begin(), c.hosts.end(), host.domain) != c.hosts.end())
        fail("it is a host of this server (a component serves a domain of its own)");
      for (size_t j = 0; j < i; ++j)
        for (const ComponentHost& other : c.listen[j].component_hosts)
          if (other.domain == host.domain)
            fail("also on the listener of line " + std::to_string(c.listen[j].line));
    }
  }
}

Config read_config(const YAML::Node& root, std::string_view file_name) {
  Config c;
  c.file = std::string(file_name);
  MapReader top(root, "the top level", "");

  if (auto f = top.take("loglevel")) {
    c.loglevel = read_string(*f);
    static constexpr const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
    bool ok = false;
    for (const char* l : kLevels) ok = ok || c.loglevel == l;
    if (!ok) f->fail("unknown level '" + c.loglevel + "' (trace, debug, info, warn, error, critical or off)");
  }
  read_hosts(top.require("hosts"), c);
  if (auto f = top.take("workers")) c.workers = static_cast<unsigned>(read_uint(*f, 0, 1024));
  if (auto f = top.take("data_dir")) c.data_dir = read_string(*f);
  if (auto f = top.take("certfiles")) c.certfiles = read_string_list(*f);
  read_listen(top.require("listen"), c);
  bool storage_path_given = false;
  if (auto f = top.take("storage")) read_storage(*f, c, storage_path_given);
  bool control_socket_given = false;
  if (auto f = top.take("control_socket")) c.control_socket = read_string(*f), control_socket_given = true;
  if (auto f = top.take("module_paths")) c.module_paths = read_string_list(*f);
  if (auto f = top.take("metrics_allow")) c.metrics_allow = read_string_list(*f);
  if (auto f = top.take("limits")) read_limits(*f, c.limits);
  if (auto f = top.take("modules")) read_modules(*f, c, c.modules);
  if (auto f = top.take("host_config")) read_host_config(*f, c);
  if (auto f = top.take("admins")) c.admins = read_admins(*f);  // issue 17
  if (auto f = top.take("log_format")) {                        // issue 17
    c.log_format = read_string(*f);
    if (c.log_format != "text" && c.log_format != "json") f->fail("unknown log format '" + c.log_format + "' (text or json)");
  }
  top.finish();

  check_component_domains(c);
  if (!storage_path_given) c.storage.path = c.data_dir + "/parley.db";
  if (!control_socket_given) c.control_socket = c.data_dir + "/parley.sock";
  return c;
}

// Sees only where documents start; the nodes are built by YAML::Load afterwards.
class DocumentCounter : public YAML::EventHandler {
 public:
  YAML::Mark start = YAML::Mark::null_mark();
  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

ConfigError error_at(std::string_view file, const YAML::Mark& mark, std::string reason) {
  ConfigError e;
  e.file = std::string(file);
  if (mark.line >= 0) {
    e.line = mark.line + 1;
    e.column = mark.column >= 0 ? mark.column + 1 : 0;
  }
  e.reason = std::move(reason);
  return e;
}

// yaml-cpp's message for a tab in indentation is "illegal map value" or similar; say why.
std::string explain_parse_error(std::string_view yaml, const YAML::Mark& mark, const std::string& msg) {
  std::string reason = "invalid YAML: " + msg;
  if (mark.line < 0) return reason;
  size_t pos = 0;
  for (int l = 0; l < mark.line && pos != std::string_view::npos; ++l) {
    pos = yaml.find('\n', pos);
    if (pos != std::string_view::npos) ++pos;
  }
  if (pos == std::string_view::npos) return reason;
  const std::string_view line = yaml.substr(pos, yaml.find('\n', pos) - pos);
  if (line.find("::") != std::string_view::npos) {
    return reason + " (quote values that start with ':', such as IPv6 addresses: ip: \"::1\")";
  }
  for (size_t i = pos; i < yaml.size() && (yaml[i] == ' ' || yaml[i] == '\t'); ++i) {
    if (yaml[i] == '\t') return reason + " (tab in indentation: YAML indents with spaces only)";
  }
  return reason;
}

}  // namespace

Result<Config, ConfigError> load_config_string(std::string_view yaml, std::string_view file_name) {
  const YAML::Mark no_mark = YAML::Mark::null_mark();
  try {
    if (yaml.size() > kMaxConfigBytes) {
      return unexpected(error_at(file_name, no_mark,
                                 "the file is larger than " + std::to_string(kMaxConfigBytes) + " bytes"));
    }
    const std::string text(yaml);
    // Count documents first, stopping at two: YAML::LoadAll() loops forever (growing memory)
    // on a stray ',' at the start of a document, because yaml-cpp 0.7 returns an empty
    // document there without consuming the token.
    {
      std::istringstream in(text);
      YAML::Parser parser(in);
      DocumentCounter counter;
      if (!parser.HandleNextDocument(counter)) {
        return unexpected(error_at(file_name, no_mark, "the configuration is empty ('hosts' and 'listen' are required)"));
      }
      const YAML::Mark first = counter.start;
      if (parser.HandleNextDocument(counter)) {
        if (counter.start.pos == first.pos) {
          return unexpected(error_at(file_name, first, "invalid YAML: unexpected character"));
        }
        return unexpected(error_at(file_name, counter.start, "more than one YAML document"));
      }
    }
    return read_config(YAML::Load(text), file_name);
  } catch (const Invalid& e) {
    ConfigError err;
    err.file = std::string(file_name);
    err.line = e.line;
    err.column = e.column;
    err.reason = e.reason;
    return unexpected(std::move(err));
  } catch (const YAML::ParserException& e) {
    return unexpected(error_at(file_name, e.mark, explain_parse_error(yaml, e.mark, e.msg)));
  } catch (const YAML::Exception& e) {
    return unexpected(error_at(file_name, e.mark, "invalid YAML: " + e.msg));
  } catch (const std::bad_alloc&) {
    return unexpected(error_at(file_name, no_mark, "out of memory while reading the configuration"));
  } catch (const std::exception& e) {
    return unexpected(error_at(file_name, no_mark, std::string("cannot read the configuration: ") + e.what()));
  } catch (...) {
    return unexpected(error_at(file_name, no_mark, "cannot read the configuration"));
  }
}

Result<Config, ConfigError> load_config_file(const std::string& path) {
  try {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return unexpected(ConfigError{path, 0, 0, "is a directory"});
    std::ifstream in(path, std::ios::binary);
    if (!in) return unexpected(ConfigError{path, 0, 0, std::string("cannot open: ") + std::strerror(errno)});
    std::string text;
    char chunk[65536];
    while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
      text.append(chunk, static_cast<size_t>(in.gcount()));
      if (text.size() > kMaxConfigBytes) {
        return unexpected(ConfigError{path, 0, 0, "the file is larger than " + std::to_string(kMaxConfigBytes) + " bytes"});
      }
    }
    if (in.bad()) return unexpected(ConfigError{path, 0, 0, "read error"});
    return load_config_string(text, path);
  } catch (...) {
    return unexpected(ConfigError{path, 0, 0, "cannot read the file"});
  }
}

}  // namespace parley::config
