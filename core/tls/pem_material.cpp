#include "core/tls/pem_material.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace parley::tls::detail {

namespace {

// A PEM bundle is a few KiB; anything this large is not one.
constexpr size_t kMaxPemBytes = 4 << 20;

struct PemBlock {
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  ~PemBlock() {
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
  }
};

Result<std::string, std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return unexpected(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char chunk[16384];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    text.append(chunk, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxPemBytes) return unexpected(path + ": larger than 4 MiB, not a PEM bundle");
  }
  if (in.bad()) return unexpected(path + ": read error");
  return text;
}

Result<void, std::string> read_one(const std::string& path, PemMaterial& out) {
  auto text = read_file(path);
  if (!text) return unexpected(text.error());
  BioPtr bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  if (!bio) return unexpected(openssl_error(path));
  size_t found = 0;
  ERR_clear_error();
  for (;;) {
    PemBlock b;
    if (!PEM_read_bio(bio.get(), &b.name, &b.header, &b.data, &b.len)) {
      const unsigned long e = ERR_peek_last_error();
      if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        break;
      }
      return unexpected(openssl_error(path + ": malformed PEM"));
    }
    const std::string name = b.name;
    const unsigned char* p = b.data;
    const bool encrypted = name == "ENCRYPTED PRIVATE KEY" || (b.header && std::strstr(b.header, "ENCRYPTED"));
    if (encrypted) return unexpected(path + ": encrypted private keys are not supported (the server starts unattended)");
    if (name == "CERTIFICATE" || name == "X509 CERTIFICATE" || name == "TRUSTED CERTIFICATE") {
      X509* x = name == "TRUSTED CERTIFICATE" ? d2i_X509_AUX(nullptr, &p, b.len) : d2i_X509(nullptr, &p, b.len);
      if (!x) return unexpected(openssl_error(path + ": invalid certificate"));
      out.certs.push_back(PemCert{X509Ptr(x), path});
      ++found;
    } else if (name == "PRIVATE KEY" || name == "RSA PRIVATE KEY" || name == "EC PRIVATE KEY" ||
               name == "DSA PRIVATE KEY") {
      EVP_PKEY* k = nullptr;
      if (name == "RSA PRIVATE KEY") k = d2i_PrivateKey(EVP_PKEY_RSA, nullptr, &p, b.len);
      else if (name == "EC PRIVATE KEY") k = d2i_PrivateKey(EVP_PKEY_EC, nullptr, &p, b.len);
      else if (name == "DSA PRIVATE KEY") k = d2i_PrivateKey(EVP_PKEY_DSA, nullptr, &p, b.len);
      else k = d2i_AutoPrivateKey(nullptr, &p, b.len);
      if (!k) return unexpected(openssl_error(path + ": invalid private key"));
      out.keys.push_back(PemKey{PkeyPtr(k), path});
      ++found;
    }
    // Anything else (DH or EC parameters, CRLs) has no use here and is skipped.
  }
  if (found == 0) return unexpected(path + ": no certificate or private key found");
  return {};
}

bool issued(X509* issuer, X509* subject) { return X509_check_issued(issuer, subject) == X509_V_OK; }

}  // namespace

Result<PemMaterial, std::string> read_pem_files(const std::vector<std::string>& files) {
  PemMaterial m;
  for (const std::string& f : files) {
    auto r = read_one(f, m);
    if (!r) return unexpected(r.error());
  }
  return m;
}

Result<std::vector<Leaf>, std::string> pair_leaves(const PemMaterial& m) {
  std::vector<Leaf> leaves;
  for (const PemKey& k : m.keys) {
    bool matched = false;
    for (const PemCert& c : m.certs) {
      EVP_PKEY* pub = X509_get0_pubkey(c.cert.get());
      if (!pub || EVP_PKEY_eq(pub, k.key.get()) != 1) continue;
      matched = true;
      bool seen = false;
      for (const Leaf& l : leaves) seen = seen || l.cert == c.cert.get();
      if (!seen) leaves.push_back(Leaf{c.cert.get(), k.key.get(), {}, c.file});
    }
    ERR_clear_error();
    if (!matched) return unexpected(k.file + ": private key matches no certificate in the certfiles");
  }
  for (Leaf& leaf : leaves) {
    X509* current = leaf.cert;
    // Bounded: a chain longer than this is a loop or a mistake.
    for (int depth = 0; depth < 8 && !issued(current, current); ++depth) {
      X509* next = nullptr;
      for (const PemCert& c : m.certs) {
        X509* candidate = c.cert.get();
        if (candidate == current || candidate == leaf.cert || !issued(candidate, current)) continue;
        bool in_chain = false;
        for (X509* x : leaf.chain) in_chain = in_chain || x == candidate;
        if (in_chain) continue;
        // Prefer the issuer that sits in the leaf's own file.
        if (!next || (c.file == leaf.file)) next = candidate;
        if (c.file == leaf.file) break;
      }
      if (!next || issued(next, next)) break;
      leaf.chain.push_back(next);
      current = next;
    }
    ERR_clear_error();
  }
  return leaves;
}

}  // namespace parley::tls::detail
