// Micro-benchmarks of milvus-cdc's insert hot path, without the test bed (Google Benchmark):
//
//   DecodeCaptured      DecodeMessage over every Insert record captured from a real Milvus 2.3
//                       source (tests/testdata/bed-2.3; 8-dim vectors, a handful of rows each)
//   Decode/<dim>        DecodeMessage of one 1 000-row Insert record as a 2.3 proxy writes it to
//                       Kafka (the captured record's header, the bench schema's columns: int64 pk,
//                       float vector, varchar, JSON), 128 and 768 dims
//   BuildTarget/<dim>   the target call made from a decoded insert (CopyRowsInto, what
//                       MilvusApplier::Insert sends for a single insert), serialized as gRPC does
//   HotPath/<dim>       one pack's worth, as ChangeApplier does it: decode 4 records, merge them
//                       (a copy of the first, AppendRows), move the batch into the call
//                       (MoveRowsInto) and serialize it
//
// Rows/s are the items/s counters; MB/s (bytes_per_second) count the source record bytes.
// Run: bench/micro.sh (or build the cdc_micro_bench target and run it).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "corpus.h"
#include "decode/decoder.h"
#include "milvus.pb.h"
#include "msg.pb.h"
#include "pipeline/change_applier.h"
#include "schema.pb.h"
#include "target/milvus_applier.h"

namespace {

namespace msgpb = milvus::proto::msg;
namespace milvuspb = milvus::proto::milvus;
namespace schemapb = milvus::proto::schema;
using cdc::decode::DecodeMessage;
using cdc::decode::Event;
using cdc::decode::MsgType;
using cdc::decode::PayloadAs;
using cdc::decode::Position;

constexpr int kRows = 1000;
constexpr int kPackRecords = 4;

const cdc::decode::testdata::Corpus& Corpus() {
  static const auto* corpus = [] {
    auto c = cdc::decode::testdata::LoadCorpus(cdc::decode::testdata::Bed23Dir());
    if (!c.ok()) {
      std::fprintf(stderr, "cannot load the captured corpus: %s\n", c.status().message().c_str());
      std::exit(1);
    }
    return new cdc::decode::testdata::Corpus(std::move(c).value());
  }();
  return *corpus;
}

std::vector<const cdc::decode::testdata::CorpusMessage*> CapturedInserts() {
  std::vector<const cdc::decode::testdata::CorpusMessage*> out;
  for (const auto& [channel, msgs] : Corpus().messages) {
    for (const auto& m : msgs) {
      if (m.indexed_msg_type == static_cast<int32_t>(MsgType::kInsert)) out.push_back(&m);
    }
  }
  return out;
}

// A 1 000-row Insert record: the header of a captured insert (base, shard, ids), the bench
// schema's columns, per-row timestamps and row ids, as a 2.3 proxy produces it.
std::string SyntheticInsert(int dim, int64_t first_pk) {
  msgpb::InsertRequest req;
  for (const auto* m : CapturedInserts()) {
    if (req.ParseFromString(m->bytes)) break;
  }
  req.clear_fields_data();
  req.clear_timestamps();
  req.clear_rowids();
  req.set_num_rows(kRows);
  std::mt19937 rnd(static_cast<uint32_t>(dim + first_pk));
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  auto* pk = req.add_fields_data();
  pk->set_type(schemapb::DataType::Int64);
  pk->set_field_name("pk");
  pk->set_field_id(100);
  auto* vec = req.add_fields_data();
  vec->set_type(schemapb::DataType::FloatVector);
  vec->set_field_name("vec");
  vec->set_field_id(101);
  vec->mutable_vectors()->set_dim(dim);
  auto* title = req.add_fields_data();
  title->set_type(schemapb::DataType::VarChar);
  title->set_field_name("title");
  title->set_field_id(102);
  auto* meta = req.add_fields_data();
  meta->set_type(schemapb::DataType::JSON);
  meta->set_field_name("meta");
  meta->set_field_id(103);
  const uint64_t ts = (uint64_t{1} << 58);
  for (int i = 0; i < kRows; ++i) {
    const int64_t key = first_pk + i;
    pk->mutable_scalars()->mutable_long_data()->add_data(key);
    auto* fv = vec->mutable_vectors()->mutable_float_vector();
    for (int d = 0; d < dim; ++d) fv->add_data(unit(rnd));
    title->mutable_scalars()->mutable_string_data()->add_data("bench title " + std::to_string(key) + " " +
                                                              std::string(static_cast<size_t>(i % 17), 'x'));
    meta->mutable_scalars()->mutable_json_data()->add_data(
        "{\"n\": " + std::to_string(i) + ", \"seed\": 0, \"tag\": \"bench\", \"score\": 0.5}");
    req.add_timestamps(ts + static_cast<uint64_t>(i));
    req.add_rowids(key);
  }
  return req.SerializeAsString();
}

Event MustDecode(const std::string& bytes, const Position& where) {
  auto ev = DecodeMessage(bytes, where);
  if (!ev.ok()) {
    std::fprintf(stderr, "decode failed: %s\n", ev.status().message().c_str());
    std::exit(1);
  }
  return std::move(ev).value();
}

void BM_DecodeCaptured(benchmark::State& state) {
  const auto inserts = CapturedInserts();
  int64_t rows = 0;
  int64_t bytes = 0;
  for (const auto* m : inserts) {
    rows += MustDecode(m->bytes, m->position()).row_count;
    bytes += static_cast<int64_t>(m->bytes.size());
  }
  for (auto _ : state) {
    for (const auto* m : inserts) {
      auto ev = DecodeMessage(m->bytes, m->position());
      benchmark::DoNotOptimize(ev);
    }
  }
  state.SetItemsProcessed(state.iterations() * rows);
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["records"] = static_cast<double>(inserts.size());
}

void BM_Decode(benchmark::State& state) {
  const std::string record = SyntheticInsert(static_cast<int>(state.range(0)), 1);
  const Position where{"cdcsrc-rootcoord-dml_0", 1, 0};
  for (auto _ : state) {
    auto ev = DecodeMessage(record, where);
    benchmark::DoNotOptimize(ev);
  }
  state.SetItemsProcessed(state.iterations() * kRows);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(record.size()));
  state.counters["record_bytes"] = static_cast<double>(record.size());
}

