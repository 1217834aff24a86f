// The captured message corpus (tests/testdata/bed-2.3, written by scripts/capture-messages.py):
// real Kafka records from a Milvus 2.3 source, per channel in offset order, plus the workload
// facts (names, ids, primary keys per operation) they were produced by.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "decode/event.h"
#include "util/status.h"

namespace cdc::decode::testdata {

struct CorpusMessage {
  std::string channel;
  int64_t offset = -1;
  int64_t kafka_ts_ms = -1;
  std::string bytes;
  int32_t indexed_msg_type = 0;  // msg_type recorded in index.json by the capture script

  Position position() const { return Position{channel, offset, 0}; }
};

struct Corpus {
  nlohmann::json index;     // index.json
  nlohmann::json workload;  // index["workload"]
  std::string replicate_channel;
  std::vector<std::string> dml_channels;                      // channels that carry time ticks
  std::map<std::string, std::vector<CorpusMessage>> messages;  // channel -> records, offset order
};

// Loads the corpus under `dir` (index.json and one .msgs file per channel).
StatusOr<Corpus> LoadCorpus(const std::string& dir);

// The directory of the 2.3 capture (compile-time CDC_TESTDATA_DIR + "/bed-2.3").
std::string Bed23Dir();

}  // namespace cdc::decode::testdata
