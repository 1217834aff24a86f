// EtcdClient against a real, private etcd (see etcd_test_server.h).
#include "source/etcd_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "etcd_test_server.h"
#include "test_certs.h"

namespace cdc::source {
namespace {

using cdc::testing::EtcdTestServer;
using cdc::testing::WaitFor;
using std::chrono::seconds;

// Collects what a watch delivers; callbacks run on the watch thread.
class WatchRecorder {
 public:
  auto OnEvents() {
    return [this](const std::vector<EtcdEvent>& events, int64_t revision) {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& e : events) events_.push_back(e);
      revisions_.push_back(revision);
    };
  }
  auto OnError() {
    return [this](const Status& st) {
      std::lock_guard<std::mutex> lock(mu_);
      errors_.push_back(st);
    };
  }
  std::vector<EtcdEvent> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  std::vector<Status> errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }
  size_t event_count() { return events().size(); }
  size_t error_count() { return errors().size(); }

 private:
  std::mutex mu_;
  std::vector<EtcdEvent> events_;
  std::vector<int64_t> revisions_;
  std::vector<Status> errors_;
};

std::vector<std::string> Keys(const std::vector<EtcdEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.kv.key);
  return out;
}

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!EtcdTestServer::Available()) GTEST_SKIP() << "etcd/etcdctl not on PATH (Debian package etcd-server)";
    std::string err = server_.Start();
    ASSERT_EQ(err, "");
    auto client = EtcdClient::Connect(Options());
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(client).value();
  }

  EtcdOptions Options() const {
    EtcdOptions o;
    o.endpoints = {server_.endpoint()};
    o.dial_timeout_s = 5;
    o.call_timeout_s = 5;
    return o;
  }

  EtcdTestServer server_;
  std::unique_ptr<EtcdClient> client_;
};

TEST(EtcdPrefixTest, RangeEnd) {
  EXPECT_EQ(PrefixRangeEnd("abc"), "abd");
  EXPECT_EQ(PrefixRangeEnd("a/"), "a0");
  EXPECT_EQ(PrefixRangeEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixRangeEnd(std::string("\xff\xff", 2)), std::string(1, '\0'));
  EXPECT_EQ(PrefixRangeEnd(""), std::string(1, '\0'));
}

TEST(EtcdOptionsTest, FromConfigTakesCredentialsOnlyWithAuth) {
  EtcdConfig c;
  c.endpoints = {"h1:2379", "h2:2379"};
  c.username = "root";
  c.password = "pw";
  c.enable_tls = true;
  c.tls_ca_cert_path = "ca.pem";
  EtcdOptions o = EtcdOptions::FromConfig(c);
  EXPECT_EQ(o.endpoints, c.endpoints);
  EXPECT_TRUE(o.username.empty());
  EXPECT_TRUE(o.password.empty());
  EXPECT_TRUE(o.enable_tls);
  EXPECT_EQ(o.tls_ca_cert_path, "ca.pem");
  c.enable_auth = true;
  o = EtcdOptions::FromConfig(c);
  EXPECT_EQ(o.username, "root");
  EXPECT_EQ(o.password, "pw");
}

