#include <doctest/doctest.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <random>

#include "core/tls/client_context.hpp"
#include "tls_test_support.hpp"

using namespace parley::tls;
using namespace parley::tls::test;

namespace {

// Certificates are generated once for the whole binary.
struct Certs {
  TempDir dir;
  std::string a = self_signed(dir, "example.org", "a.pem");
  std::string b = self_signed(dir, "chat.example.net", "b.pem");
  std::string wild = self_signed(dir, "*.wild.test", "wild.pem");
};

const Certs& certs() {
  static Certs c;
  return c;
}

std::unique_ptr<ContextStore> load_store(const std::vector<std::string>& files, const std::vector<std::string>& hosts) {
  auto r = ContextStore::load(files, hosts);
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error()));
  return std::move(*r);
}

SslCtxPtr client_ctx(const ClientOptions& o = ClientOptions()) {
  auto r = make_client_context(o);
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error()));
  return std::move(*r);
}

Pair make_pair(const ContextStore& store, const std::string& default_host, SSL_CTX* cctx, const std::string& sni) {
  Pair p;
  auto s = Stream::server(store, default_host);
  REQUIRE_MESSAGE(s.has_value(), (s ? "" : s.error()));
  auto c = Stream::client(cctx, sni);
  REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error()));
  p.server = std::move(*s);
  p.client = std::move(*c);
  return p;
}

std::string sha256_of_der(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  REQUIRE(len > 0);
  unsigned char md[32];
  unsigned md_len = 0;
  REQUIRE(EVP_Digest(der, static_cast<size_t>(len), md, &md_len, EVP_sha256(), nullptr) == 1);
  OPENSSL_free(der);
  return std::string(reinterpret_cast<char*>(md), md_len);
}

std::string peer_cert_hash(const Stream& client_side) {
  // server-end-point on the client side hashes the certificate the server presented.
  return client_side.channel_binding_tls_server_end_point();
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// A small CA hierarchy (EC keys: fast) for chain tests.
PkeyPtr ec_key(const char* curve) { return PkeyPtr(EVP_EC_gen(curve)); }

X509Ptr make_cert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, bool ca,
                  const EVP_MD* md, const char* san = nullptr) {
  X509Ptr x(X509_new());
  X509_set_version(x.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), static_cast<long>(std::hash<std::string>{}(cn) & 0x7fffffff));
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 86400);
  X509_set_pubkey(x.get(), key);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer ? issuer : x.get(), x.get(), nullptr, nullptr, 0);
  auto add = [&](int nid, const char* value) {
    X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    REQUIRE(e);
    X509_add_ext(x.get(), e, -1);
    X509_EXTENSION_free(e);
  };
  add(NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add(NID_subject_key_identifier, "hash");
  if (issuer) add(NID_authority_key_identifier, "keyid:always");
  if (ca) add(NID_key_usage, "critical,keyCertSign,cRLSign");
  if (san) add(NID_subject_alt_name, san);
  REQUIRE(X509_sign(x.get(), issuer_key ? issuer_key : key, md) > 0);
  return x;
}

