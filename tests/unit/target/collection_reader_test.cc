// CollectionReader::MaxKey on VARCHAR keys: the largest key found character by character with
// one-row probes, for ASCII, non-ASCII, prefixes of each other and escaped characters.
#include <gtest/gtest.h>

#include "fake_milvus.h"
#include "target/collection_reader.h"
#include "target/milvus_client.h"

namespace cdc::target {
namespace {

using testing::FakeMilvusServer;

class MaxVarcharKeyTest : public ::testing::Test {
 protected:
  std::optional<PkValue> MaxOf(std::vector<std::string> keys) {
    server_.service().set_keys(std::move(keys));
    ConnectParams p;
    p.uri = "http://" + server_.address();
    p.connect_timeout_s = 5;
    auto client = MilvusClient::Connect(p);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(*client);
    CollectionReader reader(client_.get(), "db", "c", "pk", /*varchar_pk=*/true);
    auto max = reader.MaxKey(ReadOptions{});
    EXPECT_TRUE(max.ok()) << max.status().ToString();
    return max.ok() ? *max : std::nullopt;
  }

  FakeMilvusServer server_;
  std::unique_ptr<MilvusClient> client_;
};

TEST_F(MaxVarcharKeyTest, EmptyCollectionHasNone) { EXPECT_FALSE(MaxOf({}).has_value()); }

TEST_F(MaxVarcharKeyTest, AsciiKeysInFewProbes) {
  std::vector<std::string> keys;
  for (int i = 0; i < 5000; ++i) keys.push_back("k" + std::to_string(100000 + i * 7));
  const std::string expected = *std::max_element(keys.begin(), keys.end());
  EXPECT_EQ(MaxOf(keys), PkValue(expected));
  // Per character: one "longer?" probe, one "non-ASCII?" probe and 7 halvings; plus the first read.
  EXPECT_LE(server_.service().queries(), 2 + static_cast<int>(expected.size() + 1) * 9);
}

TEST_F(MaxVarcharKeyTest, PrefixesNonAsciiAndEscapes) {
  EXPECT_EQ(MaxOf({"a", "ab", "abc"}), PkValue(std::string("abc")));
  EXPECT_EQ(MaxOf({"abc", "abd", "ab\xc3\xa9"}), PkValue(std::string("ab\xc3\xa9")));    // é > d
  EXPECT_EQ(MaxOf({"x", "\xe6\x97\xa5\xe6\x9c\xac", "z"}), PkValue(std::string("\xe6\x97\xa5\xe6\x9c\xac")));
  EXPECT_EQ(MaxOf({"\xf0\x9f\x98\x80", "\xef\xbf\xbf"}), PkValue(std::string("\xf0\x9f\x98\x80")));  // beyond BMP
  EXPECT_EQ(MaxOf({"q\"uote", "q\\back", "q\nline"}), PkValue(std::string("q\\back")));
  EXPECT_EQ(MaxOf({"only"}), PkValue(std::string("only")));
}

TEST_F(MaxVarcharKeyTest, GrowingKeysGiveACeilingAndTheSearchEnds) {
  server_.service().grow_each_query("k");  // "k00000001", "k00000002", … one per probe
  std::vector<std::string> keys = {"a1", "j9", "k00000000"};
  auto max = MaxOf(keys);
  ASSERT_TRUE(max.has_value());
  EXPECT_GE(std::get<std::string>(*max), "k00000000") << "below a key held throughout";
  EXPECT_LT(server_.service().queries(), 200);
}

}  // namespace
}  // namespace cdc::target
