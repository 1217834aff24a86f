// Pure tests of the Pulsar wire pieces: packed ids, Milvus id bytes, CRC32C, framing, batch
// parsing and ZSTD decompression. No I/O.
#include <zstd.h>

#include <gtest/gtest.h>

#include "source/pulsar/auth.h"
#include "source/pulsar/connection.h"
#include "source/pulsar/frame.h"
#include "source/pulsar/message.h"
#include "source/pulsar_id.h"

namespace cdc::source {
namespace {

namespace pb = cdc::pulsar;

std::string Hex(const std::string& s) {
  static const char* k = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (!out.empty()) out.push_back(' ');
    out.push_back(k[c >> 4]);
    out.push_back(k[c & 15]);
  }
  return out;
}

std::string Zstd(const std::string& in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 1);
  out.resize(n);
  return out;
}

// One batch slot: [u32 size][SingleMessageMetadata][payload].
std::string Slot(const std::string& payload, bool compacted_out = false) {
  pb::SingleMessageMetadata smm;
  smm.set_payload_size(static_cast<int>(payload.size()));
  if (compacted_out) smm.set_compacted_out(true);
  const std::string md = smm.SerializeAsString();
  std::string out;
  pulsar::PutU32(&out, static_cast<uint32_t>(md.size()));
  return out + md + payload;
}

TEST(PulsarId, PackOrdersLikeIdsAndPlusOneIsJustAfter) {
  auto a = PackPulsarId({12, 34, 0, 0});
  auto b = PackPulsarId({12, 34, 1, 0});
  auto c = PackPulsarId({12, 35, -1, 0});
  auto d = PackPulsarId({13, 0, 0, 0});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok());
  EXPECT_LT(*a, *b);
  EXPECT_LT(*b, *c);
  EXPECT_LT(*c, *d);
  EXPECT_EQ(*a + 1, *b);
  EXPECT_GE(*a, 0);
  const PulsarId u = UnpackPulsarId(*a);
  EXPECT_EQ(u.ledger, 12);
  EXPECT_EQ(u.entry, 34);
  EXPECT_EQ(u.batch_index, 0);
  EXPECT_EQ(UnpackPulsarId(*c).batch_index, 0);  // a non-batched id reads as batch 0
  auto max = PackPulsarId({(int64_t{1} << 32) - 1, (1 << 24) - 1, 127, 0});
  ASSERT_TRUE(max.ok());
  EXPECT_GT(*max, 0);
  EXPECT_EQ(UnpackPulsarId(*max).ledger, (int64_t{1} << 32) - 1);
}

TEST(PulsarId, RefusesIdsThatDoNotFitNamingThem) {
  auto big_ledger = PackPulsarId({int64_t{1} << 32, 0, 0, 0});
  ASSERT_FALSE(big_ledger.ok());
  EXPECT_NE(big_ledger.status().message().find("ledger 4294967296"), std::string::npos);
  EXPECT_FALSE(PackPulsarId({1, 1 << 24, 0, 0}).ok());
  EXPECT_FALSE(PackPulsarId({1, 2, 128, 0}).ok());
  EXPECT_FALSE(PackPulsarId({-1, -1, -1, 0}).ok());  // earliest is not an id
  EXPECT_FALSE(PackPulsarId({INT64_MAX, INT64_MAX, -1, 0}).ok());  // nor is latest
}

TEST(PulsarId, SerializesTheGoShapeMilvusStores) {
  EXPECT_EQ(Hex(SerializePulsarId({12, 34, 0, 0})), "08 0c 10 22 18 00 20 00");        // 2.3 / 2.4
  EXPECT_EQ(Hex(SerializePulsarId({12, 34, 0, 1})), "08 0c 10 22 18 00 20 00 30 01");  // 2.5
}

