#include "module_commands.hpp"

#include "names.hpp"

#include <gloox/disco.h>
#include <gloox/error.h>
#include <gloox/iq.h>
#include <gloox/softwareversion.h>
#include <gloox/tag.h>
#include <gloox/vcard.h>

#include <cstdlib>
#include <utility>

namespace parley_gloox {
namespace {

constexpr int kVersionContext = 1;
constexpr double kReplyTimeout = 10;

std::pair<std::string, std::string> split_word(const std::string& s) {
  const auto start = s.find_first_not_of(" \t");
  if (start == std::string::npos) return {"", ""};
  const auto end = s.find_first_of(" \t", start);
  if (end == std::string::npos) return {s.substr(start), ""};
  const auto rest = s.find_first_not_of(" \t", end);
  return {s.substr(start, end - start), rest == std::string::npos ? "" : s.substr(rest)};
}

// "[JID [TIMEOUT]]" as the query commands take it.
std::pair<std::string, double> target_and_timeout(const std::string& rest) {
  const auto [jid, more] = split_word(rest);
  const auto [t, ignored] = split_word(more);
  return {jid, t.empty() ? kReplyTimeout : std::atof(t.c_str())};
}

std::string condition_of(const gloox::IQ& iq) {
  return iq.subtype() == gloox::IQ::Error && iq.error() ? stanza_error_name(iq.error()->error()) : "none";
}

std::string or_dash(const std::string& s) { return s.empty() ? "-" : escape_line(s); }

}  // namespace

std::string registration_result_name(gloox::RegistrationResult r) {
  switch (r) {
    case gloox::RegistrationSuccess: return "success";
    case gloox::RegistrationNotAcceptable: return "not-acceptable";
    case gloox::RegistrationConflict: return "conflict";
    case gloox::RegistrationNotAuthorized: return "not-authorized";
    case gloox::RegistrationBadRequest: return "bad-request";
    case gloox::RegistrationForbidden: return "forbidden";
    case gloox::RegistrationRequired: return "registration-required";
    case gloox::RegistrationUnexpectedRequest: return "unexpected-request";
    case gloox::RegistrationNotAllowed: return "not-allowed";
    case gloox::RegistrationConstraint: return "resource-constraint";
    case gloox::RegistrationUnknownError: return "unknown";
  }
  return "unknown";
}

void ObservedRegistration::handleIqID(const gloox::IQ& iq, int context) {
  last_condition_ = condition_of(iq);
  gloox::Registration::handleIqID(iq, context);
}

void ObservedPrivateXML::handleIqID(const gloox::IQ& iq, int context) {
  last_condition_ = condition_of(iq);
  gloox::PrivateXML::handleIqID(iq, context);
}

ModuleCommands::ModuleCommands(gloox::Client& client, CommandHost& host) : client_(client), host_(host) {}

ModuleCommands::~ModuleCommands() {
  // The gloox objects unregister themselves; this object tracks version iqs.
  client_.removeIDHandler(this);
}

gloox::VCardManager& ModuleCommands::vcards() {
  if (!vcards_) vcards_ = std::make_unique<gloox::VCardManager>(&client_);
  return *vcards_;
}

ObservedPrivateXML& ModuleCommands::private_xml() {
  if (!private_) private_ = std::make_unique<ObservedPrivateXML>(&client_);
  return *private_;
}

gloox::LastActivity& ModuleCommands::last() {
  if (!last_) {
    last_ = std::make_unique<gloox::LastActivity>(&client_);
    last_->registerLastActivityHandler(this);
  }
  return *last_;
}

ObservedRegistration& ModuleCommands::registration() {
  if (!registration_) {
    registration_ = std::make_unique<ObservedRegistration>(&client_);
    registration_->registerRegistrationHandler(this);
  }
  return *registration_;
}

bool ModuleCommands::execute(const std::string& cmd, const std::string& rest) {
  if (cmd == "vcard-set") {
    // vcard-set NICK|- FULL NAME: a vCard with FN and NICKNAME, stored with
    // VCardManager (an iq set without 'to', XEP-0054 3.2).
    const auto [nick, full_name] = split_word(rest);
    auto* card = new gloox::VCard();  // storeVCard takes ownership
    if (nick != "-") card->setNickname(nick);
    card->setFormattedname(full_name);
    host_.await_reply("vcard-set", kReplyTimeout);
    vcards().storeVCard(card, this);
  } else if (cmd == "vcard-get") {
    // vcard-get [JID|self [TIMEOUT]]: self (the default) sends no 'to' (XEP-0054 3.1).
    const auto [target, timeout] = target_and_timeout(rest);
    vcard_asked_ = target.empty() ? "self" : target;
    host_.await_reply("vcard-get " + vcard_asked_, timeout);
    vcards().fetchVCard(vcard_asked_ == "self" ? gloox::JID() : gloox::JID(vcard_asked_), this);
  } else if (cmd == "private-set") {
    // private-set ELEMENT XMLNS [CHILD [TEXT]]
    const auto [element, more] = split_word(rest);
    const auto [xmlns, more2] = split_word(more);
    const auto [child, text] = split_word(more2);
    if (element.empty() || xmlns.empty()) {
      host_.emit("ERROR usage: private-set ELEMENT XMLNS [CHILD [TEXT]]");
      return true;
    }
    auto* tag = new gloox::Tag(element, "xmlns", xmlns);  // storeXML deletes it
    if (!child.empty()) new gloox::Tag(tag, child, text);
    host_.await_reply("private-set", kReplyTimeout);
    private_xml().storeXML(tag, this);
  } else if (cmd == "private-get") {
    const auto [element, more] = split_word(rest);
    const auto [xmlns, ignored] = split_word(more);
    if (element.empty() || xmlns.empty()) {
      host_.emit("ERROR usage: private-get ELEMENT XMLNS");
      return true;
    }
    host_.await_reply("private-get " + element + " " + xmlns, kReplyTimeout);
    private_xml().requestXML(element, xmlns, this);
  } else if (cmd == "last") {
    // last [JID [TIMEOUT]]: the server's uptime by default (XEP-0012 section 5).
    auto [target, timeout] = target_and_timeout(rest);
    if (target.empty()) target = client_.jid().server();
    host_.await_reply("last " + target, timeout);
    last().query(gloox::JID(target));
  } else if (cmd == "version") {
    // version [JID [TIMEOUT]]: gloox has no client-side version query API,
    // so this is an IQ carrying its SoftwareVersion stanza extension.
    auto [target, timeout] = target_and_timeout(rest);
    if (target.empty()) target = client_.jid().server();
    gloox::IQ iq(gloox::IQ::Get, gloox::JID(target));
    iq.addExtension(new gloox::SoftwareVersion());
    host_.await_reply("version " + target, timeout);
    client_.send(iq, this, kVersionContext);
  } else if (cmd == "set-version") {
    // set-version NAME VERSION [OS]: what gloox's Disco answers to jabber:iq:version.
    const auto [name, more] = split_word(rest);
    const auto [version, os] = split_word(more);
    client_.disco()->setVersion(name, version, os);
    host_.emit("OK set-version");
  } else if (cmd == "passwd") {
    // passwd NEWPASSWORD: XEP-0077 section 3.3 through Registration::changePassword.
    const auto [password, ignored] = split_word(rest);
    registration_op_ = "PASSWD";
    host_.await_reply("passwd", kReplyTimeout);
    registration().changePassword(client_.jid().username(), password);
  } else if (cmd == "unregister") {
    // XEP-0077 section 3.2 through Registration::removeAccount.
    registration_op_ = "UNREGISTER";
    host_.await_reply("unregister", kReplyTimeout);
    registration().removeAccount();
  } else {
    return false;
  }
  return true;
}

void ModuleCommands::handleVCard(const gloox::JID& jid, const gloox::VCard* vcard) {
  std::string line = "VCARD-GET jid=" + vcard_asked_ + " from=" + or_dash(jid.full());
  if (vcard)
    line += " result=ok nick=" + or_dash(vcard->nickname()) + " name=" + escape_line(vcard->formattedname());
  else
    line += " result=no-vcard";
  host_.emit(line);
  host_.reply_done();
}

void ModuleCommands::handleVCardResult(VCardContext context, const gloox::JID& jid, gloox::StanzaError se) {
  const std::string result =
      se == gloox::StanzaErrorUndefined ? "ok" : "error:" + stanza_error_name(se);
  if (context == StoreVCard)
    host_.emit("VCARD-SET result=" + result);
  else
    host_.emit("VCARD-GET jid=" + vcard_asked_ + " from=" + or_dash(jid.full()) + " result=" + result);
  host_.reply_done();
}

void ModuleCommands::handlePrivateXML(const gloox::Tag* xml) {
  if (!xml) {
    host_.emit("PRIVATE-GET result=ok element=- xmlns=- children=0 text=");
    host_.reply_done();
    return;
  }
  host_.emit("PRIVATE-GET result=ok element=" + xml->name() + " xmlns=" + or_dash(xml->xmlns()) +
             " children=" + std::to_string(xml->children().size()) + " text=" + escape_line(xml->xml()));
  for (const gloox::Tag* child : xml->children())
    host_.emit("PRIVATE-CHILD element=" + child->name() + " text=" + escape_line(child->cdata()));
  host_.reply_done();
}

void ModuleCommands::handlePrivateXMLResult(const std::string&, PrivateXMLResult result) {
  const std::string condition = private_ ? private_->last_condition() : "none";
  switch (result) {
    case PxmlStoreOk: host_.emit("PRIVATE-SET result=ok"); break;
    case PxmlStoreError: host_.emit("PRIVATE-SET result=error:" + condition); break;
    case PxmlRequestError: host_.emit("PRIVATE-GET result=error:" + condition); break;
  }
  host_.reply_done();
}

void ModuleCommands::handleLastActivityResult(const gloox::JID& jid, long seconds, const std::string& status) {
  host_.emit("LAST jid=" + or_dash(jid.full()) + " result=ok seconds=" + std::to_string(seconds) +
             " status=" + escape_line(status));
  host_.reply_done();
}

void ModuleCommands::handleLastActivityError(const gloox::JID& jid, gloox::StanzaError error) {
  host_.emit("LAST jid=" + or_dash(jid.full()) + " result=error:" + stanza_error_name(error));
  host_.reply_done();
}

void ModuleCommands::handleRegistrationFields(const gloox::JID&, int, std::string) {}
void ModuleCommands::handleAlreadyRegistered(const gloox::JID&) {}
void ModuleCommands::handleDataForm(const gloox::JID&, const gloox::DataForm&) {}
void ModuleCommands::handleOOB(const gloox::JID&, const gloox::OOB&) {}

void ModuleCommands::handleRegistrationResult(const gloox::JID&, gloox::RegistrationResult result) {
  std::string line = (registration_op_.empty() ? std::string("REGISTRATION") : registration_op_) + " result=";
  if (result == gloox::RegistrationSuccess)
    line += "ok";
  else
    line += "error:" + (registration_ ? registration_->last_condition() : std::string("none")) +
            " gloox=" + registration_result_name(result);
  host_.emit(line);
  registration_op_.clear();
  host_.reply_done();
}

bool ModuleCommands::handleIq(const gloox::IQ&) { return false; }

void ModuleCommands::handleIqID(const gloox::IQ& iq, int context) {
  if (context != kVersionContext) return;
  std::string line = "SOFTWARE-VERSION jid=" + or_dash(iq.from().full());
  if (iq.subtype() == gloox::IQ::Error) {
    host_.emit(line + " result=error:" + condition_of(iq));
    host_.reply_done();
    return;
  }
  const auto* sv = iq.findExtension<gloox::SoftwareVersion>(gloox::ExtVersion);
  if (!sv) {
    host_.emit(line + " result=no-query");
  } else {
    host_.emit(line + " result=ok version=" + or_dash(sv->version()) + " has-os=" +
               (sv->os().empty() ? "false" : "true") + " name=" + escape_line(sv->name()));
    if (!sv->os().empty()) host_.emit("SOFTWARE-OS jid=" + or_dash(iq.from().full()) + " text=" + escape_line(sv->os()));
  }
  host_.reply_done();
}

}  // namespace parley_gloox
