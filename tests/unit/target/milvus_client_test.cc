#include "target/milvus_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "fake_milvus.h"
#include "target/milvus_applier.h"

namespace cdc::target {
namespace {

using testing::FakeMilvus;
using testing::FakeMilvusServer;
using Clock = std::chrono::steady_clock;

std::string Get(const std::multimap<std::string, std::string>& md, const std::string& key) {
  auto it = md.find(key);
  return it == md.end() ? "<absent>" : it->second;
}

ConnectParams ParamsFor(const std::string& address) {
  ConnectParams p;
  p.uri = "http://" + address;
  p.connect_timeout_s = 5;
  return p;
}

ConnectParams OneSecondCalls(FakeMilvusServer& server) {
  ConnectParams p = ParamsFor(server.address());
  p.call_timeout_s = 1;
  return p;
}

TEST(MilvusClientTest, ConnectSendsAuthAndDbMetadata) {
  FakeMilvusServer server;
  ConnectParams p = ParamsFor(server.address());
  p.token = "root:Milvus";
  p.db_name = "db1";
  auto client = MilvusClient::Connect(p);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_EQ((*client)->endpoint(), server.address());
  EXPECT_EQ((*client)->session_id(), FakeMilvus::kIdentifier);

  auto version = (*client)->GetVersion();
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_EQ(*version, "v2.3.9-fake");

  auto calls = server.service().calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].method, "Connect");
  EXPECT_EQ(Get(calls[0].metadata, "authorization"), "cm9vdDpNaWx2dXM=");
  EXPECT_EQ(Get(calls[0].metadata, "dbname"), "db1");
  EXPECT_EQ(calls[0].client_sdk_type, "milvus-cdc");
  EXPECT_EQ(calls[0].client_user, "root");
  EXPECT_EQ(calls[1].method, "GetVersion");
  EXPECT_EQ(Get(calls[1].metadata, "authorization"), "cm9vdDpNaWx2dXM=");
  EXPECT_EQ(Get(calls[1].metadata, "dbname"), "db1");
  EXPECT_EQ(Get(calls[1].metadata, "identifier"), std::to_string(FakeMilvus::kIdentifier));
}

TEST(MilvusClientTest, NoTokenNoDbSendsNeither) {
  FakeMilvusServer server;
  auto client = MilvusClient::Connect(ParamsFor(server.address()));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto calls = server.service().calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Get(calls[0].metadata, "authorization"), "<absent>");
  EXPECT_EQ(Get(calls[0].metadata, "dbname"), "<absent>");
  EXPECT_EQ(calls[0].client_user, "");
}

TEST(MilvusClientTest, PrepareContextOverridesDbAndSetsDeadline) {
  FakeMilvusServer server;
  ConnectParams p = ParamsFor(server.address());
  p.token = "apikey-without-colon";
  p.db_name = "db1";
  p.call_timeout_s = 30;
  auto client = MilvusClient::Connect(p);
  ASSERT_TRUE(client.ok()) << client.status().ToString();

  grpc::ClientContext ctx;
  auto before = std::chrono::system_clock::now();
  (*client)->PrepareContext(&ctx, "other");
  EXPECT_GE(ctx.deadline(), before + std::chrono::seconds(29));
  EXPECT_LE(ctx.deadline(), before + std::chrono::seconds(31));

  milvus::proto::milvus::GetVersionResponse resp;
  grpc::Status st = (*client)->stub()->GetVersion(&ctx, {}, &resp);
  ASSERT_TRUE((*client)->CheckCall(st, resp.status(), "GetVersion").ok());
  auto calls = server.service().calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(Get(calls[1].metadata, "dbname"), "other");
  EXPECT_EQ(Get(calls[1].metadata, "authorization"), Base64Encode("apikey-without-colon"));
}

TEST(MilvusClientTest, FallsBackToGetVersionWhenConnectIsUnimplemented) {
  FakeMilvusServer server;
  server.service().set_mode(FakeMilvus::Mode::kConnectUnimplemented);
  auto client = MilvusClient::Connect(ParamsFor(server.address()));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_EQ((*client)->session_id(), 0);
  auto calls = server.service().calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].method, "Connect");
  EXPECT_EQ(calls[1].method, "GetVersion");
}