std::string pem_of(X509* x) {
  BioPtr b(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(b.get(), x);
  char* data = nullptr;
  long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string pem_of(EVP_PKEY* k) {
  BioPtr b(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

void exchange_data(Pair& p) {
  std::string out;
  REQUIRE(p.client->write("<stream:stream to='example.org'>", p.to_server));
  REQUIRE(p.pump());
  CHECK(p.server_plain == "<stream:stream to='example.org'>");
  REQUIRE(p.server->write("<stream:features/>", p.to_client));
  REQUIRE(p.pump());
  CHECK(p.client_plain == "<stream:features/>");
}

}  // namespace

TEST_CASE("generate_self_signed makes a private PEM with the host in its SAN") {
  TempDir dir;
  const std::string path = dir.file("deep/er/certs/example.org.pem");
  auto r = generate_self_signed("example.org", path);
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error()));
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const std::string text = read_text(path);
  CHECK(text.find("-----BEGIN CERTIFICATE-----") != std::string::npos);
  CHECK(text.find("-----BEGIN PRIVATE KEY-----") != std::string::npos);

  X509Ptr cert = first_cert(path);
  REQUIRE(cert);
  CHECK(X509_check_host(cert.get(), "example.org", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr) == 1);
  CHECK(X509_check_host(cert.get(), "other.org", 0, 0, nullptr) != 1);
  // ECDSA P-256 (its signature is the handshake's cost per login).
  CHECK(EVP_PKEY_get_base_id(X509_get0_pubkey(cert.get())) == EVP_PKEY_EC);
  CHECK(EVP_PKEY_get_bits(X509_get0_pubkey(cert.get())) == 256);
  int days = 0, secs = 0;
  REQUIRE(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert.get()), X509_get0_notAfter(cert.get())) == 1);
  CHECK(days >= 3650);
  CHECK(days <= 3653);
  CHECK(X509_get_signature_nid(cert.get()) == NID_ecdsa_with_SHA256);

  auto store = ContextStore::load({path}, {"example.org"});
  REQUIRE_MESSAGE(store.has_value(), (store ? "" : store.error()));
  CHECK((*store)->context_for("example.org") != nullptr);
  CHECK((*store)->context_for("EXAMPLE.org.") != nullptr);

  CHECK_FALSE(generate_self_signed("bad host,DNS:evil", dir.file("x.pem")));
  CHECK_FALSE(generate_self_signed("", dir.file("x.pem")));
  CHECK_FALSE(generate_self_signed("ok.org", "/proc/nonexistent/dir/x.pem"));
  // A long name gets no CN (64 characters at most) but still its SAN.
  const std::string long_host = std::string(60, 'a') + "." + std::string(60, 'b') + ".org";
  REQUIRE(generate_self_signed(long_host, dir.file("long.pem")));
  X509Ptr long_cert = first_cert(dir.file("long.pem"));
  CHECK(X509_check_host(long_cert.get(), long_host.c_str(), 0, 0, nullptr) == 1);
}