TEST(EtcdConnectTest, UnreachableEndpointFailsWithinDialTimeout) {
  EtcdTestServer unused;  // only for a free port nobody listens on
  EtcdOptions o;
  o.endpoints = {unused.endpoint()};
  o.dial_timeout_s = 1;
  auto start = std::chrono::steady_clock::now();
  auto client = EtcdClient::Connect(o);
  ASSERT_FALSE(client.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(3));
  EXPECT_EQ(client.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(client.status().message().find("cannot connect to etcd at " + unused.endpoint()), std::string::npos)
      << client.status().message();
}

TEST(EtcdConnectTest, BadTlsFilesAreNamed) {
  EtcdOptions o;
  o.endpoints = {"127.0.0.1:1"};
  o.enable_tls = true;
  o.tls_ca_cert_path = "/nonexistent/ca.pem";
  auto client = EtcdClient::Connect(o);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(client.status().message().find("/nonexistent/ca.pem"), std::string::npos);
}

TEST(EtcdConnectTest, ConnectWaitsForAnEtcdThatStartsLate) {
  if (!EtcdTestServer::Available()) GTEST_SKIP() << "etcd/etcdctl not on PATH";
  EtcdTestServer server;
  EtcdOptions o;
  o.endpoints = {server.endpoint()};
  o.dial_timeout_s = 10;
  StatusOr<std::unique_ptr<EtcdClient>> client = Internal("not done");
  std::atomic<bool> done{false};
  std::thread connect([&] {
    client = EtcdClient::Connect(o);
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let it meet a closed port
  ASSERT_EQ(server.Start(), "");
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(WaitFor([&] { return done.load(); }, seconds(12)));
  connect.join();
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - started, seconds(3)) << "reconnect backoff too long";
  EXPECT_TRUE((*client)->Put("late/k", "v").ok());
}

TEST(EtcdTlsTest, MutualTlsWithCaCertAndKey) {
  if (!EtcdTestServer::Available()) GTEST_SKIP() << "etcd/etcdctl not on PATH";
  cdc::target::testing::TestPki pki;
  std::string error;
  ASSERT_TRUE(cdc::target::testing::MakeTestPki(&pki, &error)) << error;
  cdc::testing::TempDir dir;
  const std::string server_key = dir.File("server.key");
  cdc::testing::WriteFileBytes(server_key, pki.server_key_pem);
  EtcdTestServer server;
  server.UseTls(pki.server_cert_path, server_key, pki.ca_path, pki.client_cert_path, pki.client_key_path);
  ASSERT_EQ(server.Start(), "");

  EtcdOptions o;
  o.endpoints = {"https://" + server.endpoint()};
  o.dial_timeout_s = 5;
  o.enable_tls = true;
  o.tls_ca_cert_path = pki.ca_path;
  o.tls_cert_path = pki.client_cert_path;
  o.tls_key_path = pki.client_key_path;
  auto client = EtcdClient::Connect(o);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  ASSERT_TRUE((*client)->Put("tls/k", "v").ok());
  WatchRecorder rec;
  auto watch = (*client)->WatchPrefix("tls/", 0, rec.OnEvents(), rec.OnError());
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE((*client)->Delete("tls/k").ok());
  ASSERT_TRUE(WaitFor([&] { return rec.event_count() >= 1; }));
  (*watch)->Stop();

  // The same server without TLS, or without the client certificate, is refused within the budget.
  EtcdOptions plain = o;
  plain.enable_tls = false;
  plain.dial_timeout_s = 1;
  EXPECT_FALSE(EtcdClient::Connect(plain).ok());
  EtcdOptions no_client_cert = o;
  no_client_cert.tls_cert_path.clear();
  no_client_cert.tls_key_path.clear();
  no_client_cert.dial_timeout_s = 1;
  auto refused = EtcdClient::Connect(no_client_cert);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find(server.endpoint()), std::string::npos);
}

TEST_F(EtcdClientTest, FailsOverToTheFirstReachableEndpoint) {
  EtcdTestServer dead;
  EtcdOptions o = Options();
  o.endpoints = {"http://" + dead.endpoint(), server_.endpoint()};
  auto client = EtcdClient::Connect(o);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_EQ((*client)->endpoint(), server_.endpoint());
  ASSERT_TRUE((*client)->Put("failover/k", "v").ok());
}

TEST_F(EtcdClientTest, PutGetDelete) {
  auto missing = client_->Get("kv/none");
  ASSERT_TRUE(missing.ok()) << missing.status().ToString();
  EXPECT_FALSE(missing->has_value());

  ASSERT_TRUE(client_->Put("kv/a", std::string("v1\0bin", 6)).ok());
  ASSERT_TRUE(client_->Put("kv/a", "v2").ok());
  auto got = client_->Get("kv/a");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->key, "kv/a");
  EXPECT_EQ((*got)->value, "v2");
  EXPECT_EQ((*got)->version, 2);
  EXPECT_LT((*got)->create_revision, (*got)->mod_revision);

  ASSERT_TRUE(client_->Delete("kv/a").ok());
  ASSERT_TRUE(client_->Delete("kv/a").ok()) << "deleting a missing key is not an error";
  got = client_->Get("kv/a");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(EtcdClientTest, DeletePrefixStopsAtThePrefix) {
  for (const char* k : {"dp/x/1", "dp/x/2", "dp/x/3/deep", "dp/xy", "dp/w"}) ASSERT_TRUE(client_->Put(k, "v").ok());
  ASSERT_TRUE(client_->DeletePrefix("dp/x/").ok());
  auto left = client_->GetPrefix("dp/");
  ASSERT_TRUE(left.ok()) << left.status().ToString();
  std::vector<std::string> keys;
  for (const auto& kv : *left) keys.push_back(kv.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"dp/w", "dp/xy"}));
  EXPECT_EQ(client_->DeletePrefix("").code(), StatusCode::kInvalidArgument);
}

