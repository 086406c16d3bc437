// A gloox client driven by line commands (from --cmd arguments or stdin) that
// prints every event as one line on stdout. The Python integration tests run
// several of these at once against a real parleyd.
#pragma once

#include "module_commands.hpp"

#include <gloox/client.h>
#include <gloox/connectionlistener.h>
#include <gloox/disco.h>
#include <gloox/discohandler.h>
#include <gloox/eventhandler.h>
#include <gloox/loghandler.h>
#include <gloox/messagehandler.h>
#include <gloox/presencehandler.h>
#include <gloox/rosterlistener.h>
#include <gloox/rostermanager.h>
#include <gloox/subscription.h>
#include <gloox/subscriptionhandler.h>
#include <gloox/tlshandler.h>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace parley_gloox {

// Process exit codes; the tests assert on them.
enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,
  kExitConnection = 2,     // TCP, TLS or stream failure before the session was online
  kExitAuth = 3,           // SASL <failure/>
  kExitTimeout = 4,        // login, expect-msg or wait-msgs did not finish in time
  kExitLost = 5,           // the server closed an online session (stream error or close)
  kExitNoMechanism = 6,    // the server offered none of the allowed SASL mechanisms
  kExitRegistration = 7,   // --register: the server refused the registration
};

struct Options {
  std::string host = "127.0.0.1";
  int port = 5222;
  std::string jid;            // user@domain/resource
  std::string password;
  std::string mech = "any";   // scram-sha-1 | scram-sha-1-plus | plain | any
  std::string tls = "required";  // required | optional | disabled
  bool direct_tls = false;    // XEP-0368: TLS from the first byte
  int priority = 0;
  bool initial_presence = true;
  double login_timeout = 20.0;
  bool verbose = false;       // gloox debug log (with raw XML) on stderr
  std::vector<std::string> commands;  // when non-empty, stdin is not read
  // gloox's RosterManager: the roster is fetched at login (before initial
  // presence), pushes and subscription events are printed (ROSTER-*).
  bool roster = false;
  std::string sub_mode = "ask";  // incoming subscribe: ask (wait for approve/deny) | accept | deny
  // XEP-0077: register the JID's localpart with the password, then exit
  // (register_client.hpp) instead of logging in.
  bool register_account = false;
};

class GlooxClient : public gloox::Client {
 public:
  using gloox::Client::Client;
  // Lets a test put arbitrary XML on the stream (gloox keeps this protected).
  void send_raw(const std::string& xml) { send(xml); }
};

class ScriptClient : public gloox::ConnectionListener,
                     public gloox::MessageHandler,
                     public gloox::PresenceHandler,
                     public gloox::EventHandler,
                     public gloox::DiscoHandler,
                     public gloox::SubscriptionHandler,
                     public gloox::RosterListener,
                     public gloox::LogHandler,
                     public CommandHost {
 public:
  explicit ScriptClient(Options options);
  // Runs until quit, disconnect or a failed expectation; returns the exit code.
  int run();

  // gloox callbacks
  void onConnect() override;
  void onDisconnect(gloox::ConnectionError e) override;
  bool onTLSConnect(const gloox::CertInfo& info) override;
  void onResourceBindError(const gloox::Error* error) override;
  void onSessionCreateError(const gloox::Error* error) override;
  void handleMessage(const gloox::Message& msg, gloox::MessageSession* session) override;
  void handlePresence(const gloox::Presence& presence) override;
  void handleEvent(const gloox::Event& event) override;
  void handleDiscoInfo(const gloox::JID& from, const gloox::Disco::Info& info, int context) override;
  void handleDiscoItems(const gloox::JID& from, const gloox::Disco::Items& items, int context) override;
  void handleDiscoError(const gloox::JID& from, const gloox::Error* error, int context) override;
  void handleLog(gloox::LogLevel level, gloox::LogArea area, const std::string& message) override;
  void handleSubscription(const gloox::Subscription& subscription) override;
  // RosterListener (only with --roster)
  void handleItemAdded(const gloox::JID& jid) override;
  void handleItemSubscribed(const gloox::JID& jid) override;
  void handleItemRemoved(const gloox::JID& jid) override;
  void handleItemUpdated(const gloox::JID& jid) override;
  void handleItemUnsubscribed(const gloox::JID& jid) override;
  void handleRoster(const gloox::Roster& roster) override;
  void handleRosterPresence(const gloox::RosterItem& item, const std::string& resource,
                            gloox::Presence::PresenceType presence, const std::string& msg) override;
  void handleSelfPresence(const gloox::RosterItem& item, const std::string& resource,
                          gloox::Presence::PresenceType presence, const std::string& msg) override;
  bool handleSubscriptionRequest(const gloox::JID& jid, const std::string& msg) override;
  bool handleUnsubscriptionRequest(const gloox::JID& jid, const std::string& msg) override;
  void handleNonrosterPresence(const gloox::Presence& presence) override;
  void handleRosterError(const gloox::IQ& iq) override;
  // CommandHost (module_commands.cpp)
  void emit(const std::string& line) override;
  void await_reply(const std::string& what, double timeout_s) override;
  void reply_done() override;

 private:
  using Clock = std::chrono::steady_clock;

  // A command that blocks the script until something arrives or time runs out.
  struct Wait {
    enum class Kind { kExpectMsg, kWaitMsgs, kPing, kDisco, kSleep, kExpectIn, kReply } kind;
    std::string arg;      // body, or the JID pinged / queried
    size_t count = 0;     // for wait-msgs
    Clock::time_point started;
    Clock::time_point deadline;
    bool done = false;
  };

  // Incoming XML seen since the last expect-in matched (raw, as gloox logs it).
  std::vector<std::string> incoming_;

  struct Received {
    std::string body;
    bool consumed = false;
  };

  // Roster and subscription commands; false if `cmd` is none of them.
  bool execute_roster(const std::string& cmd, const std::string& rest);
  std::string item_line(const gloox::RosterItem& item) const;
  void emit_push(const char* op, const gloox::JID& jid);
  void read_stdin();
  void step_script();
  void execute(const std::string& line);
  void check_wait();
  void finish(int code);

  Options options_;
  // Declared before client_ so that it outlives the connection that calls it.
  std::unique_ptr<gloox::TLSHandler> tls_observer_;  // direct TLS only
  std::unique_ptr<GlooxClient> client_;
  // After client_, so that it is destroyed first: its gloox objects unregister from the client.
  std::unique_ptr<ModuleCommands> modules_;
  std::deque<std::string> pending_;
  std::string stdin_buffer_;
  bool stdin_open_ = true;
  bool online_ = false;
  bool finished_ = false;
  bool quitting_ = false;
  int exit_code_ = kExitOk;
  std::optional<Wait> wait_;
  std::vector<Received> inbox_;
  gloox::CertInfo tls_info_{};
  bool have_tls_info_ = false;
  int disco_context_ = 0;
  // gloox keeps the chosen mechanism private, so it is read off the
  // outgoing <auth/> element in the XML log.
  std::string sasl_mech_ = "none";
};

}  // namespace parley_gloox
