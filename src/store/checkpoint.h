// Checkpoint records: how a task's position records are keyed and encoded in the MetaStore.
//   collection id  0    a source DML pchannel's checkpoint
//   collection id -10   the replicate channel's checkpoint (as the official store)
//   collection id -100  a write-ahead insert intent: inserts up to this position may already
//                       be on the target, so a replay applies them as upserts
//   collection id -200  the channel's end when the task first started: what a collection that
//                       does not replay from its creation wrote before it predates the task
// data is {"offset": <next Kafka offset to read>, "ts": <hybrid timestamp applied up to>}.
#pragma once

#include <cstdint>
#include <string>

namespace cdc {

constexpr int64_t kCheckpointId = 0;
constexpr int64_t kReplicateCheckpointId = -10;
constexpr int64_t kIntentId = -100;
constexpr int64_t kPinId = -200;

std::string EncodeCheckpoint(int64_t offset, uint64_t ts);
// False when `data` is not a checkpoint record.
bool DecodeCheckpoint(const std::string& data, int64_t* offset, uint64_t* ts);

}  // namespace cdc
