// KafkaChannelReader against the test bed's real Kafka (KAFKA_BROKERS from
// `scripts/testbed.sh env`; skipped when unset): a fresh topic per test, produced with
// librdkafka (zstd, like Milvus), read from earliest, latest and an exact offset. The
// unreachable-broker and config cases need no broker.
#include "source/kafka_reader.h"

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cdc::source {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

std::string Brokers() {
  const char* b = std::getenv("KAFKA_BROKERS");
  return b ? b : "";
}

std::string FreshTopic() {
  std::random_device rd;
  return "cdc-unit-reader-" + std::to_string(rd()) + std::to_string(rd());
}

// Produces `payloads` to partition 0 of `topic` and waits until they are acknowledged.
void Produce(const std::string& topic, const std::vector<std::string>& payloads) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  ASSERT_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", Brokers().c_str(), err, sizeof(err)), RD_KAFKA_CONF_OK);
  ASSERT_EQ(rd_kafka_conf_set(conf, "compression.codec", "zstd", err, sizeof(err)), RD_KAFKA_CONF_OK);
  ASSERT_EQ(rd_kafka_conf_set(conf, "message.max.bytes", "10485760", err, sizeof(err)), RD_KAFKA_CONF_OK);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  ASSERT_NE(rk, nullptr) << err;
  for (const auto& p : payloads) {
    rd_kafka_resp_err_t e =
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_VALUE(const_cast<char*>(p.data()), p.size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    ASSERT_EQ(e, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(e);
  }
  ASSERT_EQ(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(rk);
}

KafkaReaderConfig Config() {
  KafkaReaderConfig c;
  c.bootstrap_servers = Brokers();
  return c;
}

// Polls until `n` messages arrived or the deadline passed.
std::vector<RawMessage> ReadN(KafkaChannelReader& r, size_t n, std::chrono::seconds deadline = std::chrono::seconds(30)) {
  std::vector<RawMessage> out;
  auto end = Clock::now() + deadline;
  while (out.size() < n && Clock::now() < end) {
    auto m = r.Poll(200);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (!m.ok()) break;
    if (m->has_value()) out.push_back(std::move(**m));
  }
  return out;
}

class KafkaReaderBedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Brokers().empty()) GTEST_SKIP() << "KAFKA_BROKERS is not set (see scripts/testbed.sh env)";
  }
};

