#include "source/pulsar/frame.h"

#include <array>

namespace cdc::source::pulsar {

namespace {
constexpr uint16_t kMagicChecksum = 0x0e01;
constexpr uint16_t kMagicBrokerEntryMetadata = 0x0e02;

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // Castagnoli, reflected
    table[i] = c;
  }
  return table;
}

uint16_t GetU16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>((u[0] << 8) | u[1]);
}
}  // namespace

uint32_t Crc32c(std::string_view data, uint32_t crc) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  crc = ~crc;
  for (unsigned char b : data) crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

void PutU32(std::string* out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                     static_cast<char>(v)};
  out->append(b, 4);
}

uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

std::string EncodeCommand(const cdc::pulsar::BaseCommand& command) {
  const std::string cmd = command.SerializeAsString();
  std::string out;
  PutU32(&out, static_cast<uint32_t>(4 + cmd.size()));
  PutU32(&out, static_cast<uint32_t>(cmd.size()));
  out += cmd;
  return out;
}

std::string EncodePayloadCommand(const cdc::pulsar::BaseCommand& command,
                                 const cdc::pulsar::MessageMetadata& metadata, std::string_view payload) {
  const std::string cmd = command.SerializeAsString();
  const std::string md = metadata.SerializeAsString();
  std::string checked;
  PutU32(&checked, static_cast<uint32_t>(md.size()));
  checked += md;
  checked.append(payload.data(), payload.size());
  std::string out;
  PutU32(&out, static_cast<uint32_t>(4 + cmd.size() + 2 + 4 + checked.size()));
  PutU32(&out, static_cast<uint32_t>(cmd.size()));
  out += cmd;
  out.push_back(static_cast<char>(kMagicChecksum >> 8));
  out.push_back(static_cast<char>(kMagicChecksum & 0xFF));
  PutU32(&out, Crc32c(checked));
  out += checked;
  return out;
}

StatusOr<Frame> DecodeFrame(std::string_view body) {
  if (body.size() < 4) return InvalidArgument("Pulsar frame of " + std::to_string(body.size()) + " bytes is truncated");
  const uint32_t cmd_size = GetU32(body.data());
  if (cmd_size > body.size() - 4) {
    return InvalidArgument("Pulsar frame: command size " + std::to_string(cmd_size) + " exceeds the frame (" +
                           std::to_string(body.size()) + " bytes)");
  }
  Frame frame;
  if (!frame.command.ParseFromArray(body.data() + 4, static_cast<int>(cmd_size))) {
    return InvalidArgument("Pulsar frame: the command does not parse as BaseCommand");
  }
  std::string_view rest = body.substr(4 + cmd_size);
  if (rest.empty()) return frame;

  if (rest.size() >= 6 && GetU16(rest.data()) == kMagicBrokerEntryMetadata) {
    const uint32_t size = GetU32(rest.data() + 2);
    if (size > rest.size() - 6) return InvalidArgument("Pulsar frame: broker entry metadata is truncated");
    rest = rest.substr(6 + size);
  }
  if (rest.size() < 10 || GetU16(rest.data()) != kMagicChecksum) {
    return InvalidArgument("Pulsar frame: payload section without the 0x0e01 checksum magic");
  }
  const uint32_t expected = GetU32(rest.data() + 2);
  const std::string_view checked = rest.substr(6);
  const uint32_t actual = Crc32c(checked);
  if (actual != expected) {
    return InvalidArgument("Pulsar frame: CRC32C mismatch (frame says " + std::to_string(expected) +
                           ", computed " + std::to_string(actual) + "): corrupted message");
  }
  const uint32_t md_size = GetU32(checked.data());
  if (md_size > checked.size() - 4) return InvalidArgument("Pulsar frame: message metadata is truncated");
  if (!frame.metadata.ParseFromArray(checked.data() + 4, static_cast<int>(md_size))) {
    return InvalidArgument("Pulsar frame: message metadata does not parse");
  }
  frame.has_payload = true;
  frame.payload.assign(checked.substr(4 + md_size));
  return frame;
}

Status CheckFrameSize(uint32_t total, size_t max_frame_bytes) {
  if (total < 4) return InvalidArgument("Pulsar frame announces " + std::to_string(total) + " bytes (< 4)");
  if (total > max_frame_bytes) {
    return ResourceExhausted("Pulsar frame of " + std::to_string(total) + " bytes exceeds the limit of " +
                             std::to_string(max_frame_bytes) + " bytes");
  }
  return Status::Ok();
}

}  // namespace cdc::source::pulsar
