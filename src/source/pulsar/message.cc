#include "source/pulsar/message.h"

#include <zstd.h>

#include "source/pulsar/frame.h"

namespace cdc::source::pulsar {

StatusOr<std::string> Decompress(cdc::pulsar::CompressionType type, std::string_view data,
                                 uint32_t uncompressed_size, size_t max_bytes) {
  switch (type) {
    case cdc::pulsar::NONE:
      return std::string(data);
    case cdc::pulsar::ZSTD: {
      if (uncompressed_size > max_bytes) {
        return ResourceExhausted("Pulsar message uncompresses to " + std::to_string(uncompressed_size) +
                                 " bytes, above the limit of " + std::to_string(max_bytes));
      }
      std::string out(uncompressed_size, '\0');
      const size_t n = ZSTD_decompress(out.data(), out.size(), data.data(), data.size());
      if (ZSTD_isError(n)) {
        return InvalidArgument(std::string("Pulsar message: ZSTD decompression failed: ") + ZSTD_getErrorName(n));
      }
      if (n != uncompressed_size) {
        return InvalidArgument("Pulsar message: ZSTD gave " + std::to_string(n) + " bytes, metadata says " +
                               std::to_string(uncompressed_size));
      }
      return out;
    }
    default:
      return Unimplemented("Pulsar message compressed with " + cdc::pulsar::CompressionType_Name(type) +
                           " (" + std::to_string(static_cast<int>(type)) +
                           "): only NONE and ZSTD are supported (Milvus writes ZSTD)");
  }
}

StatusOr<DecodedEntry> DecodeEntry(const cdc::pulsar::MessageMetadata& metadata, std::string_view payload,
                                   size_t max_bytes) {
  if (metadata.has_encryption_algo() || metadata.has_encryption_param()) {
    return Unimplemented("Pulsar message is encrypted; encryption is not supported");
  }
  if (metadata.num_chunks_from_msg() > 1) {
    return Unimplemented("Pulsar message is chunked (" + std::to_string(metadata.num_chunks_from_msg()) +
                         " chunks); chunking is not supported");
  }
  ASSIGN_OR_RETURN(std::string data,
                   Decompress(metadata.compression(), payload, metadata.uncompressed_size(), max_bytes));
  DecodedEntry entry;
  if (!metadata.has_num_messages_in_batch()) {
    entry.messages.push_back({-1, std::move(data)});
    return entry;
  }
  const int32_t n = metadata.num_messages_in_batch();
  if (n < 1) return InvalidArgument("Pulsar batch with num_messages_in_batch " + std::to_string(n));
  entry.num_messages = n;
  std::string_view rest = data;
  for (int32_t i = 0; i < n; ++i) {
    if (rest.size() < 4) return InvalidArgument("Pulsar batch: message " + std::to_string(i) + " is truncated");
    const uint32_t smm_size = GetU32(rest.data());
    if (smm_size > rest.size() - 4) {
      return InvalidArgument("Pulsar batch: metadata of message " + std::to_string(i) + " is truncated");
    }
    cdc::pulsar::SingleMessageMetadata smm;
    if (!smm.ParseFromArray(rest.data() + 4, static_cast<int>(smm_size))) {
      return InvalidArgument("Pulsar batch: metadata of message " + std::to_string(i) + " does not parse");
    }
    rest.remove_prefix(4 + smm_size);
    if (smm.payload_size() < 0 || static_cast<size_t>(smm.payload_size()) > rest.size()) {
      return InvalidArgument("Pulsar batch: payload of message " + std::to_string(i) + " (" +
                             std::to_string(smm.payload_size()) + " bytes) is truncated");
    }
    if (!smm.compacted_out()) entry.messages.push_back({i, std::string(rest.substr(0, smm.payload_size()))});
    rest.remove_prefix(smm.payload_size());
  }
  return entry;
}

}  // namespace cdc::source::pulsar
