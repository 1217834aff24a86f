// The source's message queue as the pipeline sees it: which one (Kafka or Pulsar), how to open a
// channel reader on it, and how Milvus's stored message ids map to our int64 offsets.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "config/config.h"
#include "source/kafka_reader.h"
#include "source/mq_reader.h"
#include "source/pulsar_reader.h"

namespace cdc::source {

struct MqConfig {
  enum class Kind { kKafka, kPulsar };
  Kind kind = Kind::kKafka;
  KafkaReaderConfig kafka;
  PulsarReaderConfig pulsar;

  const char* name() const { return kind == Kind::kPulsar ? "Pulsar" : "Kafka"; }
};

// From sourceConfig: Pulsar when sourceConfig.pulsar.address is set, else Kafka.
MqConfig MqConfigFrom(const SourceConfig& source);

StatusOr<std::unique_ptr<MqChannelReader>> OpenMqReader(const MqConfig& config, const std::string& topic,
                                                        StartAt start);

// The offset of the message a Milvus MsgPosition.msgID names (Kafka: 8-byte little-endian
// offset; Pulsar: a serialized MessageIdData). nullopt when the bytes are not such an id, or
// name no message (Pulsar's earliest/latest sentinels).
std::optional<int64_t> OffsetOfMsgId(MqConfig::Kind kind, const std::string& msg_id);
// The MsgPosition.msgID bytes Milvus would store for `offset`.
std::string MsgIdOfOffset(MqConfig::Kind kind, int64_t offset);

}  // namespace cdc::source