void BM_BuildTarget(benchmark::State& state) {
  const std::string record = SyntheticInsert(static_cast<int>(state.range(0)), 1);
  const Event ev = MustDecode(record, Position{"cdcsrc-rootcoord-dml_0", 1, 0});
  const auto* src = PayloadAs<msgpb::InsertRequest>(ev);
  std::string wire;
  for (auto _ : state) {
    milvuspb::InsertRequest req;
    cdc::target::CopyRowsInto("default", "bench", *src, &req);
    req.SerializeToString(&wire);
    benchmark::DoNotOptimize(wire.data());
  }
  state.SetItemsProcessed(state.iterations() * kRows);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(record.size()));
  state.counters["call_bytes"] = static_cast<double>(wire.size());
}

void BM_HotPath(benchmark::State& state) {
  std::vector<std::string> records;
  int64_t bytes = 0;
  for (int i = 0; i < kPackRecords; ++i) {
    records.push_back(SyntheticInsert(static_cast<int>(state.range(0)), 1 + i * kRows));
    bytes += static_cast<int64_t>(records.back().size());
  }
  std::string wire;
  for (auto _ : state) {
    std::vector<Event> events;
    events.reserve(records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      events.push_back(MustDecode(records[i], Position{"cdcsrc-rootcoord-dml_0", static_cast<int64_t>(i), 0}));
    }
    msgpb::InsertRequest batch = *PayloadAs<msgpb::InsertRequest>(events[0]);
    for (size_t i = 1; i < events.size(); ++i) {
      if (!cdc::pipeline::AppendRows(&batch, *PayloadAs<msgpb::InsertRequest>(events[i]))) std::abort();
    }
    milvuspb::InsertRequest req;
    cdc::target::MoveRowsInto("default", "bench", std::move(batch), &req);
    req.SerializeToString(&wire);
    benchmark::DoNotOptimize(wire.data());
  }
  state.SetItemsProcessed(state.iterations() * kRows * kPackRecords);
  state.SetBytesProcessed(state.iterations() * bytes);
}

BENCHMARK(BM_DecodeCaptured);
BENCHMARK(BM_Decode)->Arg(128)->Arg(768);
BENCHMARK(BM_BuildTarget)->Arg(128)->Arg(768);
BENCHMARK(BM_HotPath)->Arg(128)->Arg(768);

}  // namespace

BENCHMARK_MAIN();
