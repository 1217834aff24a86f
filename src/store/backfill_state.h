// BackfillState: one collection's backfill progress as stored with a task's positions
// (collection id kBackfillId, channel "backfill/<source collection id>", data JSON), so a
// restart continues from the last chunk the target acknowledged. Plain data; no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "store/meta_store.h"

namespace cdc {

constexpr int64_t kBackfillId = -300;

struct BackfillState {
  int64_t collection_id = 0;  // source collection id
  std::string db;
  std::string name;
  std::string state = "pending";  // pending, copying, done, failed
  std::string reason;             // why it failed
  // The copy goes partition by partition (one pass for a partition-key or one-partition
  // collection) in primary-key order; `last_pk` is the last key acknowledged by the target.
  int partition_index = 0;
  std::optional<std::variant<int64_t, std::string>> last_pk;
  std::optional<std::variant<int64_t, std::string>> upper_pk;  // the largest key when the copy started
  int64_t rows_copied = 0;
  int64_t rows_estimated = -1;
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
};

ChannelPosition EncodeBackfillState(const BackfillState& s);
// nullopt when `p` is not a backfill record or cannot be read.
std::optional<BackfillState> DecodeBackfillState(const ChannelPosition& p);
// Every backfill record among a task's stored positions.
std::vector<BackfillState> BackfillStatesOf(const std::vector<ChannelPosition>& positions);

}  // namespace cdc
