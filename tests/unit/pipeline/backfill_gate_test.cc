// BackfillGate: the DBLog rule. A chunk read after G waits until every channel of its
// collection is applied past its H, then goes out without the rows the stream touched after G;
// chunks leave in order; KeepRows trims every kind of column alike. Also BackfillState's
// stored form.
#include <gtest/gtest.h>

#include "pipeline/backfill_gate.h"
#include "store/backfill_state.h"

namespace cdc::pipeline {
namespace {

namespace schemapb = milvus::proto::schema;

// Rows with INT64 keys `keys`, a 2-dim float vector (k, -k) and a VARCHAR "v<k>".
target::Page Rows(const std::vector<int64_t>& keys) {
  target::Page page;
  schemapb::FieldData pk, vec, text;
  pk.set_field_name("pk");
  vec.set_field_name("vec");
  vec.mutable_vectors()->set_dim(2);
  text.set_field_name("text");
  for (int64_t k : keys) {
    pk.mutable_scalars()->mutable_long_data()->add_data(k);
    vec.mutable_vectors()->mutable_float_vector()->add_data(static_cast<float>(k));
    vec.mutable_vectors()->mutable_float_vector()->add_data(static_cast<float>(-k));
    text.mutable_scalars()->mutable_string_data()->add_data("v" + std::to_string(k));
    page.keys.emplace_back(k);
  }
  page.fields = {pk, vec, text};
  page.bytes = 100;
  return page;
}

std::vector<int64_t> KeysOf(const BackfillChunk& c) {
  std::vector<int64_t> out;
  for (int64_t k : c.rows.fields[0].scalars().long_data().data()) out.push_back(k);
  return out;
}

std::vector<std::string> TwoChannels(int64_t) { return {"ch0", "ch1"}; }

BackfillChunk Chunk(uint64_t window, uint64_t g, uint64_t h, const std::vector<int64_t>& keys,
                    std::string partition = "") {
  BackfillChunk c;
  c.collection_id = 7;
  c.window = window;
  c.g = g;
  c.h = h;
  c.partition = std::move(partition);
  c.rows = Rows(keys);
  return c;
}

TEST(BackfillGateTest, WaitsForEveryChannelThenDropsKeysTouchedAfterG) {
  BackfillGate gate;
  std::atomic<bool> stop{false};
  const uint64_t w = gate.OpenWindow(7, 100);
  EXPECT_TRUE(gate.Watching(7));
  EXPECT_FALSE(gate.Watching(8));
  gate.Touch(7, "", {GateKey(target::PkValue(int64_t{2}))}, 90);   // before G: the chunk's read saw it
  gate.Touch(7, "", {GateKey(target::PkValue(int64_t{3}))}, 150);  // after G: the stream has the newer state
  gate.Touch(8, "", {GateKey(target::PkValue(int64_t{4}))}, 150);  // another collection
  ASSERT_TRUE(gate.Submit(Chunk(w, 100, 200, {1, 2, 3, 4}), stop));
  gate.Applied("ch0", 250);
  EXPECT_TRUE(gate.TakeReady(TwoChannels).empty()) << "ch1 is not applied past H yet";
  gate.Applied("ch1", 199);
  EXPECT_TRUE(gate.TakeReady(TwoChannels).empty());
  gate.Applied("ch1", 200);
  auto ready = gate.TakeReady(TwoChannels);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(KeysOf(ready[0]), (std::vector<int64_t>{1, 2, 4}));
  EXPECT_EQ(ready[0].rows.keys.size(), 3u);
  const auto& vec = ready[0].rows.fields[1].vectors().float_vector().data();
  EXPECT_EQ(std::vector<float>(vec.begin(), vec.end()), (std::vector<float>{1, -1, 2, -2, 4, -4}));
  const auto& text = ready[0].rows.fields[2].scalars().string_data().data();
  EXPECT_EQ(std::vector<std::string>(text.begin(), text.end()), (std::vector<std::string>{"v1", "v2", "v4"}));
  EXPECT_FALSE(gate.Watching(7)) << "its only window is closed";
  EXPECT_EQ(gate.queued_bytes(), 0u);
}

TEST(BackfillGateTest, PartitionsAndDeletesOfEveryPartition) {
  BackfillGate gate;
  std::atomic<bool> stop{false};
  const uint64_t w = gate.OpenWindow(7, 100);
  gate.Touch(7, "p2", {GateKey(target::PkValue(int64_t{1}))}, 150);  // same key, other partition: kept
  gate.Touch(7, "p1", {GateKey(target::PkValue(int64_t{2}))}, 150);
  gate.Touch(7, "", {GateKey(target::PkValue(int64_t{3}))}, 150);    // a delete of every partition
  ASSERT_TRUE(gate.Submit(Chunk(w, 100, 120, {1, 2, 3}, "p1"), stop));
  gate.Applied("ch0", 120);
  gate.Applied("ch1", 120);
  auto ready = gate.TakeReady(TwoChannels);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(KeysOf(ready[0]), (std::vector<int64_t>{1}));
}

TEST(BackfillGateTest, AChunkOfTheWholeCollectionMatchesEveryPartition) {
  // A one-partition collection is copied without naming it; the stream names _default.
  BackfillGate gate;
  std::atomic<bool> stop{false};
  const uint64_t w = gate.OpenWindow(7, 100);
  gate.Touch(7, "_default", {GateKey(target::PkValue(int64_t{1}))}, 150);
  gate.Touch(7, "_default", {GateKey(target::PkValue(int64_t{2}))}, 50);
  ASSERT_TRUE(gate.Submit(Chunk(w, 100, 120, {1, 2, 3}), stop));
  gate.Applied("ch0", 120);
  gate.Applied("ch1", 120);
  auto ready = gate.TakeReady(TwoChannels);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(KeysOf(ready[0]), (std::vector<int64_t>{2, 3}));
}

TEST(BackfillGateTest, RepairDeletesSkipKeysTheStreamWroteMeanwhile) {
  BackfillGate gate;
  std::atomic<bool> stop{false};
  const uint64_t w = gate.OpenWindow(7, 100);
  gate.Touch(7, "p2", {GateKey(target::PkValue(std::string("b")))}, 150);  // re-inserted on the source
  BackfillChunk c = Chunk(w, 100, 120, {});
  c.deletes = {target::PkValue(std::string("a")), target::PkValue(std::string("b"))};
  ASSERT_TRUE(gate.Submit(std::move(c), stop));
  gate.Applied("ch0", 120);
  gate.Applied("ch1", 120);
  auto ready = gate.TakeReady(TwoChannels);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].deletes, (std::vector<target::PkValue>{target::PkValue(std::string("a"))}));
}

