// mod_extdisco: XEP-0215 External Service Discovery (urn:xmpp:extdisco:2), the
// STUN and TURN servers that clients (Conversations, Dino, Gajim...) use for
// audio and video calls, as Prosody's mod_external_services and ejabberd's
// mod_stun_disco offer them.
//
//   get <services/> (optionally type='T')  -> every configured service (of type T),
//                                             with credentials (section 3.1-3.2)
//   get <credentials><service type host [port]/></credentials>
//                                          -> the credentials of the services named
//                                             (section 3.3); none named: item-not-found
//   set                                    -> not-allowed (pushes go from the server)
//   from anyone but this host's own users  -> forbidden (section 2: "forbidden if the
//                                             requesting entity does not have permission")
//
// Credentials are either static (in a service's URI) or, for TURN, made per
// request from the `secret` shared with the TURN server (coturn's
// use-auth-secret / static-auth-secret; eturnal's secret): username
// "EXPIRES:USER@HOST", password base64(HMAC-SHA1(secret, username)), valid
// for `credential_lifetime` seconds ('expires'). A service marked
// restricted=true is listed without them (restricted='true'): a client gets
// them with a <credentials/> request.
//
// Nothing is stored and nothing waits: every answer is made on the loop from
// the options, parsed once at start.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "extdisco_logic.hpp"
#include "parley/module.hpp"
#include "parley/sdk/stamp.hpp"

