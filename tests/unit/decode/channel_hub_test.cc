// ChannelHub against the test bed's real Kafka (KAFKA_BROKERS; skipped without it): a captured
// DML channel of Milvus 2.3 is produced to a fresh topic in two halves; tasks that start at its
// beginning read the first half on their own, join the one shared reader, and every task gets
// exactly the packs one reader of its own would have made. A task that stops taking packs falls
// behind, reads on its own, and still gets them all, in order.
#include "source/channel_hub.h"

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include "corpus.h"
#include "decode/decoder.h"
#include "decode/pack_assembler.h"

namespace cdc::source {
namespace {

using Clock = std::chrono::steady_clock;

std::string Brokers() {
  const char* b = std::getenv("KAFKA_BROKERS");
  return b ? b : "";
}

void Produce(const std::string& topic, const std::vector<std::string>& payloads) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  ASSERT_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", Brokers().c_str(), err, sizeof(err)), RD_KAFKA_CONF_OK);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  ASSERT_NE(rk, nullptr) << err;
  for (const auto& p : payloads) {
    ASSERT_EQ(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_VALUE(const_cast<char*>(p.data()), p.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ASSERT_EQ(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(rk);
}

// A closed pack as a comparable line: its ticks, end position and message offsets.
std::string Describe(const decode::Pack& p) {
  std::string s = std::to_string(p.begin_ts) + ".." + std::to_string(p.end_ts) + " @" +
                  std::to_string(p.end_position.offset) + ":";
  for (const auto& e : p.events) s += " " + std::to_string(e.position.offset);
  return s;
}

class ChannelHubBedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Brokers().empty()) GTEST_SKIP() << "KAFKA_BROKERS is not set (see scripts/testbed.sh env)";
    auto corpus = decode::testdata::LoadCorpus(decode::testdata::Bed23Dir());
    ASSERT_TRUE(corpus.ok()) << corpus.status().ToString();
    // The busiest DML channel.
    for (const auto& ch : corpus->dml_channels) {
      const auto& msgs = corpus->messages.at(ch);
      if (msgs.size() > payloads_.size()) {
        payloads_.clear();
        for (const auto& m : msgs) payloads_.push_back(m.bytes);
      }
    }
    ASSERT_GT(payloads_.size(), 20u);
    std::random_device rd;
    topic_ = "cdc-unit-hub-" + std::to_string(rd()) + std::to_string(rd());
    // What one reader of its own makes of the whole channel.
    decode::PackAssembler a(topic_);
    for (size_t i = 0; i < payloads_.size(); ++i) {
      auto ev = decode::DecodeMessage(payloads_[i], decode::Position{topic_, static_cast<int64_t>(i), 0});
      ASSERT_TRUE(ev.ok());
      auto pack = a.Add(std::move(ev).value());
      ASSERT_TRUE(pack.ok());
      if (*pack) expected_.push_back(Describe(**pack));
    }
    ASSERT_GT(expected_.size(), 4u);
  }

  ChannelReaderOptions Own() const {
    ChannelReaderOptions o;
    o.mq.kafka.bootstrap_servers = Brokers();
    o.topic = topic_;
    o.start = StartAt::Offset(0);
    return o;
  }

  // Takes closed packs from `src` until `n` arrived or 60 s passed.
  static void Take(PackSource& src, std::vector<std::string>* got, size_t n) {
    const auto end = Clock::now() + std::chrono::seconds(60);
    while (got->size() < n && Clock::now() < end) {
      const decode::Pack* p = src.Peek();
      if (!p) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      if (!p->open) got->push_back(Describe(*p));
      src.Pop();
    }
  }

  std::string topic_;
  std::vector<std::string> payloads_;
  std::vector<std::string> expected_;
};

TEST_F(ChannelHubBedTest, TasksJoinTheSharedReaderAndGetEveryPackOnce) {
  const size_t half = payloads_.size() / 2;
  Produce(topic_, std::vector<std::string>(payloads_.begin(), payloads_.begin() + half));
  ChannelHub hub;
  auto a = hub.Subscribe(Own(), nullptr);
  auto b = hub.Subscribe(Own(), nullptr);
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(b->Start().ok());
  EXPECT_EQ(hub.shared_readers(), 1u) << "one shared reader for the channel";
  std::vector<std::string> got_a, got_b;
  // The second half comes while both read: they catch up and join.
  std::thread producer([&] {
    for (size_t i = half; i < payloads_.size(); i += 4) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      Produce(topic_, std::vector<std::string>(payloads_.begin() + i,
                                               payloads_.begin() + std::min(payloads_.size(), i + 4)));
    }
  });
  std::thread reader_b([&] { Take(*b, &got_b, expected_.size()); });
  Take(*a, &got_a, expected_.size());
  reader_b.join();
  producer.join();
  EXPECT_EQ(got_a, expected_);
  EXPECT_EQ(got_b, expected_);
  EXPECT_GE(hub.joins(), 2u) << "both tasks should have joined the shared reader";
  a->Stop();
  b->Stop();
  EXPECT_EQ(hub.shared_readers(), 0u) << "the last subscription stops the shared reader";
}

TEST_F(ChannelHubBedTest, ATaskThatStopsTakingFallsBehindReadsOnItsOwnAndMissesNothing) {
  ChannelHub::Options small;
  small.queue_packs = 2;  // the shared reader's queue per task
  ChannelHub hub(small);
  auto fast = hub.Subscribe(Own(), nullptr);
  auto slow = hub.Subscribe(Own(), nullptr);
  ASSERT_TRUE(fast->Start().ok());
  ASSERT_TRUE(slow->Start().ok());
  std::vector<std::string> got_fast, got_slow;
  std::thread producer([&] {
    for (size_t i = 0; i < payloads_.size(); i += 2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      Produce(topic_, std::vector<std::string>(payloads_.begin() + i,
                                               payloads_.begin() + std::min(payloads_.size(), i + 2)));
    }
  });
  // `slow` takes two packs, then nothing until the writer is done.
  Take(*slow, &got_slow, 2);
  Take(*fast, &got_fast, expected_.size());
  producer.join();
  Take(*slow, &got_slow, expected_.size());
  EXPECT_EQ(got_fast, expected_);
  EXPECT_EQ(got_slow, expected_);
  EXPECT_GE(hub.fallbacks(), 1u) << "the slow task should have fallen behind the shared reader";
}

}  // namespace
}  // namespace cdc::source
