// Verifier: proves a task's TARGET equal to its SOURCE, collection by collection, while the task
// streams. Levels: `count` (count(*) on both sides), `keys` (primary-key sets, merged page by
// page in key order), `rows` (also every field, canonically: verify/row_compare.h).
//
// How a live stream is handled: the first pass reads both sides without waiting (pages of the
// source `pk > last`, then the target's range `(lo, hi]`), so a key the stream is changing may
// differ. Differing keys are re-checked in generations: take a source timestamp H, wait until
// the task has applied the source up to H (`applied_ts`), read just those keys again on both
// sides, and repeat (up to `generations` times). A key still different while its source row
// did not change since the previous read is a difference; a key whose source row changed in
// every generation is `in_flux` (counted, no verdict).
//
// Memory stays bounded whatever the collection size: two source pages and one target page at a
// time (by rows for `keys`, by bytes for `rows`), and at most `max_recheck_keys` differing keys
// kept for re-checks (differences beyond are counted without re-check).
//
// Owned by its caller (VerifyRunner or the CLI); one run at a time; the sides must be safe for
// two threads (the next source page is read while the target is read).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "task/pipeline.h"
#include "task/task_spec.h"
#include "util/status.h"
#include "verify/verify_report.h"
#include "verify/verify_side.h"

namespace cdc::verify {

// A source collection and its name on the target.
struct CollectionRef {
  std::string db, name;
  std::string target_db, target_name;
};

// The minimum source timestamp the task has applied on every channel it reads.
using AppliedTsFn = std::function<StatusOr<uint64_t>()>;
// The repair seam: (re)copies `copy_keys` from the source and deletes `delete_keys` from the
// target, through the backfill path; returns once the target acknowledged them.
using RepairFn = std::function<Status(const CollectionRef& collection, const std::vector<PkValue>& copy_keys,
                                      const std::vector<PkValue>& delete_keys)>;

struct VerifierOptions {
  std::string level = "rows";  // count, keys, rows
  bool repair = false;         // hand the differences to `repair_fn`, then verify them again
  RepairFn repair_fn;
  // Null: re-checks do not wait for the task; `no_applied_reason` says why in the warnings.
  AppliedTsFn applied_ts;
  std::string no_applied_reason;
  std::chrono::milliseconds applied_wait{30000};  // per generation
  // A task whose applied position does not move for this long is not waited for any more
  // (its server is down, or it is stuck): the run goes on and says so.
  std::chrono::milliseconds applied_stall{5000};
  int generations = 3;
  int64_t key_page_rows = 16384;      // keys level (Milvus caps a page at 16384)
  size_t row_page_bytes = 4u << 20;   // rows level: rows per page chosen to stay near this
  size_t max_recheck_keys = 100000;   // per collection
  size_t recheck_batch = 4096;        // keys per `pk in [...]` read
  // Polled between calls: true stops the run (its report says so).
  std::function<bool()> cancelled;
  // Called after every merged page with the rows it compared (progress).
  std::function<void(const CollectionRef& collection, int64_t rows)> on_rows;
};

class Verifier {
 public:
  Verifier(VerifySide* source, VerifySide* target, VerifierOptions options);

  // The collections to compare with their target names (name_mapping): `requested` ones
  // (db, name), each of which must be in the task's scope (InvalidArgument naming it), or else
  // every collection of the scope the source lists now (ListDatabases, ShowCollections).
  StatusOr<std::vector<CollectionRef>> Resolve(const TaskSpec& spec,
                                               const std::vector<std::pair<std::string, std::string>>& requested);

  // Compares one collection; failures are in the report's `error`.
  CollectionReport Verify(const CollectionRef& collection);

 private:
  Status Compare(const CollectionRef& c, CollectionReport* report);
  Status CompareCounts(const CollectionRef& c, const Table& source, const Table& target, CollectionReport* report);
  bool Cancelled() const { return options_.cancelled && options_.cancelled(); }

  VerifySide* const source_;
  VerifySide* const target_;
  const VerifierOptions options_;
  // Set once a wait for the task gave up: later re-checks of the run do not wait again.
  std::string wait_warning_;
};

// Differences between the source and target schemas that matter for equality, as sentences
// ("field 'vec': dim 128 on the source, 64 on the target"). auto_id is not compared: the target
// is created with it off on purpose.
std::vector<std::string> SchemaDifferences(const milvus::proto::schema::CollectionSchema& source,
                                           const milvus::proto::schema::CollectionSchema& target);

// Waits until applied_ts() >= ts (polling), up to `wait`, less when the applied position does not
// move for `stall`, or until `cancelled`. Returns an empty string, or a warning saying how far
// the task got.
std::string WaitApplied(const AppliedTsFn& applied_ts, uint64_t ts, std::chrono::milliseconds wait,
                        std::chrono::milliseconds stall, const std::function<bool()>& cancelled);

}  // namespace cdc::verify
