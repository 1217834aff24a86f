#include "util/log.h"

#include <gtest/gtest.h>

namespace cdc {
namespace {

// Restores the default level so other tests see "info".
class LogTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_TRUE(SetLogLevel("info")); }
};

TEST_F(LogTest, GetLoggerReturnsOneNamedLoggerPerModule) {
  auto a = GetLogger("unit-a");
  auto again = GetLogger("unit-a");
  auto b = GetLogger("unit-b");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a.get(), again.get());
  EXPECT_NE(a.get(), b.get());
  EXPECT_EQ(a->name(), "unit-a");
}

TEST_F(LogTest, SetLogLevelAppliesToExistingAndFutureLoggers) {
  auto existing = GetLogger("unit-existing");
  ASSERT_TRUE(SetLogLevel("debug"));
  EXPECT_EQ(existing->level(), spdlog::level::debug);
  EXPECT_EQ(GetLogger("unit-future")->level(), spdlog::level::debug);
  ASSERT_TRUE(SetLogLevel("error"));
  EXPECT_EQ(existing->level(), spdlog::level::err);
}

TEST_F(LogTest, UnknownLevelIsRejectedAndChangesNothing) {
  auto logger = GetLogger("unit-unknown");
  ASSERT_TRUE(SetLogLevel("warn"));
  EXPECT_FALSE(SetLogLevel("loud"));
  EXPECT_FALSE(SetLogLevel(""));
  EXPECT_EQ(logger->level(), spdlog::level::warn);
  EXPECT_TRUE(SetLogLevel("off"));
  EXPECT_EQ(logger->level(), spdlog::level::off);
}

}  // namespace
}  // namespace cdc
