// SchemaDifference: how an existing target collection is compared with the source's schema,
// including a target that does not report an ARRAY<VARCHAR>'s element max_length (milvus-lite 3.2.2).
#include <gtest/gtest.h>

#include "target/milvus_applier.h"

namespace cdc::target {
namespace {

namespace schemapb = milvus::proto::schema;

void Param(schemapb::FieldSchema* f, const std::string& key, const std::string& value) {
  auto* kv = f->add_type_params();
  kv->set_key(key);
  kv->set_value(value);
}

// pk INT64, vec FLOAT_VECTOR(dim 4), tags ARRAY<VARCHAR>(max_capacity 4, max_length `len`; none if
// empty); field ids 100.. as a Milvus reports them, or all 0 (ids = false)
schemapb::CollectionSchema Schema(const std::string& len, bool ids = true) {
  const int64_t first_id = ids ? 100 : 0;
  const int64_t step = ids ? 1 : 0;
  schemapb::CollectionSchema s;
  auto* pk = s.add_fields();
  pk->set_fieldid(first_id);
  pk->set_name("pk");
  pk->set_data_type(schemapb::DataType::Int64);
  pk->set_is_primary_key(true);
  auto* vec = s.add_fields();
  vec->set_fieldid(first_id + step);
  vec->set_name("vec");
  vec->set_data_type(schemapb::DataType::FloatVector);
  Param(vec, "dim", "4");
  auto* tags = s.add_fields();
  tags->set_fieldid(first_id + 2 * step);
  tags->set_name("tags");
  tags->set_data_type(schemapb::DataType::Array);
  tags->set_element_type(schemapb::DataType::VarChar);
  Param(tags, "max_capacity", "4");
  if (!len.empty()) Param(tags, "max_length", len);
  return s;
}

TEST(SchemaDifferenceTest, EqualSchemasMatch) { EXPECT_EQ(SchemaDifference(Schema("10"), Schema("10")), ""); }

TEST(SchemaDifferenceTest, AnArrayElementLengthTheTargetDoesNotReportIsNoDifference) {
  EXPECT_EQ(SchemaDifference(Schema("10"), Schema("")), "");
  EXPECT_EQ(SchemaDifference(Schema("10"), Schema("", false)), "");
}

TEST(SchemaDifferenceTest, AReportedArrayElementLengthMustBeEqual) {
  EXPECT_EQ(SchemaDifference(Schema("10"), Schema("12")),
            "field 'tags' is Array(max_length=10)(max_capacity=4)<VarChar> on the source and "
            "Array(max_length=12)(max_capacity=4)<VarChar> on the target");
}

TEST(SchemaDifferenceTest, OtherParametersAreStillCompared) {
  auto target = Schema("");
  target.mutable_fields(1)->mutable_type_params(0)->set_value("8");
  EXPECT_EQ(SchemaDifference(Schema("10"), target),
            "field 'vec' is FloatVector(dim=4) on the source and FloatVector(dim=8) on the target");
}

}  // namespace
}  // namespace cdc::target
