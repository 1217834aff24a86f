// KeyCompare: the `keys` and `rows` comparison of one collection, for the Verifier: a merged
// scan of both sides in key order (per partition when the collection has several), then the
// re-check generations of the keys that differed, and the repair hand-off. Internal to the
// verifier; one instance per collection and run, used from one thread (it starts the source
// page reads on a helper thread itself).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "verify/verifier.h"

namespace cdc::verify {

// What is compared as one key space: the collection, or one partition of it, on both sides.
struct Unit {
  Table source;
  Table target;
  bool on_source = true;  // the partition (or collection) exists there
  bool on_target = true;
};

// A page with its rows in key order (each key once).
struct Chunk {
  Page page;
  std::vector<uint32_t> order;  // row indices, by key
  std::optional<PkValue> upto;  // covers (after, upto]
  bool end = false;             // nothing after `after` (within the range asked)
  int64_t duplicates = 0;       // count(*) minus distinct keys, when the range showed copies
};

// Reads the page after `after` (up to `upto`) and proves it complete with a count(*) of its
// range; when the count disagrees (duplicate keys, or rows written meanwhile) the range is read
// whole, without a limit, between two counts.
StatusOr<Chunk> ReadChunk(VerifySide* side, const Table& table, const std::optional<PkValue>& after,
                          const std::optional<PkValue>& upto, int64_t limit, const ReadOptions& options);

class KeyCompare {
 public:
  KeyCompare(VerifySide* source, VerifySide* target, const VerifierOptions& options, const CollectionRef& ref,
             std::vector<Unit> units, int64_t first_row_limit, CollectionReport* report, std::string* wait_warning);

  // The first pass over every unit: differing keys become candidates.
  Status Scan();
  // Re-checks the candidates in generations; what persists goes to `out`, what kept changing
  // to out->in_flux.
  Status Recheck(Differences* out);
  // Hands the differences found to the repair path and verifies those keys again.
  Status Repair();

 private:
  struct Candidate {
    size_t unit;
    PkValue key;
    int kind;
    uint64_t fingerprint;  // the source row at the last read; 0: absent
    std::string field;     // rows level: the first differing field
    bool confirmed = false;
    bool resolved = false;
  };

  Status ScanUnit(size_t u);
  void Merge(size_t u, const Chunk& t, size_t* i, const Chunk& s);
  void Found(size_t u, int kind, const PkValue& key, uint64_t fingerprint, const std::string& field = "");
  uint64_t Fingerprint(const Page& page, size_t row) const;
  Status RecheckBatch(size_t u, std::vector<Candidate*>& batch, uint64_t ts);
  int64_t NextRowLimit(const Chunk& c, int64_t current) const;
  bool Cancelled() const { return options_.cancelled && options_.cancelled(); }
  void Progress(int64_t rows);

  VerifySide* const source_;
  VerifySide* const target_;
  const VerifierOptions& options_;
  const CollectionRef ref_;
  const std::vector<Unit> units_;
  const bool rows_;
  const int64_t first_row_limit_;
  CollectionReport* const report_;
  std::vector<Candidate> candidates_;
  std::string* const wait_warning_;  // the run's: set once a wait for the task gave up, later rounds do not wait
};

}  // namespace cdc::verify
