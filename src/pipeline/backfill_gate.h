// BackfillGate: where backfill chunks meet the live stream (the DBLog rule with timestamps for
// watermarks). The backfill thread opens a window at source time G before it reads a chunk,
// reads it (the rows are the state at some R >= G), takes H >= R after the read, and submits
// it. The applier (dispatch thread) reports every key it applies and how far each channel is
// applied; a chunk is written once every channel of its collection has been applied past H,
// without the rows whose keys the stream touched after G (the stream carries their newer
// state). The write happens on the dispatch thread, between two source packs, so no stream
// change of that collection interleaves with it.
// Thread-safety: one mutex; Submit blocks the backfill thread while too many bytes wait.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "target/collection_reader.h"
#include "util/status.h"

namespace cdc::pipeline {

struct BackfillChunk {
  int64_t collection_id = 0;
  std::string partition;  // the target partition to write; empty: none (partition key, or one partition)
  uint64_t window = 0;    // from OpenWindow
  uint64_t g = 0;         // source time before the read
  uint64_t h = 0;         // source time after the read
  target::Page rows;
  // Repair: keys the source did not hold at the read, deleted on the target (every partition).
  std::vector<target::PkValue> deletes;
  std::string pk_field;  // names the key in the delete
  // Called on the dispatch thread once the chunk was written (rows = rows written) or failed.
  std::function<void(const Status& st, int64_t rows)> done;
};

class BackfillGate {
 public:
  explicit BackfillGate(size_t max_queued_bytes = 16u << 20) : max_queued_bytes_(max_queued_bytes) {}

  // --- backfill thread
  // Starts recording the keys of `collection_id` applied with a source ts > g. Every change
  // already applied must have a ts <= g: a fresh source time, or AppliedUpTo.
  uint64_t OpenWindow(int64_t collection_id, uint64_t g);
  // Opens a window at G = the largest source ts applied or being applied over these channels
  // (every change whose keys were not recorded is at or below it), in one step so no pack
  // slips between. {0, 0} when one of them has applied nothing yet.
  std::pair<uint64_t, uint64_t> OpenWindowAtApplied(int64_t collection_id, const std::vector<std::string>& channels);
  // Abandons a window that will not be submitted (an empty read, a failure).
  void CloseWindow(uint64_t window);
  // Queues a chunk; blocks while the queue holds more than max_queued_bytes. False when
  // `stopping` became true meanwhile (the chunk is dropped and its window closed).
  bool Submit(BackfillChunk chunk, const std::atomic<bool>& stopping);
  // Drops every queued chunk and window (the pipeline stops), waking a blocked Submit.
  void Clear();

  // --- dispatch thread
  bool Watching(int64_t collection_id) const;
  // Keys of an applied Insert/Delete (as "i<n>"/"s<text>"); partition empty: every partition.
  void Touch(int64_t collection_id, const std::string& partition, const std::vector<std::string>& keys, uint64_t ts);
  // Before a pack's keys are reported (Touch) and after it was applied.
  void Applying(const std::string& channel, uint64_t ts);
  void Applied(const std::string& channel, uint64_t ts);
  // The queued chunks, oldest first, whose collection's channels were all applied past their h;
  // their rows touched after g are already removed, their windows closed.
  std::vector<BackfillChunk> TakeReady(const std::function<std::vector<std::string>(int64_t)>& channels_of);

  size_t queued_bytes() const;

 private:
  struct Window {
    int64_t collection_id;
    uint64_t g;
  };
  void CloseLocked(uint64_t window);
  // Removes the rows of `chunk` whose (partition, key) or ("", key) was touched after its g
  // (any partition for a chunk that names none), and the deletes of keys touched after g in
  // any partition.
  void FilterLocked(BackfillChunk& chunk) const;

  const size_t max_queued_bytes_;
  mutable std::mutex mu_;
  std::condition_variable space_;
  uint64_t next_window_ = 1;
  std::map<uint64_t, Window> windows_;
  // collection -> (partition, key) -> newest ts applied; kept while the collection has windows.
  std::map<int64_t, std::map<std::pair<std::string, std::string>, uint64_t>> touched_;
  std::map<std::string, uint64_t> applied_;   // channel -> source ts applied up to
  std::map<std::string, uint64_t> applying_;  // channel -> ts of the pack being applied
  std::deque<BackfillChunk> queue_;
  size_t queued_bytes_ = 0;
};

// "i<n>" / "s<text>": a key as the gate records it.
std::string GateKey(const target::PkValue& pk);

// Keeps only the rows of `columns` whose `keep` is true (every column holds the same rows).
void KeepRows(std::vector<milvus::proto::schema::FieldData>* columns, const std::vector<bool>& keep);

}  // namespace cdc::pipeline
