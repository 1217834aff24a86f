#include "source/mq_factory.h"

#include "source/pulsar_id.h"

namespace cdc::source {

MqConfig MqConfigFrom(const SourceConfig& source) {
  MqConfig c;
  c.kafka.bootstrap_servers = source.kafka.address;
  c.kafka.properties = source.kafka.consumer;
  if (!source.UsesPulsar()) return c;
  c.kind = MqConfig::Kind::kPulsar;
  const PulsarSourceConfig& p = source.pulsar;
  c.pulsar.service_url = p.ServiceUrl();
  c.pulsar.tenant = p.tenant;
  c.pulsar.ns = p.ns;
  c.pulsar.auth_plugin = p.auth_plugin;
  c.pulsar.auth_params = p.auth_params;
  c.pulsar.tls_ca_file = p.tls_trust_certs_file;
  c.pulsar.tls_allow_insecure = p.tls_allow_insecure;
  return c;
}

StatusOr<std::unique_ptr<MqChannelReader>> OpenMqReader(const MqConfig& config, const std::string& topic,
                                                        StartAt start) {
  if (config.kind == MqConfig::Kind::kPulsar) {
    // Offset 0 is what an empty topic's end was pinned as: everything there is.
    if (start.kind == StartAt::Kind::kOffset && start.offset == 0) start = StartAt::Earliest();
    auto r = PulsarChannelReader::Open(config.pulsar, topic, start);
    if (!r.ok()) return r.status();
    return std::unique_ptr<MqChannelReader>(std::move(r).value());
  }
  auto r = KafkaChannelReader::Open(config.kafka, topic, start);
  if (!r.ok()) return r.status();
  return std::unique_ptr<MqChannelReader>(std::move(r).value());
}

std::optional<int64_t> OffsetOfMsgId(MqConfig::Kind kind, const std::string& msg_id) {
  if (kind == MqConfig::Kind::kPulsar) {
    auto id = ParsePulsarId(msg_id);
    if (!id || id->ledger < 0 || id->entry < 0) return std::nullopt;
    auto packed = PackPulsarId(*id);
    if (!packed.ok()) return std::nullopt;
    return *packed;
  }
  if (msg_id.size() != 8) return std::nullopt;
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(msg_id[i]);
  return static_cast<int64_t>(v);
}

std::string MsgIdOfOffset(MqConfig::Kind kind, int64_t offset) {
  if (kind == MqConfig::Kind::kPulsar) {
    PulsarId id = UnpackPulsarId(offset);
    return SerializePulsarId(id);
  }
  std::string msg_id(8, '\0');
  for (int i = 0; i < 8; ++i) msg_id[i] = static_cast<char>((static_cast<uint64_t>(offset) >> (8 * i)) & 0xff);
  return msg_id;
}

}  // namespace cdc::source
