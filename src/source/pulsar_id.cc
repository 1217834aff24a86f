#include "source/pulsar_id.h"

#include <limits>

#include "pulsar/pulsar_wire.pb.h"

namespace cdc::source {

namespace {
constexpr int kEntryBits = 24;
constexpr int kBatchBits = 7;
constexpr int64_t kMaxLedger = (int64_t{1} << 32) - 1;
constexpr int64_t kMaxEntry = (int64_t{1} << kEntryBits) - 1;
constexpr int64_t kMaxBatch = (int64_t{1} << kBatchBits) - 1;

std::string Describe(const PulsarId& id) {
  return "ledger " + std::to_string(id.ledger) + " entry " + std::to_string(id.entry) + " batch index " +
         std::to_string(id.batch_index);
}
}  // namespace

StatusOr<int64_t> PackPulsarId(const PulsarId& id) {
  const int64_t batch = id.batch_index < 0 ? 0 : id.batch_index;
  if (id.ledger < 0 || id.ledger > kMaxLedger || id.entry < 0 || id.entry > kMaxEntry || batch > kMaxBatch) {
    return InvalidArgument("Pulsar message id " + Describe(id) +
                           " does not fit an offset (ledger < 2^32, entry < 2^24, batch index < 128; "
                           "earliest/latest sentinels are not ids)");
  }
  return (id.ledger << (kEntryBits + kBatchBits)) | (id.entry << kBatchBits) | batch;
}

PulsarId UnpackPulsarId(int64_t offset) {
  PulsarId id;
  id.ledger = offset >> (kEntryBits + kBatchBits);
  id.entry = (offset >> kBatchBits) & kMaxEntry;
  id.batch_index = static_cast<int32_t>(offset & kMaxBatch);
  return id;
}

std::string SerializePulsarId(const PulsarId& id) {
  cdc::pulsar::MessageIdData data;  // serialized in field order: 1, 2, 3, 4, 6 like Go's
  data.set_ledgerid(static_cast<uint64_t>(id.ledger));
  data.set_entryid(static_cast<uint64_t>(id.entry));
  data.set_partition(0);
  data.set_batch_index(id.batch_index);
  if (id.batch_size > 0) data.set_batch_size(id.batch_size);
  return data.SerializeAsString();
}

std::optional<PulsarId> ParsePulsarId(const std::string& bytes) {
  cdc::pulsar::MessageIdData data;
  if (!data.ParseFromString(bytes) || !data.has_ledgerid() || !data.has_entryid()) return std::nullopt;
  PulsarId id;
  id.ledger = static_cast<int64_t>(data.ledgerid());
  id.entry = static_cast<int64_t>(data.entryid());
  id.batch_index = data.has_batch_index() ? data.batch_index() : -1;
  id.batch_size = data.has_batch_size() ? data.batch_size() : 0;
  return id;
}

bool IsEarliestPulsarId(const PulsarId& id) { return id.ledger < 0 && id.entry < 0; }

bool IsLatestPulsarId(const PulsarId& id) {
  return id.ledger == std::numeric_limits<int64_t>::max() && id.entry == std::numeric_limits<int64_t>::max();
}

}  // namespace cdc::source