TEST_F(EtcdClientTest, TxnAppliesAllOpsAtOneRevision) {
  ASSERT_TRUE(client_->Put("txn/old", "o").ok());
  ASSERT_TRUE(client_->Put("txn/dir/1", "o").ok());
  ASSERT_TRUE(client_->Put("txn/dir/2", "o").ok());
  std::vector<int64_t> deleted;
  Status st = client_->Txn({{EtcdOp::Type::kPut, "txn/a", "1"},
                            {EtcdOp::Type::kPut, "txn/b", "2"},
                            {EtcdOp::Type::kDelete, "txn/old", ""},
                            {EtcdOp::Type::kDeletePrefix, "txn/dir/", ""}},
                           &deleted);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(deleted, (std::vector<int64_t>{0, 0, 1, 2}));
  int64_t rev = 0;
  auto kvs = client_->GetPrefix("txn/", &rev);
  ASSERT_TRUE(kvs.ok());
  ASSERT_EQ(kvs->size(), 2u);
  EXPECT_EQ((*kvs)[0].key, "txn/a");
  EXPECT_EQ((*kvs)[1].key, "txn/b");
  EXPECT_EQ((*kvs)[0].mod_revision, (*kvs)[1].mod_revision);
  EXPECT_EQ((*kvs)[0].mod_revision, rev) << "one transaction, one revision";

  // etcd refuses the whole transaction when one op is invalid: nothing is applied.
  st = client_->Txn({{EtcdOp::Type::kPut, "txn/c", "1"}, {EtcdOp::Type::kPut, "txn/c", "2"}});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("etcd Txn"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(server_.endpoint()), std::string::npos) << st.message();
  auto c = client_->Get("txn/c");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
}

TEST_F(EtcdClientTest, GetPrefixPagesAtOneRevision) {
  EtcdOptions o = Options();
  o.range_page_size = 3;
  auto paged_or = EtcdClient::Connect(o);
  ASSERT_TRUE(paged_or.ok());
  auto paged = std::move(paged_or).value();

  // Every round rewrites all keys to the same value in one transaction, so a consistent
  // snapshot holds one value everywhere; pages read at different revisions would not.
  constexpr int kKeys = 20;  // 7 pages
  auto round_ops = [](int round) {
    std::vector<EtcdOp> ops;
    for (int i = 0; i < kKeys; ++i) {
      char key[32];
      std::snprintf(key, sizeof(key), "page/k%02d", i);
      ops.push_back({EtcdOp::Type::kPut, key, std::to_string(round)});
    }
    return ops;
  };
  ASSERT_TRUE(client_->Txn(round_ops(0)).ok());
  ASSERT_TRUE(client_->Put("pagf", "outside the prefix").ok());

  std::atomic<bool> done{false};
  std::atomic<int> rounds{0};
  std::thread writer([&] {
    for (int round = 1; !done; ++round) {
      if (!client_->Txn(round_ops(round)).ok()) break;
      rounds = round;
    }
  });
  int inconsistent = 0;
  for (int i = 0; i < 30; ++i) {
    int64_t rev = 0;
    auto kvs = paged->GetPrefix("page/", &rev);
    ASSERT_TRUE(kvs.ok()) << kvs.status().ToString();
    ASSERT_EQ(kvs->size(), static_cast<size_t>(kKeys));
    std::set<std::string> values;
    for (int k = 0; k < kKeys; ++k) {
      EXPECT_EQ((*kvs)[k].key.substr(0, 6), "page/k");
      if (k > 0) {
        EXPECT_LT((*kvs)[k - 1].key, (*kvs)[k].key);
      }
      EXPECT_LE((*kvs)[k].mod_revision, rev);
      values.insert((*kvs)[k].value);
    }
    if (values.size() != 1) ++inconsistent;
  }
  done = true;
  writer.join();
  EXPECT_EQ(inconsistent, 0);
  EXPECT_GT(rounds.load(), 0) << "the writer made no progress, so the test proved nothing";
}

