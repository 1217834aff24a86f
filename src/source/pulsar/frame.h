// Pulsar binary-protocol framing: pure functions, no I/O.
//   simple:  [u32 total][u32 cmd size][BaseCommand]
//   payload: ... [u16 0x0e02][u32 size][BrokerEntryMetadata] (optional)
//            [u16 0x0e01][u32 CRC32C][u32 metadata size][MessageMetadata][payload]
// All integers big-endian; the CRC32C covers everything after the checksum field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "pulsar/pulsar_wire.pb.h"
#include "util/status.h"

namespace cdc::source::pulsar {

uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

void PutU32(std::string* out, uint32_t v);
uint32_t GetU32(const char* p);

// A whole frame, the leading u32 total included.
std::string EncodeCommand(const cdc::pulsar::BaseCommand& command);
std::string EncodePayloadCommand(const cdc::pulsar::BaseCommand& command,
                                 const cdc::pulsar::MessageMetadata& metadata, std::string_view payload);

struct Frame {
  cdc::pulsar::BaseCommand command;
  bool has_payload = false;
  cdc::pulsar::MessageMetadata metadata;  // has_payload only
  std::string payload;                    // has_payload only: as stored (maybe compressed)
};

// Decodes a frame body (the bytes after the u32 total). A bad checksum or a truncated section is
// an error naming it.
StatusOr<Frame> DecodeFrame(std::string_view body);

// Checks a frame's announced total size against the cap.
Status CheckFrameSize(uint32_t total, size_t max_frame_bytes);

}  // namespace cdc::source::pulsar
