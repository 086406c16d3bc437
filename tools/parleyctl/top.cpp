// `parleyctl top`: asks the server for its `status` every second (-d) and
// shows it as a screen: sessions and connections, the rates of the counters
// since the last screen, every loop's queues with their 1/10/100 s decayed
// averages, the global queues, then every module metric. --once prints one
// screen without clearing the terminal (scripts, tests); -n stops after that
// many screens.
#include "top.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>

#include "control_client.hpp"

namespace parley::ctl {

namespace {

using Status = std::map<std::string, std::string>;

Status parse(const std::string& body) {
  Status out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t eol = body.find('\n', pos);
    std::string line = body.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    pos = eol == std::string::npos ? body.size() : eol + 1;
    size_t colon = line.find(": ");
    if (colon == std::string::npos) continue;
    out[line.substr(0, colon)] = line.substr(colon + 2);
  }
  return out;
}

std::string get(const Status& s, const std::string& key, const char* fallback = "-") {
  auto it = s.find(key);
  return it == s.end() ? fallback : it->second;
}

// Counters shown with their rate per second since the previous screen.
const char* kCounters[] = {"stanzas_in", "stanzas_out", "stanzas_cross_loop", "connections_accepted",
                           "auth_failures", "stream_errors", "tls_handshakes", "tls_failures",
                           "stanzas_refused_route_full"};

std::string screen(const Status& now, const Status* before, double seconds) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "parleyd  up %ss  workers %s  sessions %s  connections %s (websocket %s, bosh %s, http %s)\n\n",
                get(now, "uptime_seconds").c_str(), get(now, "workers").c_str(), get(now, "sessions").c_str(),
                get(now, "connections").c_str(), get(now, "connections_websocket", "0").c_str(),
                get(now, "connections_bosh", "0").c_str(), get(now, "connections_http", "0").c_str());
  out += line;
  out += "COUNTER                          TOTAL       /s\n";
  for (const char* c : kCounters) {
    std::string total = get(now, c);
    std::string rate = "-";
    if (before && seconds > 0 && now.count(c) && before->count(c)) {
      double r = (std::atof(now.at(c).c_str()) - std::atof(before->at(c).c_str())) / seconds;
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1f", r);
      rate = buf;
    }
    std::snprintf(line, sizeof line, "%-28s %10s %8s\n", c, total.c_str(), rate.c_str());
    out += line;
  }
  out += "\nQUEUE                            NOW    AVG 1s   AVG 10s  AVG 100s\n";
  int workers = std::atoi(get(now, "workers", "0").c_str());
  auto queue = [&](const std::string& label, const std::string& now_key, const std::string& avg_key) {
    std::string avgs = get(now, avg_key, "- - -");
    char a[3][32] = {"-", "-", "-"};
    std::sscanf(avgs.c_str(), "%31s %31s %31s", a[0], a[1], a[2]);
    std::snprintf(line, sizeof line, "%-28s %8s %9s %9s %9s\n", label.c_str(), get(now, now_key).c_str(), a[0], a[1],
                  a[2]);
    out += line;
  };
  for (int i = 0; i < workers; ++i) {
    std::string l = "loop" + std::to_string(i);
    queue(l + " inbox", l + "_inbox", l + "_loop_inbox_avg");
    queue(l + " route in", "route_to_" + l + "_queue", l + "_route_queue_avg");
    queue(l + " write backlog (bytes)", "-", l + "_write_backlog_bytes_avg");
  }
  queue("storage read", "storage_read_queue", "storage_read_queue_avg");
  queue("storage write", "storage_write_queue", "storage_write_queue_avg");
  queue("archive", "archive_queue", "archive_queue_avg");
  queue("keyval", "keyval_queue", "keyval_queue_avg");
  queue("accounts", "account_queue", "account_queue_avg");
  for (const auto& [key, value] : now) {
    // component_DOMAIN_queue, with its averages from component_DOMAIN_queue_avg.
    if (!key.starts_with("component_") || !key.ends_with("_queue")) continue;
    queue(key.substr(0, key.size() - 6), key, key + "_avg");
  }
  out += "\nMODULE METRIC                                        VALUE\n";
  for (const auto& [key, value] : now) {
    if (!key.starts_with("mod_")) continue;
    std::snprintf(line, sizeof line, "%-48s %s\n", key.c_str(), value.c_str());
    out += line;
  }
  return out;
}

int usage() {
  std::fputs("parleyctl: usage: top [--once] [-n COUNT] [-d SECONDS]\n", stderr);
  return 2;
}

}  // namespace

int run_top(const std::string& socket_path, const std::vector<std::string>& args) {
  bool once = false;
  long count = -1;
  double delay = 1.0;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--once") {
      once = true;
    } else if (args[i] == "-n" && i + 1 < args.size()) {
      count = std::atol(args[++i].c_str());
      if (count < 1) return usage();
    } else if (args[i] == "-d" && i + 1 < args.size()) {
      delay = std::atof(args[++i].c_str());
      if (delay < 0.1 || delay > 3600) return usage();
    } else {
      return usage();
    }
  }
  if (once) count = 1;
  bool clear = !once && isatty(STDOUT_FILENO);
  Status before;
  bool have_before = false;
  auto before_at = std::chrono::steady_clock::now();
  for (long shown = 0; count < 0 || shown < count; ++shown) {
    if (shown > 0) std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    ControlAnswer answer = send_control_request(socket_path, {"status"}, 10);
    if (answer.kind != ControlAnswer::Kind::answered || !answer.ok) {
      std::fprintf(stderr, "parleyctl: %s\n",
                   answer.kind == ControlAnswer::Kind::not_running ? "parleyd is not running" : answer.error.c_str());
      return answer.kind == ControlAnswer::Kind::not_running ? 3 : 1;
    }
    auto at = std::chrono::steady_clock::now();
    Status now = parse(answer.body);
    double seconds = std::chrono::duration<double>(at - before_at).count();
    std::string text = screen(now, have_before ? &before : nullptr, seconds);
    if (clear) std::fputs("\033[H\033[2J", stdout);
    else if (shown > 0) std::fputs("\n", stdout);
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
    before = std::move(now);
    before_at = at;
    have_before = true;
  }
  return 0;
}

}  // namespace parley::ctl