TEST_F(KafkaReaderBedTest, ReadsFromEarliestLatestAndAnExactOffset) {
  const std::string topic = FreshTopic();
  std::vector<std::string> first = {"m0", "m1", std::string("\0bin\xff", 5), "m3", "m4"};
  Produce(topic, first);

  auto earliest = KafkaChannelReader::Open(Config(), topic, StartAt::Earliest());
  ASSERT_TRUE(earliest.ok()) << earliest.status().ToString();
  auto got = ReadN(**earliest, first.size());
  ASSERT_EQ(got.size(), first.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].topic, topic);
    EXPECT_EQ(got[i].offset, static_cast<int64_t>(i));
    EXPECT_EQ(got[i].payload, first[i]);
    EXPECT_GT(got[i].timestamp_ms, 0);
  }
  EXPECT_EQ((*earliest)->next_offset(), 5);
  // End of partition is not an error, just nothing.
  auto none = (*earliest)->Poll(300);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto hw = (*earliest)->HighWatermark();
  ASSERT_TRUE(hw.ok()) << hw.status().ToString();
  EXPECT_EQ(*hw, 5);
  EXPECT_EQ((*earliest)->last_error(), "");
  EXPECT_LT((*earliest)->SinceLastContact(), std::chrono::seconds(5));

  auto latest = KafkaChannelReader::Open(Config(), topic, StartAt::Latest());
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  EXPECT_EQ((*latest)->next_offset(), 5) << "latest = the next message to be produced";
  auto exact = KafkaChannelReader::Open(Config(), topic, StartAt::Offset(3));
  ASSERT_TRUE(exact.ok());

  Produce(topic, {"m5"});
  got = ReadN(**latest, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].offset, 5);
  EXPECT_EQ(got[0].payload, "m5");

  got = ReadN(**exact, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].offset, 3);
  EXPECT_EQ(got[0].payload, "m3");
  EXPECT_EQ(got[2].offset, 5);

  auto wm = (*exact)->QueryWatermarks();
  ASSERT_TRUE(wm.ok());
  EXPECT_EQ(wm->low, 0);
  EXPECT_EQ(wm->high, 6);

  (*exact)->Close();
  (*exact)->Close();  // idempotent
  EXPECT_EQ((*exact)->Poll(10).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(KafkaReaderBedTest, ReadsAMessageOfNineMebibytes) {
  const std::string topic = FreshTopic();
  std::string big(9 << 20, '\0');
  std::mt19937_64 gen(7);  // incompressible, so the record stays large after zstd
  for (size_t i = 0; i + 8 <= big.size(); i += 8) {
    uint64_t v = gen();
    std::memcpy(&big[i], &v, 8);
  }
  Produce(topic, {big, "after"});
  auto r = KafkaChannelReader::Open(Config(), topic, StartAt::Offset(0));
  ASSERT_TRUE(r.ok());
  auto got = ReadN(**r, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload.size(), big.size());
  EXPECT_TRUE(got[0].payload == big);
  EXPECT_EQ(got[1].payload, "after");
}

// A consumer slower than Kafka: librdkafka's queue fills and its fetcher parks (for up to a
// second before librdkafka 2.1). Poll wakes it, and the backlog still arrives whole and in order.
TEST_F(KafkaReaderBedTest, ReadsABacklogLargerThanItsQueueWholeAndInOrder) {
  const std::string topic = FreshTopic();
  std::mt19937_64 gen(11);
  std::vector<std::string> sent;
  for (int i = 0; i < 120; ++i) {
    std::string p(32 << 10, '\0');  // incompressible: the queue limit counts real bytes
    for (size_t j = 0; j + 8 <= p.size(); j += 8) {
      uint64_t v = gen();
      std::memcpy(&p[j], &v, 8);
    }
    sent.push_back(std::to_string(i) + ":" + p);
  }
  Produce(topic, sent);
  KafkaReaderConfig c = Config();
  c.properties = {{"queued.max.messages.kbytes", "64"},
                  {"max.partition.fetch.bytes", "65536"},
                  {"fetch.max.bytes", "1048576"}};  // librdkafka: >= message.max.bytes
  auto r = KafkaChannelReader::Open(c, topic, StartAt::Offset(0));
  ASSERT_TRUE(r.ok()) << r.status().ToString();

  std::vector<RawMessage> got;
  auto end = Clock::now() + std::chrono::seconds(60);
  while (got.size() < sent.size() && Clock::now() < end) {
    auto m = (*r)->Poll(200);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    if (!m->has_value()) continue;
    got.push_back(std::move(**m));
    if (got.size() % 10 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the queue fills
  }
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].offset, static_cast<int64_t>(i));
    EXPECT_TRUE(got[i].payload == sent[i]) << "message " << i << " differs";
  }
  EXPECT_GT((*r)->fetcher_wakeups(), 0u);
}

TEST_F(KafkaReaderBedTest, TopicThatDoesNotExistYetStartsAtZero) {
  const std::string topic = FreshTopic();
  auto r = KafkaChannelReader::Open(Config(), topic, StartAt::Latest());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->next_offset(), 0);
  auto hw = (*r)->HighWatermark();
  ASSERT_TRUE(hw.ok());
  EXPECT_EQ(*hw, 0);
  Produce(topic, {"first"});
  auto got = ReadN(**r, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].offset, 0);
}