TEST(MilvusClientTest, NonSuccessCommonStatusIsReported) {
  FakeMilvusServer server;
  server.service().set_mode(FakeMilvus::Mode::kStatusError);
  ConnectParams p = ParamsFor(server.address());
  p.db_name = "nope";
  auto client = MilvusClient::Connect(p);
  ASSERT_FALSE(client.ok());
  const std::string& m = client.status().message();
  EXPECT_NE(m.find("cannot connect to Milvus at " + server.address()), std::string::npos) << m;
  EXPECT_NE(m.find("database not found[database=nope]"), std::string::npos) << m;
  EXPECT_NE(m.find("Connect failed: database not found[database=nope] (code 800)"), std::string::npos) << m;
  EXPECT_EQ(client.status().code(), StatusCode::kNotFound);
}

TEST(MilvusClientTest, LegacyErrorCodeIsReported) {
  FakeMilvusServer server;
  auto client = MilvusClient::Connect(ParamsFor(server.address()));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  server.service().set_mode(FakeMilvus::Mode::kLegacyStatusError);
  auto v = (*client)->GetVersion();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInternal);
  const std::string& m = v.status().message();
  EXPECT_NE(m.find("GetVersion on " + server.address() + " failed: something broke"), std::string::npos) << m;
  EXPECT_NE(m.find("error_code UnexpectedError"), std::string::npos) << m;
}

TEST(MilvusClientTest, AuthFailureIsNamedAndNeverShowsTheToken) {
  FakeMilvusServer server;
  server.service().set_mode(FakeMilvus::Mode::kUnauthenticated);
  ConnectParams p = ParamsFor(server.address());
  p.token = "root:wrongpass1";
  auto client = MilvusClient::Connect(p);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = client.status().message();
  EXPECT_NE(m.find("authentication failed"), std::string::npos) << m;
  EXPECT_EQ(m.find("wrongpass1"), std::string::npos) << m;
  EXPECT_EQ(m.find(Base64Encode(p.token)), std::string::npos) << m;
}

TEST(MilvusClientTest, ServerThatNeverAnswersHitsConnectDeadline) {
  FakeMilvusServer server;
  server.service().set_mode(FakeMilvus::Mode::kHang);
  ConnectParams p = ParamsFor(server.address());
  p.connect_timeout_s = 1;
  auto start = Clock::now();
  auto client = MilvusClient::Connect(p);
  auto elapsed = Clock::now() - start;
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client.status().message(), "deadline exceeded after 1s connecting to " + server.address());
  EXPECT_GE(elapsed, std::chrono::milliseconds(900));
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST(MilvusClientTest, SilentTcpPeerHitsConnectDeadline) {
  // Accepts TCP (kernel backlog) but never speaks HTTP/2.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string address = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  ConnectParams p = ParamsFor(address);
  p.connect_timeout_s = 1;
  auto start = Clock::now();
  auto client = MilvusClient::Connect(p);
  auto elapsed = Clock::now() - start;
  close(fd);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kDeadlineExceeded) << client.status().ToString();
  EXPECT_EQ(client.status().message(), "deadline exceeded after 1s connecting to " + address);
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST(MilvusClientTest, CallTimeoutAppliesToLaterCalls) {
  FakeMilvusServer server;
  auto client = MilvusClient::Connect(OneSecondCalls(server));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  server.service().set_mode(FakeMilvus::Mode::kHang);
  auto start = Clock::now();
  auto v = (*client)->GetVersion();
  auto elapsed = Clock::now() - start;
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(v.status().message(), "GetVersion on " + server.address() + ": deadline exceeded (call timeout 1s)");
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST(MilvusClientTest, CancelAbortsACallInFlightAndEveryLaterOne) {
  FakeMilvusServer server;
  ConnectParams p = ParamsFor(server.address());
  p.call_timeout_s = 30;
  auto client = MilvusClient::Connect(p);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  server.service().set_mode(FakeMilvus::Mode::kHang);
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    (*client)->Cancel();
  });
  auto start = Clock::now();
  auto v = (*client)->GetVersion();
  auto elapsed = Clock::now() - start;
  canceller.join();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kUnavailable) << v.status().ToString();
  EXPECT_NE(v.status().message().find("cancelled"), std::string::npos) << v.status().message();
  EXPECT_LT(elapsed, std::chrono::seconds(5)) << "not the 30 s call deadline";

  start = Clock::now();
  auto again = (*client)->GetVersion();
  EXPECT_FALSE(again.ok()) << "a cancelled client fails every later call at once";
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(1));
  server.service().Release();
}

