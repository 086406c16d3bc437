#include "script_client.hpp"

#include "names.hpp"

#include <gloox/connectiontcpclient.h>
#include <gloox/connectiontls.h>
#include <gloox/error.h>
#include <gloox/event.h>
#include <gloox/iq.h>
#include <gloox/message.h>
#include <gloox/presence.h>
#include <gloox/rosteritem.h>
#include <gloox/tlshandler.h>

#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <sstream>

namespace parley_gloox {
namespace {

// Splits "word rest of line" into the first word and the (trimmed) rest.
std::pair<std::string, std::string> split_first(const std::string& s) {
  const auto start = s.find_first_not_of(" \t");
  if (start == std::string::npos) return {"", ""};
  const auto end = s.find_first_of(" \t", start);
  if (end == std::string::npos) return {s.substr(start), ""};
  const auto rest = s.find_first_not_of(" \t", end);
  return {s.substr(start, end - start), rest == std::string::npos ? "" : s.substr(rest)};
}

// Splits "text ... NUMBER" into text and number when the last word is a number.
bool split_trailing_number(const std::string& s, std::string& text, double& number) {
  const auto end = s.find_last_not_of(" \t");
  if (end == std::string::npos) return false;
  const auto space = s.find_last_of(" \t", end);
  const std::string last = s.substr(space == std::string::npos ? 0 : space + 1, end - space);
  char* stop = nullptr;
  const double parsed = std::strtod(last.c_str(), &stop);
  // `number` keeps its default unless the last word really is a number.
  if (last.empty() || *stop != '\0') return false;
  number = parsed;
  text = space == std::string::npos ? "" : s.substr(0, s.find_last_not_of(" \t", space) + 1);
  return true;
}

std::string error_condition(const gloox::Stanza& stanza) {
  const gloox::Error* e = stanza.error();
  return e ? stanza_error_name(e->error()) : "none";
}

// gloox's ConnectionTLS never fills the CertInfo that fetchTLSInfo() returns,
// so the handshake result of a direct-TLS connection is caught here instead.
class DirectTlsObserver : public gloox::TLSHandler {
 public:
  explicit DirectTlsObserver(std::function<void(const gloox::CertInfo&)> done) : done_(std::move(done)) {}
  void handleEncryptedData(const gloox::TLSBase*, const std::string&) override {}
  void handleDecryptedData(const gloox::TLSBase*, const std::string&) override {}
  void handleHandshakeResult(const gloox::TLSBase*, bool success, gloox::CertInfo& info) override {
    if (success) done_(info);
  }

