// CopyRowsInto / MoveRowsInto: the target call for a source insert keeps the user columns
// (and the dynamic field), drops RowID and Timestamp, and a moved batch gives up its columns.
// Also IsRetriable: which target errors are retried.
#include <gtest/gtest.h>

#include "target/milvus_applier.h"

namespace cdc::target {
namespace {

namespace msgpb = milvus::proto::msg;
namespace milvuspb = milvus::proto::milvus;
namespace schemapb = milvus::proto::schema;

msgpb::InsertRequest Source() {
  msgpb::InsertRequest r;
  r.set_partition_name("p1");
  r.set_num_rows(2);
  auto* rowid = r.add_fields_data();
  rowid->set_field_name("RowID");
  rowid->set_field_id(0);
  rowid->mutable_scalars()->mutable_long_data()->add_data(7);
  auto* ts = r.add_fields_data();
  ts->set_field_name("Timestamp");
  ts->set_field_id(1);
  auto* pk = r.add_fields_data();
  pk->set_field_name("pk");
  pk->set_field_id(100);
  pk->set_type(schemapb::DataType::Int64);
  pk->mutable_scalars()->mutable_long_data()->add_data(1);
  pk->mutable_scalars()->mutable_long_data()->add_data(2);
  auto* vec = r.add_fields_data();
  vec->set_field_name("vec");
  vec->set_field_id(101);
  vec->set_type(schemapb::DataType::FloatVector);
  vec->mutable_vectors()->set_dim(2);
  for (float f : {0.5f, 1.5f, 2.5f, 3.5f}) vec->mutable_vectors()->mutable_float_vector()->add_data(f);
  auto* dyn = r.add_fields_data();
  dyn->set_field_name("$meta");
  dyn->set_is_dynamic(true);
  dyn->mutable_scalars()->mutable_json_data()->add_data("{\"a\":1}");
  dyn->mutable_scalars()->mutable_json_data()->add_data("{\"a\":2}");
  return r;
}

void ExpectUserColumns(const milvuspb::InsertRequest& req) {
  EXPECT_EQ(req.db_name(), "db1");
  EXPECT_EQ(req.collection_name(), "c1");
  EXPECT_EQ(req.partition_name(), "p1");
  EXPECT_EQ(req.num_rows(), 2u);
  ASSERT_EQ(req.fields_data_size(), 3);
  EXPECT_EQ(req.fields_data(0).field_name(), "pk");
  EXPECT_EQ(req.fields_data(0).scalars().long_data().data(1), 2);
  EXPECT_EQ(req.fields_data(1).field_name(), "vec");
  EXPECT_EQ(req.fields_data(1).vectors().float_vector().data_size(), 4);
  EXPECT_EQ(req.fields_data(2).field_name(), "$meta");
  EXPECT_EQ(req.fields_data(2).scalars().json_data().data(1), "{\"a\":2}");
}

TEST(InsertRowsTest, CopyKeepsUserColumnsAndLeavesTheSourceAlone) {
  const msgpb::InsertRequest src = Source();
  const std::string before = src.SerializeAsString();
  milvuspb::InsertRequest req;
  CopyRowsInto("db1", "c1", src, &req);
  ExpectUserColumns(req);
  EXPECT_EQ(src.SerializeAsString(), before);
}

TEST(InsertRowsTest, MoveGivesTheSameCallAsACopy) {
  milvuspb::InsertRequest copied;
  CopyRowsInto("db1", "c1", Source(), &copied);
  msgpb::InsertRequest batch = Source();
  milvuspb::InsertRequest moved;
  MoveRowsInto("db1", "c1", std::move(batch), &moved);
  ExpectUserColumns(moved);
  EXPECT_EQ(moved.SerializeAsString(), copied.SerializeAsString());
}

TEST(InsertRowsTest, UpsertCallHasTheSameColumns) {
  milvuspb::UpsertRequest req;
  MoveRowsInto("db1", "c1", Source(), &req);
  ASSERT_EQ(req.fields_data_size(), 3);
  EXPECT_EQ(req.num_rows(), 2u);
  EXPECT_EQ(req.fields_data(1).vectors().dim(), 2);
}

}  // namespace
}  // namespace cdc::target

namespace cdc::target {
namespace {

TEST(IsRetriableTest, OutagesAndAStartingTargetAreRetriedBadRequestsAreNot) {
  EXPECT_TRUE(IsRetriable(Status(StatusCode::kUnavailable, "Insert on t:19530: unavailable")));
  EXPECT_TRUE(IsRetriable(Status(StatusCode::kDeadlineExceeded, "deadline exceeded")));
  // What a 2.3.5 target answered right after its restart (code 65535, UnexpectedError).
  EXPECT_TRUE(IsRetriable(Status(StatusCode::kInternal,
                                 "Insert on 127.0.0.1:21630 failed: empty grpc client: failed to connect "
                                 "127.0.0.1:24200, reason: connection error: desc = \"transport: error while "
                                 "dialing: dial tcp 127.0.0.1:24200: connect: connection refused\" (code 65535)")));
  EXPECT_FALSE(IsRetriable(Status(StatusCode::kInvalidArgument, "Insert failed: the dim of vec is 8, not 16")));
  EXPECT_FALSE(IsRetriable(Status(StatusCode::kInternal, "Insert failed: some unexpected bug (code 65535)")));
}

}  // namespace
}  // namespace cdc::target
