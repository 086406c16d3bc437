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
//
// The vCards are in the keyval store (issue 11: user = the account's localpart, key
// "vcard", value = the serialized <vCard/>), on the server's storage backend.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "parley/module.hpp"
#include "parley/sdk/old_tables.hpp"
#include "vcard_export.hpp"

namespace {

using mod_vcard::ns_vcard;
constexpr int64_t default_max_bytes = 65536;

class ModVcard : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    max_bytes_ = host().option_int("max_bytes").value_or(default_max_bytes);
    if (max_bytes_ <= 0) return parley::unexpected(std::string("max_bytes must be positive"));
    if (!host().supports_keyval()) return parley::unexpected(std::string("this server has no keyval store"));
    // The vCards of a server that kept them in this module's own table (before the
    // keyval store): moved over once, the table dropped once empty; requests wait for it.
    move_.start(host(), {parley::OldTables::Move{"mod_vcard_cards",
                                                 "SELECT user, 'vcard', xml FROM mod_vcard_cards WHERE host = ?1",
                                                 "DELETE FROM mod_vcard_cards WHERE host = ?1"}});
    return {};
  }

  void on_vcard(const parley::IqRequest& request) {
    auto vcard = request.payload();
    if (!vcard || vcard->name() != "vCard") return host().bounce(request.iq(), "bad-request");
    std::string_view to = request.to();  // the account's bare JID (the core fills in a missing 'to')
    bool own = parley::bare_jid(request.from()) == to;
    std::string user = parley::Jid::prepared(to).local();
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    if (request.type() == "set") {
      if (!own) return host().bounce(request.iq(), "forbidden", "only the owner may change a vCard");
      auto xml = std::make_shared<std::string>(vcard->serialize());
      return move_.when_ready(host(), [this, iq, user, xml] { store(iq, user, *xml); });
    }
    move_.when_ready(host(), [this, iq, user, own] { load(iq, user, own); });
  }

  // An account removed and later created again must not inherit the old vCard.
  // XEP-0227 (vcard_export.cpp): the vCard goes out and comes in with the account.
  void on_account_export(const parley::Event& event) {
    parley::AccountData data(host(), event);
    if (!data.held()) return;
    std::string user(event.user());
    move_.when_ready(host(), [this, data, user] { mod_vcard::export_vcard(host(), data, user); });
  }
  void on_account_import(const parley::Event& event) {
    auto user_el = event.acc();
    auto card = user_el ? user_el->child("vCard", ns_vcard) : std::nullopt;
    if (!card) return;
    parley::AccountData data(host(), event);
    if (!data.held()) return;
    std::string xml = card->serialize();
    if (static_cast<int64_t>(xml.size()) > max_bytes_)
      return data.fail("the vCard exceeds max_bytes (" + std::to_string(max_bytes_) + ")");
    std::string user(event.user());
    move_.when_ready(host(), [this, data, user, xml] { mod_vcard::import_vcard(host(), data, user, xml); });
  }

  void on_user_removed(const parley::Event& event) {
    std::string user(event.user());
    move_.when_ready(host(), [this, user] {
      host().keyval_remove_user(user, [this, user](parley::Result<parley::KeyvalResult, std::string> r) {
        if (!r) host().error("removing the vCard of " + user + " failed: " + r.error());
      });
    });
  }

 private:
  static constexpr std::string_view key_ = "vcard";

  void store(std::shared_ptr<parley::Element> iq, const std::string& user, const std::string& xml) {
    if (static_cast<int64_t>(xml.size()) > max_bytes_)
      return host().bounce(*iq, "not-acceptable", "the vCard exceeds " + std::to_string(max_bytes_) + " bytes");
    bool sent = host().keyval_put(user, key_, xml, [this, iq](parley::Result<parley::KeyvalResult, std::string> r) {
      if (!r) {
        host().error("storing a vCard failed: " + r.error());
        return host().bounce(*iq, "internal-server-error");
      }
      host().route(parley::make_iq_result(*iq));
    });
    if (!sent) host().bounce(*iq, "internal-server-error");
  }

  void load(std::shared_ptr<parley::Element> iq, const std::string& user, bool own) {
    bool sent = host().keyval_get(user, key_, [this, iq, own](parley::Result<parley::KeyvalResult, std::string> r) {
      if (!r) {
        host().error("reading a vCard failed: " + r.error());
        return host().bounce(*iq, "internal-server-error");
      }
      std::optional<parley::Element> card;
      if (r->found()) {
        card = host().parse(r->value());
        if (!card) host().error("a stored vCard does not parse; answering as if there were none");
      }
      if (!card && !own) return host().bounce(*iq, "service-unavailable");
      parley::Element reply = parley::make_iq_result(*iq);
      reply.add_child(card ? std::move(*card) : host().element("vCard", ns_vcard));
      host().route(std::move(reply));
    });
    if (!sent) host().bounce(*iq, "internal-server-error");
  }

  parley::OldTables move_;
  int64_t max_bytes_ = default_max_bytes;
};

}  // namespace

PARLEY_MODULE(ModVcard, "mod_vcard", "1.0.0",
              parley::option("max_bytes", PARLEY_OPT_INT),
              parley::iq_handler<&ModVcard::on_vcard>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET | PARLEY_IQ_SET, ns_vcard),
              parley::hook<&ModVcard::on_user_removed>(PARLEY_EVENT_USER_REMOVED),
              parley::hook<&ModVcard::on_account_export>(PARLEY_EVENT_ACCOUNT_EXPORT),
              parley::hook<&ModVcard::on_account_import>(PARLEY_EVENT_ACCOUNT_IMPORT),
              parley::disco_feature(ns_vcard),
              // The table of the vCards before the keyval store: kept so that a server that
              // has rows in it gets them moved (OldTables in start()), then dropped.
              parley::schema("CREATE TABLE mod_vcard_cards (host TEXT NOT NULL, user TEXT NOT NULL, "
                             "xml TEXT NOT NULL, PRIMARY KEY (host, user))"))
