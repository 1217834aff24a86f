// PulsarChannelReader against a real Pulsar (skipped unless PULSAR_URL is set) reading a channel
// Milvus writes (PULSAR_CHANNEL, e.g. by-dev-rootcoord-dml_0: time ticks arrive every 200 ms).
// With PULSAR_CAPTURE_FILE set, CaptureFrames also writes the first three small MESSAGE frames of
// that channel as hex (one frame body per line) for the golden test (pulsar_golden_test.cc).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include <zstd.h>

#include "decode/decoder.h"
#include "source/pulsar/connection.h"
#include "source/pulsar/frame.h"
#include "source/pulsar_id.h"
#include "source/pulsar_reader.h"

namespace cdc::source {
namespace {

namespace pb = cdc::pulsar;
using Clock = std::chrono::steady_clock;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

PulsarReaderConfig Config() {
  PulsarReaderConfig c;
  c.service_url = Env("PULSAR_URL");
  c.operation_timeout = std::chrono::milliseconds(10'000);
  return c;
}

std::vector<RawMessage> ReadN(PulsarChannelReader& r, size_t n, std::chrono::seconds within) {
  std::vector<RawMessage> out;
  const auto deadline = Clock::now() + within;
  while (out.size() < n && Clock::now() < deadline) {
    auto m = r.Poll(200);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (!m.ok()) break;
    if (*m) out.push_back(std::move(**m));
  }
  return out;
}

// A minimal test-only producer (PRODUCER + SEND, ZSTD, not batched: Milvus 2.5's shape) on a
// standalone broker that owns every topic (no lookup).
void Produce(const std::string& topic, const std::vector<std::string>& payloads) {
  auto eps = pulsar::ParseServiceUrl(Env("PULSAR_URL"));
  ASSERT_TRUE(eps.ok());
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  auto conn = pulsar::Connection::Dial(eps->front(), {}, deadline);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  auto roundtrip = [&](const std::string& frame, pb::BaseCommand::Type want) {
    EXPECT_TRUE((*conn)->Send(frame, deadline).ok());
    for (;;) {
      auto body = (*conn)->ReadFrame(deadline, 8 << 20);
      if (!body.ok() || !*body) return pb::BaseCommand();
      auto f = pulsar::DecodeFrame(**body);
      if (f.ok() && (f->command.type() == want || f->command.type() == pb::BaseCommand::ERROR ||
                     f->command.type() == pb::BaseCommand::SEND_ERROR)) {
        return f->command;
      }
    }
  };
  pb::BaseCommand c;
  c.set_type(pb::BaseCommand::CONNECT);
  c.mutable_connect()->set_client_version("milvus-cdc-test-producer");
  c.mutable_connect()->set_protocol_version(18);
  ASSERT_EQ(roundtrip(pulsar::EncodeCommand(c), pb::BaseCommand::CONNECTED).type(), pb::BaseCommand::CONNECTED);
  c.Clear();
  c.set_type(pb::BaseCommand::PRODUCER);
  c.mutable_producer()->set_topic(topic);
  c.mutable_producer()->set_producer_id(1);
  c.mutable_producer()->set_request_id(1);
  const pb::BaseCommand ok = roundtrip(pulsar::EncodeCommand(c), pb::BaseCommand::PRODUCER_SUCCESS);
  ASSERT_EQ(ok.type(), pb::BaseCommand::PRODUCER_SUCCESS) << ok.DebugString();
  for (size_t i = 0; i < payloads.size(); ++i) {
    c.Clear();
    c.set_type(pb::BaseCommand::SEND);
    c.mutable_send()->set_producer_id(1);
    c.mutable_send()->set_sequence_id(i);
    c.mutable_send()->set_num_messages(1);
    pb::MessageMetadata md;
    md.set_producer_name(ok.producer_success().producer_name());
    md.set_sequence_id(i);
    md.set_publish_time(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count()));
    std::string z(ZSTD_compressBound(payloads[i].size()), '\0');
    z.resize(ZSTD_compress(z.data(), z.size(), payloads[i].data(), payloads[i].size(), 1));
    md.set_compression(pb::ZSTD);
    md.set_uncompressed_size(static_cast<uint32_t>(payloads[i].size()));
    const pb::BaseCommand r = roundtrip(pulsar::EncodePayloadCommand(c, md, z), pb::BaseCommand::SEND_RECEIPT);
    ASSERT_EQ(r.type(), pb::BaseCommand::SEND_RECEIPT) << r.DebugString();
  }
}

class PulsarRealBroker : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Env("PULSAR_URL").empty() || Env("PULSAR_CHANNEL").empty()) {
      GTEST_SKIP() << "PULSAR_URL and PULSAR_CHANNEL are not set (a real Pulsar and a Milvus channel on it)";
    }
  }
};

