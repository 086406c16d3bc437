#include "register_client.hpp"

#include "names.hpp"

#include <gloox/dataform.h>
#include <gloox/dataformfield.h>
#include <gloox/oob.h>

#include <chrono>
#include <cstdio>
#include <utility>

namespace parley_gloox {
namespace {

std::string field_names(int fields) {
  static const std::pair<int, const char*> kNames[] = {
      {gloox::Registration::FieldUsername, "username"}, {gloox::Registration::FieldNick, "nick"},
      {gloox::Registration::FieldPassword, "password"}, {gloox::Registration::FieldName, "name"},
      {gloox::Registration::FieldFirst, "first"},       {gloox::Registration::FieldLast, "last"},
      {gloox::Registration::FieldEmail, "email"},       {gloox::Registration::FieldAddress, "address"},
      {gloox::Registration::FieldCity, "city"},         {gloox::Registration::FieldState, "state"},
      {gloox::Registration::FieldZip, "zip"},           {gloox::Registration::FieldPhone, "phone"},
      {gloox::Registration::FieldUrl, "url"},           {gloox::Registration::FieldDate, "date"},
      {gloox::Registration::FieldMisc, "misc"},         {gloox::Registration::FieldText, "text"},
  };
  std::string out;
  for (const auto& [bit, name] : kNames)
    if (fields & bit) out += (out.empty() ? "" : ",") + std::string(name);
  return out.empty() ? "-" : out;
}

}  // namespace

RegisterClient::RegisterClient(Options options) : options_(std::move(options)), jid_(options_.jid) {
  // The registration-only constructor: no username, so gloox negotiates
  // STARTTLS and then reports onConnect() without authenticating.
  client_ = std::make_unique<GlooxClient>(jid_.server());
  client_->setServer(options_.host);
  client_->setPort(options_.port);
  client_->setCompression(false);
  client_->disableRoster();
  if (options_.tls == "optional")
    client_->setTls(gloox::TLSOptional);
  else if (options_.tls == "disabled")
    client_->setTls(gloox::TLSDisabled);
  else
    client_->setTls(gloox::TLSRequired);
  client_->registerConnectionListener(this);
  if (options_.verbose) client_->logInstance().registerLogHandler(gloox::LogLevelDebug, gloox::LogAreaAll, this);

  registration_ = std::make_unique<ObservedRegistration>(client_.get());
  registration_->registerRegistrationHandler(this);
}

void RegisterClient::emit(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void RegisterClient::finish(int code) {
  if (finished_) return;
  finished_ = true;
  exit_code_ = code;
}

int RegisterClient::run() {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long>(options_.login_timeout * 1000));
  if (!client_->connect(false) && !finished_) {
    emit("DISCONNECTED reason=connection-refused");
    finish(kExitConnection);
  }
  while (!finished_) {
    const gloox::ConnectionError ce = client_->recv(10000);  // microseconds
    if (finished_) break;
    if (ce != gloox::ConnNoError) {
      onDisconnect(ce);
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      emit("TIMEOUT register");
      finish(kExitTimeout);
      client_->disconnect();
    }
  }
  return exit_code_;
}

void RegisterClient::onConnect() {
  emit("REGISTER-STREAM domain=" + jid_.server() + " tls=" + tls_);
  step_ = Step::kFields;
  registration_->fetchRegistrationFields();
}

void RegisterClient::onDisconnect(gloox::ConnectionError e) {
  std::string line = "DISCONNECTED reason=" + connection_error_name(e);
  if (e == gloox::ConnStreamError) line += " stream-error=" + stream_error_name(client_->streamError());
  emit(line);
  if (!finished_) finish(step_ == Step::kDone ? kExitOk : kExitConnection);
}

bool RegisterClient::onTLSConnect(const gloox::CertInfo& info) {
  tls_ = info.protocol;  // test servers use self-signed certificates
  return true;
}

void RegisterClient::handleRegistrationFields(const gloox::JID&, int fields, std::string instructions) {
  emit("REGISTER-FIELDS fields=" + field_names(fields) + " text=" + escape_line(instructions));
  if (step_ != Step::kFields) return;
  gloox::RegistrationFields values;
  values.username = jid_.username();
  values.password = options_.password;
  // Anything else the server asks for gets a plausible value.
  values.email = jid_.bare();
  values.nick = values.name = values.first = values.last = jid_.username();
  step_ = Step::kCreate;
  if (!registration_->createAccount(fields | gloox::Registration::FieldUsername | gloox::Registration::FieldPassword,
                                    values)) {
    // gloox refuses a username that fails nodeprep before sending anything.
    emit("REGISTER-ERROR step=create condition=jid-malformed gloox=client-side");
    step_ = Step::kDone;
    finish(kExitRegistration);
    client_->disconnect();
  }
}

void RegisterClient::handleAlreadyRegistered(const gloox::JID&) { emit("REGISTER-ALREADY"); }

void RegisterClient::handleRegistrationResult(const gloox::JID&, gloox::RegistrationResult result) {
  const char* step = step_ == Step::kFields ? "fields" : "create";
  const bool ok = result == gloox::RegistrationSuccess && step_ == Step::kCreate;
  if (ok)
    emit("REGISTERED jid=" + jid_.bare());
  else
    emit(std::string("REGISTER-ERROR step=") + step + " condition=" + registration_->last_condition() +
         " gloox=" + registration_result_name(result));
  step_ = Step::kDone;
  finish(ok ? kExitOk : kExitRegistration);
  client_->disconnect();
}

void RegisterClient::handleDataForm(const gloox::JID&, const gloox::DataForm& form) {
  std::string vars;
  for (const gloox::DataFormField* f : form.fields())
    vars += (vars.empty() ? "" : ",") + f->name();
  emit(std::string("REGISTER-FORM type=") + (form.type() == gloox::TypeForm ? "form" : "other") +
       " vars=" + (vars.empty() ? "-" : vars));
}

void RegisterClient::handleOOB(const gloox::JID&, const gloox::OOB& oob) {
  emit("REGISTER-OOB text=" + escape_line(oob.url()));
}

void RegisterClient::handleLog(gloox::LogLevel, gloox::LogArea area, const std::string& message) {
  std::fprintf(stderr, "[gloox 0x%x] %s\n", static_cast<unsigned>(area), message.c_str());
}

}  // namespace parley_gloox
