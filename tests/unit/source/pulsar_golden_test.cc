// Golden MESSAGE frames captured from a real Pulsar 4.0 broker carrying what Milvus 2.3.5 wrote
// (tests/testdata/pulsar/milvus-2.3.5-dml.hex: one frame body per line, as hex, captured by
// pulsar_real_broker_test.cc CaptureFrames). They pin the shape the reader must decode: a batch
// of one (num_messages_in_batch present, = 1), ZSTD, and a payload that is a Milvus request.
#include <gtest/gtest.h>

#include <fstream>

#include "decode/decoder.h"
#include "source/pulsar/frame.h"
#include "source/pulsar/message.h"
#include "source/pulsar_id.h"

namespace cdc::source {
namespace {

namespace pb = cdc::pulsar;

std::vector<std::string> LoadFrames() {
  std::ifstream in(std::string(CDC_TESTDATA_DIR) + "/pulsar/milvus-2.3.5-dml.hex");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    std::string bytes;
    for (size_t i = 0; i + 1 < line.size(); i += 2) bytes.push_back(static_cast<char>(std::stoi(line.substr(i, 2), nullptr, 16)));
    out.push_back(bytes);
  }
  return out;
}

TEST(PulsarGolden, Milvus235FramesDecode) {
  const auto frames = LoadFrames();
  ASSERT_EQ(frames.size(), 3u);
  const int64_t want_entries[] = {0, 3, 4};
  const int32_t want_types[] = {100, 1200, 1200};  // CreateCollection, TimeTick, TimeTick
  for (size_t i = 0; i < frames.size(); ++i) {
    auto f = pulsar::DecodeFrame(frames[i]);  // CRC32C checked here
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_EQ(f->command.type(), pb::BaseCommand::MESSAGE);
    ASSERT_TRUE(f->has_payload);
    const auto& id = f->command.message().message_id();
    EXPECT_EQ(id.ledgerid(), 5u);
    EXPECT_EQ(static_cast<int64_t>(id.entryid()), want_entries[i]);
    EXPECT_EQ(f->metadata.compression(), pb::ZSTD);
    EXPECT_TRUE(f->metadata.has_num_messages_in_batch());  // 2.3: a batch of one
    EXPECT_EQ(f->metadata.num_messages_in_batch(), 1);
    EXPECT_GT(f->metadata.publish_time(), 1'600'000'000'000u);
    auto e = pulsar::DecodeEntry(f->metadata, f->payload, 1 << 20);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    ASSERT_EQ(e->messages.size(), 1u);
    EXPECT_EQ(e->messages[0].batch_index, 0);
    const int64_t offset = *PackPulsarId({5, static_cast<int64_t>(id.entryid()), 0, 0});
    auto ev = decode::DecodeMessage(e->messages[0].payload, {"cdcsrc-rootcoord-dml_0", offset, 0});
    ASSERT_TRUE(ev.ok()) << ev.status().ToString();
    EXPECT_EQ(ev->msg_type, want_types[i]) << "frame " << i;
    EXPECT_EQ(ev->position.offset, offset);
    // The position Milvus stores for this message (Go shape, 8 bytes).
    EXPECT_EQ(SerializePulsarId({5, static_cast<int64_t>(id.entryid()), 0, 0}).size(), 8u);
  }
}

}  // namespace
}  // namespace cdc::source
