// Canonical row comparison: every field type Milvus 2.3 has, at its width, bit for bit where
// replication copies bits, JSON as parsed JSON.
#include "verify/row_compare.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace cdc::verify {
namespace {

namespace schemapb = milvus::proto::schema;

schemapb::FieldData Column(const std::string& name, schemapb::DataType type) {
  schemapb::FieldData f;
  f.set_field_name(name);
  f.set_type(type);
  return f;
}

schemapb::FieldData Ints(schemapb::DataType type, std::vector<int32_t> v) {
  auto f = Column("i", type);
  for (int32_t x : v) f.mutable_scalars()->mutable_int_data()->add_data(x);
  return f;
}

schemapb::FieldData Floats(std::vector<float> v) {
  auto f = Column("f", schemapb::Float);
  for (float x : v) f.mutable_scalars()->mutable_float_data()->add_data(x);
  return f;
}

schemapb::FieldData Doubles(std::vector<double> v) {
  auto f = Column("d", schemapb::Double);
  for (double x : v) f.mutable_scalars()->mutable_double_data()->add_data(x);
  return f;
}

schemapb::FieldData Jsons(const std::string& name, std::vector<std::string> v, bool dynamic = false) {
  auto f = Column(name, schemapb::JSON);
  f.set_is_dynamic(dynamic);
  for (auto& x : v) f.mutable_scalars()->mutable_json_data()->add_data(x);
  return f;
}

schemapb::FieldData FloatVectors(int dim, std::vector<float> v) {
  auto f = Column("fv", schemapb::FloatVector);
  f.mutable_vectors()->set_dim(dim);
  for (float x : v) f.mutable_vectors()->mutable_float_vector()->add_data(x);
  return f;
}

schemapb::FieldData BinaryVectors(int dim, const std::string& bytes) {
  auto f = Column("bv", schemapb::BinaryVector);
  f.mutable_vectors()->set_dim(dim);
  f.mutable_vectors()->set_binary_vector(bytes);
  return f;
}

// An ARRAY column whose rows hold these int64 lists.
schemapb::FieldData LongArrays(std::vector<std::vector<int64_t>> rows) {
  auto f = Column("arr", schemapb::Array);
  auto* arrays = f.mutable_scalars()->mutable_array_data();
  arrays->set_element_type(schemapb::Int64);
  for (const auto& row : rows) {
    auto* element = arrays->add_data()->mutable_long_data();
    for (int64_t x : row) element->add_data(x);
  }
  return f;
}

schemapb::FieldData StringArrays(std::vector<std::vector<std::string>> rows) {
  auto f = Column("sarr", schemapb::Array);
  auto* arrays = f.mutable_scalars()->mutable_array_data();
  arrays->set_element_type(schemapb::VarChar);
  for (const auto& row : rows) {
    auto* element = arrays->add_data()->mutable_string_data();
    for (const auto& x : row) element->add_data(x);
  }
  return f;
}

TEST(RowCompareTest, BoolsAndInt64s) {
  auto b = Column("b", schemapb::Bool);
  for (bool x : {true, false, true}) b.mutable_scalars()->mutable_bool_data()->add_data(x);
  EXPECT_TRUE(SameValue(b, 0, b, 2));
  EXPECT_FALSE(SameValue(b, 0, b, 1));
  auto l = Column("l", schemapb::Int64);
  for (int64_t x : {std::numeric_limits<int64_t>::min(), int64_t{7}, std::numeric_limits<int64_t>::min()}) {
    l.mutable_scalars()->mutable_long_data()->add_data(x);
  }
  EXPECT_TRUE(SameValue(l, 0, l, 2));
  EXPECT_FALSE(SameValue(l, 0, l, 1));
}

TEST(RowCompareTest, NarrowIntegersCompareAtTheirWidth) {
  // Int8/Int16 travel widened to int32: only the declared width is the value.
  auto i8 = Ints(schemapb::Int8, {1, 257, -1, 255, 2});
  EXPECT_TRUE(SameValue(i8, 0, i8, 1));
  EXPECT_TRUE(SameValue(i8, 2, i8, 3));
  EXPECT_FALSE(SameValue(i8, 0, i8, 4));
  auto i16 = Ints(schemapb::Int16, {-1, 65535, 3});
  EXPECT_TRUE(SameValue(i16, 0, i16, 1));
  EXPECT_FALSE(SameValue(i16, 0, i16, 2));
  auto i32 = Ints(schemapb::Int32, {1, 257});
  EXPECT_FALSE(SameValue(i32, 0, i32, 1));
}

TEST(RowCompareTest, FloatsAndDoublesBitForBit) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto f = Floats({0.0f, -0.0f, 1.5f, 1.5f, nan, nan});
  EXPECT_FALSE(SameValue(f, 0, f, 1)) << "-0.0 and 0.0 have different bits";
  EXPECT_TRUE(SameValue(f, 2, f, 3));
  EXPECT_TRUE(SameValue(f, 4, f, 5)) << "the same NaN bits are the same value";
  auto d = Doubles({0.1, 0.1 + 1e-18, 0.1000000000000001});
  EXPECT_TRUE(SameValue(d, 0, d, 1)) << "0.1 + 1e-18 rounds to 0.1";
  EXPECT_FALSE(SameValue(d, 0, d, 2));
}

