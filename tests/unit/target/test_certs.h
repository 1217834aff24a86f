// Test-only PKI: a throw-away CA that signs a server certificate (CN/SAN localhost, IP 127.0.0.1)
// and a client certificate, generated in memory with OpenSSL and written to a temp dir.
#pragma once

#include <string>

namespace cdc::target::testing {

struct TestPki {
  std::string ca_pem, server_cert_pem, server_key_pem, client_cert_pem, client_key_pem;
  std::string ca_key_pem;  // for MakeLeafCert
  // Paths of the same PEMs on disk (under a fresh temp dir).
  std::string ca_path, server_cert_path, client_cert_path, client_key_path;
};

// Returns false (with `error` set) if OpenSSL fails; tests ASSERT on it.
bool MakeTestPki(TestPki* pki, std::string* error);

// One more server certificate signed by pki's CA, with common name `cn` and subjectAltName `san`
// (OpenSSL syntax, e.g. "DNS:other.example"): for hostname-verification tests.
bool MakeLeafCert(const TestPki& pki, const std::string& cn, const std::string& san, std::string* cert_pem,
                  std::string* key_pem, std::string* error);

}  // namespace cdc::target::testing
