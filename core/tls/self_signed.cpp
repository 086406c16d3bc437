#include "core/tls/self_signed.hpp"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/tls/openssl_ptr.hpp"

namespace parley::tls {

namespace {

bool plausible_host(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == '*';
    if (!ok) return false;
  }
  return true;
}

bool add_ext(X509* x, X509V3_CTX* ctx, int nid, const char* value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
  if (!ext) return false;
  const bool ok = X509_add_ext(x, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

bool is_localhost(const std::string& host) {
  if (host.size() != 9) return false;
  for (size_t i = 0; i < host.size(); ++i)
    if ((host[i] | 0x20) != "localhost"[i]) return false;
  return true;
}

// Takes `value` (an ASN1_IA5STRING for GEN_DNS, an ASN1_OCTET_STRING for
// GEN_IPADD) whatever happens.
bool push_name(GENERAL_NAMES* names, int type, ASN1_STRING* value) {
  GENERAL_NAME* name = value ? GENERAL_NAME_new() : nullptr;
  if (!name) {
    ASN1_STRING_free(value);
    return false;
  }
  GENERAL_NAME_set0_value(name, type, value);
  if (sk_GENERAL_NAME_push(names, name) > 0) return true;
  GENERAL_NAME_free(name);
  return false;
}

// DNS:host; for localhost also IP:127.0.0.1 and IP:::1, so that a client that
// dials the loopback address and checks it against the certificate connects.
bool add_san(X509* x, const std::string& host) {
  GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
  if (!names) return false;
  ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
  if (ia5 && ASN1_STRING_set(ia5, host.data(), static_cast<int>(host.size())) != 1) {
    ASN1_IA5STRING_free(ia5);
    ia5 = nullptr;
  }
  bool ok = push_name(names, GEN_DNS, ia5);
  if (is_localhost(host)) {
    ok = ok && push_name(names, GEN_IPADD, a2i_IPADDRESS("127.0.0.1"));
    ok = ok && push_name(names, GEN_IPADD, a2i_IPADDRESS("::1"));
  }
  ok = ok && X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1;
  GENERAL_NAMES_free(names);
  return ok;
}

Result<void, std::string> write_private_file(const std::string& path, const char* data, size_t len) {
  std::error_code ec;
  const std::filesystem::path p(path);
  if (p.has_parent_path()) {
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec) return unexpected(path + ": cannot create directory: " + ec.message());
  }
  std::string tmp = path + ".XXXXXX";
  const int fd = mkstemp(tmp.data());  // created 0600
  if (fd < 0) return unexpected(path + ": cannot create: " + std::strerror(errno));
  auto fail = [&](const char* what) {
    const int e = errno;
    close(fd);
    unlink(tmp.c_str());
    return unexpected(path + ": " + what + ": " + std::strerror(e));
  };
  if (fchmod(fd, 0600) != 0) return fail("chmod");
  for (size_t done = 0; done < len;) {
    const ssize_t n = ::write(fd, data + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write");
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return fail("fsync");
  if (close(fd) != 0) {
    unlink(tmp.c_str());
    return unexpected(path + ": close: " + std::strerror(errno));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    unlink(tmp.c_str());
    return unexpected(path + ": rename: " + std::strerror(e));
  }
  return {};
}

}  // namespace

Result<void, std::string> generate_self_signed(const std::string& host, const std::string& pem_path) {
  if (!plausible_host(host)) return unexpected("cannot make a certificate for '" + host + "': not a host name");
  ERR_clear_error();
  // ECDSA P-256, as certbot and Caddy make by default: the handshake's signature, paid
  // on every login without resumption, costs the server about a thirteenth of an
  // RSA-2048 one (`openssl speed ecdsap256 rsa2048`: 0.019 against 0.256 ms).
  PkeyPtr key(EVP_EC_gen("P-256"));
  X509Ptr x(X509_new());
  if (!key || !x) return unexpected(openssl_error("cannot generate a key"));

  bool ok = X509_set_version(x.get(), X509_VERSION_3) == 1;
  BIGNUM* serial = BN_new();
  ok = ok && serial && BN_rand(serial, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
       BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x.get())) != nullptr;
  BN_free(serial);
  // An hour of slack for clients whose clock runs a little behind.
  ok = ok && X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600) != nullptr &&
       X509_time_adj_ex(X509_getm_notAfter(x.get()), 3650, 0, nullptr) != nullptr &&
       X509_set_pubkey(x.get(), key.get()) == 1;
  X509_NAME* name = X509_get_subject_name(x.get());
  const auto* host_bytes = reinterpret_cast<const unsigned char*>(host.c_str());
  // A CN holds at most 64 characters; the SAN is what clients check anyway.
  if (host.size() <= 64) {
    ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, host_bytes, -1, -1, 0) == 1;
  } else {
    ok = ok && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                          reinterpret_cast<const unsigned char*>("Parley"), -1, -1, 0) == 1;
  }
  ok = ok && X509_set_issuer_name(x.get(), name) == 1;
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, x.get(), x.get(), nullptr, nullptr, 0);
  ok = ok && add_san(x.get(), host) && add_ext(x.get(), &v3, NID_basic_constraints, "critical,CA:FALSE") &&
       add_ext(x.get(), &v3, NID_key_usage, "critical,digitalSignature") &&
       add_ext(x.get(), &v3, NID_ext_key_usage, "serverAuth,clientAuth") &&
       add_ext(x.get(), &v3, NID_subject_key_identifier, "hash");
  ok = ok && X509_sign(x.get(), key.get(), EVP_sha256()) > 0;
  if (!ok) return unexpected(openssl_error("cannot build the certificate for '" + host + "'"));

  BioPtr mem(BIO_new(BIO_s_mem()));
  if (!mem || PEM_write_bio_X509(mem.get(), x.get()) != 1 ||
      PEM_write_bio_PrivateKey(mem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return unexpected(openssl_error("cannot encode the certificate"));
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(mem.get(), &data);
  auto written = write_private_file(pem_path, data, static_cast<size_t>(len));
  OPENSSL_cleanse(data, static_cast<size_t>(len));  // the key leaves no copy on the heap
  return written;
}

}  // namespace parley::tls
