// Shared by the TLS tests and the idle-memory probe: temp dirs, test certificates, and a
// client/server pair pumped into each other in memory.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/tls/context_store.hpp"
#include "core/tls/openssl_ptr.hpp"
#include "core/tls/self_signed.hpp"
#include "core/tls/stream.hpp"

namespace parley::tls::test {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "parley-tls-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline std::string self_signed(const TempDir& dir, const std::string& host, const std::string& name) {
  const std::string path = dir.file(name);
  auto r = generate_self_signed(host, path);
  if (!r) throw std::runtime_error(r.error());
  return path;
}

inline X509Ptr first_cert(const std::string& pem_path) {
  BioPtr bio(BIO_new_file(pem_path.c_str(), "r"));
  if (!bio) return nullptr;
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

// Moves bytes between a client and a server until neither has anything to say.
// Returns false on a TLS error (message in `error`).
struct Pair {
  std::unique_ptr<Stream> client;
  std::unique_ptr<Stream> server;
  std::string to_server, to_client;      // in flight
  std::string client_plain, server_plain;  // received application data
  std::string error;
  size_t chunk = 0;  // 0: deliver everything at once; n: at most n bytes per feed()

  bool pump(int max_rounds = 10000) {
    for (int i = 0; i < max_rounds; ++i) {
      if (to_server.empty() && to_client.empty()) return true;
      if (!deliver(*server, to_server, server_plain, to_client)) return false;
      if (!deliver(*client, to_client, client_plain, to_server)) return false;
    }
    error = "pump did not settle";
    return false;
  }

  bool start() {
    auto r = client->feed({}, client_plain, to_server);
    if (!r) return error = r.error(), false;
    return pump();
  }

 private:
  bool deliver(Stream& s, std::string& in, std::string& plain, std::string& out) {
    if (in.empty()) return true;
    std::string data;
    data.swap(in);
    const size_t step = chunk ? chunk : data.size();
    for (size_t pos = 0; pos < data.size(); pos += step) {
      auto r = s.feed(std::string_view(data).substr(pos, step), plain, out);
      if (!r) return error = r.error(), false;
    }
    return true;
  }
};

}  // namespace parley::tls::test