TEST_F(PulsarRealBroker, ReadsMilvusChannelWithInclusiveStarts) {
  const std::string channel = Env("PULSAR_CHANNEL");
  auto r = PulsarChannelReader::Open(Config(), channel, StartAt::Earliest());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto msgs = ReadN(**r, 5, std::chrono::seconds(20));
  ASSERT_EQ(msgs.size(), 5u);
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (i > 0) {
      EXPECT_GT(msgs[i].offset, msgs[i - 1].offset);
    }
    EXPECT_GT(msgs[i].timestamp_ms, 1'600'000'000'000);
    auto ev = decode::DecodeMessage(msgs[i].payload, {channel, msgs[i].offset, 0});
    EXPECT_TRUE(ev.ok()) << ev.status().ToString();
  }
  auto hw = (*r)->HighWatermark(10'000);
  ASSERT_TRUE(hw.ok()) << hw.status().ToString();
  EXPECT_GT(*hw, msgs.back().offset);

  // Inclusive start at a message, and "just after" it.
  auto at = PulsarChannelReader::Open(Config(), channel, StartAt::Offset(msgs[2].offset));
  ASSERT_TRUE(at.ok()) << at.status().ToString();
  auto got = ReadN(**at, 1, std::chrono::seconds(20));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].offset, msgs[2].offset);
  EXPECT_EQ(got[0].payload, msgs[2].payload);
  auto after = PulsarChannelReader::Open(Config(), channel, StartAt::Offset(msgs[2].offset + 1));
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  got = ReadN(**after, 1, std::chrono::seconds(20));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].offset, msgs[3].offset);

}

TEST_F(PulsarRealBroker, PositionBeforeTheFirstLedgerIsAGap) {
  const std::string channel = Env("PULSAR_CHANNEL");
  auto r = PulsarChannelReader::Open(Config(), channel, StartAt::Earliest());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto first = ReadN(**r, 1, std::chrono::seconds(20));
  ASSERT_EQ(first.size(), 1u);
  const PulsarId id = UnpackPulsarId(first[0].offset);
  if (id.ledger == 0) GTEST_SKIP() << "the topic starts at ledger 0";
  const int64_t gone = *PackPulsarId({id.ledger - 1, 0, 0, 0});  // not in this topic (or trimmed)
  auto g = PulsarChannelReader::Open(Config(), channel, StartAt::Offset(gone));
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  StatusOr<std::optional<RawMessage>> m = std::optional<RawMessage>();
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (m.ok() && !*m && Clock::now() < deadline) m = (*g)->Poll(200);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(m.status().message().find("is gone"), std::string::npos) << m.status().message();
}

TEST(PulsarRealBrokerProduced, LatestEarliestAndOffsetsOnAFreshTopic) {
  if (Env("PULSAR_URL").empty()) GTEST_SKIP() << "PULSAR_URL is not set";
  std::random_device rd;
  const std::string channel = "cdc-unit-pulsar-" + std::to_string(rd()) + std::to_string(rd());
  auto latest = PulsarChannelReader::Open(Config(), channel, StartAt::Latest());  // creates the topic
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  Produce("persistent://public/default/" + channel, {"a", "bb", "ccc"});
  auto got = ReadN(**latest, 3, std::chrono::seconds(20));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].payload, "a");
  EXPECT_EQ(got[2].payload, "ccc");
  EXPECT_EQ(got[0].topic, channel);
  EXPECT_LT(got[0].offset, got[1].offset);
  auto hw = (*latest)->HighWatermark(10'000);
  ASSERT_TRUE(hw.ok()) << hw.status().ToString();
  EXPECT_EQ(*hw, got[2].offset + 1);
  EXPECT_EQ((*latest)->next_offset(), got[2].offset + 1);

  auto earliest = PulsarChannelReader::Open(Config(), channel, StartAt::Earliest());
  ASSERT_TRUE(earliest.ok()) << earliest.status().ToString();
  auto all = ReadN(**earliest, 3, std::chrono::seconds(20));
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].offset, got[1].offset);
  auto at = PulsarChannelReader::Open(Config(), channel, StartAt::Offset(got[1].offset));
  ASSERT_TRUE(at.ok()) << at.status().ToString();
  auto from = ReadN(**at, 2, std::chrono::seconds(20));
  ASSERT_EQ(from.size(), 2u);
  EXPECT_EQ(from[0].payload, "bb");
  EXPECT_EQ(from[1].payload, "ccc");
  auto none = (*at)->Poll(300);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);
}