TEST_F(EtcdClientTest, WatchSeesPutsAndDeletesWithPrevKvInOrder) {
  ASSERT_TRUE(client_->Put("w/k1", "v0").ok());
  WatchRecorder rec;
  auto watch = client_->WatchPrefix("w/", 0, rec.OnEvents(), rec.OnError());
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  // Written right after WatchPrefix returns: "0 = from now" must include them.
  ASSERT_TRUE(client_->Put("w/k1", "v1").ok());
  ASSERT_TRUE(client_->Put("w/k2", "n1").ok());
  ASSERT_TRUE(client_->Put("wx", "outside").ok());
  ASSERT_TRUE(client_->Delete("w/k1").ok());
  ASSERT_TRUE(client_->Txn({{EtcdOp::Type::kPut, "w/k3", "t"}, {EtcdOp::Type::kDeletePrefix, "w/k2", ""}}).ok());
  ASSERT_TRUE(WaitFor([&] { return rec.event_count() >= 5; }));
  (*watch)->Stop();
  auto ev = rec.events();
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(Keys(ev), (std::vector<std::string>{"w/k1", "w/k2", "w/k1", "w/k3", "w/k2"}));

  EXPECT_EQ(ev[0].type, EtcdEvent::Type::kPut);
  EXPECT_EQ(ev[0].kv.value, "v1");
  ASSERT_TRUE(ev[0].prev_kv.has_value());
  EXPECT_EQ(ev[0].prev_kv->value, "v0");

  EXPECT_EQ(ev[1].type, EtcdEvent::Type::kPut);
  EXPECT_FALSE(ev[1].prev_kv.has_value()) << "a new key has no previous value";

  EXPECT_EQ(ev[2].type, EtcdEvent::Type::kDelete);
  ASSERT_TRUE(ev[2].prev_kv.has_value());
  EXPECT_EQ(ev[2].prev_kv->value, "v1");

  EXPECT_EQ(ev[3].type, EtcdEvent::Type::kPut);
  EXPECT_EQ(ev[4].type, EtcdEvent::Type::kDelete);
  EXPECT_EQ(ev[3].kv.mod_revision, ev[4].kv.mod_revision) << "one transaction";
  for (size_t i = 1; i < ev.size(); ++i) EXPECT_LE(ev[i - 1].kv.mod_revision, ev[i].kv.mod_revision);
  EXPECT_EQ(rec.error_count(), 0u);
}

TEST_F(EtcdClientTest, WatchFromAPastRevisionReplaysHistory) {
  ASSERT_TRUE(client_->Put("h/a", "1").ok());
  auto a = client_->Get("h/a");
  ASSERT_TRUE(a.ok() && a->has_value());
  const int64_t start = (*a)->mod_revision;
  ASSERT_TRUE(client_->Put("h/b", "2").ok());
  ASSERT_TRUE(client_->Delete("h/a").ok());
  WatchRecorder rec;
  auto watch = client_->WatchPrefix("h/", start, rec.OnEvents(), rec.OnError());
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(WaitFor([&] { return rec.event_count() >= 3; }));
  watch->reset();  // destroying a watch stops it
  EXPECT_EQ(Keys(rec.events()), (std::vector<std::string>{"h/a", "h/b", "h/a"}));
}

