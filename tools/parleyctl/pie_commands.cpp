// tools/parleyctl/pie_commands.cpp - see pie_commands.hpp.
#include "pie_commands.hpp"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "control_client.hpp"
#include "core/export/pie_reader.hpp"
#include "xml/serializer.hpp"

namespace parley::ctl {
namespace {

constexpr int kOk = 0, kError = 1, kUsage = 2;

std::string attr_escaped(std::string_view s) {
  std::string out;
  xml::escape_attr_to(out, s);
  return out;
}

// Sends one request; on failure prints why and returns nullopt-like (ok=false, kind!=answered).
bool ask(const config::Config& config, const std::vector<std::string>& argv, std::string& body, bool& ok) {
  auto answer = send_control_request(config.control_socket, argv, 600);
  switch (answer.kind) {
    case ControlAnswer::Kind::answered:
      body = std::move(answer.body);
      ok = answer.ok;
      return true;
    case ControlAnswer::Kind::failed:
      std::fprintf(stderr, "parleyctl: %s\n", answer.error.c_str());
      return false;
    case ControlAnswer::Kind::not_running:
      std::fprintf(stderr, "parleyctl: %s needs a running parleyd (the modules' data is read and written by it)\n",
                   argv[0].c_str());
      return false;
  }
  return false;
}

// An answer that is no answer (no server, a broken exchange) reported; false then.
bool report(const ControlAnswer& answer, const char* command) {
  switch (answer.kind) {
    case ControlAnswer::Kind::answered: return true;
    case ControlAnswer::Kind::failed: std::fprintf(stderr, "parleyctl: %s\n", answer.error.c_str()); return false;
    case ControlAnswer::Kind::not_running:
      std::fprintf(stderr, "parleyctl: %s needs a running parleyd (the modules' data is read and written by it)\n",
                   command);
      return false;
  }
  return false;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

int run_export(const config::Config& config, const std::vector<std::string>& args) {
  std::string host, user, file;
  for (size_t i = 1; i < args.size(); ++i) {
    if ((args[i] == "--host" || args[i] == "--user") && i + 1 < args.size()) {
      (args[i] == "--host" ? host : user) = args[i + 1];
      ++i;
    } else if (file.empty() && !args[i].empty() && args[i][0] != '-') {
      file = args[i];
    } else {
      file.clear();
      break;
    }
  }
  if (file.empty() || (!user.empty() && host.empty())) {
    std::fputs("parleyctl: usage: export [--host HOST [--user USER]] FILE\n", stderr);
    return kUsage;
  }
  std::vector<std::string> hosts = host.empty() ? config.hosts : std::vector<std::string>{host};
  std::string tmp = file + ".part";
  std::FILE* out = std::fopen(tmp.c_str(), "wb");
  if (!out) {
    std::fprintf(stderr, "parleyctl: cannot write %s\n", tmp.c_str());
    return kError;
  }
  auto abandon = [&](int code) {
    std::fclose(out);
    std::remove(tmp.c_str());
    return code;
  };
  std::fputs("<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>\n", out);
  size_t accounts = 0;
  for (const std::string& h : hosts) {
    std::vector<std::string> users;
    if (!user.empty()) {
      users.push_back(user);
    } else {
      std::string body;
      bool ok = false;
      if (!ask(config, {"list-users", h}, body, ok)) return abandon(kError);
      if (!ok) {
        std::fprintf(stderr, "parleyctl: %s\n", trimmed(body).c_str());
        return abandon(kError);
      }
      std::istringstream lines(body);
      for (std::string line; std::getline(lines, line);)
        if (!line.empty()) users.push_back(line);
    }
    std::fprintf(out, "  <host jid='%s'>\n", attr_escaped(h).c_str());
    for (const std::string& u : users) {
      // The account comes in pieces, written to the file as they arrive (the server
      // sends the next once this side has read: neither holds the whole account).
      std::fputs("    ", out);
      ControlConnection conn;
      ControlAnswer answer = conn.open(config.control_socket, {"export-user", u, h}, 600);
      bool continued = false;
      if (answer.kind == ControlAnswer::Kind::answered)
        answer = conn.read_answer(
            [&](std::string_view piece) { return std::fwrite(piece.data(), 1, piece.size(), out) == piece.size(); },
            continued);
      if (!report(answer, "export-user")) return abandon(kError);
      if (!answer.ok || continued) {
        std::fprintf(stderr, "parleyctl: export of %s@%s failed: %s\n", u.c_str(), h.c_str(),
                     trimmed(answer.body).c_str());
        return abandon(kError);
      }
      std::fputc('\n', out);
      ++accounts;
    }
    std::fputs("  </host>\n", out);
  }
  std::fputs("</server-data>\n", out);
  if (std::fflush(out) != 0 || std::ferror(out)) {
    std::fprintf(stderr, "parleyctl: cannot write %s\n", tmp.c_str());
    return abandon(kError);
  }
  std::fclose(out);
  std::error_code ec;
  std::filesystem::rename(tmp, file, ec);
  if (ec) {
    std::fprintf(stderr, "parleyctl: cannot rename %s to %s: %s\n", tmp.c_str(), file.c_str(), ec.message().c_str());
    return kError;
  }
  std::printf("exported %zu account%s to %s\n", accounts, accounts == 1 ? "" : "s", file.c_str());
  return kOk;
}

int run_import(const config::Config& config, const std::vector<std::string>& args) {
  bool replace = false;
  std::string file;
  bool bad = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--replace")
      replace = true;
    else if (file.empty() && !args[i].empty() && args[i][0] != '-')
      file = args[i];
    else
      bad = true;
  }
  if (file.empty() || bad) {
    std::fputs("parleyctl: usage: import [--replace] FILE\n", stderr);
    return kUsage;
  }
  // An account larger than one request goes in parts (the reader cuts its archive and
  // offline messages): the same limit as the server's, from the same configuration.
  pie::PieLimits limits;
  limits.part_bytes = config.limits.max_account_part_bytes;
  limits.max_user_bytes = 2 * limits.part_bytes;
  // First the whole file, so that a malformed one imports nothing.
  auto checked = pie::read_pie_file(file, [](pie::PieUser&&) { return true; }, limits);
  if (!checked) {
    std::fprintf(stderr, "parleyctl: %s: %s\n", file.c_str(), checked.error().to_string().c_str());
    return kError;
  }
  size_t imported = 0, skipped = 0, failed = 0;
  bool stop = false;
  // The account being sent in parts: its connection, or (skip) the rest of a refused one.
  std::unique_ptr<ControlConnection> conn;
  bool skip = false;
  auto answered = [&](const pie::PieUser& u, const ControlAnswer& answer, bool continued) {
    if (continued) return;
    conn.reset();
    skip = !u.last;
    std::string body = trimmed(answer.body);
    if (!answer.ok) {
      ++failed;
      std::fprintf(stderr, "parleyctl: %s:%llu: %s\n", file.c_str(), static_cast<unsigned long long>(u.line),
                   body.c_str());
    } else {
      (body.rfind("skipped", 0) == 0 ? skipped : imported)++;
      std::printf("%s\n", body.c_str());
    }
  };
  auto read = pie::read_pie_file(file, [&](pie::PieUser&& u) {
    if (u.part > 0 && skip) {
      skip = !u.last;
      return true;
    }
    xml::SerializeContext sc;
    sc.default_ns = pie::kPieNs;
    sc.stream_prefix = false;
    std::string doc = "<server-data xmlns='urn:xmpp:pie:0'><host jid='" + attr_escaped(u.host) + "'>";
    xml::serialize_to(doc, u.user, sc);
    doc += "</host></server-data>";
    ControlAnswer answer;
    bool continued = false;
    if (u.part == 0) {
      std::vector<std::string> argv{"import-user", std::move(doc)};
      if (replace) argv.push_back("--replace");
      if (!u.last) argv.push_back("--parts");
      conn = std::make_unique<ControlConnection>();
      answer = conn->open(config.control_socket, argv, 600);
    } else {
      std::vector<std::string> argv{"import-part", std::move(doc)};
      if (u.last) argv.push_back("--last");
      answer.kind = ControlAnswer::Kind::answered;
      if (!conn || !conn->send(argv, answer.error)) answer.kind = ControlAnswer::Kind::failed;
      if (!conn) answer.error = "the import of " + u.name + "@" + u.host + " lost its connection";
    }
    if (answer.kind == ControlAnswer::Kind::answered)
      answer = conn->read_answer([](std::string_view) { return false; }, continued);
    if (!report(answer, "import")) {
      stop = true;
      return false;
    }
    if (continued && u.last) {
      std::fprintf(stderr, "parleyctl: the server wants more of %s@%s than the file has\n", u.name.c_str(),
                   u.host.c_str());
      stop = true;
      return false;
    }
    answered(u, answer, continued);
    return true;
  }, limits);
  if (stop) return kError;
  if (!read) {  // the file changed since it was checked
    std::fprintf(stderr, "parleyctl: %s: %s\n", file.c_str(), read.error().to_string().c_str());
    return kError;
  }
  std::printf("%zu imported, %zu skipped, %zu failed\n", imported, skipped, failed);
  return failed ? kError : kOk;
}

}  // namespace parley::ctl