TEST_CASE("ContextStore::load errors name the file and the reason") {
  TempDir dir;
  auto r = ContextStore::load({dir.file("missing.pem")}, {"example.org"});
  REQUIRE_FALSE(r);
  CHECK(r.error().find("missing.pem: cannot open") != std::string::npos);

  write_text(dir.file("garbage.pem"), "not a pem file\n");
  r = ContextStore::load({dir.file("garbage.pem")}, {"example.org"});
  REQUIRE_FALSE(r);
  CHECK(r.error().find("garbage.pem: no certificate or private key found") != std::string::npos);

  write_text(dir.file("broken.pem"), "-----BEGIN CERTIFICATE-----\nAAAA!!!\n-----END CERTIFICATE-----\n");
  r = ContextStore::load({dir.file("broken.pem")}, {"example.org"});
  REQUIRE_FALSE(r);
  CHECK(r.error().find("broken.pem") != std::string::npos);

  // A key alone, without its certificate.
  PkeyPtr key = ec_key("P-256");
  write_text(dir.file("key.pem"), pem_of(key.get()));
  r = ContextStore::load({certs().a, dir.file("key.pem")}, {"example.org"});
  REQUIRE_FALSE(r);
  CHECK(r.error().find("key.pem: private key matches no certificate") != std::string::npos);

  // Certificates without any key.
  write_text(dir.file("certonly.pem"), pem_of(first_cert(certs().a).get()));
  r = ContextStore::load({dir.file("certonly.pem")}, {"example.org"});
  REQUIRE_FALSE(r);
  CHECK(r.error().find("no certificate with its private key") != std::string::npos);

  // Encrypted keys cannot be used unattended.
  {
    BioPtr b(BIO_new_file(dir.file("enc.pem").c_str(), "w"));
    PEM_write_bio_PKCS8PrivateKey(b.get(), key.get(), EVP_aes_128_cbc(), nullptr, 0, nullptr,
                                  const_cast<char*>("secret"));
  }
  r = ContextStore::load({dir.file("enc.pem")}, {"example.org"});
  REQUIRE_FALSE(r);
  CHECK(r.error().find("enc.pem: encrypted private keys are not supported") != std::string::npos);

  r = ContextStore::load({}, {"example.org"});
  REQUIRE_FALSE(r);
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("keys and certificates in separate files pair up; unmatched hosts are reported") {
  TempDir dir;
  const std::string pem = read_text(certs().a);
  const size_t key_at = pem.find("-----BEGIN PRIVATE KEY-----");
  REQUIRE(key_at != std::string::npos);
  write_text(dir.file("key.pem"), pem.substr(key_at));
  write_text(dir.file("cert.pem"), pem.substr(0, key_at));
  auto store = load_store({dir.file("key.pem"), dir.file("cert.pem")}, {"example.org", "nocert.example"});
  CHECK(store->context_for("example.org") != nullptr);
  CHECK(store->context_for("nocert.example") == nullptr);
  CHECK(store->context_for("unlisted.example") == nullptr);
  CHECK(store->hosts_without_certificate() == std::vector<std::string>{"nocert.example"});
  auto s = Stream::server(*store, "nocert.example");
  REQUIRE_FALSE(s);
  CHECK(s.error().find("no certificate for host 'nocert.example'") != std::string::npos);
}

TEST_CASE("TLS 1.3 handshake and data both ways") {
  auto store = load_store({certs().a, certs().b}, {"example.org", "chat.example.net"});
  auto cctx = client_ctx(ClientOptions{"", 0, 0, true});
  Pair p = make_pair(*store, "example.org", cctx.get(), "example.org");
  CHECK_FALSE(p.server->handshake_done());
  std::string out;
  CHECK_FALSE(p.server->write("early", out));  // nothing is buffered before the handshake
  CHECK(out.empty());
  REQUIRE_MESSAGE(p.start(), p.error);
  CHECK(p.client->handshake_done());
  CHECK(p.server->handshake_done());
  CHECK(p.server->protocol() == "TLSv1.3");
  CHECK(p.client->protocol() == "TLSv1.3");
  CHECK(p.server->cipher() == p.client->cipher());
  CHECK(p.server->server_name() == "example.org");
  CHECK(p.server->alpn() == "xmpp-client");
  CHECK(p.client->alpn() == "xmpp-client");
  exchange_data(p);

  // A large write spans several records and arrives whole.
  const std::string big = random_bytes(100000, 1);
  p.client_plain.clear();
  REQUIRE(p.server->write(big, p.to_client));
  REQUIRE(p.pump());
  CHECK(p.client_plain == big);
  CHECK(ERR_peek_error() == 0);  // every call leaves the thread's error queue empty
}

TEST_CASE("an error another call left in the thread's queue fails neither a read nor a write") {
  auto store = load_store({certs().a}, {"example.org"});
  auto cctx = client_ctx(ClientOptions{"", 0, 0, true});
  Pair p = make_pair(*store, "example.org", cctx.get(), "example.org");
  REQUIRE_MESSAGE(p.start(), p.error);
  // SSL_get_error reads the queue: a stale entry would turn the read's final WANT_READ
  // into SSL_ERROR_SSL. Each call empties it first (when there is anything to empty).
  ERR_raise(ERR_LIB_SSL, SSL_R_UNINITIALIZED);
  REQUIRE(p.client->write("<presence/>", p.to_server));
  ERR_raise(ERR_LIB_SSL, SSL_R_UNINITIALIZED);
  REQUIRE(p.pump());
  CHECK(p.server_plain == "<presence/>");
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("forced TLS 1.2") {
  auto store = load_store({certs().a}, {"example.org"});
  auto cctx = client_ctx(ClientOptions{"", 0, TLS1_2_VERSION, false});
  Pair p = make_pair(*store, "example.org", cctx.get(), "example.org");
  REQUIRE_MESSAGE(p.start(), p.error);
  CHECK(p.server->protocol() == "TLSv1.2");
  CHECK(p.server->cipher().find("ECDHE") == 0);
  CHECK(p.server->alpn().empty());
  exchange_data(p);
  // tls-exporter is defined for TLS 1.3 only (RFC 9266); tls-server-end-point works on 1.2.
  CHECK(p.server->channel_binding_tls_exporter().empty());
  CHECK(p.client->channel_binding_tls_exporter().empty());
  CHECK(p.server->channel_binding_tls_server_end_point().size() == 32);
  CHECK(p.server->channel_binding_tls_server_end_point() == p.client->channel_binding_tls_server_end_point());
  // tls-unique (RFC 5929 section 3): the client's Finished (12 bytes in TLS 1.2), the same on both sides.
  CHECK(p.server->channel_binding_tls_unique().size() == 12);
  CHECK(p.server->channel_binding_tls_unique() == p.client->channel_binding_tls_unique());
}

TEST_CASE("a client that only speaks TLS 1.1 is refused") {
  auto store = load_store({certs().a}, {"example.org"});
  SslCtxPtr old(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_security_level(old.get(), 0);
  SSL_CTX_set_min_proto_version(old.get(), TLS1_VERSION);
  SSL_CTX_set_max_proto_version(old.get(), TLS1_1_VERSION);
  Pair p = make_pair(*store, "example.org", old.get(), "example.org");
  CHECK_FALSE(p.start());
  CHECK_FALSE(p.server->handshake_done());
}

TEST_CASE("fragmentation: one byte per feed()") {
  auto store = load_store({certs().a}, {"example.org"});
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    auto cctx = client_ctx(ClientOptions{"", 0, version, false});
    Pair p = make_pair(*store, "example.org", cctx.get(), "example.org");
    p.chunk = 1;
    REQUIRE_MESSAGE(p.start(), p.error);
    CHECK(p.server->handshake_done());
    const std::string msg = random_bytes(20000, 7);
    REQUIRE(p.client->write(msg, p.to_server));
    REQUIRE(p.server->write("<presence/>", p.to_client));
    REQUIRE(p.pump());
    CHECK(p.server_plain == msg);
    CHECK(p.client_plain == "<presence/>");
  }
  // Odd-sized chunks across record boundaries.
  auto cctx = client_ctx();
  Pair p = make_pair(*store, "example.org", cctx.get(), "example.org");
  p.chunk = 7;
  REQUIRE_MESSAGE(p.start(), p.error);
  for (int i = 0; i < 50; ++i) REQUIRE(p.client->write("<message>" + std::to_string(i) + "</message>", p.to_server));
  REQUIRE(p.pump());
  CHECK(p.server_plain.find("<message>49</message>") != std::string::npos);
}

TEST_CASE("SNI selects the certificate") {
  auto store = load_store({certs().a, certs().b, certs().wild}, {"example.org", "chat.example.net", "x.wild.test"});
  auto cctx = client_ctx();
  auto presented = [&](const std::string& sni) {
    Pair p = make_pair(*store, "example.org", cctx.get(), sni);
    REQUIRE_MESSAGE(p.start(), p.error);
    return p.client->channel_binding_tls_server_end_point();
  };
  const std::string hash_a = sha256_of_der(first_cert(certs().a).get());
  const std::string hash_b = sha256_of_der(first_cert(certs().b).get());
  const std::string hash_w = sha256_of_der(first_cert(certs().wild).get());
  CHECK(presented("example.org") == hash_a);
  CHECK(presented("chat.example.net") == hash_b);
  CHECK(presented("CHAT.Example.NET") == hash_b);
  CHECK(presented("x.wild.test") == hash_w);
  CHECK(presented("unknown.example") == hash_a);  // unknown SNI: the default host's
  CHECK(presented("") == hash_a);                 // no SNI at all

  // The server side reports the name and uses the switched certificate for its binding.
  Pair p = make_pair(*store, "example.org", cctx.get(), "chat.example.net");
  REQUIRE(p.start());
  CHECK(p.server->server_name() == "chat.example.net");
  CHECK(p.server->channel_binding_tls_server_end_point() == hash_b);
}

TEST_CASE("channel bindings") {
  auto store = load_store({certs().a}, {"example.org"});
  auto cctx = client_ctx();
  Pair p = make_pair(*store, "example.org", cctx.get(), "example.org");
  CHECK(p.server->channel_binding_tls_exporter().empty());  // not before the handshake
  REQUIRE(p.start());
  const std::string server_cb = p.server->channel_binding_tls_exporter();
  CHECK(server_cb.size() == 32);
  CHECK(server_cb == p.client->channel_binding_tls_exporter());
  // Another connection, another binding.
  Pair q = make_pair(*store, "example.org", cctx.get(), "example.org");
  REQUIRE(q.start());
  CHECK(q.server->channel_binding_tls_exporter() != server_cb);
  // tls-unique is undefined for TLS 1.3 (RFC 9266): none on either side, so it is never offered
  // nor accepted there.
  CHECK(p.server->protocol() == "TLSv1.3");
  CHECK(p.server->channel_binding_tls_unique().empty());
  CHECK(p.client->channel_binding_tls_unique().empty());

  // tls-server-end-point: SHA-256 of the certificate's DER, computed independently here.
  const std::string expected = sha256_of_der(first_cert(certs().a).get());
  CHECK(p.server->channel_binding_tls_server_end_point() == expected);
  CHECK(p.client->channel_binding_tls_server_end_point() == expected);
}

TEST_CASE("chains: key, intermediate and leaf in any order; root left out; hash follows the signature") {
  TempDir dir;
  PkeyPtr root_key = ec_key("P-384"), mid_key = ec_key("P-384"), leaf_key = ec_key("P-384");
  X509Ptr root = make_cert("Test Root", root_key.get(), nullptr, nullptr, true, EVP_sha384());
  X509Ptr mid = make_cert("Test Intermediate", mid_key.get(), root.get(), root_key.get(), true, EVP_sha384());
  X509Ptr leaf = make_cert("chain.example", leaf_key.get(), mid.get(), mid_key.get(), false, EVP_sha384(),
                           "DNS:chain.example");
  write_text(dir.file("bundle.pem"), pem_of(leaf_key.get()) + pem_of(mid.get()) + pem_of(root.get()) + pem_of(leaf.get()));
  write_text(dir.file("root.pem"), pem_of(root.get()));
  auto store = load_store({dir.file("bundle.pem")}, {"chain.example"});

  // A verifying client that trusts only the root accepts the chain.
  auto cctx = client_ctx(ClientOptions{dir.file("root.pem"), 0, 0, false});
  Pair p = make_pair(*store, "chain.example", cctx.get(), "chain.example");
  REQUIRE_MESSAGE(p.start(), p.error);
  // ECDSA with SHA-384: tls-server-end-point uses SHA-384.
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  REQUIRE(X509_digest(leaf.get(), EVP_sha384(), md, &len) == 1);
  CHECK(p.client->channel_binding_tls_server_end_point() == std::string(reinterpret_cast<char*>(md), len));
  CHECK(p.server->channel_binding_tls_server_end_point().size() == 48);

  // The same client refuses a host name the certificate does not carry.
  Pair wrong = make_pair(*store, "chain.example", cctx.get(), "other.example");
  CHECK_FALSE(wrong.start());
  CHECK(wrong.error.find("certificate") != std::string::npos);
}

TEST_CASE("an RSA and an ECDSA certificate for one host: each client gets one it accepts") {
  TempDir dir;
  PkeyPtr rsa(EVP_RSA_gen(2048));
  REQUIRE(rsa);
  X509Ptr rsa_cert = make_cert("example.org", rsa.get(), nullptr, nullptr, false, EVP_sha256(), "DNS:example.org");
  // The ECDSA leaf comes with its intermediate: each kind of key keeps its own chain.
  PkeyPtr mid_key = ec_key("P-256"), ec = ec_key("P-256");
  X509Ptr mid = make_cert("Test Intermediate", mid_key.get(), nullptr, nullptr, true, EVP_sha256());
  X509Ptr ec_cert = make_cert("example.org", ec.get(), mid.get(), mid_key.get(), false, EVP_sha256(), "DNS:example.org");
  write_text(dir.file("rsa.pem"), pem_of(rsa_cert.get()) + pem_of(rsa.get()));
  write_text(dir.file("ec.pem"), pem_of(ec_cert.get()) + pem_of(mid.get()) + pem_of(ec.get()));
  write_text(dir.file("mid.pem"), pem_of(mid.get()));
  auto store = load_store({dir.file("rsa.pem"), dir.file("ec.pem")}, {"example.org"});
  const std::string rsa_hash = sha256_of_der(rsa_cert.get()), ec_hash = sha256_of_der(ec_cert.get());

  // What the client saw, and the server's binding agrees (SCRAM-PLUS's tls-server-end-point).
  auto presented = [&](SSL_CTX* cctx) {
    Pair p = make_pair(*store, "example.org", cctx, "example.org");
    REQUIRE_MESSAGE(p.start(), p.error);
    CHECK(p.server->channel_binding_tls_server_end_point() == p.client->channel_binding_tls_server_end_point());
    return p.client->channel_binding_tls_server_end_point();
  };
  auto any = client_ctx();
  CHECK(presented(any.get()) == ec_hash);  // a client that takes both gets the cheaper signature
  auto rsa_only = client_ctx();
  REQUIRE(SSL_CTX_set1_sigalgs_list(rsa_only.get(), "rsa_pss_rsae_sha256:rsa_pkcs1_sha256") == 1);
  CHECK(presented(rsa_only.get()) == rsa_hash);
  auto rsa_tls12 = client_ctx(ClientOptions{"", 0, TLS1_2_VERSION, false});
  REQUIRE(SSL_CTX_set_cipher_list(rsa_tls12.get(), "ECDHE-RSA-AES128-GCM-SHA256") == 1);
  CHECK(presented(rsa_tls12.get()) == rsa_hash);
  auto ecdsa_tls12 = client_ctx(ClientOptions{"", 0, TLS1_2_VERSION, false});
  REQUIRE(SSL_CTX_set_cipher_list(ecdsa_tls12.get(), "ECDHE-ECDSA-AES128-GCM-SHA256") == 1);
  CHECK(presented(ecdsa_tls12.get()) == ec_hash);
  // The ECDSA leaf's chain went with it: a client trusting only its intermediate verifies.
  auto verifying = client_ctx(ClientOptions{dir.file("mid.pem"), 0, 0, false});
  REQUIRE(SSL_CTX_set1_sigalgs_list(verifying.get(), "ecdsa_secp256r1_sha256") == 1);
  CHECK(presented(verifying.get()) == ec_hash);
}

TEST_CASE("an expired ECDSA certificate beside a valid RSA one is not served") {
  TempDir dir;
  PkeyPtr rsa(EVP_RSA_gen(2048)), ec = ec_key("P-256");
  REQUIRE(rsa);
  X509Ptr rsa_cert = make_cert("example.org", rsa.get(), nullptr, nullptr, false, EVP_sha256(), "DNS:example.org");
  X509Ptr ec_cert = make_cert("example.org", ec.get(), nullptr, nullptr, false, EVP_sha256(), "DNS:example.org");
  X509_gmtime_adj(X509_getm_notBefore(ec_cert.get()), -2 * 86400);
  X509_gmtime_adj(X509_getm_notAfter(ec_cert.get()), -86400);
  REQUIRE(X509_sign(ec_cert.get(), ec.get(), EVP_sha256()) > 0);
  write_text(dir.file("both.pem"), pem_of(ec_cert.get()) + pem_of(ec.get()) + pem_of(rsa_cert.get()) + pem_of(rsa.get()));
  auto store = load_store({dir.file("both.pem")}, {"example.org"});
  auto any = client_ctx();
  Pair p = make_pair(*store, "example.org", any.get(), "example.org");
  REQUIRE_MESSAGE(p.start(), p.error);
  CHECK(p.client->channel_binding_tls_server_end_point() == sha256_of_der(rsa_cert.get()));
  // A client that takes ECDSA only finds nothing it accepts (no expired certificate instead).
  auto ecdsa_only = client_ctx();
  REQUIRE(SSL_CTX_set1_sigalgs_list(ecdsa_only.get(), "ecdsa_secp256r1_sha256") == 1);
  Pair q = make_pair(*store, "example.org", ecdsa_only.get(), "example.org");
  CHECK_FALSE(q.start());
}

TEST_CASE("a verifying client accepts a generated self-signed certificate it trusts") {
  auto store = load_store({certs().a}, {"example.org"});
  auto cctx = client_ctx(ClientOptions{certs().a, 0, 0, false});
  Pair p = make_pair(*store, "example.org", cctx.get(), "example.org");
  REQUIRE_MESSAGE(p.start(), p.error);
  auto untrusted = client_ctx(ClientOptions{certs().b, 0, 0, false});
  Pair q = make_pair(*store, "example.org", untrusted.get(), "example.org");
  CHECK_FALSE(q.start());
}

TEST_CASE("garbage input fails cleanly") {
  auto store = load_store({certs().a}, {"example.org"});
  for (unsigned seed = 0; seed < 50; ++seed) {
    auto s = Stream::server(*store, "example.org");
    REQUIRE(s);
    std::string plain, out;
    auto r = (*s)->feed(random_bytes(1 + seed * 37, seed), plain, out);
    if (!r) {
      CHECK((*s)->failed());
      CHECK_FALSE((*s)->feed("more", plain, out));
    }
    CHECK(plain.empty());
    CHECK(ERR_peek_error() == 0);
  }
  // Plain XMPP sent to a TLS port.
  auto s = Stream::server(*store, "example.org");
  std::string plain, out;
  auto r = (*s)->feed("<?xml version='1.0'?><stream:stream to='example.org'>", plain, out);
  REQUIRE_FALSE(r);
  CHECK(r.error().find("TLS handshake failed") != std::string::npos);

  // Garbage after a good handshake.
  auto cctx = client_ctx();
  Pair p = make_pair(*store, "example.org", cctx.get(), "example.org");
  REQUIRE(p.start());
  std::string junk = "\x17\x03\x03\x00\x20" + random_bytes(32, 99);
  auto bad = p.server->feed(junk, plain, out);
  CHECK_FALSE(bad);
  CHECK(p.server->failed());
  CHECK_FALSE(p.server->write("x", out));
}

TEST_CASE("close_notify") {
  auto store = load_store({certs().a}, {"example.org"});
  auto cctx = client_ctx();
  Pair p = make_pair(*store, "example.org", cctx.get(), "example.org");
  std::string early;
  p.server->close_notify(early);
  CHECK(early.empty());  // nothing before the handshake
  REQUIRE(p.start());
  CHECK_FALSE(p.client->peer_closed());
  REQUIRE(p.server->write("</stream:stream>", p.to_client));
  p.server->close_notify(p.to_client);
  p.server->close_notify(p.to_client);  // once only
  REQUIRE(p.pump());
  CHECK(p.client_plain == "</stream:stream>");
  CHECK(p.client->peer_closed());
  CHECK_FALSE(p.server->peer_closed());
  p.client->close_notify(p.to_server);
  REQUIRE(p.pump());
  CHECK(p.server->peer_closed());
  CHECK_FALSE(p.server->write("after close", p.to_client));
}

TEST_CASE("reload picks up a replaced certificate and keeps the old on a broken file") {
  TempDir dir;
  const std::string path = self_signed(dir, "example.org", "server.pem");
  const std::string first_hash = sha256_of_der(first_cert(path).get());
  auto store = load_store({path}, {"example.org"});
  auto cctx = client_ctx();

  Pair old_conn = make_pair(*store, "example.org", cctx.get(), "example.org");
  REQUIRE(old_conn.start());
  CHECK(peer_cert_hash(*old_conn.client) == first_hash);

  // A second, unrelated certificate replaces the file (as a renewal would).
  REQUIRE(generate_self_signed("example.org", path));
  const std::string second_hash = sha256_of_der(first_cert(path).get());
  REQUIRE(second_hash != first_hash);
  auto r = store->reload();
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error()));
  Pair new_conn = make_pair(*store, "example.org", cctx.get(), "example.org");
  REQUIRE(new_conn.start());
  CHECK(peer_cert_hash(*new_conn.client) == second_hash);

  // The existing connection carries on with its context.
  exchange_data(old_conn);
  CHECK(old_conn.server->channel_binding_tls_server_end_point() == first_hash);

  // A connection that started before a reload and handshakes after it.
  Pair straddle = make_pair(*store, "example.org", cctx.get(), "example.org");
  write_text(path, "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n");
  auto broken = store->reload();
  REQUIRE_FALSE(broken);
  CHECK(broken.error().find("server.pem") != std::string::npos);
  REQUIRE(straddle.start());
  CHECK(peer_cert_hash(*straddle.client) == second_hash);
  Pair after = make_pair(*store, "example.org", cctx.get(), "example.org");
  REQUIRE(after.start());
  CHECK(peer_cert_hash(*after.client) == second_hash);

  // Two good reloads in a row while a connection from two generations ago still runs.
  REQUIRE(generate_self_signed("example.org", path));
  REQUIRE(store->reload());
  REQUIRE(store->reload());
  exchange_data(new_conn);
}
