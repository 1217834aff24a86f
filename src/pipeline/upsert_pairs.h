// Finds the source upserts in a pack. Milvus 2.3 writes an upsert, per vchannel, as an Insert
// and a Delete of the same primary keys at one timestamp (Insert first). Replaying the pair as
// one Upsert on the target, rather than Delete then Insert, makes the target place the rows
// the way the source's upsert did: Milvus 2.3.5 hashes an upsert's partition key differently
// from an insert's, so a partition-key collection keeps upserted rows in other partitions
// than inserted ones (docs/milvus-notes.md). Pure function.
#pragma once

#include <set>
#include <vector>

#include "source/log_reader.h"

namespace cdc::pipeline {

struct UpsertPairs {
  std::set<const decode::Event*> inserts;  // the Insert half: apply as Upsert
  std::set<const decode::Event*> deletes;  // the Delete half: covered by that Upsert
};

// Pairs the Inserts of one collection, vchannel and single timestamp with a Delete of that
// slot whose primary keys are exactly theirs. Events that do not pair are left out.
UpsertPairs FindUpsertPairs(const std::vector<source::RoutedEvent>& events);

}  // namespace cdc::pipeline