TEST_F(EtcdClientTest, WatchResumesAfterEtcdIsKilledWithoutLossOrRepeat) {
  WatchRecorder rec;
  auto watch = client_->WatchPrefix("r/", 0, rec.OnEvents(), rec.OnError());
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(client_->Put("r/1", "a").ok());
  ASSERT_TRUE(client_->Put("r/2", "b").ok());
  ASSERT_TRUE(WaitFor([&] { return rec.event_count() >= 2; }));

  server_.Kill();  // SIGKILL: no goodbye on the stream
  ASSERT_TRUE(WaitFor([&] { return rec.error_count() >= 1; }, seconds(20)));
  auto errors = rec.errors();
  EXPECT_EQ(errors[0].code(), StatusCode::kUnavailable);
  EXPECT_NE(errors[0].message().find("etcd watch"), std::string::npos) << errors[0].message();
  EXPECT_NE(errors[0].message().find(server_.endpoint()), std::string::npos) << errors[0].message();

  ASSERT_EQ(server_.Start(), "");  // same data directory and ports
  ASSERT_TRUE(client_->Put("r/3", "c").ok());
  ASSERT_TRUE(client_->Delete("r/1").ok());
  ASSERT_TRUE(client_->Put("r/4", "d").ok());
  ASSERT_TRUE(WaitFor([&] { return rec.event_count() >= 5; }, seconds(20)));
  // A quiet moment for a duplicate to show up if there were one.
  ASSERT_TRUE(client_->Put("r/5", "e").ok());
  ASSERT_TRUE(WaitFor([&] { return rec.event_count() >= 6; }, seconds(10)));
  (*watch)->Stop();
  EXPECT_EQ(Keys(rec.events()), (std::vector<std::string>{"r/1", "r/2", "r/3", "r/1", "r/4", "r/5"}));
  EXPECT_EQ(rec.events()[3].type, EtcdEvent::Type::kDelete);
  EXPECT_EQ(rec.error_count(), 1u) << "one report per outage";
}

TEST_F(EtcdClientTest, WatchFromACompactedRevisionReportsAndEnds) {
  ASSERT_TRUE(client_->Put("c/a", "1").ok());
  auto a = client_->Get("c/a");
  ASSERT_TRUE(a.ok() && a->has_value());
  const int64_t old_rev = (*a)->mod_revision;
  ASSERT_TRUE(client_->Put("c/a", "2").ok());
  ASSERT_TRUE(client_->Put("c/a", "3").ok());
  auto now = client_->Get("c/a");
  ASSERT_TRUE(now.ok() && now->has_value());
  std::string out;
  ASSERT_EQ(server_.Etcdctl({"compact", std::to_string((*now)->mod_revision)}, &out), 0) << out;

  WatchRecorder rec;
  auto watch = client_->WatchPrefix("c/", old_rev, rec.OnEvents(), rec.OnError());
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(WaitFor([&] { return rec.error_count() >= 1; }));
  auto err = rec.errors()[0];
  EXPECT_EQ(err.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(err.message().find("compacted"), std::string::npos) << err.message();
  EXPECT_NE(err.message().find(std::to_string((*now)->mod_revision)), std::string::npos) << err.message();
  ASSERT_TRUE(client_->Put("c/b", "after").ok());
  (*watch)->Stop();
  EXPECT_EQ(rec.event_count(), 0u) << "a watch that cannot resume delivers nothing";
  EXPECT_EQ(rec.error_count(), 1u);
}

TEST_F(EtcdClientTest, GetPrefixPagesAfterACompactionBelowItsRevision) {
  // Later pages are read at the first page's revision; a compaction below it must not matter.
  EtcdOptions o = Options();
  o.range_page_size = 2;
  auto paged = EtcdClient::Connect(o);
  ASSERT_TRUE(paged.ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client_->Put("gc/" + std::to_string(i), "v").ok());
  auto last = client_->Get("gc/4");
  ASSERT_TRUE(last.ok() && last->has_value());
  ASSERT_EQ(server_.Etcdctl({"compact", std::to_string((*last)->mod_revision)}), 0);
  int64_t rev = 0;
  auto kvs = (*paged)->GetPrefix("gc/", &rev);
  ASSERT_TRUE(kvs.ok()) << kvs.status().ToString();
  EXPECT_EQ(kvs->size(), 5u);
  EXPECT_GE(rev, (*last)->mod_revision);
}

TEST_F(EtcdClientTest, Leases) {
  auto lease = client_->GrantLease(30);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  ASSERT_TRUE(client_->Put("lease/k", "v", *lease).ok());
  auto kv = client_->Get("lease/k");
  ASSERT_TRUE(kv.ok() && kv->has_value());
  EXPECT_EQ((*kv)->lease, *lease);
  Status st = client_->KeepAliveOnce(*lease);
  EXPECT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE(client_->RevokeLease(*lease).ok());
  kv = client_->Get("lease/k");
  ASSERT_TRUE(kv.ok());
  EXPECT_FALSE(kv->has_value()) << "revoking a lease deletes its keys";
  EXPECT_EQ(client_->KeepAliveOnce(*lease).code(), StatusCode::kNotFound);
  EXPECT_EQ(client_->RevokeLease(*lease).code(), StatusCode::kNotFound);
}

TEST_F(EtcdClientTest, CallsFailWithAMessageNamingEtcdWhenItIsDown) {
  EtcdOptions o = Options();
  o.call_timeout_s = 2;
  auto short_client = EtcdClient::Connect(o);
  ASSERT_TRUE(short_client.ok());
  server_.Kill();
  auto start = std::chrono::steady_clock::now();
  Status st = (*short_client)->Put("down/k", "v");
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(4)) << "the call deadline bounds the retries";
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("etcd Put 'down/k' on " + server_.endpoint()), std::string::npos) << st.message();
}

