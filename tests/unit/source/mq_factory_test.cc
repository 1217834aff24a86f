// The queue the pipeline reads: chosen from sourceConfig, and Milvus's stored msgIDs as offsets.
#include <gtest/gtest.h>

#include "source/mq_factory.h"
#include "source/pulsar_id.h"

namespace cdc::source {
namespace {

TEST(MqFactory, PulsarAddressSelectsPulsarWithItsSettings) {
  SourceConfig s;
  s.kafka.address = "";
  EXPECT_EQ(MqConfigFrom(s).kind, MqConfig::Kind::kKafka);
  s.pulsar.address = "broker.example";
  s.pulsar.port = 16650;
  s.pulsar.tenant = "t";
  s.pulsar.ns = "n";
  s.pulsar.auth_plugin = "token";
  s.pulsar.auth_params = "token:secret";
  const MqConfig c = MqConfigFrom(s);
  EXPECT_EQ(c.kind, MqConfig::Kind::kPulsar);
  EXPECT_STREQ(c.name(), "Pulsar");
  EXPECT_EQ(c.pulsar.service_url, "pulsar://broker.example:16650");
  EXPECT_EQ(c.pulsar.tenant, "t");
  EXPECT_EQ(c.pulsar.ns, "n");
  EXPECT_EQ(c.pulsar.auth_params, "token:secret");
}

TEST(MqFactory, KafkaMsgIdIsEightLittleEndianBytes) {
  const std::string id("\x2a\x01\0\0\0\0\0\0", 8);
  EXPECT_EQ(OffsetOfMsgId(MqConfig::Kind::kKafka, id), 298);
  EXPECT_EQ(MsgIdOfOffset(MqConfig::Kind::kKafka, 298), id);
  EXPECT_FALSE(OffsetOfMsgId(MqConfig::Kind::kKafka, "short"));
}

TEST(MqFactory, PulsarMsgIdIsMessageIdDataBothWays) {
  // ledger 12 entry 34 as Milvus 2.3 (Go client) stores it
  const std::string go("\x08\x0c\x10\x22\x18\x00\x20\x00", 8);
  auto offset = OffsetOfMsgId(MqConfig::Kind::kPulsar, go);
  ASSERT_TRUE(offset);
  const PulsarId id = UnpackPulsarId(*offset);
  EXPECT_EQ(id.ledger, 12);
  EXPECT_EQ(id.entry, 34);
  EXPECT_EQ(id.batch_index, 0);
  EXPECT_EQ(MsgIdOfOffset(MqConfig::Kind::kPulsar, *offset), go);
  // a Kafka-shaped id or garbage is not a Pulsar position
  EXPECT_FALSE(OffsetOfMsgId(MqConfig::Kind::kPulsar, std::string("\x2a\x01\0\0\0\0\0\0", 8)));
}

TEST(MqFactory, PulsarSentinelsNameNoMessage) {
  PulsarId earliest{-1, -1, -1, 0};
  EXPECT_FALSE(OffsetOfMsgId(MqConfig::Kind::kPulsar, SerializePulsarId(earliest)));
}

}  // namespace
}  // namespace cdc::source
