// MilvusClient against a TLS FakeMilvus: one-way and mutual TLS with a throw-away test CA.
#include <gtest/gtest.h>

#include "fake_milvus.h"
#include "target/milvus_client.h"
#include "test_certs.h"

namespace cdc::target {
namespace {

using testing::FakeMilvusServer;

class MilvusClientTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(testing::MakeTestPki(&pki_, &error)) << error;
  }

  std::shared_ptr<grpc::ServerCredentials> ServerCreds(bool require_client_cert) const {
    grpc::SslServerCredentialsOptions opts(require_client_cert
                                               ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                               : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    if (require_client_cert) opts.pem_root_certs = pki_.ca_pem;
    opts.pem_key_cert_pairs.push_back({pki_.server_key_pem, pki_.server_cert_pem});
    return grpc::SslServerCredentials(opts);
  }

  testing::TestPki pki_;
};

TEST_F(MilvusClientTlsTest, OneWayTlsWithServerPem) {
  FakeMilvusServer server(ServerCreds(false));
  ConnectParams p;
  p.uri = "https://127.0.0.1:" + std::to_string(server.port());
  p.server_pem_path = pki_.ca_path;
  p.server_name = "localhost";
  p.token = "root:Milvus";
  auto client = MilvusClient::Connect(p);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto v = (*client)->GetVersion();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
}

TEST_F(MilvusClientTlsTest, ServerPemAloneTurnsTlsOnForBareUri) {
  FakeMilvusServer server(ServerCreds(false));
  ConnectParams p;
  p.uri = "127.0.0.1:" + std::to_string(server.port());
  p.server_pem_path = pki_.ca_path;
  p.server_name = "localhost";
  auto client = MilvusClient::Connect(p);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
}

TEST_F(MilvusClientTlsTest, WrongServerNameIsRejected) {
  FakeMilvusServer server(ServerCreds(false));
  ConnectParams p;
  p.uri = "https://127.0.0.1:" + std::to_string(server.port());
  p.server_pem_path = pki_.ca_path;
  p.server_name = "not-the-server.example";
  p.connect_timeout_s = 2;
  auto client = MilvusClient::Connect(p);
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.status().message().find("cannot connect to Milvus at 127.0.0.1:"), std::string::npos)
      << client.status().message();
}

TEST_F(MilvusClientTlsTest, PlaintextClientCannotTalkToTlsServer) {
  FakeMilvusServer server(ServerCreds(false));
  ConnectParams p;
  p.uri = "http://127.0.0.1:" + std::to_string(server.port());
  p.connect_timeout_s = 2;
  auto client = MilvusClient::Connect(p);
  ASSERT_FALSE(client.ok());
}

TEST_F(MilvusClientTlsTest, MutualTls) {
  FakeMilvusServer server(ServerCreds(true));
  ConnectParams p;
  p.uri = "https://127.0.0.1:" + std::to_string(server.port());
  p.server_name = "localhost";
  p.ca_pem_path = pki_.ca_path;
  p.client_pem_path = pki_.client_cert_path;
  p.client_key_path = pki_.client_key_path;
  auto client = MilvusClient::Connect(p);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
}

TEST_F(MilvusClientTlsTest, MutualTlsServerRejectsClientWithoutCert) {
  FakeMilvusServer server(ServerCreds(true));
  ConnectParams p;
  p.uri = "https://127.0.0.1:" + std::to_string(server.port());
  p.server_name = "localhost";
  p.server_pem_path = pki_.ca_path;  // one-way only: no client certificate
  p.connect_timeout_s = 2;
  auto client = MilvusClient::Connect(p);
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.status().message().find("cannot connect to Milvus at"), std::string::npos)
      << client.status().message();
}

}  // namespace
}  // namespace cdc::target
