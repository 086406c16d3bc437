// mod_version: XEP-0092 Software Version of the server.
//
// Only the server's own version: an iq to a user's JID is that user's client's
// business, and the core routes it there. The operating system is left out
// unless the operator asks for it (`show_os: true`): it tells an attacker
// which exploits to try, which is why XEP-0092 section 5 makes it optional.
#include <sys/utsname.h>

#include <string>

#include "parley/module.hpp"

namespace {

constexpr const char* ns_version = "jabber:iq:version";
constexpr const char* module_version = "1.0.0";

class ModVersion : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    version_ = host().option_string("version").value_or(module_version);
    if (version_.empty()) return parley::unexpected(std::string("version must not be empty"));
    if (host().option_bool("show_os").value_or(false)) {
      // Once, here: uname() does not change while we run.
      struct utsname u {};
      if (uname(&u) == 0) os_ = std::string(u.sysname) + " " + u.release + " " + u.machine;
    }
    return {};
  }

  void on_version(const parley::IqRequest& request) {
    // XEP-0092 defines only the get; setting the server's version makes no sense.
    if (request.type() != "get") return host().bounce(request.iq(), "not-allowed");
    auto query = request.payload();
    if (!query || query->name() != "query") return host().bounce(request.iq(), "bad-request");
    parley::Element reply = parley::make_iq_result(request.iq());
    parley::ElementRef answer = reply.add_child("query", ns_version);
    answer.add_child("name", ns_version).add_text("Parley");
    answer.add_child("version", ns_version).add_text(version_);
    if (!os_.empty()) answer.add_child("os", ns_version).add_text(os_);
    host().route(std::move(reply));
  }

 private:
  std::string version_;
  std::string os_;  // empty: not shown
};

}  // namespace

PARLEY_MODULE(ModVersion, "mod_version", module_version,
              parley::option("version", PARLEY_OPT_STRING),
              parley::option("show_os", PARLEY_OPT_BOOL),
              parley::iq_handler<&ModVersion::on_version>(PARLEY_IQ_SERVER, PARLEY_IQ_GET | PARLEY_IQ_SET, ns_version),
              parley::disco_feature(ns_version))
