// AppendRows: consecutive inserts of one collection become one target call.
#include "pipeline/change_applier.h"

#include <gtest/gtest.h>

namespace cdc::pipeline {
namespace {

namespace msgpb = milvus::proto::msg;
namespace schemapb = milvus::proto::schema;

msgpb::InsertRequest Rows(std::vector<int64_t> pks, int dim = 2) {
  msgpb::InsertRequest r;
  r.set_num_rows(pks.size());
  auto* pk = r.add_fields_data();
  pk->set_field_name("pk");
  pk->set_type(schemapb::DataType::Int64);
  auto* vec = r.add_fields_data();
  vec->set_field_name("vec");
  vec->set_type(schemapb::DataType::FloatVector);
  vec->mutable_vectors()->set_dim(dim);
  auto* bin = r.add_fields_data();
  bin->set_field_name("bits");
  bin->set_type(schemapb::DataType::BinaryVector);
  bin->mutable_vectors()->set_dim(8);
  auto* js = r.add_fields_data();
  js->set_field_name("$meta");
  js->set_type(schemapb::DataType::JSON);
  js->set_is_dynamic(true);
  for (int64_t p : pks) {
    pk->mutable_scalars()->mutable_long_data()->add_data(p);
    for (int d = 0; d < dim; ++d) vec->mutable_vectors()->mutable_float_vector()->add_data(static_cast<float>(p));
    bin->mutable_vectors()->mutable_binary_vector()->push_back(static_cast<char>(p));
    js->mutable_scalars()->mutable_json_data()->add_data("{\"p\":" + std::to_string(p) + "}");
    r.add_timestamps(100);
  }
  return r;
}

TEST(AppendRowsTest, ConcatenatesEveryColumn) {
  auto a = Rows({1, 2});
  ASSERT_TRUE(AppendRows(&a, Rows({3})));
  EXPECT_EQ(a.num_rows(), 3u);
  EXPECT_EQ(a.fields_data(0).scalars().long_data().data_size(), 3);
  EXPECT_EQ(a.fields_data(0).scalars().long_data().data(2), 3);
  EXPECT_EQ(a.fields_data(1).vectors().float_vector().data_size(), 6);
  EXPECT_EQ(a.fields_data(1).vectors().dim(), 2);
  EXPECT_EQ(a.fields_data(2).vectors().binary_vector(), std::string("\x01\x02\x03"));
  EXPECT_EQ(a.fields_data(3).scalars().json_data().data(2), "{\"p\":3}");
  EXPECT_EQ(a.timestamps_size(), 3);
}

TEST(AppendRowsTest, RefusesDifferentShapesAndLeavesTheBatchAlone) {
  auto a = Rows({1});
  const std::string before = a.SerializeAsString();
  EXPECT_FALSE(AppendRows(&a, Rows({2}, /*dim=*/4)));
  auto other = Rows({2});
  other.mutable_fields_data(0)->set_field_name("id");
  EXPECT_FALSE(AppendRows(&a, other));
  other = Rows({2});
  other.mutable_fields_data()->RemoveLast();
  EXPECT_FALSE(AppendRows(&a, other));
  EXPECT_EQ(a.SerializeAsString(), before);
}

}  // namespace
}  // namespace cdc::pipeline
