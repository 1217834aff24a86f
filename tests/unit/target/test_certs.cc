#include "test_certs.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <fstream>
#include <memory>

#include <gtest/gtest.h>

namespace cdc::target::testing {

namespace {

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* x) const { X509_free(x); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;

bool AddExt(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
  if (!ext) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// Self-signed when issuer is null.
CertPtr MakeCert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool is_ca,
                 const char* san, long serial) {
  CertPtr x(X509_new());
  if (!x) return nullptr;
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 24 * 3600);
  X509_set_pubkey(x.get(), key);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : name);

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : x.get(), x.get(), nullptr, nullptr, 0);
  bool ok = AddExt(x.get(), &ctx, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") &&
            AddExt(x.get(), &ctx, NID_subject_key_identifier, "hash") &&
            AddExt(x.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  if (is_ca) {
    ok = ok && AddExt(x.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    ok = ok && AddExt(x.get(), &ctx, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
         AddExt(x.get(), &ctx, NID_ext_key_usage, "serverAuth,clientAuth");
    if (san) ok = ok && AddExt(x.get(), &ctx, NID_subject_alt_name, san);
  }
  if (!ok || X509_sign(x.get(), issuer_key ? issuer_key : key, EVP_sha256()) == 0) return nullptr;
  return x;
}

std::string CertPem(X509* x) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, n);
  BIO_free(bio);
  return out;
}

std::string KeyPem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, n);
  BIO_free(bio);
  return out;
}

bool WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  return static_cast<bool>(out);
}

}  // namespace

bool MakeTestPki(TestPki* pki, std::string* error) {
  KeyPtr ca_key(EVP_EC_gen("P-256")), server_key(EVP_EC_gen("P-256")), client_key(EVP_EC_gen("P-256"));
  if (!ca_key || !server_key || !client_key) {
    *error = "EC key generation failed";
    return false;
  }
  CertPtr ca = MakeCert(ca_key.get(), "cdc-test-ca", nullptr, nullptr, true, nullptr, 1);
  if (!ca) {
    *error = "CA certificate failed";
    return false;
  }
  CertPtr server = MakeCert(server_key.get(), "localhost", ca.get(), ca_key.get(), false,
                            "DNS:localhost,IP:127.0.0.1", 2);
  CertPtr client = MakeCert(client_key.get(), "cdc-test-client", ca.get(), ca_key.get(), false, nullptr, 3);
  if (!server || !client) {
    *error = "leaf certificate failed";
    return false;
  }
  pki->ca_pem = CertPem(ca.get());
  pki->server_cert_pem = CertPem(server.get());
  pki->server_key_pem = KeyPem(server_key.get());
  pki->client_cert_pem = CertPem(client.get());
  pki->client_key_pem = KeyPem(client_key.get());
  pki->ca_key_pem = KeyPem(ca_key.get());

  std::string tmpl = ::testing::TempDir() + "cdc-pki-XXXXXX";
  if (!mkdtemp(tmpl.data())) {
    *error = "mkdtemp failed";
    return false;
  }
  pki->ca_path = tmpl + "/ca.pem";
  pki->server_cert_path = tmpl + "/server.pem";
  pki->client_cert_path = tmpl + "/client.pem";
  pki->client_key_path = tmpl + "/client.key";
  if (!WriteFile(pki->ca_path, pki->ca_pem) || !WriteFile(pki->server_cert_path, pki->server_cert_pem) ||
      !WriteFile(pki->client_cert_path, pki->client_cert_pem) ||
      !WriteFile(pki->client_key_path, pki->client_key_pem)) {
    *error = "writing PEM files failed";
    return false;
  }
  return true;
}

bool MakeLeafCert(const TestPki& pki, const std::string& cn, const std::string& san, std::string* cert_pem,
                  std::string* key_pem, std::string* error) {
  BIO* ca_bio = BIO_new_mem_buf(pki.ca_pem.data(), static_cast<int>(pki.ca_pem.size()));
  BIO* key_bio = BIO_new_mem_buf(pki.ca_key_pem.data(), static_cast<int>(pki.ca_key_pem.size()));
  CertPtr ca(PEM_read_bio_X509(ca_bio, nullptr, nullptr, nullptr));
  KeyPtr ca_key(PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr));
  BIO_free(ca_bio);
  BIO_free(key_bio);
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!ca || !ca_key || !key) {
    *error = "reading the CA or generating a key failed";
    return false;
  }
  CertPtr leaf = MakeCert(key.get(), cn.c_str(), ca.get(), ca_key.get(), false, san.c_str(), 4);
  if (!leaf) {
    *error = "leaf certificate failed";
    return false;
  }
  *cert_pem = CertPem(leaf.get());
  *key_pem = KeyPem(key.get());
  return true;
}

}  // namespace cdc::target::testing
