#include "target/connect_params.h"

#include <gtest/gtest.h>

#include <string>

namespace cdc::target {
namespace {

TEST(ParseTargetUriTest, AcceptsHttpHttpsAndBare) {
  auto a = ParseTargetUri("http://localhost:19530");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->host, "localhost");
  EXPECT_EQ(a->port, 19530);
  EXPECT_FALSE(a->tls);

  auto b = ParseTargetUri("https://milvus.example.com:443/");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->host, "milvus.example.com");
  EXPECT_EQ(b->port, 443);
  EXPECT_TRUE(b->tls);
  EXPECT_EQ(b->Authority(), "milvus.example.com:443");

  auto c = ParseTargetUri("10.0.0.7:19630");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->Authority(), "10.0.0.7:19630");
  EXPECT_FALSE(c->tls);
}

TEST(ParseTargetUriTest, DefaultsPortAndHandlesIpv6) {
  auto a = ParseTargetUri("http://milvus");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->port, 19530);

  auto b = ParseTargetUri("[::1]:19531");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->Authority(), "[::1]:19531");
}

TEST(ParseTargetUriTest, RejectsBadInput) {
  for (const char* bad : {"", "grpc://h:1", "unix:///tmp/sock", "http://", "http://h:", "http://h:0",
                          "http://h:65536", "http://h:12a", "h:1:2", "http://h:1/db", "http://u:p@h:1",
                          "[::1", "[::1]x", "http://:19530"}) {
    auto r = ParseTargetUri(bad);
    EXPECT_FALSE(r.ok()) << "accepted '" << bad << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
      EXPECT_NE(r.status().message().find("bad target uri"), std::string::npos) << r.status().message();
    }
  }
}

TEST(ParseTargetUriTest, NeverEchoesUserInfo) {
  auto r = ParseTargetUri("http://root:hunter22@h:1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find("hunter22"), std::string::npos) << r.status().message();
}

TEST(Base64Test, MatchesRfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(std::string("\xff\xfe\x00", 3)), "//4A");
  EXPECT_EQ(Base64Encode("root:Milvus"), "cm9vdDpNaWx2dXM=");
}

TEST(BuildCallMetadataTest, AuthorizationIsBase64OfTokenAsIs) {
  ConnectParams p;
  p.token = "root:Milvus";
  p.db_name = "db1";
  auto md = BuildCallMetadata(p);
  ASSERT_EQ(md.size(), 2u);
  EXPECT_EQ(md[0].first, "authorization");
  EXPECT_EQ(md[0].second, "cm9vdDpNaWx2dXM=");
  EXPECT_EQ(md[1].first, "dbname");
  EXPECT_EQ(md[1].second, "db1");
}

TEST(BuildCallMetadataTest, ApiKeyOverrideAndEmpty) {
  ConnectParams p;
  EXPECT_TRUE(BuildCallMetadata(p).empty());

  p.token = "abcdef0123";  // an API key: no colon, still base64 as is
  auto md = BuildCallMetadata(p, "other");
  ASSERT_EQ(md.size(), 2u);
  EXPECT_EQ(md[0].second, Base64Encode("abcdef0123"));
  EXPECT_EQ(md[1].second, "other");

  p.token.clear();
  p.db_name = "db1";
  md = BuildCallMetadata(p, "db2");
  ASSERT_EQ(md.size(), 1u);
  EXPECT_EQ(md[0], (std::pair<std::string, std::string>("dbname", "db2")));
}

TEST(MetadataValueTest, RejectsNonPrintable) {
  EXPECT_TRUE(IsValidMetadataValue("default"));
  EXPECT_TRUE(IsValidMetadataValue(""));
  EXPECT_FALSE(IsValidMetadataValue("a\nb"));
  EXPECT_FALSE(IsValidMetadataValue(" x"));
  EXPECT_FALSE(IsValidMetadataValue("d\xc3\xa9j\xc3\xa0"));
}

TEST(RedactSecretsTest, HidesTokenForms) {
  const std::string token = "root:s3cretPW";
  std::string m = RedactSecrets("bad root:s3cretPW, " + Base64Encode(token) + ", pw s3cretPW", token);
  EXPECT_EQ(m.find("s3cretPW"), std::string::npos) << m;
  EXPECT_EQ(m.find(Base64Encode(token)), std::string::npos) << m;
  EXPECT_EQ(RedactSecrets("nothing here", ""), "nothing here");
  // Short passwords are not scrubbed piecemeal (it would mangle the text).
  EXPECT_EQ(RedactSecrets("a b c", "u:a"), "a b c");
}

TEST(LoadTlsMaterialTest, PlainWhenNothingSet) {
  ConnectParams p;
  p.server_name = "only-a-name";
  auto t = LoadTlsMaterial(p, false);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->enabled);
}

TEST(LoadTlsMaterialTest, HttpsAloneUsesSystemRoots) {
  ConnectParams p;
  auto t = LoadTlsMaterial(p, true);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->enabled);
  EXPECT_FALSE(t->mutual);
  EXPECT_TRUE(t->root_pem.empty());
}

TEST(LoadTlsMaterialTest, MutualNeedsAllThree) {
  ConnectParams p;
  p.ca_pem_path = "/nonexistent/ca.pem";
  auto t = LoadTlsMaterial(p, false);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("bad TLS config: mutual TLS needs"), std::string::npos)
      << t.status().message();
  EXPECT_NE(t.status().message().find("missing client_pem_path, client_key_path"), std::string::npos)
      << t.status().message();
}

TEST(LoadTlsMaterialTest, UnreadableFileIsNamed) {
  ConnectParams p;
  p.ca_pem_path = "/nonexistent/ca.pem";
  p.client_pem_path = "/nonexistent/client.pem";
  p.client_key_path = "/nonexistent/client.key";
  auto t = LoadTlsMaterial(p, false);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("bad TLS config: cannot read ca_pem_path /nonexistent/ca.pem"),
            std::string::npos)
      << t.status().message();

  ConnectParams q;
  q.server_pem_path = "/nonexistent/server.pem";
  auto u = LoadTlsMaterial(q, false);
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("cannot read server_pem_path /nonexistent/server.pem"), std::string::npos)
      << u.status().message();
}

}  // namespace
}  // namespace cdc::target
