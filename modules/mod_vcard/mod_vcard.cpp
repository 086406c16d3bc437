// mod_vcard: XEP-0054 vcard-temp.
//
//   get, no 'to' or to one's own bare JID  -> one's vCard (an empty <vCard/> if none)
//   get to another user's bare JID         -> that user's vCard (vCards are world-readable);
//                                             service-unavailable if there is none
//   set, no 'to' or to one's own bare JID  -> replaces one's vCard
//   set to anybody else                    -> forbidden
//
// A module cannot tell whether an account exists, and it need not: XEP-0054
// section 3.3 answers "no vCard" and "no such user" alike (service-unavailable),
// which is also what RFC 6121 section 8.5.1 gives an iq to an account that does
// not exist, so neither answer reveals which accounts there are.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "parley/module.hpp"

namespace {

constexpr const char* ns_vcard = "vcard-temp";
constexpr int64_t default_max_bytes = 65536;

class ModVcard : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    max_bytes_ = host().option_int("max_bytes").value_or(default_max_bytes);
    if (max_bytes_ <= 0) return parley::unexpected(std::string("max_bytes must be positive"));
    return {};
  }

  void on_vcard(const parley::IqRequest& request) {
    auto vcard = request.payload();
    if (!vcard || vcard->name() != "vCard") return host().bounce(request.iq(), "bad-request");
    std::string_view to = request.to();  // the account's bare JID (the core fills in a missing 'to')
    bool own = parley::bare_jid(request.from()) == to;
    std::string user = parley::Jid::prepared(to).local();
    if (request.type() == "set") {
      if (!own) return host().bounce(request.iq(), "forbidden", "only the owner may change a vCard");
      return store(request, user, vcard->serialize());
    }
    load(request, user, own);
  }

  // An account removed and later created again must not inherit the old vCard.
  void on_user_removed(const parley::Event& event) {
    std::string user(event.user());
    host().execute("DELETE FROM mod_vcard_cards WHERE host = ? AND user = ?", {std::string(event.host()), user},
                   [this, user](parley::Result<parley::Rows, std::string> rows) {
                     if (!rows) host().error("removing the vCard of " + user + " failed: " + rows.error());
                   });
  }

 private:
  void store(const parley::IqRequest& request, const std::string& user, std::string xml) {
    if (static_cast<int64_t>(xml.size()) > max_bytes_)
      return host().bounce(request.iq(), "not-acceptable",
                           "the vCard exceeds " + std::to_string(max_bytes_) + " bytes");
    // The completion outlives this call: keep a copy of the request.
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    host().execute("INSERT OR REPLACE INTO mod_vcard_cards (host, user, xml) VALUES (?, ?, ?)",
                   {host().module_host(), user, xml},
                   [this, iq](parley::Result<parley::Rows, std::string> rows) {
                     if (!rows) {
                       host().error("storing a vCard failed: " + rows.error());
                       return host().bounce(*iq, "internal-server-error");
                     }
                     host().route(parley::make_iq_result(*iq));
                   });
  }

  void load(const parley::IqRequest& request, const std::string& user, bool own) {
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    host().query("SELECT xml FROM mod_vcard_cards WHERE host = ? AND user = ?", {host().module_host(), user},
                 [this, iq, own](parley::Result<parley::Rows, std::string> rows) {
                   if (!rows) {
                     host().error("reading a vCard failed: " + rows.error());
                     return host().bounce(*iq, "internal-server-error");
                   }
                   std::optional<parley::Element> card;
                   if (rows->size() > 0) {
                     card = host().parse(rows->at(0, 0).bytes().value_or(""));
                     if (!card) host().error("a stored vCard does not parse; answering as if there were none");
                   }
                   if (!card && !own) return host().bounce(*iq, "service-unavailable");
                   parley::Element reply = parley::make_iq_result(*iq);
                   reply.add_child(card ? std::move(*card) : host().element("vCard", ns_vcard));
                   host().route(std::move(reply));
                 });
  }

  int64_t max_bytes_ = default_max_bytes;
};

}  // namespace

PARLEY_MODULE(ModVcard, "mod_vcard", "1.0.0",
              parley::option("max_bytes", PARLEY_OPT_INT),
              parley::iq_handler<&ModVcard::on_vcard>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET | PARLEY_IQ_SET, ns_vcard),
              parley::hook<&ModVcard::on_user_removed>(PARLEY_EVENT_USER_REMOVED),
              parley::disco_feature(ns_vcard),
              parley::schema("CREATE TABLE mod_vcard_cards (host TEXT NOT NULL, user TEXT NOT NULL, "
                             "xml TEXT NOT NULL, PRIMARY KEY (host, user))"))
