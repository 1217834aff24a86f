// PulsarChannelReader over pulsar+ssl:// against the fake broker in TLS mode (a throw-away PKI
// from test_certs): reading, certificate and hostname verification, what CONNECT carries for each
// auth plugin, a refused CONNECT, and an auth refresh (AUTH_CHALLENGE) while reading.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "pulsar_fake_broker.h"
#include "pulsar_test_util.h"
#include "source/pulsar_id.h"
#include "source/pulsar_reader.h"
#include "test_certs.h"
#include "util/log.h"

namespace cdc::source {
namespace {

using testing::FakeBroker;
using testing::FakeTlsServer;
using testing::FakeTopic;
using testing::ExpectEntries;
using testing::Off;
using testing::ReadN;
using testing::TopicWith;
using target::testing::MakeLeafCert;
using target::testing::MakeTestPki;
using target::testing::TestPki;

constexpr char kChannel[] = "by-dev-rootcoord-dml_0";





bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class PulsarTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new TestPki;
    std::string error;
    ASSERT_TRUE(MakeTestPki(pki_, &error)) << error;
  }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }
  static FakeTlsServer ServerTls() { return {pki_->server_cert_pem, pki_->server_key_pem}; }

  PulsarReaderConfig Config(const FakeBroker& b) const {
    PulsarReaderConfig c;
    c.service_url = b.url();
    c.tls_ca_file = pki_->ca_path;
    c.operation_timeout = std::chrono::milliseconds(2000);
    c.backoff_max = std::chrono::milliseconds(200);
    c.receiver_queue = 4;
    return c;
  }
  std::string TempFile(const std::string& content) const {
    std::string path = ::testing::TempDir() + "cdc-pulsar-token-XXXXXX";
    const int fd = mkstemp(path.data());
    EXPECT_GE(fd, 0);
    ::close(fd);
    std::ofstream(path, std::ios::trunc) << content;
    return path;
  }

  static TestPki* pki_;
};
TestPki* PulsarTls::pki_ = nullptr;

// Over pulsar+ssl:// with the test CA: the same messages as over plain TCP (start at an offset,
// inclusive; HighWatermark answered over the same link).
TEST_F(PulsarTls, ReadsAtOffsetLikePlainTcp) {
  auto topic = TopicWith(6);
  FakeBroker tls_broker(topic, ServerTls());
  FakeBroker plain_broker(topic);
  ASSERT_EQ(tls_broker.url().rfind("pulsar+ssl://", 0), 0u);

  auto r = PulsarChannelReader::Open(Config(tls_broker), kChannel, StartAt::Offset(Off(3, 2)));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto over_tls = ReadN(**r, 4);
  ExpectEntries(over_tls, 2, 5);
  auto hw = (*r)->HighWatermark(2000);
  ASSERT_TRUE(hw.ok()) << hw.status().ToString();
  EXPECT_EQ(*hw, Off(3, 5) + 1);
  EXPECT_EQ(tls_broker.tls_handshake_failures.load(), 0);
  EXPECT_EQ(tls_broker.Snis(), std::vector<std::string>{""});  // RFC 6066: no IP literal in SNI
  EXPECT_EQ(tls_broker.connections.load(), 1);  // lookup answered Connect to itself: one link
  ASSERT_EQ(tls_broker.SubscribeStarts().size(), 1u);
  EXPECT_EQ(tls_broker.SubscribeStarts()[0], std::make_pair(int64_t{3}, int64_t{2}));

  PulsarReaderConfig plain = Config(plain_broker);
  plain.tls_ca_file.clear();
  auto p = PulsarChannelReader::Open(plain, kChannel, StartAt::Offset(Off(3, 2)));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const auto over_tcp = ReadN(**p, 4);
  ASSERT_EQ(over_tcp.size(), over_tls.size());
  for (size_t i = 0; i < over_tcp.size(); ++i) {
    EXPECT_EQ(over_tcp[i].offset, over_tls[i].offset);
    EXPECT_EQ(over_tcp[i].payload, over_tls[i].payload);
    EXPECT_EQ(over_tcp[i].timestamp_ms, over_tls[i].timestamp_ms);
  }
}

