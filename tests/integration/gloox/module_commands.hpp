// Script commands that drive the server modules through gloox's own protocol
// classes: VCardManager (XEP-0054), PrivateXML (XEP-0049), LastActivity
// (XEP-0012), Registration (XEP-0077, logged in) and SoftwareVersion
// (XEP-0092). Each prints one result line; see usage() in main.cpp.
#pragma once

#include <gloox/client.h>
#include <gloox/iqhandler.h>
#include <gloox/lastactivity.h>
#include <gloox/lastactivityhandler.h>
#include <gloox/privatexml.h>
#include <gloox/privatexmlhandler.h>
#include <gloox/registration.h>
#include <gloox/registrationhandler.h>
#include <gloox/vcardhandler.h>
#include <gloox/vcardmanager.h>

#include <memory>
#include <string>

namespace parley_gloox {

// What a command set needs from the script that runs it.
class CommandHost {
 public:
  virtual ~CommandHost() = default;
  virtual void emit(const std::string& line) = 0;
  // Holds the script until reply_done() or until `timeout_s` passed (which
  // prints "TIMEOUT <what>" and lets the script go on).
  virtual void await_reply(const std::string& what, double timeout_s) = 0;
  virtual void reply_done() = 0;
};

// gloox's Registration reports most error conditions only as a coarse
// RegistrationResult (service-unavailable becomes "unknown"); this keeps the
// condition the server really sent.
class ObservedRegistration : public gloox::Registration {
 public:
  using gloox::Registration::Registration;
  void handleIqID(const gloox::IQ& iq, int context) override;
  const std::string& last_condition() const { return last_condition_; }

 private:
  std::string last_condition_ = "none";
};

// Same for PrivateXML, whose handler only hears "store error"/"request error".
class ObservedPrivateXML : public gloox::PrivateXML {
 public:
  using gloox::PrivateXML::PrivateXML;
  void handleIqID(const gloox::IQ& iq, int context) override;
  const std::string& last_condition() const { return last_condition_; }

 private:
  std::string last_condition_ = "none";
};

// RFC word for a gloox RegistrationResult.
std::string registration_result_name(gloox::RegistrationResult r);

class ModuleCommands : public gloox::VCardHandler,
                       public gloox::PrivateXMLHandler,
                       public gloox::LastActivityHandler,
                       public gloox::RegistrationHandler,
                       public gloox::IqHandler {
 public:
  ModuleCommands(gloox::Client& client, CommandHost& host);
  ~ModuleCommands() override;
  ModuleCommands(const ModuleCommands&) = delete;
  ModuleCommands& operator=(const ModuleCommands&) = delete;

  // Runs `cmd` if it is one of this set's; false otherwise.
  bool execute(const std::string& cmd, const std::string& rest);

  // VCardHandler
  void handleVCard(const gloox::JID& jid, const gloox::VCard* vcard) override;
  void handleVCardResult(VCardContext context, const gloox::JID& jid, gloox::StanzaError se) override;
  // PrivateXMLHandler
  void handlePrivateXML(const gloox::Tag* xml) override;
  void handlePrivateXMLResult(const std::string& uid, PrivateXMLResult result) override;
  // LastActivityHandler
  void handleLastActivityResult(const gloox::JID& jid, long seconds, const std::string& status) override;
  void handleLastActivityError(const gloox::JID& jid, gloox::StanzaError error) override;
  // RegistrationHandler (password change and account removal while logged in)
  void handleRegistrationFields(const gloox::JID& from, int fields, std::string instructions) override;
  void handleAlreadyRegistered(const gloox::JID& from) override;
  void handleRegistrationResult(const gloox::JID& from, gloox::RegistrationResult result) override;
  void handleDataForm(const gloox::JID& from, const gloox::DataForm& form) override;
  void handleOOB(const gloox::JID& from, const gloox::OOB& oob) override;
  // IqHandler (software version replies)
  bool handleIq(const gloox::IQ& iq) override;
  void handleIqID(const gloox::IQ& iq, int context) override;

 private:
  // The protocol objects are made on first use, so that a script that never
  // uses them keeps gloox's default behaviour (disco features, iq answers).
  gloox::VCardManager& vcards();
  ObservedPrivateXML& private_xml();
  gloox::LastActivity& last();
  ObservedRegistration& registration();

  gloox::Client& client_;
  CommandHost& host_;
  std::unique_ptr<gloox::VCardManager> vcards_;
  std::unique_ptr<ObservedPrivateXML> private_;
  std::unique_ptr<gloox::LastActivity> last_;
  std::unique_ptr<ObservedRegistration> registration_;
  std::string vcard_asked_;     // the JID vcard-get asked ("self" for no 'to')
  std::string registration_op_; // PASSWD | UNREGISTER
};

}  // namespace parley_gloox
