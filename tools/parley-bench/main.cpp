// parley-bench: a load generator for XMPP servers (Parley, Prosody, ejabberd, any other), like
// redis-benchmark is for Redis. See BENCHMARKS.md and bench/compare.sh.
#include <CLI/CLI.hpp>
#include <openssl/ssl.h>

#include <csignal>
#include <cstdio>

#include "proc_stats.hpp"
#include "scenarios.hpp"

using namespace parley::bench;

namespace {

void add_common(CLI::App& app, CommonOptions& o) {
  app.add_option("--host,--domain", o.domain, "XMPP domain of the accounts")->capture_default_str();
  app.add_option("--address", o.address, "server IPv4 address")->capture_default_str();
  app.add_option("-p,--port", o.port, "c2s port")->capture_default_str();
  app.add_option("--tls", o.tls, "starttls, direct (XEP-0368) or none")->capture_default_str();
  app.add_option("--mechanism", o.mechanism, "SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN")->capture_default_str();
  app.add_option("--ca-file", o.ca_file, "verify the server's certificate against this PEM (default: no check)");
  app.add_option("-t,--threads", o.threads, "generator threads, one loop each (0: one per core)")->capture_default_str();
  app.add_option("--source-ips", o.source_ips,
                 "spread connections over 127.0.0.1..127.0.0.N (0: one address per 20,000 sessions)")
      ->capture_default_str();
  app.add_option("--user-prefix", o.user_prefix, "accounts are PREFIX0, PREFIX1, ...")->capture_default_str();
  app.add_option("--password", o.password, "the password of every account")->capture_default_str();
  app.add_option("--first", o.first, "number of the first account")->capture_default_str();
  app.add_option("--resource", o.resource, "resource to bind")->capture_default_str();
  app.add_option("--login-rate", o.login_rate, "logins per second (0: as fast as --login-concurrency allows)")
      ->capture_default_str();
  app.add_option("--login-concurrency", o.login_concurrency, "logins in flight at once")->capture_default_str();
  app.add_option("--login-timeout", o.login_timeout, "seconds a login may take")->capture_default_str();
  app.add_option("--server-pid", o.server_pid, "read the server's RSS and CPU time from /proc/PID");
  app.add_option("--label", o.label, "the server's name in the report");
  app.add_option("--tag", o.tag, "free text copied into the report (for scripts)");
  app.add_option("--json", o.json_file, "also append the JSON line to this file");
  app.add_option("--scram-cache", o.scram_cache, "keep SCRAM salted passwords in this file across runs");
  app.add_flag("!--no-progress", o.progress, "no progress on stderr");
  app.add_flag("--sm", o.stream_management, "every client enables XEP-0198 stream management and answers <r/>");
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  OPENSSL_init_ssl(0, nullptr);
  raise_file_limit();

  CLI::App app{"parley-bench: load generator for XMPP servers", "parley-bench"};
  app.require_subcommand(1);
  app.fallthrough();
  CommonOptions common;
  add_common(app, common);

  RegisterOptions reg;
  auto* register_cmd = app.add_subcommand("register", "create the accounts (XEP-0077, or parleyctl for Parley)");
  register_cmd->add_option("-n,--users", reg.users, "accounts to create")->capture_default_str();
  register_cmd->add_option("--parleyctl", reg.parleyctl, "use this parleyctl instead of in-band registration");
  register_cmd->add_option("--parley-config", reg.parley_config, "the Parley configuration for parleyctl");
  register_cmd->add_option("-j,--jobs", reg.jobs, "parleyctl processes at once")->capture_default_str();

  ConnectOptions connect;
  auto* connect_cmd = app.add_subcommand("connect", "log N sessions in and hold them idle");
  connect_cmd->add_option("-n,--sessions", connect.sessions, "sessions")->capture_default_str();
  connect_cmd->add_option("--hold", connect.hold, "seconds to hold them idle before measuring")->capture_default_str();

  ChatOptions chat;
  auto* chat_cmd = app.add_subcommand("chat", "pairs exchanging messages with a window in flight");
  chat_cmd->add_option("-P,--pairs", chat.pairs, "pairs of sessions")->capture_default_str();
  chat_cmd->add_option("-w,--window", chat.window, "messages in flight per pair")->capture_default_str();
  chat_cmd->add_option("-m,--messages", chat.messages, "messages in all")->capture_default_str();
  chat_cmd->add_option("--rate", chat.rate, "messages per second in all (0: as fast as the window allows)")
      ->capture_default_str();
  chat_cmd->add_option("--body-bytes", chat.body_bytes, "padding added to each body")->capture_default_str();
  chat_cmd->add_option("--settle", chat.settle, "seconds between the logins and the first message")->capture_default_str();
  chat_cmd->add_option("--drain-timeout", chat.drain_timeout, "give up after this many seconds without a delivery")
      ->capture_default_str();

  OfflineOptions offline;
  auto* offline_cmd = app.add_subcommand("offline", "messages to offline users, who then log in");
  offline_cmd->add_option("-r,--receivers", offline.receivers, "offline users")->capture_default_str();
  offline_cmd->add_option("-s,--senders", offline.senders, "sending sessions")->capture_default_str();
  offline_cmd->add_option("-m,--messages", offline.messages, "messages in all")->capture_default_str();
  offline_cmd->add_option("--batch", offline.batch, "messages per sender between two pings")->capture_default_str();
  offline_cmd->add_option("--drain-timeout", offline.drain_timeout, "give up after this many seconds without progress")
      ->capture_default_str();

  ChurnOptions churn;
  auto* churn_cmd = app.add_subcommand("churn", "sessions disconnecting and logging in again at a steady rate");
  churn_cmd->add_option("-n,--sessions", churn.sessions, "sessions online at once")->capture_default_str();
  churn_cmd->add_option("--rate", churn.rate, "reconnections per second")->capture_default_str();
  churn_cmd->add_option("--duration", churn.duration, "seconds")->capture_default_str();

  PresenceOptions presence;
  auto* presence_cmd = app.add_subcommand(
      "presence", "senders send directed presence updates to receivers, optionally inactive (XEP-0352)");
  presence_cmd->add_option("-r,--receivers", presence.receivers, "receiving sessions")->capture_default_str();
  presence_cmd->add_option("-s,--senders", presence.senders, "sending sessions")->capture_default_str();
  presence_cmd->add_option("-u,--updates", presence.updates, "updates per receiver")->capture_default_str();
  presence_cmd->add_flag("--inactive", presence.inactive, "receivers send <inactive/> first, <active/> at the end");
  presence_cmd->add_option("--settle", presence.settle, "seconds between the logins and the first update")
      ->capture_default_str();
  presence_cmd->add_option("--drain-timeout", presence.drain_timeout, "give up after this many seconds")
      ->capture_default_str();

  MucOptions muc;
  auto* muc_cmd = app.add_subcommand("muc", "one room: every occupant gets the groupchat messages the first one sends");
  muc_cmd->add_option("-o,--occupants", muc.occupants, "sessions in the room")->capture_default_str();
  muc_cmd->add_option("-m,--messages", muc.messages, "groupchat messages sent")->capture_default_str();
  muc_cmd->add_option("--rate", muc.rate, "messages per second")->capture_default_str();
  muc_cmd->add_option("--room", muc.room, "the room's local part")->capture_default_str();
  muc_cmd->add_option("--service", muc.service, "the MUC service (default: conference.DOMAIN)");
  muc_cmd->add_option("--presence-broadcast", muc.presence_broadcast,
                      "roles whose presence is broadcast, comma-separated (empty: the server's default)")
      ->capture_default_str();
  muc_cmd->add_option("--settle", muc.settle, "seconds between the joins and the first message")
      ->capture_default_str();
  muc_cmd->add_option("--join-timeout", muc.join_timeout, "seconds for every occupant to join")
      ->capture_default_str();
  muc_cmd->add_flag("--inactive", muc.inactive,
                    "the occupants but the sender send <inactive/> (XEP-0352) once all joined");
  muc_cmd->add_option("--drain-timeout", muc.drain_timeout, "give up after this many seconds")
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);

  if (register_cmd->parsed()) return run_register(common, reg);
  if (connect_cmd->parsed()) return run_connect(common, connect);
  if (chat_cmd->parsed()) return run_chat(common, chat);
  if (offline_cmd->parsed()) return run_offline(common, offline);
  if (churn_cmd->parsed()) return run_churn(common, churn);
  if (presence_cmd->parsed()) return run_presence(common, presence);
  if (muc_cmd->parsed()) return run_muc(common, muc);
  return 2;
}