// Reads raw MESSAGE frames with the wire pieces only (no reader) and writes them as hex.
TEST_F(PulsarRealBroker, CaptureFrames) {
  const std::string file = Env("PULSAR_CAPTURE_FILE");
  if (file.empty()) GTEST_SKIP() << "PULSAR_CAPTURE_FILE is not set";
  auto eps = pulsar::ParseServiceUrl(Env("PULSAR_URL"));
  ASSERT_TRUE(eps.ok());
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  auto conn = pulsar::Connection::Dial(eps->front(), {}, deadline);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  auto send = [&](const pb::BaseCommand& c) { ASSERT_TRUE((*conn)->Send(pulsar::EncodeCommand(c), deadline).ok()); };
  auto next = [&]() {
    auto body = (*conn)->ReadFrame(deadline, 8 << 20);
    EXPECT_TRUE(body.ok() && *body);
    return body.ok() && *body ? **body : std::string();
  };
  pb::BaseCommand c;
  c.set_type(pb::BaseCommand::CONNECT);
  c.mutable_connect()->set_client_version("milvus-cdc-capture");
  c.mutable_connect()->set_protocol_version(18);
  send(c);
  ASSERT_EQ(pulsar::DecodeFrame(next())->command.type(), pb::BaseCommand::CONNECTED);
  c.Clear();
  c.set_type(pb::BaseCommand::SUBSCRIBE);  // a standalone broker owns every topic: no lookup
  auto* s = c.mutable_subscribe();
  s->set_topic("persistent://public/default/" + Env("PULSAR_CHANNEL"));
  s->set_subscription("milvus-cdc-capture");
  s->set_subtype(pb::CommandSubscribe::Exclusive);
  s->set_consumer_id(1);
  s->set_request_id(1);
  s->set_durable(false);
  s->set_initialposition(pb::CommandSubscribe::Earliest);
  send(c);
  ASSERT_EQ(pulsar::DecodeFrame(next())->command.type(), pb::BaseCommand::SUCCESS);
  c.Clear();
  c.set_type(pb::BaseCommand::FLOW);
  c.mutable_flow()->set_consumer_id(1);
  c.mutable_flow()->set_messagepermits(1000);
  send(c);
  std::ofstream out(file);
  int n = 0;
  while (n < 3 && Clock::now() < deadline) {
    const std::string body = next();
    if (body.empty()) break;
    if (pulsar::DecodeFrame(body)->command.type() != pb::BaseCommand::MESSAGE) continue;
    if (body.size() > 2048) continue;  // keep the golden file small (time ticks, small DDL)
    static const char* k = "0123456789abcdef";
    for (unsigned char b : body) out << k[b >> 4] << k[b & 15];
    out << "\n";
    ++n;
  }
  EXPECT_EQ(n, 3);
}

}  // namespace
}  // namespace cdc::source

namespace cdc::source {
namespace {

// A task pins the end of a channel whose only entry is a collection's creation, and resumes
// "just after" it: what is written later must arrive.
TEST(PulsarRealBrokerProduced, JustAfterTheLastEntryReadsWhatComesLater) {
  if (Env("PULSAR_URL").empty()) GTEST_SKIP() << "PULSAR_URL is not set";
  std::random_device rd;
  const std::string channel = "cdc-unit-pulsar-" + std::to_string(rd()) + std::to_string(rd());
  Produce("persistent://public/default/" + channel, {"first"});
  auto pin = PulsarChannelReader::Open(Config(), channel, StartAt::Latest());
  ASSERT_TRUE(pin.ok()) << pin.status().ToString();
  auto hw = (*pin)->HighWatermark(10'000);
  ASSERT_TRUE(hw.ok()) << hw.status().ToString();
  (*pin)->Close();
  auto after = PulsarChannelReader::Open(Config(), channel, StartAt::Offset(*hw));
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  auto none = (*after)->Poll(500);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(*none);
  Produce("persistent://public/default/" + channel, {"second", "third"});
  auto got = ReadN(**after, 2, std::chrono::seconds(20));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload, "second");
  EXPECT_EQ(got[1].payload, "third");
  EXPECT_GT(got[0].offset, *hw - 1);
}

}  // namespace
}  // namespace cdc::source
