// tools/parley-bench/scenarios.hpp - the options of every subcommand and their entry points.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace parley::bench {

struct CommonOptions {
  std::string domain = "localhost";
  std::string address = "127.0.0.1";
  uint16_t port = 5222;
  std::string tls = "starttls";           // starttls, direct, none
  std::string mechanism = "SCRAM-SHA-256";  // SCRAM-SHA-256, SCRAM-SHA-1, PLAIN
  std::string ca_file;                    // verify the server against it; empty: no verification
  unsigned threads = 0;                   // 0: one per core
  unsigned source_ips = 0;                // 0: automatic (one per 20,000 sessions); 1: the kernel's choice
  std::string user_prefix = "bench";
  std::string password = "benchpass";
  size_t first = 0;                       // number of the first user (bench0, bench1, ...)
  std::string resource = "bench";
  double login_rate = 0;                  // logins per second, 0: as fast as the concurrency allows
  unsigned login_concurrency = 32;        // logins in flight at once
  double login_timeout = 60;              // seconds, per login
  int server_pid = 0;                     // read its RSS and CPU time from /proc
  std::string label;                      // the server's name in the report
  std::string tag;                        // free text for scripts (e.g. the case of a comparison)
  std::string json_file;                  // also append the JSON line here
  std::string scram_cache;                // keep salted passwords across runs in this file
  bool progress = true;
  bool stream_management = false;  // every client sends <enable/> (XEP-0198) and answers <r/>
  bool csi_inactive = false;       // every client sends <inactive/> (XEP-0352) once bound
};

struct RegisterOptions {
  size_t users = 100;
  std::string parleyctl;     // register with this parleyctl instead of XEP-0077
  std::string parley_config;  // ... and this configuration
  unsigned jobs = 2;         // parleyctl processes at once
};

struct ConnectOptions {
  size_t sessions = 100;
  double hold = 5;  // seconds to stay idle after the last login, before measuring memory
};

struct ChatOptions {
  size_t pairs = 10;
  unsigned window = 1;
  uint64_t messages = 1000;
  double rate = 0;          // messages per second in total; 0: as fast as the window allows
  size_t body_bytes = 0;    // padding added to the body
  double settle = 1;        // seconds between the last login and the first message
  double drain_timeout = 10;  // give up after this long without a delivery
};

struct OfflineOptions {
  size_t receivers = 10;
  size_t senders = 5;
  uint64_t messages = 1000;
  unsigned batch = 50;        // messages a sender sends between two pings
  double drain_timeout = 10;
};

struct ChurnOptions {
  size_t sessions = 100;  // online at once
  double rate = 10;       // reconnections per second
  double duration = 10;   // seconds
};

struct PresenceOptions {
  size_t receivers = 100;  // sessions that get the presence updates
  size_t senders = 10;     // sessions that send them (directed presence), receiver i from sender i % S
  unsigned updates = 5;    // updates each receiver gets
  bool inactive = false;   // the receivers send <inactive/> (XEP-0352) before the updates, <active/> after
  double settle = 1;       // seconds between the logins (and <inactive/>) and the first update
  double drain_timeout = 20;
};

// muc: group chat fan-out (scenario_muc.cpp).
struct MucOptions {
  size_t occupants = 100;     // sessions in the room, the sender included
  uint64_t messages = 100;    // groupchat messages the first occupant sends
  double rate = 10;           // messages per second
  std::string room = "benchroom";
  std::string service;        // empty: conference. + the domain
  std::string presence_broadcast = "moderator";  // roles whose presence the room broadcasts ("": the default)
  double settle = 1;          // seconds between the last join and the first message
  double join_timeout = 120;  // seconds for every occupant to join
  double drain_timeout = 10;  // give up after this long without a delivery
  bool inactive = false;      // the occupants but the sender say <inactive/> (XEP-0352) once all joined
};

int run_register(const CommonOptions& common, const RegisterOptions& options);
int run_connect(const CommonOptions& common, const ConnectOptions& options);
int run_chat(const CommonOptions& common, const ChatOptions& options);
int run_offline(const CommonOptions& common, const OfflineOptions& options);
int run_churn(const CommonOptions& common, const ChurnOptions& options);
int run_presence(const CommonOptions& common, const PresenceOptions& options);
int run_muc(const CommonOptions& common, const MucOptions& options);

}  // namespace parley::bench
