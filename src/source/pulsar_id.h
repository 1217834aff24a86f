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

// Refuses sentinels (negative ledger or entry: "earliest"; int64 max: "latest") as ids that do not
// fit; callers map them to StartAt::Earliest()/Latest() first with the two helpers below.
StatusOr<int64_t> PackPulsarId(const PulsarId& id);
PulsarId UnpackPulsarId(int64_t offset);  // batch_index >= 0
// Go-style serialization (partition 0, batch_index, batch_size when > 0).
std::string SerializePulsarId(const PulsarId& id);
// Reads Go-style and Java-style (partition -1, no batch_index) ids and the sentinels; nullopt if
// the bytes are not a MessageIdData with a ledger and an entry.
std::optional<PulsarId> ParsePulsarId(const std::string& bytes);
// Go/Java "earliest" (ledger and entry -1) and "latest" (ledger and entry int64 max).
bool IsEarliestPulsarId(const PulsarId& id);
bool IsLatestPulsarId(const PulsarId& id);

}  // namespace cdc::source