namespace {

namespace ext = parley::mod_extdisco;

constexpr const char* ns_extdisco = "urn:xmpp:extdisco:2";
constexpr int64_t default_lifetime = 86400;           // a day, as Prosody's external_service_ttl
constexpr int64_t max_lifetime = 30LL * 24 * 3600;    // a month: past that it is not short-term

class ModExtdisco : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    secret_ = host().option_string("secret").value_or("");
    if (auto given = host().option_string("secret"); given && given->empty())
      return parley::unexpected(std::string("secret must not be empty (leave it out for no TURN REST credentials)"));
    lifetime_ = host().option_int("credential_lifetime").value_or(default_lifetime);
    if (lifetime_ < 60 || lifetime_ > max_lifetime)
      return parley::unexpected("credential_lifetime must be 60-" + std::to_string(max_lifetime) + " seconds, not " +
                                std::to_string(lifetime_));
    username_with_jid_ = host().option_bool("username_with_jid").value_or(true);
    const auto uris = host().option_string_list("services").value_or(std::vector<std::string>{});
    for (std::size_t i = 0; i < uris.size(); ++i) {
      auto service = ext::parse_service(uris[i]);
      if (!service) return parley::unexpected("services[" + std::to_string(i) + "] " + service.error());
      if (service->restricted && !has_credentials(*service))
        return parley::unexpected("services[" + std::to_string(i) + "] '" + uris[i] +
                                  "': restricted=true needs credentials (a username and password, or a "
                                  "TURN service and the secret option)");
      if (service->is_turn() && !has_credentials(*service))
        host().warn("services[" + std::to_string(i) + "] '" + uris[i] +
                    "': a TURN service without credentials (no secret option, no username/password): clients "
                    "will have none to give it");
      services_.push_back(std::move(*service));
    }
    if (!secret_.empty() && secret_.size() < 16)
      host().warn("the secret is shorter than 16 bytes: anyone who guesses it makes TURN credentials");
    if (services_.empty()) host().warn("no services configured: <services/> is answered with an empty list");
    return {};
  }

  void on_iq(const parley::IqRequest& request) {
    if (request.type() != "get") return host().bounce(request.iq(), "not-allowed");
    auto from = parley::Jid::prepared(request.from());
    // Only this host's own accounts: the credentials open the operator's relay.
    if (!from.has_local() || from.domain() != host().module_host())
      return host().bounce(request.iq(), "forbidden", "external services are for this server's users");
    auto payload = request.payload();
    if (payload && payload->name() == "services") return on_services(request, *payload, from.bare_str());
    if (payload && payload->name() == "credentials") return on_credentials(request, *payload, from.bare_str());
    host().bounce(request.iq(), "bad-request", "the request is <services/> or <credentials/>");
  }

 private:
  bool has_credentials(const ext::Service& s) const {
    return s.has_static_credentials() || (s.is_turn() && !secret_.empty());
  }

  // Appends <service/> for `s`; credentials if `with_credentials` and it has any.
  void add_service(parley::ElementRef parent, const ext::Service& s, bool with_credentials, const std::string& user,
                   int64_t now) const {
    parley::ElementRef e = parent.add_child("service", ns_extdisco);
    e.set_attr("type", s.type).set_attr("host", s.host).set_attr("port", std::to_string(s.port));
    e.set_attr("transport", s.transport);
    if (!s.name.empty()) e.set_attr("name", s.name);
    if (!has_credentials(s)) return;
    // Credentials are needed to use it (section 2's 'restricted'), given here or asked for.
    e.set_attr("restricted", "true");
    if (!with_credentials) return;
    if (s.has_static_credentials()) {
      e.set_attr("username", s.username).set_attr("password", s.password);
      return;
    }
    const int64_t expires = now + lifetime_;
    auto c = ext::turn_rest_credentials(secret_, expires, username_with_jid_ ? user : std::string());
    e.set_attr("username", c.username).set_attr("password", c.password);
    e.set_attr("expires", parley::xep0082_stamp(expires * 1000));
  }

  void on_services(const parley::IqRequest& request, parley::ElementView query, const std::string& user) {
    auto type = query.attr("type");
    const int64_t now = unix_now();
    parley::Element reply = parley::make_iq_result(request.iq());
    parley::ElementRef list = reply.add_child("services", ns_extdisco);
    if (type) list.set_attr("type", *type);
    for (const auto& s : services_)
      if (!type || s.type == *type) add_service(list, s, !s.restricted, user, now);
    host().route(std::move(reply));
  }

  void on_credentials(const parley::IqRequest& request, parley::ElementView query, const std::string& user) {
    struct Wanted {
      std::string type, host;
      uint16_t port;
    };
    std::vector<Wanted> wanted;
    for (parley::ElementView child : query.children()) {
      if (child.name() != "service" || child.xmlns() != ns_extdisco) continue;
      auto type = child.attr("type");
      auto host_name = child.attr("host");
      // Section 3.3: the <service/> MUST include 'host' and 'type'.
      if (!type || type->empty() || !host_name || host_name->empty())
        return host().bounce(request.iq(), "bad-request", "a <service/> needs 'type' and 'host'");
      uint16_t port = 0;
      if (auto p = child.attr("port")) {
        auto parsed = ext::parse_port(*p);
        if (!parsed) return host().bounce(request.iq(), "bad-request", "'port' must be 1-65535");
        port = *parsed;
      }
      wanted.push_back({std::string(*type), std::string(*host_name), port});
    }
    if (wanted.empty()) return host().bounce(request.iq(), "bad-request", "name a <service type='...' host='...'/>");
    const int64_t now = unix_now();
    parley::Element reply = parley::make_iq_result(request.iq());
    parley::ElementRef list = reply.add_child("credentials", ns_extdisco);
    bool any = false;
    for (const auto& s : services_) {
      if (!has_credentials(s)) continue;
      for (const auto& w : wanted) {
        if (!ext::names(s, w.type, w.host, w.port)) continue;
        add_service(list, s, true, user, now);
        any = true;
        break;
      }
    }
    if (!any) return host().bounce(request.iq(), "item-not-found", "no service with credentials by that name");
    host().route(std::move(reply));
  }

  static int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  std::vector<ext::Service> services_;
  std::string secret_;
  int64_t lifetime_ = default_lifetime;
  bool username_with_jid_ = true;
};

}  // namespace

PARLEY_MODULE(ModExtdisco, "mod_extdisco", "1.0.0",
              parley::option("services", PARLEY_OPT_STRING_LIST),
              parley::option("secret", PARLEY_OPT_STRING),
              parley::option("credential_lifetime", PARLEY_OPT_INT),
              parley::option("username_with_jid", PARLEY_OPT_BOOL),
              parley::iq_handler<&ModExtdisco::on_iq>(PARLEY_IQ_SERVER, PARLEY_IQ_GET | PARLEY_IQ_SET, ns_extdisco),
              parley::disco_feature(ns_extdisco))