TEST(MilvusClientTest, UnreachablePortFailsWithClearMessage) {
  int port = testing::UnusedPort();
  ASSERT_GT(port, 0);
  std::string address = "127.0.0.1:" + std::to_string(port);
  ConnectParams p = ParamsFor(address);
  p.token = "root:Milvus";
  auto start = Clock::now();
  auto client = MilvusClient::Connect(p);
  auto elapsed = Clock::now() - start;
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kUnavailable) << client.status().ToString();
  const std::string& m = client.status().message();
  EXPECT_NE(m.find("cannot connect to Milvus at " + address + ": unavailable"), std::string::npos) << m;
  EXPECT_EQ(m.find("cm9vdDpNaWx2dXM="), std::string::npos) << m;
  EXPECT_LT(elapsed, std::chrono::seconds(5));  // fails fast, does not wait for the deadline
}

TEST(MilvusClientTest, MutualTlsWithMissingFilesFailsBeforeDialing) {
  ConnectParams p;
  p.uri = "127.0.0.1:1";
  p.ca_pem_path = "/nonexistent/ca.pem";
  p.client_pem_path = "/nonexistent/client.pem";
  auto client = MilvusClient::Connect(p);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(client.status().message().find("bad TLS config: mutual TLS needs ca_pem_path, client_pem_path and "
                                           "client_key_path; missing client_key_path"),
            std::string::npos)
      << client.status().message();

  p.client_key_path = "/nonexistent/client.key";
  client = MilvusClient::Connect(p);
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.status().message().find("bad TLS config: cannot read ca_pem_path /nonexistent/ca.pem"),
            std::string::npos)
      << client.status().message();
}

TEST(MilvusClientTest, BadUriAndDbNameAreRejected) {
  ConnectParams p;
  p.uri = "grpc://h:1";
  auto client = MilvusClient::Connect(p);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kInvalidArgument);

  p.uri = "h:1";
  p.db_name = "bad\nname";
  client = MilvusClient::Connect(p);
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.status().message().find("bad db_name"), std::string::npos);
}

// A target that took an Insert but never answered (stalled past the call timeout): the retry
// must not insert the rows a second time. It goes as an Upsert of the same rows.
TEST(MilvusApplierRetryTest, AnInsertThatTimedOutIsRetriedAsAnUpsertOfTheSameRows) {
  FakeMilvusServer server;
  auto client = MilvusClient::Connect(OneSecondCalls(server));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  std::atomic<bool> stopping{false};
  MilvusApplier applier(client->get(), RetryPolicy{5, std::chrono::milliseconds(10), std::chrono::milliseconds(20)},
                        &stopping);

  milvus::proto::msg::InsertRequest src;
  src.set_num_rows(3);
  auto* pk = src.add_fields_data();
  pk->set_field_name("pk");
  pk->set_field_id(100);
  pk->set_type(milvus::proto::schema::DataType::Int64);
  for (int64_t v : {1, 2, 3}) pk->mutable_scalars()->mutable_long_data()->add_data(v);

  server.service().set_mode(FakeMilvus::Mode::kApplyThenHangOnce);
  ASSERT_TRUE(applier.Insert("db1", "c1", src.partition_name(), src, /*upsert=*/false).ok());

  std::vector<FakeMilvus::Call> writes;
  for (auto& c : server.service().calls()) {
    if (c.method == "Insert" || c.method == "Upsert") writes.push_back(c);
  }
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[0].method, "Insert");
  EXPECT_EQ(writes[1].method, "Upsert");
  for (const auto& w : writes) {
    EXPECT_EQ(w.collection, "db1.c1");
    EXPECT_EQ(w.num_rows, 3u);
    ASSERT_EQ(w.fields.size(), 1u);
    EXPECT_EQ(w.fields[0].scalars().long_data().data_size(), 3);
    EXPECT_EQ(w.fields[0].scalars().long_data().data(2), 3);
  }
  EXPECT_EQ(applier.rows_inserted(), 3);
}

}  // namespace
}  // namespace cdc::target
