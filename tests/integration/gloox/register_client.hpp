// In-band registration (XEP-0077) with gloox's Registration class: a Client
// made for registration only (no credentials, so gloox does STARTTLS and stops
// before SASL), fetches the fields, creates the JID's localpart with the
// given password, prints the outcome and exits.
#pragma once

#include "module_commands.hpp"
#include "script_client.hpp"

#include <gloox/connectionlistener.h>
#include <gloox/loghandler.h>
#include <gloox/registrationhandler.h>

#include <memory>
#include <string>

namespace parley_gloox {

class RegisterClient : public gloox::ConnectionListener,
                       public gloox::RegistrationHandler,
                       public gloox::LogHandler {
 public:
  explicit RegisterClient(Options options);
  // Runs until registered, refused or failed; returns the exit code.
  int run();

  void onConnect() override;
  void onDisconnect(gloox::ConnectionError e) override;
  bool onTLSConnect(const gloox::CertInfo& info) override;
  void handleRegistrationFields(const gloox::JID& from, int fields, std::string instructions) override;
  void handleAlreadyRegistered(const gloox::JID& from) override;
  void handleRegistrationResult(const gloox::JID& from, gloox::RegistrationResult result) override;
  void handleDataForm(const gloox::JID& from, const gloox::DataForm& form) override;
  void handleOOB(const gloox::JID& from, const gloox::OOB& oob) override;
  void handleLog(gloox::LogLevel level, gloox::LogArea area, const std::string& message) override;

 private:
  enum class Step { kConnecting, kFields, kCreate, kDone };

  void emit(const std::string& line);
  void finish(int code);

  Options options_;
  gloox::JID jid_;
  std::unique_ptr<GlooxClient> client_;
  // Declared after client_: it unregisters itself from the client when destroyed.
  std::unique_ptr<ObservedRegistration> registration_;
  Step step_ = Step::kConnecting;
  std::string tls_ = "none";
  bool finished_ = false;
  int exit_code_ = kExitOk;
};

}  // namespace parley_gloox
