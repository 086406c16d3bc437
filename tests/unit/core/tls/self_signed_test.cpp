// The subjectAltName of the certificate made at first start, read back entry by entry.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <set>
#include <string>

#include "tls_test_support.hpp"

using namespace parley::tls;
using namespace parley::tls::test;

namespace {

// Every SAN entry as "DNS:name" or "IP:address".
std::set<std::string> sans_of(const std::string& pem_path) {
  X509Ptr cert = first_cert(pem_path);
  REQUIRE(cert);
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  REQUIRE(names != nullptr);
  std::set<std::string> out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      out.insert("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                      static_cast<size_t>(ASN1_STRING_length(dns))));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      const int length = ASN1_STRING_length(ip);
      REQUIRE((length == 4 || length == 16));
      char text[INET6_ADDRSTRLEN] = {};
      REQUIRE(inet_ntop(length == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip), text, sizeof text) != nullptr);
      out.insert(std::string("IP:") + text);
    } else {
      out.insert("other:" + std::to_string(name->type));
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

bool matches_ip(const std::string& pem_path, const char* ip) {
  X509Ptr cert = first_cert(pem_path);
  return cert && X509_check_ip_asc(cert.get(), ip, 0) == 1;
}

}  // namespace

TEST_CASE("a self-signed certificate for localhost also names the loopback addresses") {
  TempDir dir;
  const std::string path = self_signed(dir, "localhost", "localhost.pem");
  CHECK(sans_of(path) == std::set<std::string>{"DNS:localhost", "IP:127.0.0.1", "IP:::1"});
  // What a verifying client that dialled the address checks.
  CHECK(matches_ip(path, "127.0.0.1"));
  CHECK(matches_ip(path, "::1"));
  CHECK_FALSE(matches_ip(path, "127.0.0.2"));
  X509Ptr cert = first_cert(path);
  CHECK(X509_check_host(cert.get(), "localhost", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr) == 1);
}

TEST_CASE("a self-signed certificate for another host names that host only") {
  TempDir dir;
  CHECK(sans_of(self_signed(dir, "example.org", "example.pem")) == std::set<std::string>{"DNS:example.org"});
  // Not localhost, however close (the name is compared whole, case aside).
  CHECK(sans_of(self_signed(dir, "localhost.example", "lhe.pem")) == std::set<std::string>{"DNS:localhost.example"});
  CHECK(sans_of(self_signed(dir, "LocalHost", "upper.pem")) ==
        std::set<std::string>{"DNS:LocalHost", "IP:127.0.0.1", "IP:::1"});
  CHECK_FALSE(matches_ip(dir.file("example.pem"), "127.0.0.1"));
}