// A lookup redirect over TLS must follow brokerServiceUrlTls: the fake's plain brokerServiceUrl
// names the owner's TLS port, so a reader that took it would fail the handshake there.
TEST_F(PulsarTls, RedirectFollowsBrokerServiceUrlTls) {
  auto topic = TopicWith(3);
  FakeBroker owner(topic, ServerTls());
  FakeBroker front(topic, ServerTls());
  front.redirect_to = owner.url();
  auto r = PulsarChannelReader::Open(Config(front), kChannel, StartAt::Earliest());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectEntries(ReadN(**r, 3), 0, 2);
  EXPECT_EQ(front.lookups.load(), 1);
  EXPECT_EQ(owner.subscribes.load(), 1);
  EXPECT_EQ(owner.tls_handshake_failures.load(), 0);
}

// A broker certificate from another CA is refused, naming TLS and the certificate; with
// tls_allow_insecure the same broker is read.
TEST_F(PulsarTls, UntrustedCertificateIsRefusedUnlessInsecure) {
  TestPki other;
  std::string error;
  ASSERT_TRUE(MakeTestPki(&other, &error)) << error;
  FakeBroker broker(TopicWith(2), FakeTlsServer{other.server_cert_pem, other.server_key_pem});

  auto r = PulsarChannelReader::Open(Config(broker), kChannel, StartAt::Earliest());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == StatusCode::kUnavailable || r.status().code() == StatusCode::kFailedPrecondition)
      << r.status().ToString();
  EXPECT_TRUE(Contains(r.status().message(), "TLS handshake failed")) << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), "certificate")) << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), broker.host_port())) << r.status().message();
  EXPECT_EQ(broker.subscribes.load(), 0);

  PulsarReaderConfig insecure = Config(broker);
  insecure.tls_allow_insecure = true;
  auto ok = PulsarChannelReader::Open(insecure, kChannel, StartAt::Earliest());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ExpectEntries(ReadN(**ok, 2), 0, 1);
}

// A certificate of the right CA for another name: refused while tls_verify_hostname (the URL
// names 127.0.0.1, the certificate other.example), accepted when hostname checks are off.
TEST_F(PulsarTls, HostnameIsVerified) {
  std::string cert, key, error;
  ASSERT_TRUE(MakeLeafCert(*pki_, "other.example", "DNS:other.example", &cert, &key, &error)) << error;
  FakeBroker broker(TopicWith(2), FakeTlsServer{cert, key});

  auto r = PulsarChannelReader::Open(Config(broker), kChannel, StartAt::Earliest());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == StatusCode::kUnavailable || r.status().code() == StatusCode::kFailedPrecondition)
      << r.status().ToString();
  EXPECT_TRUE(Contains(r.status().message(), "TLS handshake failed")) << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), "certificate")) << r.status().message();

  PulsarReaderConfig no_host = Config(broker);
  no_host.tls_verify_hostname = false;
  auto ok = PulsarChannelReader::Open(no_host, kChannel, StartAt::Earliest());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ExpectEntries(ReadN(**ok, 2), 0, 1);
}

// The test CA's usual server certificate names localhost by DNS too: a URL by name verifies.
TEST_F(PulsarTls, HostnameByDnsName) {
  FakeBroker broker(TopicWith(1), ServerTls());
  PulsarReaderConfig c = Config(broker);
  c.service_url = "pulsar+ssl://localhost:" + broker.host_port().substr(broker.host_port().find(':') + 1);
  auto r = PulsarChannelReader::Open(c, kChannel, StartAt::Earliest());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectEntries(ReadN(**r, 1), 0, 0);
  // The lookup (by name) answered 127.0.0.1: a second link for the topic. SNI names only the host
  // name, never the IP literal.
  EXPECT_EQ(broker.connections.load(), 2);
  EXPECT_EQ(broker.Snis(), (std::vector<std::string>{"localhost", ""}));
}

