// parley_gloox_client: a scriptable gloox 1.0 client for Parley's integration
// tests. See usage() for the command language and the exit codes.
#include "register_client.hpp"
#include "script_client.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

void usage(std::FILE* out) {
  std::fputs(
      "usage: parley_gloox_client --jid USER@DOMAIN/RESOURCE --password PW [options]\n"
      "  --host ADDR            server address to connect to (default 127.0.0.1)\n"
      "  --port N               port (default 5222)\n"
      "  --mech M               scram-sha-1 | scram-sha-1-plus | plain | any (default any)\n"
      "  --tls P                required | optional | disabled STARTTLS policy (default required)\n"
      "  --direct-tls           TLS from the first byte (XEP-0368); STARTTLS off\n"
      "  --priority N           priority of the initial presence (default 0)\n"
      "  --no-presence          send no initial presence\n"
      "  --login-timeout S      seconds to get online (default 20)\n"
      "  --cmd LINE             run LINE as a command (repeatable); stdin is then not read\n"
      "  --verbose              gloox debug log, with the raw XML, on stderr\n"
      "  --roster               use gloox's RosterManager (roster fetched at login, pushes printed)\n"
      "  --sub-mode M           with --roster, an incoming subscribe: ask (default; wait for\n"
      "                         approve/deny) | accept | deny\n"
      "  --register             XEP-0077 with gloox's Registration: connect without logging in,\n"
      "                         register the JID's localpart with PW, print REGISTERED or\n"
      "                         REGISTER-ERROR, exit (no commands; --tls applies, not --direct-tls)\n"
      "Commands (one per line; run in order once online; EOF on stdin = quit):\n"
      "  expect-in TEXT [T]                 wait for incoming XML containing TEXT; prints IN <xml>\n"
      "  send JID BODY                      chat message\n"
      "  send-type TYPE JID BODY            TYPE: chat|normal|headline|groupchat\n"
      "  presence [PRIO [SHOW [STATUS]]]    SHOW: available|chat|away|dnd|xa\n"
      "  unavailable [STATUS]\n"
      "  expect-msg BODY [TIMEOUT]          wait for a message with exactly BODY\n"
      "                                     (a BODY ending in a number needs TIMEOUT)\n"
      "  wait-msgs N [TIMEOUT]              wait until N messages arrived in total\n"
      "  ping [JID [TIMEOUT]]               XEP-0199 (default: the server)\n"
      "  disco [JID [TIMEOUT]]              disco#info (default: the server)\n"
      "  raw XML                            put XML on the stream as is\n"
      "  whitespace                         whitespace keepalive\n"
      "  sleep SECONDS | echo TEXT | quit\n"
      "  roster-list                        (--roster) print the roster as gloox holds it\n"
      "  roster-add JID [GROUPS|- [NAME]]   (--roster) roster set; GROUPS comma-separated\n"
      "  roster-remove JID                  (--roster) roster set with subscription='remove'\n"
      "  subscribe JID [STATUS]             (--roster: also adds the item, as gloox does)\n"
      "  unsubscribe JID [STATUS] | cancel JID [STATUS] (unsubscribed)\n"
      "  approve JID | deny JID             answer a subscription request\n"
      "Module commands (gloox's protocol classes; each waits for its reply, default 10 s):\n"
      "  vcard-set NICK|- FULL NAME         VCardManager::storeVCard (FN, NICKNAME)  -> VCARD-SET\n"
      "  vcard-get [JID|self [T]]           VCardManager::fetchVCard                 -> VCARD-GET\n"
      "  private-set ELEM XMLNS [CHILD [TEXT]]  PrivateXML::storeXML                 -> PRIVATE-SET\n"
      "  private-get ELEM XMLNS             PrivateXML::requestXML -> PRIVATE-GET, PRIVATE-CHILD\n"
      "  last [JID [T]]                     LastActivity::query (default: the server) -> LAST\n"
      "  version [JID [T]]                  iq with SoftwareVersion (default: the server)\n"
      "                                     -> SOFTWARE-VERSION, SOFTWARE-OS\n"
      "  set-version NAME VERSION [OS]      what gloox's Disco answers to jabber:iq:version\n"
      "  passwd NEWPW                       Registration::changePassword            -> PASSWD\n"
      "  unregister                         Registration::removeAccount             -> UNREGISTER\n"
      "Output lines: TLS, CONNECTED, MSG, PRESENCE, PING, DISCO-IDENTITY, DISCO-FEATURE,\n"
      "  DISCO-END, OK, TIMEOUT, ECHO, ERROR, BIND-ERROR, SESSION-ERROR, DISCONNECTED,\n"
      "  SUBSCRIPTION (every subscription stanza), and with --roster ROSTER-ITEM, ROSTER-END,\n"
      "  ROSTER-PUSH, ROSTER-SUBSCRIBED, ROSTER-UNSUBSCRIBED, ROSTER-SUBSCRIBE-REQUEST,\n"
      "  ROSTER-UNSUBSCRIBE-REQUEST, ROSTER-ERROR; a module command's line (result=ok or\n"
      "  result=error:CONDITION) or TIMEOUT <command>; with --register REGISTER-STREAM,\n"
      "  REGISTER-FORM, REGISTER-FIELDS, then REGISTERED or REGISTER-ERROR.\n"
      "Exit codes: 0 ok, 1 usage, 2 connection/TLS/stream failure before online,\n"
      "  3 authentication failure, 4 timeout (login, expect-msg, wait-msgs),\n"
      "  5 session lost after login, 6 no allowed SASL mechanism offered,\n"
      "  7 registration refused (--register).\n",
      out);
}

}  // namespace