TEST(PulsarId, ParsesGoJavaAndSentinelIds) {
  const std::string go = std::string("\x08\x0c\x10\x22\x18\x00\x20\x00", 8);
  auto id = ParsePulsarId(go);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->ledger, 12);
  EXPECT_EQ(id->entry, 34);
  EXPECT_EQ(id->batch_index, 0);
  EXPECT_EQ(id->batch_size, 0);

  auto go25 = ParsePulsarId(go + std::string("\x30\x01", 2));
  ASSERT_TRUE(go25);
  EXPECT_EQ(go25->batch_size, 1);

  pb::MessageIdData java;  // partition -1, no batch_index
  java.set_ledgerid(12);
  java.set_entryid(34);
  java.set_partition(-1);
  auto j = ParsePulsarId(java.SerializeAsString());
  ASSERT_TRUE(j);
  EXPECT_EQ(j->batch_index, -1);
  EXPECT_EQ(*PackPulsarId(*j), *PackPulsarId(*id));  // same message, same offset

  pb::MessageIdData earliest;
  earliest.set_ledgerid(static_cast<uint64_t>(-1));
  earliest.set_entryid(static_cast<uint64_t>(-1));
  earliest.set_partition(-1);
  earliest.set_batch_index(-1);
  const std::string eb = earliest.SerializeAsString();
  EXPECT_EQ(eb.size(), 4u * 11);  // four fields, each -1 as a 10-byte varint
  auto e = ParsePulsarId(eb);
  ASSERT_TRUE(e);
  EXPECT_TRUE(IsEarliestPulsarId(*e));
  EXPECT_FALSE(IsLatestPulsarId(*e));

  pb::MessageIdData latest;
  latest.set_ledgerid(INT64_MAX);
  latest.set_entryid(INT64_MAX);
  auto l = ParsePulsarId(latest.SerializeAsString());
  ASSERT_TRUE(l);
  EXPECT_TRUE(IsLatestPulsarId(*l));
  EXPECT_FALSE(IsEarliestPulsarId(*id));

  EXPECT_FALSE(ParsePulsarId("garbage\xff"));
  EXPECT_FALSE(ParsePulsarId(std::string("\x08\x0c", 2)));  // no entry
}