// What CONNECT carries for each plugin and params form (auth.cc): the method name and the bare
// token / "user:password".
TEST_F(PulsarTls, ConnectCarriesCredentials) {
  FakeBroker broker(TopicWith(1), ServerTls());
  struct Case {
    std::string plugin, params, method, data;
  };
  const std::string token_file = TempFile("  jwt-from-file\n");
  const std::vector<Case> cases = {
      {"token", "token:abc", "token", "abc"},
      {"token", "file:" + token_file, "token", "jwt-from-file"},
      {"org.apache.pulsar.client.impl.auth.AuthenticationToken", "token:xyz", "token", "xyz"},
      {"basic", "userId:u,password:p", "basic", "u:p"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.plugin + " " + tc.params);
    PulsarReaderConfig c = Config(broker);
    c.auth_plugin = tc.plugin;
    c.auth_params = tc.params;
    auto r = PulsarChannelReader::Open(c, kChannel, StartAt::Earliest());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ExpectEntries(ReadN(**r, 1), 0, 0);
    EXPECT_EQ(broker.LastAuthMethod(), tc.method);
    EXPECT_EQ(broker.LastAuthData(), tc.data);
  }
  ::unlink(token_file.c_str());
}

// A broker that refuses the credentials (ERROR AuthenticationError on CONNECT): Open fails at once
// with kFailedPrecondition naming authentication, and the token is in neither the error nor the log.
TEST_F(PulsarTls, RefusedCredentialsFailOpenWithoutLeakingTheToken) {
  FakeBroker broker(TopicWith(1), ServerTls());
  broker.refuse_auth = true;
  const std::string secret = "s3cr3t-jwt-value";

  std::ostringstream log_text;
  auto logger = GetLogger("pulsar");
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text);
  const auto old_level = logger->level();
  logger->sinks().push_back(sink);
  logger->set_level(spdlog::level::trace);

  PulsarReaderConfig c = Config(broker);
  c.auth_plugin = "token";
  c.auth_params = "token:" + secret;
  auto r = PulsarChannelReader::Open(c, kChannel, StartAt::Earliest());

  logger->sinks().pop_back();
  logger->set_level(old_level);

  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
  EXPECT_TRUE(Contains(r.status().message(), "AuthenticationError")) << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), "refused CONNECT")) << r.status().message();
  EXPECT_FALSE(Contains(r.status().message(), secret));
  EXPECT_FALSE(Contains(log_text.str(), secret)) << log_text.str();
  EXPECT_EQ(broker.LastAuthData(), secret);  // it was sent, to the broker only
  EXPECT_EQ(broker.connections.load(), 1);    // not retried
}

// An auth refresh while reading: AUTH_CHALLENGE after CONNECTED is answered with AUTH_RESPONSE
// carrying the token as the file holds it now (rotated after Open), and reading goes on on the
// same subscription.
TEST_F(PulsarTls, AuthChallengeIsAnsweredAndReadingContinues) {
  FakeBroker broker(TopicWith(8), ServerTls());
  broker.auth_challenge_after = 2;
  const std::string token_file = TempFile("jwt-1\n");
  PulsarReaderConfig c = Config(broker);
  c.auth_plugin = "token";
  c.auth_params = "file:" + token_file;
  auto r = PulsarChannelReader::Open(c, kChannel, StartAt::Offset(Off(3, 0)));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(broker.LastAuthData(), "jwt-1");
  std::ofstream(token_file, std::ios::trunc) << "jwt-2\n";  // rotated

  ExpectEntries(ReadN(**r, 8), 0, 7);
  const auto responses = broker.AuthResponses();
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].first, "token");
  EXPECT_EQ(responses[0].second, "jwt-2");
  EXPECT_EQ(broker.subscribes.load(), 1);  // no reconnect
  EXPECT_EQ(broker.connections.load(), 1);
  EXPECT_TRUE((*r)->last_error().empty()) << (*r)->last_error();
  ::unlink(token_file.c_str());
}

}  // namespace
}  // namespace cdc::source