TEST_F(KafkaReaderBedTest, OffsetPastTheEndIsAnError) {
  const std::string topic = FreshTopic();
  Produce(topic, {"a", "b"});
  auto r = KafkaChannelReader::Open(Config(), topic, StartAt::Offset(100));
  ASSERT_TRUE(r.ok());
  Status err;
  auto end = Clock::now() + std::chrono::seconds(30);
  while (err.ok() && Clock::now() < end) {
    auto m = (*r)->Poll(200);
    if (!m.ok()) {
      err = m.status();
    } else {
      EXPECT_FALSE(m->has_value());
    }
  }
  ASSERT_FALSE(err.ok()) << "no out-of-range error within 30 s";
  EXPECT_EQ(err.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(err.message(), HasSubstr(topic));
  EXPECT_THAT(err.message(), HasSubstr("out of range"));
}

// ---- no broker needed

TEST(KafkaReaderTest, UnreachableBrokerShowsAsGrowingSilenceWithACause) {
  KafkaReaderConfig c;
  c.bootstrap_servers = "127.0.0.1:1";  // nothing listens on port 1
  c.probe_interval = std::chrono::milliseconds(100);
  c.probe_timeout = std::chrono::milliseconds(100);
  c.metadata_timeout = std::chrono::milliseconds(500);
  auto latest = KafkaChannelReader::Open(c, "t", StartAt::Latest());
  ASSERT_FALSE(latest.ok());
  EXPECT_EQ(latest.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(latest.status().message(), HasSubstr("127.0.0.1:1"));

  auto r = KafkaChannelReader::Open(c, "t", StartAt::Earliest());  // needs no broker yet
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto end = Clock::now() + std::chrono::seconds(20);
  while (!(*r)->UnreachableFor(std::chrono::milliseconds(800)) && Clock::now() < end) {
    auto m = (*r)->Poll(100);
    ASSERT_TRUE(m.ok()) << "an outage is not an error: " << m.status().ToString();
    EXPECT_FALSE(m->has_value());
  }
  EXPECT_TRUE((*r)->UnreachableFor(std::chrono::milliseconds(800)));
  EXPECT_NE((*r)->last_error(), "");
  EXPECT_EQ((*r)->next_offset(), -1);
}

TEST(KafkaReaderTest, RejectsBadConfig) {
  KafkaReaderConfig c;
  EXPECT_EQ(KafkaChannelReader::Open(c, "t", StartAt::Earliest()).status().code(), StatusCode::kInvalidArgument);
  c.bootstrap_servers = "127.0.0.1:1";
  EXPECT_EQ(KafkaChannelReader::Open(c, "", StartAt::Earliest()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(KafkaChannelReader::Open(c, "t", StartAt::Offset(-2)).status().code(), StatusCode::kInvalidArgument);

  c.properties["receive.message.max.bytes"] = "1000000";
  auto r = KafkaChannelReader::Open(c, "t", StartAt::Earliest());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("10 MiB"));
  c.properties = {{"max.partition.fetch.bytes", "1MB"}};
  r = KafkaChannelReader::Open(c, "t", StartAt::Earliest());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("max.partition.fetch.bytes='1MB' is not a number"));

  c.properties = {{"no.such.property", "1"}};
  r = KafkaChannelReader::Open(c, "t", StartAt::Earliest());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("no.such.property"));

  c.properties.clear();
  c.sasl = KafkaSaslConfig{};
  EXPECT_EQ(KafkaChannelReader::Open(c, "t", StartAt::Earliest()).status().code(), StatusCode::kInvalidArgument);
  c.sasl->username = "u";
  c.sasl->password = "secret-pw";
  c.sasl->mechanisms = "NOT-A-MECHANISM";
  r = KafkaChannelReader::Open(c, "t", StartAt::Earliest());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), ::testing::Not(HasSubstr("secret-pw")));

  c.sasl->mechanisms = "PLAIN";
  r = KafkaChannelReader::Open(c, "t", StartAt::Earliest());  // valid: connects lazily
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

}  // namespace
}  // namespace cdc::source