TEST(RowCompareTest, VarCharsByteForByte) {
  auto s = Column("s", schemapb::VarChar);
  for (const char* x : {"abc", "abc", "abd", "", "ab\0c"}) s.mutable_scalars()->mutable_string_data()->add_data(x);
  s.mutable_scalars()->mutable_string_data()->set_data(4, std::string("ab\0c", 4));
  EXPECT_TRUE(SameValue(s, 0, s, 1));
  EXPECT_FALSE(SameValue(s, 0, s, 2));
  EXPECT_FALSE(SameValue(s, 3, s, 0));
  EXPECT_FALSE(SameValue(s, 4, s, 0));
}

TEST(RowCompareTest, JsonAsParsedJsonWhateverTheKeyOrder) {
  auto j = Jsons("j", {R"({"a":1,"b":{"x":[1,2],"y":"z"}})", R"({"b":{"y":"z","x":[1,2]},"a":1})",
                       R"({"a":1,"b":{"x":[2,1],"y":"z"}})", R"({"a":1.0,"b":{"x":[1,2],"y":"z"}})", "not json",
                       "not json", R"( {"a" : 1, "b":{"x":[1, 2],"y":"z"}} )"});
  EXPECT_TRUE(SameValue(j, 0, j, 1)) << "key order does not matter";
  EXPECT_FALSE(SameValue(j, 0, j, 2)) << "array order does";
  EXPECT_FALSE(SameValue(j, 0, j, 3)) << "1 and 1.0 stay different";
  EXPECT_TRUE(SameValue(j, 4, j, 5)) << "unparsable text compares as bytes";
  EXPECT_FALSE(SameValue(j, 4, j, 0));
  EXPECT_TRUE(SameValue(j, 0, j, 6)) << "whitespace does not matter";
}

TEST(RowCompareTest, DynamicFieldAsJson) {
  auto a = Jsons("$meta", {R"({"color":"red","n":3})"}, true);
  auto b = Jsons("$meta", {R"({"n":3,"color":"red"})", R"({"n":4,"color":"red"})"}, true);
  EXPECT_TRUE(SameValue(a, 0, b, 0));
  EXPECT_FALSE(SameValue(a, 0, b, 1));
}

TEST(RowCompareTest, ArraysElementByElement) {
  auto a = LongArrays({{1, 2, 3}, {1, 2, 3}, {1, 2}, {3, 2, 1}, {}});
  EXPECT_TRUE(SameValue(a, 0, a, 1));
  EXPECT_FALSE(SameValue(a, 0, a, 2));
  EXPECT_FALSE(SameValue(a, 0, a, 3));
  EXPECT_FALSE(SameValue(a, 4, a, 2));
  auto s = StringArrays({{"x", "yz"}, {"xy", "z"}, {"x", "yz"}});
  EXPECT_FALSE(SameValue(s, 0, s, 1)) << "elements are length-prefixed: no ambiguity";
  EXPECT_TRUE(SameValue(s, 0, s, 2));
}