TEST(PulsarFrame, Crc32cKnownVectors) {
  EXPECT_EQ(pulsar::Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(pulsar::Crc32c(""), 0u);
  EXPECT_EQ(pulsar::Crc32c(std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720 B.4
  EXPECT_EQ(pulsar::Crc32c("6789", pulsar::Crc32c("12345")), 0xE3069283u);  // incremental
}

TEST(PulsarFrame, SimpleCommandRoundTrip) {
  pb::BaseCommand cmd;
  cmd.set_type(pb::BaseCommand::FLOW);
  cmd.mutable_flow()->set_consumer_id(7);
  cmd.mutable_flow()->set_messagepermits(1000);
  const std::string frame = pulsar::EncodeCommand(cmd);
  ASSERT_EQ(pulsar::GetU32(frame.data()), frame.size() - 4);
  auto f = pulsar::DecodeFrame(std::string_view(frame).substr(4));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_FALSE(f->has_payload);
  EXPECT_EQ(f->command.type(), pb::BaseCommand::FLOW);
  EXPECT_EQ(f->command.flow().messagepermits(), 1000u);
}

TEST(PulsarFrame, UnknownCommandTypeStillParses) {
  // type 68 (TOPIC_MIGRATED) and a field we do not declare must not fail the parse.
  pb::BaseCommand cmd;
  cmd.set_type(pb::BaseCommand::TOPIC_MIGRATED);
  std::string bytes = cmd.SerializeAsString() + std::string("\xc2\x04\x00", 3);  // field 72, empty
  std::string frame;
  pulsar::PutU32(&frame, static_cast<uint32_t>(4 + bytes.size()));
  pulsar::PutU32(&frame, static_cast<uint32_t>(bytes.size()));
  frame += bytes;
  auto f = pulsar::DecodeFrame(std::string_view(frame).substr(4));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->command.type(), pb::BaseCommand::TOPIC_MIGRATED);
}

pb::BaseCommand MessageCommand(uint64_t ledger, uint64_t entry) {
  pb::BaseCommand cmd;
  cmd.set_type(pb::BaseCommand::MESSAGE);
  cmd.mutable_message()->set_consumer_id(1);
  cmd.mutable_message()->mutable_message_id()->set_ledgerid(ledger);
  cmd.mutable_message()->mutable_message_id()->set_entryid(entry);
  return cmd;
}

TEST(PulsarFrame, PayloadRoundTripAndCorruptionRejected) {
  pb::MessageMetadata md;
  md.set_producer_name("p");
  md.set_sequence_id(1);
  md.set_publish_time(1700000000123);
  const std::string frame = pulsar::EncodePayloadCommand(MessageCommand(5, 6), md, "hello");
  auto f = pulsar::DecodeFrame(std::string_view(frame).substr(4));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_TRUE(f->has_payload);
  EXPECT_EQ(f->payload, "hello");
  EXPECT_EQ(f->metadata.publish_time(), 1700000000123u);
  EXPECT_EQ(f->command.message().message_id().entryid(), 6u);

  std::string bad = frame;
  bad.back() ^= 0x01;
  auto b = pulsar::DecodeFrame(std::string_view(bad).substr(4));
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("CRC32C mismatch"), std::string::npos) << b.status().message();

  auto t = pulsar::DecodeFrame(std::string_view(frame).substr(4, frame.size() - 10));
  EXPECT_FALSE(t.ok());
}

TEST(PulsarFrame, BrokerEntryMetadataIsSkipped) {
  pb::MessageMetadata md;
  md.set_publish_time(1);
  const std::string plain = pulsar::EncodePayloadCommand(MessageCommand(1, 2), md, "x");
  const uint32_t cmd_size = pulsar::GetU32(plain.data() + 4);
  pb::BrokerEntryMetadata bem;
  bem.set_broker_timestamp(99);
  bem.set_index(3);
  const std::string bem_bytes = bem.SerializeAsString();
  std::string section("\x0e\x02", 2);
  pulsar::PutU32(&section, static_cast<uint32_t>(bem_bytes.size()));
  section += bem_bytes;
  std::string body = plain.substr(4, 4 + cmd_size) + section + plain.substr(8 + cmd_size);
  auto f = pulsar::DecodeFrame(body);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->payload, "x");
}

TEST(PulsarFrame, OversizedFrameRejected) {
  EXPECT_TRUE(pulsar::CheckFrameSize(1024, 1024).ok());
  Status st = pulsar::CheckFrameSize(1025, 1024);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("1025"), std::string::npos);
  EXPECT_FALSE(pulsar::CheckFrameSize(2, 1024).ok());
}

TEST(PulsarMessage, PlainMessage) {
  pb::MessageMetadata md;
  md.set_compression(pb::ZSTD);
  const std::string payload = std::string(1000, 'a') + "milvus";
  md.set_uncompressed_size(static_cast<uint32_t>(payload.size()));
  auto e = pulsar::DecodeEntry(md, Zstd(payload), 1 << 20);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  ASSERT_EQ(e->messages.size(), 1u);
  EXPECT_EQ(e->messages[0].batch_index, -1);
  EXPECT_EQ(e->messages[0].payload, payload);
  EXPECT_EQ(e->num_messages, 1);
}

TEST(PulsarMessage, BatchOfOneAsMilvus23Writes) {
  const std::string batch = Slot("request-proto");
  pb::MessageMetadata md;
  md.set_num_messages_in_batch(1);  // present, = 1
  md.set_compression(pb::ZSTD);
  md.set_uncompressed_size(static_cast<uint32_t>(batch.size()));
  auto e = pulsar::DecodeEntry(md, Zstd(batch), 1 << 20);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  ASSERT_EQ(e->messages.size(), 1u);
  EXPECT_EQ(e->messages[0].batch_index, 0);
  EXPECT_EQ(e->messages[0].payload, "request-proto");
}