 private:
  std::function<void(const gloox::CertInfo&)> done_;
};

}  // namespace

ScriptClient::ScriptClient(Options options) : options_(std::move(options)) {
  client_ = std::make_unique<GlooxClient>(gloox::JID(options_.jid), options_.password, options_.port);
  client_->setServer(options_.host);
  client_->setCompression(false);
  if (options_.roster) {
    // Asynchronous: a request waits for an approve/deny command (or --sub-mode).
    client_->rosterManager()->registerRosterListener(this, false);
  } else {
    client_->disableRoster();
  }
  client_->registerSubscriptionHandler(this);

  if (options_.mech == "scram-sha-1")
    client_->setSASLMechanisms(gloox::SaslMechScramSha1);
  else if (options_.mech == "scram-sha-1-plus")
    client_->setSASLMechanisms(gloox::SaslMechScramSha1Plus);
  else if (options_.mech == "plain")
    client_->setSASLMechanisms(gloox::SaslMechPlain);

  if (options_.tls == "optional")
    client_->setTls(gloox::TLSOptional);
  else if (options_.tls == "disabled")
    client_->setTls(gloox::TLSDisabled);
  else
    client_->setTls(gloox::TLSRequired);

  if (options_.direct_tls) {
    // The stream runs inside TLS from the start, so the stream-level
    // STARTTLS negotiation must be off.
    auto* tcp = new gloox::ConnectionTCPClient(client_->logInstance(), options_.host, options_.port);
    auto* tls = new gloox::ConnectionTLS(client_.get(), tcp, client_->logInstance());
    tls_observer_ = std::make_unique<DirectTlsObserver>([this](const gloox::CertInfo& info) {
      tls_info_ = info;
      have_tls_info_ = true;
      emit("TLS protocol=" + info.protocol + " cipher=" + info.cipher + " direct=true");
    });
    tls->registerTLSHandler(tls_observer_.get());
    client_->setConnectionImpl(tls);
    client_->setTls(gloox::TLSDisabled);
  }

  if (options_.initial_presence)
    client_->setPresence(gloox::Presence::Available, options_.priority);
  else
    client_->setPresence(gloox::Presence::Unavailable, options_.priority);

  client_->registerConnectionListener(this);
  client_->registerMessageHandler(this);
  client_->registerPresenceHandler(this);
  client_->logInstance().registerLogHandler(
      gloox::LogLevelDebug,
      options_.verbose ? gloox::LogAreaAll : (gloox::LogAreaXmlOutgoing | gloox::LogAreaXmlIncoming), this);

  modules_ = std::make_unique<ModuleCommands>(*client_, *this);

  for (const auto& c : options_.commands) pending_.push_back(c);
  if (!options_.commands.empty()) stdin_open_ = false;
}

void ScriptClient::emit(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void ScriptClient::finish(int code) {
  if (finished_) return;
  finished_ = true;
  exit_code_ = code;
}

int ScriptClient::run() {
  const auto started = Clock::now();
  const auto login_deadline =
      started + std::chrono::milliseconds(static_cast<long>(options_.login_timeout * 1000));

  if (!client_->connect(false) && !finished_) {
    emit("DISCONNECTED reason=connection-refused");
    finish(kExitConnection);
  }
  while (!finished_) {
    const gloox::ConnectionError ce = client_->recv(10000);  // microseconds
    if (finished_) break;
    if (ce != gloox::ConnNoError) {
      // gloox normally reports through onDisconnect; this covers a socket
      // that died without a callback.
      onDisconnect(ce);
      break;
    }
    if (!online_ && Clock::now() > login_deadline) {
      emit("TIMEOUT login");
      finish(kExitTimeout);
      client_->disconnect();
      break;
    }
    if (stdin_open_) read_stdin();
    check_wait();
    step_script();
  }
  return exit_code_;
}

void ScriptClient::read_stdin() {
  pollfd pfd{0, POLLIN, 0};
  if (::poll(&pfd, 1, 0) <= 0) return;
  char buf[4096];
  const ssize_t n = ::read(0, buf, sizeof buf);
  if (n <= 0) {
    // EOF: run what was sent, then leave cleanly.
    stdin_open_ = false;
    if (!stdin_buffer_.empty()) pending_.push_back(stdin_buffer_);
    pending_.push_back("quit");
    return;
  }
  stdin_buffer_.append(buf, static_cast<size_t>(n));
  size_t pos;
  while ((pos = stdin_buffer_.find('\n')) != std::string::npos) {
    std::string line = stdin_buffer_.substr(0, pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    stdin_buffer_.erase(0, pos + 1);
    pending_.push_back(line);
  }
}

void ScriptClient::step_script() {
  while (!finished_ && online_ && !wait_ && !pending_.empty()) {
    const std::string line = pending_.front();
    pending_.pop_front();
    execute(line);
  }
}

void ScriptClient::execute(const std::string& line) {
  const auto [cmd, rest] = split_first(line);
  if (cmd.empty() || cmd[0] == '#') return;
  const auto now = Clock::now();
  auto after = [now](double seconds) {
    return now + std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  };

  if (cmd == "send" || cmd == "send-type") {
    std::string type_name = "chat";
    std::string args = rest;
    if (cmd == "send-type") std::tie(type_name, args) = split_first(rest);
    const auto [to, body] = split_first(args);
    const auto type = parse_message_type(type_name);
    if (to.empty() || type == gloox::Message::Invalid) {
      emit("ERROR usage: send JID BODY | send-type chat|normal|headline|groupchat JID BODY");
      return;
    }
    gloox::Message msg(type, gloox::JID(to), body);
    client_->send(msg);
  } else if (cmd == "presence") {
    const auto [prio, more] = split_first(rest);
    const auto [show, status] = split_first(more);
    const auto type = show.empty() ? gloox::Presence::Available : parse_show(show);
    if (type == gloox::Presence::Invalid) {
      emit("ERROR usage: presence [PRIORITY [available|chat|away|dnd|xa [STATUS]]]");
      return;
    }
    client_->setPresence(type, prio.empty() ? options_.priority : std::atoi(prio.c_str()), status);
  } else if (cmd == "unavailable") {
    client_->setPresence(gloox::Presence::Unavailable, 0, rest);
  } else if (cmd == "raw") {
    client_->send_raw(rest);
  } else if (cmd == "expect-in") {
    // Waits for incoming XML containing TEXT (for replies gloox has no handler for).
    std::string text;
    double timeout = 10;
    if (!split_trailing_number(rest, text, timeout)) text = rest;
    wait_ = Wait{Wait::Kind::kExpectIn, text, 0, now, after(timeout)};
  } else if (cmd == "whitespace") {
    client_->whitespacePing();
  } else if (cmd == "expect-msg") {
    std::string body;
    double timeout = 10;
    if (!split_trailing_number(rest, body, timeout)) body = rest;
    wait_ = Wait{Wait::Kind::kExpectMsg, body, 0, now, after(timeout)};
  } else if (cmd == "wait-msgs") {
    const auto [n, t] = split_first(rest);
    const double timeout = t.empty() ? 10 : std::atof(t.c_str());
    wait_ = Wait{Wait::Kind::kWaitMsgs, "", static_cast<size_t>(std::atol(n.c_str())), now, after(timeout)};
  } else if (cmd == "ping" || cmd == "disco") {
    auto [to, t] = split_first(rest);
    if (to.empty()) to = client_->jid().server();
    const double timeout = t.empty() ? 10 : std::atof(t.c_str());
    if (cmd == "ping") {
      wait_ = Wait{Wait::Kind::kPing, to, 0, now, after(timeout)};
      client_->xmppPing(gloox::JID(to), this);
    } else {
      wait_ = Wait{Wait::Kind::kDisco, to, 0, now, after(timeout)};
      client_->disco()->getDiscoInfo(gloox::JID(to), "", this, ++disco_context_);
    }
  } else if (cmd == "sleep") {
    wait_ = Wait{Wait::Kind::kSleep, "", 0, now, after(std::atof(rest.c_str()))};
  } else if (cmd == "echo") {
    emit("ECHO " + rest);
  } else if (cmd == "quit") {
    quitting_ = true;
    client_->disconnect();
    finish(kExitOk);
  } else if (execute_roster(cmd, rest) || modules_->execute(cmd, rest)) {
    // done
  } else {
    emit("ERROR unknown command: " + escape_line(line));
  }
  check_wait();
}

void ScriptClient::check_wait() {
  if (!wait_ || finished_) return;
  Wait& w = *wait_;
  switch (w.kind) {
    case Wait::Kind::kExpectMsg:
      for (auto& r : inbox_) {
        if (!r.consumed && r.body == w.arg) {
          r.consumed = true;
          w.done = true;
          emit("OK expect-msg " + escape_line(w.arg));
          break;
        }
      }
      break;
    case Wait::Kind::kWaitMsgs:
      if (inbox_.size() >= w.count) {
        w.done = true;
        emit("OK wait-msgs " + std::to_string(inbox_.size()));
      }
      break;
    case Wait::Kind::kExpectIn:
      for (size_t i = 0; i < incoming_.size(); ++i) {
        if (incoming_[i].find(w.arg) != std::string::npos) {
          emit("IN " + escape_line(incoming_[i]));
          incoming_.erase(incoming_.begin(), incoming_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
          w.done = true;
          break;
        }
      }
      break;
    default:
      break;  // ping and disco finish in their callbacks
  }
  if (!w.done && Clock::now() >= w.deadline) {
    switch (w.kind) {
      case Wait::Kind::kSleep:
        w.done = true;
        break;
      case Wait::Kind::kPing:
        emit("PING jid=" + w.arg + " result=timeout");
        w.done = true;
        break;
      case Wait::Kind::kDisco:
        emit("DISCO-END jid=" + w.arg + " result=timeout");
        w.done = true;
        break;
      case Wait::Kind::kReply:
        emit("TIMEOUT " + escape_line(w.arg));
        w.done = true;
        break;
      case Wait::Kind::kExpectMsg:
        emit("TIMEOUT expect-msg " + escape_line(w.arg));
        finish(kExitTimeout);
        client_->disconnect();
        return;
      case Wait::Kind::kWaitMsgs:
        emit("TIMEOUT wait-msgs " + std::to_string(inbox_.size()) + "/" + std::to_string(w.count));
        finish(kExitTimeout);
        client_->disconnect();
        return;
      case Wait::Kind::kExpectIn:
        emit("TIMEOUT expect-in " + escape_line(w.arg));
        finish(kExitTimeout);
        client_->disconnect();
        return;
    }
  }
  if (w.done) wait_.reset();
}

void ScriptClient::await_reply(const std::string& what, double timeout_s) {
  const auto now = Clock::now();
  wait_ = Wait{Wait::Kind::kReply, what, 0, now, now + std::chrono::milliseconds(static_cast<long>(timeout_s * 1000))};
}

void ScriptClient::reply_done() {
  // Only a reply wait ends here: a reply that comes after its timeout must
  // not end a later expect-in, ping or sleep.
  if (wait_ && wait_->kind == Wait::Kind::kReply) wait_.reset();
}

void ScriptClient::onConnect() {
  online_ = true;
  std::ostringstream line;
  line << "CONNECTED jid=" << client_->jid().full()
       << " mech=" << sasl_mech_;
  if (have_tls_info_)
    line << " tls=" << tls_info_.protocol << " cipher=" << tls_info_.cipher;
  else
    line << " tls=none";
  emit(line.str());
}

void ScriptClient::onDisconnect(gloox::ConnectionError e) {
  std::string line = "DISCONNECTED reason=" + connection_error_name(e);
  if (e == gloox::ConnStreamError) {
    line += " stream-error=" + stream_error_name(client_->streamError());
    const std::string& text = client_->streamErrorText();
    if (!text.empty()) line += " text=" + escape_line(text);
  }
  if (e == gloox::ConnAuthenticationFailed)
    line += " auth-error=" + auth_error_name(client_->authError());
  emit(line);
  if (finished_) return;
  if (e == gloox::ConnUserDisconnected && quitting_)
    finish(kExitOk);
  else if (e == gloox::ConnAuthenticationFailed)
    finish(kExitAuth);
  else if (e == gloox::ConnNoSupportedAuth)
    finish(kExitNoMechanism);
  else if (online_)
    finish(kExitLost);
  else
    finish(kExitConnection);
}

bool ScriptClient::onTLSConnect(const gloox::CertInfo& info) {
  // Test servers use self-signed certificates: accept, but report.
  tls_info_ = info;
  have_tls_info_ = true;
  emit("TLS protocol=" + info.protocol + " cipher=" + info.cipher);
  return true;
}

void ScriptClient::onResourceBindError(const gloox::Error* error) {
  emit("BIND-ERROR error=" + (error ? stanza_error_name(error->error()) : std::string("none")));
}

void ScriptClient::onSessionCreateError(const gloox::Error* error) {
  emit("SESSION-ERROR error=" + (error ? stanza_error_name(error->error()) : std::string("none")));
}

void ScriptClient::handleMessage(const gloox::Message& msg, gloox::MessageSession*) {
  std::string line = "MSG from=" + msg.from().full() + " to=" + msg.to().full() +
                     " type=" + message_type_name(msg.subtype());
  if (msg.subtype() == gloox::Message::Error) line += " error=" + error_condition(msg);
  line += " body=" + escape_line(msg.body());
  emit(line);
  if (msg.subtype() != gloox::Message::Error) inbox_.push_back(Received{msg.body()});
  check_wait();
}

void ScriptClient::handlePresence(const gloox::Presence& presence) {
  std::string line = "PRESENCE from=" + presence.from().full() +
                     " type=" + presence_type_name(presence.subtype()) +
                     " priority=" + std::to_string(presence.priority());
  if (presence.subtype() == gloox::Presence::Error) line += " error=" + error_condition(presence);
  line += " status=" + escape_line(presence.status());
  emit(line);
}

void ScriptClient::handleEvent(const gloox::Event& event) {
  if (event.eventType() == gloox::Event::PingPing) return;  // gloox answers those itself
  std::string jid = wait_ ? wait_->arg : "";
  if (event.stanza()) jid = event.stanza()->from().full();
  std::string line = "PING jid=" + jid;
  if (event.eventType() == gloox::Event::PingPong) {
    line += " result=pong";
    if (wait_ && wait_->kind == Wait::Kind::kPing) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - wait_->started);
      line += " rtt-ms=" + std::to_string(ms.count());
    }
  } else {
    line += " result=error:" + (event.stanza() ? error_condition(*event.stanza()) : std::string("none"));
  }
  emit(line);
  if (wait_ && wait_->kind == Wait::Kind::kPing) wait_.reset();
}

void ScriptClient::handleDiscoInfo(const gloox::JID& from, const gloox::Disco::Info& info, int) {
  for (const auto* id : info.identities())
    emit("DISCO-IDENTITY jid=" + from.full() + " category=" + id->category() + " type=" + id->type() +
         " name=" + escape_line(id->name()));
  for (const auto& f : info.features()) emit("DISCO-FEATURE jid=" + from.full() + " var=" + f);
  emit("DISCO-END jid=" + from.full() + " result=ok");
  if (wait_ && wait_->kind == Wait::Kind::kDisco) wait_.reset();
}

void ScriptClient::handleDiscoItems(const gloox::JID&, const gloox::Disco::Items&, int) {}

void ScriptClient::handleDiscoError(const gloox::JID& from, const gloox::Error* error, int) {
  emit("DISCO-END jid=" + from.full() + " result=error:" +
       (error ? stanza_error_name(error->error()) : std::string("none")));
  if (wait_ && wait_->kind == Wait::Kind::kDisco) wait_.reset();
}

void ScriptClient::handleLog(gloox::LogLevel, gloox::LogArea area, const std::string& message) {
  if (area == gloox::LogAreaXmlIncoming) {
    incoming_.push_back(message);
    if (incoming_.size() > 1000) incoming_.erase(incoming_.begin());
    check_wait();
  }
  if (area == gloox::LogAreaXmlOutgoing && message.compare(0, 6, "<auth ") == 0) {
    for (const char* key : {"mechanism='", "mechanism=\""}) {
      const auto pos = message.find(key);
      if (pos == std::string::npos) continue;
      const auto start = pos + std::strlen(key);
      const auto end = message.find(key[std::strlen(key) - 1], start);
      if (end != std::string::npos) sasl_mech_ = message.substr(start, end - start);
    }
  }
  if (options_.verbose)
    std::fprintf(stderr, "[gloox 0x%x] %s\n", static_cast<unsigned>(area), message.c_str());
}

// ---- roster and subscriptions -------------------------------------------------

namespace {

// RFC 6121 words for gloox's combined state: subscription, and ask when the
// user's own request is pending (gloox cannot know about Pending In).
std::pair<std::string, bool> subscription_words(gloox::SubscriptionType t) {
  switch (t) {
    case gloox::S10nNoneOut: case gloox::S10nNoneOutIn: return {"none", true};
    case gloox::S10nTo: case gloox::S10nToIn: return {"to", false};
    case gloox::S10nFrom: return {"from", false};
    case gloox::S10nFromOut: return {"from", true};
    case gloox::S10nBoth: return {"both", false};
    default: return {"none", false};
  }
}

std::string subscription_type_name(gloox::Subscription::S10nType t) {
  switch (t) {
    case gloox::Subscription::Subscribe: return "subscribe";
    case gloox::Subscription::Subscribed: return "subscribed";
    case gloox::Subscription::Unsubscribe: return "unsubscribe";
    case gloox::Subscription::Unsubscribed: return "unsubscribed";
    default: return "invalid";
  }
}

gloox::StringList split_groups(const std::string& s) {
  gloox::StringList out;
  if (s.empty() || s == "-") return out;
  std::string::size_type start = 0;
  while (true) {
    const auto comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

std::string ScriptClient::item_line(const gloox::RosterItem& item) const {
  const auto [sub, ask] = subscription_words(item.subscription());
  std::string groups;
  for (const auto& g : item.groups()) groups += (groups.empty() ? "" : ",") + g;
  return "jid=" + item.jidJID().bare() + " subscription=" + sub + " ask=" + (ask ? "subscribe" : "none") +
         " groups=" + (groups.empty() ? "-" : escape_line(groups)) + " name=" + escape_line(item.name());
}

bool ScriptClient::execute_roster(const std::string& cmd, const std::string& rest) {
  gloox::RosterManager* rm = options_.roster ? client_->rosterManager() : nullptr;
  const auto [jid_text, more] = split_first(rest);
  const gloox::JID jid(jid_text);
  auto need_roster = [&]() {
    if (rm) return true;
    emit("ERROR " + cmd + " needs --roster");
    return false;
  };
  auto send_subscription = [&](gloox::Subscription::S10nType type, const std::string& status) {
    client_->send(gloox::Subscription(type, jid.bareJID(), status));
  };
  if (cmd == "roster-list") {
    if (!need_roster()) return true;
    size_t n = 0;
    for (const auto& [key, item] : *rm->roster()) {
      emit("ROSTER-ITEM " + item_line(*item));
      ++n;
    }
    emit("ROSTER-END count=" + std::to_string(n));
  } else if (cmd == "roster-add") {
    // roster-add JID [GROUP,GROUP|- [NAME]]
    if (!need_roster()) return true;
    const auto [groups, name] = split_first(more);
    rm->add(jid, name, split_groups(groups));
  } else if (cmd == "roster-remove") {
    if (!need_roster()) return true;
    rm->remove(jid);
  } else if (cmd == "subscribe") {
    // With the roster manager gloox adds the item (a roster set) and asks.
    if (rm) rm->subscribe(jid, "", gloox::StringList(), more);
    else send_subscription(gloox::Subscription::Subscribe, more);
  } else if (cmd == "unsubscribe") {
    if (rm) rm->unsubscribe(jid, more);
    else send_subscription(gloox::Subscription::Unsubscribe, more);
  } else if (cmd == "cancel") {
    if (rm) rm->cancel(jid, more);
    else send_subscription(gloox::Subscription::Unsubscribed, more);
  } else if (cmd == "approve" || cmd == "deny") {
    if (rm) rm->ackSubscriptionRequest(jid, cmd == "approve");
    else send_subscription(cmd == "approve" ? gloox::Subscription::Subscribed : gloox::Subscription::Unsubscribed, "");
  } else {
    return false;
  }
  if (!jid_text.empty() || cmd == "roster-list") return true;
  emit("ERROR usage: " + cmd + " JID");
  return true;
}

void ScriptClient::handleSubscription(const gloox::Subscription& s) {
  emit("SUBSCRIPTION from=" + s.from().full() + " type=" + subscription_type_name(s.subtype()) +
       " status=" + escape_line(s.status()));
}

void ScriptClient::emit_push(const char* op, const gloox::JID& jid) {
  std::string line = std::string("ROSTER-PUSH op=") + op;
  gloox::RosterItem* item = client_->rosterManager() ? client_->rosterManager()->getRosterItem(jid) : nullptr;
  if (item) line += " " + item_line(*item);
  else line += " jid=" + jid.bare();
  emit(line);
}

void ScriptClient::handleItemAdded(const gloox::JID& jid) { emit_push("added", jid); }
void ScriptClient::handleItemUpdated(const gloox::JID& jid) { emit_push("updated", jid); }
void ScriptClient::handleItemRemoved(const gloox::JID& jid) { emit_push("removed", jid); }
void ScriptClient::handleItemSubscribed(const gloox::JID& jid) { emit("ROSTER-SUBSCRIBED jid=" + jid.bare()); }
void ScriptClient::handleItemUnsubscribed(const gloox::JID& jid) { emit("ROSTER-UNSUBSCRIBED jid=" + jid.bare()); }

void ScriptClient::handleRoster(const gloox::Roster& roster) {
  for (const auto& [key, item] : roster) emit("ROSTER-ITEM " + item_line(*item));
  emit("ROSTER-END count=" + std::to_string(roster.size()));
}

void ScriptClient::handleRosterPresence(const gloox::RosterItem&, const std::string&, gloox::Presence::PresenceType,
                                        const std::string&) {}
void ScriptClient::handleSelfPresence(const gloox::RosterItem&, const std::string&, gloox::Presence::PresenceType,
                                      const std::string&) {}
void ScriptClient::handleNonrosterPresence(const gloox::Presence&) {}

bool ScriptClient::handleSubscriptionRequest(const gloox::JID& jid, const std::string& msg) {
  emit("ROSTER-SUBSCRIBE-REQUEST jid=" + jid.bare() + " status=" + escape_line(msg));
  if (options_.sub_mode == "accept") client_->rosterManager()->ackSubscriptionRequest(jid, true);
  else if (options_.sub_mode == "deny") client_->rosterManager()->ackSubscriptionRequest(jid, false);
  return false;  // asynchronous listener: the return value is not used
}

bool ScriptClient::handleUnsubscriptionRequest(const gloox::JID& jid, const std::string& msg) {
  emit("ROSTER-UNSUBSCRIBE-REQUEST jid=" + jid.bare() + " status=" + escape_line(msg));
  return false;
}

void ScriptClient::handleRosterError(const gloox::IQ& iq) {
  emit("ROSTER-ERROR error=" + error_condition(iq));
}

}  // namespace parley_gloox