TEST_F(EtcdClientTest, AuthWrongPasswordFailsRightPasswordWorks) {
  std::string out;
  ASSERT_EQ(server_.Etcdctl({"user", "add", "root", "--new-user-password=s3cret-pw"}, &out), 0) << out;
  ASSERT_EQ(server_.Etcdctl({"auth", "enable"}, &out), 0) << out;

  EtcdOptions o = Options();
  o.username = "root";
  o.password = "wrong-pw";
  auto bad = EtcdClient::Connect(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("authentication"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("'root'"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find(server_.endpoint()), std::string::npos) << bad.status().message();
  EXPECT_EQ(bad.status().message().find("wrong-pw"), std::string::npos) << "never echo a password";

  // Without credentials etcd answers, but refuses the data: the error says what is missing.
  Status anon = client_->Put("auth/k", "v");
  ASSERT_FALSE(anon.ok());
  EXPECT_NE(anon.message().find("authentication"), std::string::npos) << anon.message();

  o.password = "s3cret-pw";
  auto good = EtcdClient::Connect(o);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  auto& c = *good;
  ASSERT_TRUE(c->Put("auth/k", "v").ok());
  WatchRecorder rec;
  auto watch = c->WatchPrefix("auth/", 0, rec.OnEvents(), rec.OnError());
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  ASSERT_TRUE(c->Put("auth/k", "v2").ok());
  ASSERT_TRUE(WaitFor([&] { return rec.event_count() >= 1; }));

  // A restart forgets every (simple) token: calls and the watch re-authenticate by themselves.
  server_.Stop();
  ASSERT_EQ(server_.Start(), "");
  Status st = c->Put("auth/k", "v3");
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto got = c->Get("auth/k");
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status().ToString();
  EXPECT_EQ((*got)->value, "v3");
  ASSERT_TRUE(WaitFor([&] { return rec.event_count() >= 2; }, seconds(20)));
  (*watch)->Stop();
  auto ev = rec.events();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].kv.value, "v3");
  for (const auto& e : rec.errors()) {
    EXPECT_EQ(e.code(), StatusCode::kUnavailable) << e.ToString();
    EXPECT_EQ(e.message().find("s3cret-pw"), std::string::npos);
  }
}

}  // namespace
}  // namespace cdc::source