TEST(PulsarMessage, BatchOfThreeSkipsCompactedOut) {
  const std::string batch = Slot("zero") + Slot("one", true) + Slot("two");
  pb::MessageMetadata md;
  md.set_num_messages_in_batch(3);
  auto e = pulsar::DecodeEntry(md, batch, 1 << 20);  // NONE
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->num_messages, 3);
  ASSERT_EQ(e->messages.size(), 2u);
  EXPECT_EQ(e->messages[0].batch_index, 0);
  EXPECT_EQ(e->messages[0].payload, "zero");
  EXPECT_EQ(e->messages[1].batch_index, 2);
  EXPECT_EQ(e->messages[1].payload, "two");

  md.set_num_messages_in_batch(4);  // one more than there is
  EXPECT_FALSE(pulsar::DecodeEntry(md, batch, 1 << 20).ok());
  md.set_num_messages_in_batch(3);
  EXPECT_FALSE(pulsar::DecodeEntry(md, batch.substr(0, batch.size() - 1), 1 << 20).ok());
}

TEST(PulsarMessage, ZstdRoundTripAndBadInputRejected) {
  const std::string data(50000, 'z');
  const std::string z = Zstd(data);
  auto ok = pulsar::Decompress(pb::ZSTD, z, static_cast<uint32_t>(data.size()), 1 << 20);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, data);
  EXPECT_FALSE(pulsar::Decompress(pb::ZSTD, z.substr(0, z.size() / 2), 50000, 1 << 20).ok());  // truncated
  EXPECT_FALSE(pulsar::Decompress(pb::ZSTD, "not zstd at all", 10, 1 << 20).ok());             // garbage
  EXPECT_FALSE(pulsar::Decompress(pb::ZSTD, z, 49999, 1 << 20).ok());                            // wrong size
  auto capped = pulsar::Decompress(pb::ZSTD, z, 50000, 1000);
  EXPECT_EQ(capped.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(pulsar::Decompress(pb::LZ4, "x", 1, 10).status().code(), StatusCode::kUnimplemented);
}

TEST(PulsarConnection, ParsesServiceUrls) {
  auto one = pulsar::ParseServiceUrl("pulsar://broker:6650");
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].host, "broker");
  EXPECT_EQ((*one)[0].port, 6650);
  EXPECT_FALSE((*one)[0].tls);
  auto many = pulsar::ParseServiceUrl("pulsar+ssl://a:1,b,[::1]:3/");
  ASSERT_TRUE(many.ok()) << many.status().ToString();
  ASSERT_EQ(many->size(), 3u);
  EXPECT_TRUE((*many)[1].tls);
  EXPECT_EQ((*many)[1].port, 6651);
  EXPECT_EQ((*many)[2].host, "::1");
  EXPECT_EQ((*many)[2].port, 3);
  EXPECT_FALSE(pulsar::ParseServiceUrl("http://x:1").ok());
  EXPECT_FALSE(pulsar::ParseServiceUrl("pulsar://x:99999").ok());
  EXPECT_FALSE(pulsar::ParseServiceUrl("pulsar://").ok());
}

TEST(PulsarAuth, TokenAndBasicForms) {
  EXPECT_EQ(pulsar::ResolveAuth("token", "token:abc")->data, "abc");
  EXPECT_EQ(pulsar::ResolveAuth("org.apache.pulsar.client.impl.auth.AuthenticationToken", "{\"token\":\"j\"}")->data, "j");
  EXPECT_EQ(pulsar::ResolveAuth("token", "bare")->method, "token");
  EXPECT_EQ(pulsar::ResolveAuth("basic", "userId:u,password:p:w")->data, "u:p:w");
  EXPECT_EQ(pulsar::ResolveAuth("", "")->method, "");
  auto missing = pulsar::ResolveAuth("token", "file:/nonexistent/token");
  EXPECT_FALSE(missing.ok());
  auto bad = pulsar::ResolveAuth("oauth2", "secret-value");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("secret-value"), std::string::npos);
}

}  // namespace
}  // namespace cdc::source