TEST(RowCompareTest, FloatVectorsBitForBit) {
  auto v = FloatVectors(2, {1.0f, 0.0f, 1.0f, -0.0f, 1.0f, 0.0f, 0.5f, 0.25f});
  ASSERT_EQ(ColumnRows(v), 4u);
  EXPECT_FALSE(SameValue(v, 0, v, 1));
  EXPECT_TRUE(SameValue(v, 0, v, 2));
  EXPECT_FALSE(SameValue(v, 0, v, 3));
  auto other_dim = FloatVectors(4, {1.0f, 0.0f, 1.0f, 0.0f});
  EXPECT_FALSE(SameValue(v, 0, other_dim, 0));
}

TEST(RowCompareTest, BinaryVectorsByteForByte) {
  auto v = BinaryVectors(16, std::string("\x01\x02\x01\x02\x01\x03", 6));
  ASSERT_EQ(ColumnRows(v), 3u);
  EXPECT_TRUE(SameValue(v, 0, v, 1));
  EXPECT_FALSE(SameValue(v, 0, v, 2));
}

TEST(RowCompareTest, OutOfRangeRowsAndTypeMismatchesDiffer) {
  auto l = Column("l", schemapb::Int64);
  l.mutable_scalars()->mutable_long_data()->add_data(1);
  auto i = Ints(schemapb::Int32, {1});
  EXPECT_FALSE(SameValue(l, 0, i, 0));
  EXPECT_FALSE(SameValue(l, 0, l, 1));
  EXPECT_FALSE(SameValue(l, 5, l, 0));
  auto empty = Column("e", schemapb::FloatVector);
  EXPECT_EQ(ColumnRows(empty), 0u);
  EXPECT_FALSE(SameValue(empty, 0, empty, 0));
}

target::Page PageOf(std::vector<schemapb::FieldData> fields) {
  target::Page p;
  p.fields = std::move(fields);
  return p;
}

TEST(RowCompareTest, FirstDifferenceMatchesColumnsByName) {
  auto a = PageOf({Ints(schemapb::Int32, {5}), Jsons("j", {R"({"a":1,"b":2})"}), FloatVectors(2, {1, 2})});
  auto b = PageOf({FloatVectors(2, {1, 2}), Jsons("j", {R"({"b":2,"a":1})"}), Ints(schemapb::Int32, {5})});
  auto cols = MatchColumns(a, b);
  EXPECT_EQ(FirstDifference(a, 0, b, 0, cols), "");
  auto c = PageOf({FloatVectors(2, {1, 2.5}), Jsons("j", {R"({"b":2,"a":1})"}), Ints(schemapb::Int32, {5})});
  EXPECT_EQ(FirstDifference(a, 0, c, 0, MatchColumns(a, c)), "fv");
  auto missing = PageOf({Ints(schemapb::Int32, {5}), FloatVectors(2, {1, 2})});
  EXPECT_EQ(FirstDifference(a, 0, missing, 0, MatchColumns(a, missing)), "j") << "a column the target lacks";
}

TEST(RowCompareTest, FingerprintIgnoresColumnOrderAndFollowsValues) {
  auto a = PageOf({Ints(schemapb::Int32, {5}), Jsons("j", {R"({"a":1,"b":2})"})});
  auto b = PageOf({Jsons("j", {R"({"b":2,"a":1})"}), Ints(schemapb::Int32, {5})});
  auto c = PageOf({Jsons("j", {R"({"b":3,"a":1})"}), Ints(schemapb::Int32, {5})});
  EXPECT_EQ(RowFingerprint(a, 0), RowFingerprint(b, 0));
  EXPECT_NE(RowFingerprint(a, 0), RowFingerprint(c, 0));
}

}  // namespace
}  // namespace cdc::verify
