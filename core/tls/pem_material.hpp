// core/tls/pem_material.hpp - certificates and keys read from PEM files, paired into leaves
// with their chains (internal to parley_tls).
#pragma once

#include <string>
#include <vector>

#include "core/tls/openssl_ptr.hpp"
#include "parley/result.hpp"

namespace parley::tls::detail {

struct PemCert {
  X509Ptr cert;
  std::string file;
};

struct PemKey {
  PkeyPtr key;
  std::string file;
};

struct PemMaterial {
  std::vector<PemCert> certs;
  std::vector<PemKey> keys;
};

// A certificate whose private key was found, with the intermediates that lead from it
// towards a root (the self-signed root itself is left out: the client must already have it).
struct Leaf {
  X509* cert = nullptr;     // borrowed from PemMaterial
  EVP_PKEY* key = nullptr;  // borrowed from PemMaterial
  std::vector<X509*> chain;
  std::string file;
};

// Reads every file; unencrypted keys only (the server starts unattended).
Result<PemMaterial, std::string> read_pem_files(const std::vector<std::string>& files);

// Every certificate with a matching key becomes a leaf; a key matching no certificate is an
// error (it is almost always the wrong file).
Result<std::vector<Leaf>, std::string> pair_leaves(const PemMaterial& material);

}  // namespace parley::tls::detail
