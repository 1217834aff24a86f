// Pulsar message ids as Milvus stores them, and as the pipeline's int64 offsets.
//
// Milvus (Go client) writes MsgPosition.msgID as the protobuf MessageIdData: 1 ledgerId,
// 2 entryId, 3 partition (0), 4 batch_index, 6 batch_size (Milvus 2.5 only). Offsets pack
// (ledger, entry, batch) into 63 bits so that offsets order like ids and offset + 1 is "just
// after": ledger 32 bits | entry 24 bits | batch index 7 bits. Ids that do not fit are refused
// with an error naming them (a ledger past 2^32, an entry past 2^24 in one ledger, a batch of
// more than 128 messages); Milvus 2.3-2.5 writes batches of one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "util/status.h"

namespace cdc::source {

struct PulsarId {
  int64_t ledger = -1;
  int64_t entry = -1;
  int32_t batch_index = -1;  // -1: not in a batch (read as 0)
  int32_t batch_size = 0;    // 0: absent
};

StatusOr<int64_t> PackPulsarId(const PulsarId& id);
PulsarId UnpackPulsarId(int64_t offset);  // batch_index >= 0
// Go-style serialization (partition 0, batch_index, batch_size when > 0).
std::string SerializePulsarId(const PulsarId& id);
std::optional<PulsarId> ParsePulsarId(const std::string& bytes);

}  // namespace cdc::source