int main(int argc, char** argv) {
  parley_gloox::Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", a.c_str());
        std::exit(parley_gloox::kExitUsage);
      }
      return argv[++i];
    };
    if (a == "--host") o.host = value();
    else if (a == "--port") o.port = std::atoi(value().c_str());
    else if (a == "--jid") o.jid = value();
    else if (a == "--password") o.password = value();
    else if (a == "--mech") o.mech = value();
    else if (a == "--tls") o.tls = value();
    else if (a == "--direct-tls") o.direct_tls = true;
    else if (a == "--priority") o.priority = std::atoi(value().c_str());
    else if (a == "--no-presence") o.initial_presence = false;
    else if (a == "--login-timeout") o.login_timeout = std::atof(value().c_str());
    else if (a == "--cmd") o.commands.push_back(value());
    else if (a == "--verbose") o.verbose = true;
    else if (a == "--roster") o.roster = true;
    else if (a == "--sub-mode") o.sub_mode = value();
    else if (a == "--register") o.register_account = true;
    else if (a == "--help" || a == "-h") {
      usage(stdout);
      return parley_gloox::kExitOk;
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      usage(stderr);
      return parley_gloox::kExitUsage;
    }
  }
  const bool mech_ok = o.mech == "any" || o.mech == "scram-sha-1" || o.mech == "scram-sha-1-plus" ||
                       o.mech == "plain";
  const bool tls_ok = o.tls == "required" || o.tls == "optional" || o.tls == "disabled";
  const bool sub_ok = o.sub_mode == "ask" || o.sub_mode == "accept" || o.sub_mode == "deny";
  if (o.jid.empty() || o.jid.find('@') == std::string::npos || !mech_ok || !tls_ok || !sub_ok || o.port <= 0) {
    usage(stderr);
    return parley_gloox::kExitUsage;
  }
  if (o.register_account) {
    if (o.direct_tls) {
      usage(stderr);
      return parley_gloox::kExitUsage;
    }
    parley_gloox::RegisterClient registrar(o);
    return registrar.run();
  }
  parley_gloox::ScriptClient client(o);
  return client.run();
}
