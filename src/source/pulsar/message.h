// Turns one Pulsar entry (MessageMetadata + stored payload) into its messages: decompression
// (NONE, ZSTD) and batch splitting. Pure functions, no I/O.
//
// If num_messages_in_batch is present (even = 1, as Milvus 2.3/2.4 write), the decompressed
// payload is N x [u32 BE size][SingleMessageMetadata][payload_size bytes]; message i has batch
// index i and compacted_out ones are skipped. Otherwise (Milvus 2.5) it is one plain message
// with batch index -1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pulsar/pulsar_wire.pb.h"
#include "util/status.h"

namespace cdc::source::pulsar {

struct EntryMessage {
  int32_t batch_index = -1;
  std::string payload;
};

struct DecodedEntry {
  int32_t num_messages = 1;  // what the entry holds (compacted-out ones included): FLOW permits used
  std::vector<EntryMessage> messages;
};

// Decompresses to exactly `uncompressed_size` bytes; refuses sizes above `max_bytes`.
StatusOr<std::string> Decompress(cdc::pulsar::CompressionType type, std::string_view data,
                                 uint32_t uncompressed_size, size_t max_bytes);

StatusOr<DecodedEntry> DecodeEntry(const cdc::pulsar::MessageMetadata& metadata, std::string_view payload,
                                   size_t max_bytes);

}  // namespace cdc::source::pulsar