TEST(BackfillGateTest, ChunksAndMarkersLeaveInOrder) {
  BackfillGate gate;
  std::atomic<bool> stop{false};
  const uint64_t w1 = gate.OpenWindow(7, 100);
  ASSERT_TRUE(gate.Submit(Chunk(w1, 100, 300, {1}), stop));
  const uint64_t w2 = gate.OpenWindow(7, 110);
  ASSERT_TRUE(gate.Submit(Chunk(w2, 110, 120, {2}), stop));
  BackfillChunk marker;
  marker.collection_id = 7;
  ASSERT_TRUE(gate.Submit(std::move(marker), stop));
  gate.Applied("ch0", 200);
  gate.Applied("ch1", 200);
  EXPECT_TRUE(gate.TakeReady(TwoChannels).empty()) << "the second chunk must not overtake the first";
  gate.Applied("ch0", 300);
  gate.Applied("ch1", 300);
  auto ready = gate.TakeReady(TwoChannels);
  ASSERT_EQ(ready.size(), 3u);
  EXPECT_EQ(KeysOf(ready[0]), (std::vector<int64_t>{1}));
  EXPECT_EQ(KeysOf(ready[1]), (std::vector<int64_t>{2}));
  EXPECT_TRUE(ready[2].rows.keys.empty());
}

TEST(BackfillGateTest, AWindowAtTheAppliedPositionCoversThePackBeingApplied) {
  BackfillGate gate;
  EXPECT_EQ(gate.OpenWindowAtApplied(7, {"ch0", "ch1"}).first, 0u) << "nothing applied yet";
  gate.Applied("ch0", 300);
  EXPECT_EQ(gate.OpenWindowAtApplied(7, {"ch0", "ch1"}).first, 0u) << "ch1 has applied nothing yet";
  gate.Applied("ch1", 200);
  auto [w, g] = gate.OpenWindowAtApplied(7, {"ch0", "ch1"});
  EXPECT_NE(w, 0u);
  EXPECT_EQ(g, 300u);
  // A pack whose keys went unrecorded (no window yet) is being applied: G covers it.
  gate.Applying("ch1", 450);
  EXPECT_EQ(gate.OpenWindowAtApplied(7, {"ch0", "ch1"}).second, 450u);
  EXPECT_TRUE(gate.Watching(7));
}

TEST(BackfillGateTest, SubmitGivesUpWhenStopping) {
  BackfillGate gate(/*max_queued_bytes=*/50);
  std::atomic<bool> stop{false};
  ASSERT_TRUE(gate.Submit(Chunk(gate.OpenWindow(7, 1), 1, 2, {1}), stop));  // 100 bytes: over the limit
  stop = true;
  EXPECT_FALSE(gate.Submit(Chunk(gate.OpenWindow(7, 1), 1, 2, {2}), stop));
  gate.Clear();
  EXPECT_EQ(gate.queued_bytes(), 0u);
  EXPECT_FALSE(gate.Watching(7));
}

TEST(BackfillStateTest, RoundTripsBothKeyTypes) {
  BackfillState s;
  s.collection_id = 42;
  s.db = "d\xc3\xa9";
  s.name = "c";
  s.state = "copying";
  s.partition_index = 2;
  s.last_pk = std::string("k\"1");
  s.upper_pk = std::string("k\xe6\x97\xa5");
  s.rows_copied = 10;
  s.rows_estimated = 20;
  auto back = DecodeBackfillState(EncodeBackfillState(s));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->collection_id, 42);
  EXPECT_EQ(back->db, s.db);
  EXPECT_EQ(back->partition_index, 2);
  EXPECT_EQ(back->last_pk, s.last_pk);
  EXPECT_EQ(back->upper_pk, s.upper_pk);
  EXPECT_EQ(back->rows_copied, 10);
  s.last_pk = int64_t{-5};
  s.upper_pk = int64_t{1} << 62;
  back = DecodeBackfillState(EncodeBackfillState(s));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->last_pk, s.last_pk);
  EXPECT_EQ(back->upper_pk, s.upper_pk);
  EXPECT_FALSE(DecodeBackfillState(ChannelPosition{kBackfillId, "backfill/42", "not json"}).has_value());
  EXPECT_FALSE(DecodeBackfillState(ChannelPosition{1, "backfill/42", "{}"}).has_value());
}

}  // namespace
}  // namespace cdc::pipeline
