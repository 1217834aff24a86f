// PulsarChannelReader end to end against the in-process fake broker (pulsar_fake_broker.h):
// start semantics, gap detection, reconnects, CLOSE_CONSUMER, lookup redirects, keepalive.
#include <gtest/gtest.h>

#include <thread>

#include "pulsar_fake_broker.h"
#include "pulsar_test_util.h"
#include "source/pulsar_id.h"
#include "source/pulsar_reader.h"

namespace cdc::source {
namespace {

using testing::FakeBroker;
using testing::FakeTopic;
using testing::ExpectEntries;
using testing::Off;
using testing::ReadN;
using testing::TopicWith;


PulsarReaderConfig Config(const FakeBroker& b) {
  PulsarReaderConfig c;
  c.service_url = b.url();
  c.operation_timeout = std::chrono::milliseconds(2000);
  c.backoff_max = std::chrono::milliseconds(200);
  c.receiver_queue = 4;  // small: FLOW top-ups happen often
  return c;
}




TEST(PulsarReader, StartsAtOffsetInclusiveAndDropsBefore) {
  FakeBroker broker(TopicWith(6));
  auto r = PulsarChannelReader::Open(Config(broker), "by-dev-rootcoord-dml_0", StartAt::Offset(Off(3, 2)));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectEntries(ReadN(**r, 4), 2, 5);
  EXPECT_EQ((*r)->next_offset(), Off(3, 5) + 1);
  auto hw = (*r)->HighWatermark(2000);
  ASSERT_TRUE(hw.ok()) << hw.status().ToString();
  EXPECT_EQ(*hw, Off(3, 5) + 1);
  ASSERT_EQ(broker.SubscribeStarts().size(), 1u);
  EXPECT_EQ(broker.SubscribeStarts()[0], std::make_pair(int64_t{3}, int64_t{2}));
  EXPECT_EQ(broker.SubscribeBatchIndexes()[0], 0);  // always >= 0
  EXPECT_TRUE((*r)->last_error().empty());
  EXPECT_LT((*r)->SinceLastContact().count(), 5000);

  // "Just after" entry 2: the broker delivers entry 2 again, the reader drops it.
  auto r2 = PulsarChannelReader::Open(Config(broker), "by-dev-rootcoord-dml_0", StartAt::Offset(Off(3, 2) + 1));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  ExpectEntries(ReadN(**r2, 3), 3, 5);
  EXPECT_EQ(broker.SubscribeStarts()[1], std::make_pair(int64_t{3}, int64_t{2}));
  EXPECT_EQ(broker.SubscribeBatchIndexes()[1], 1);
}

TEST(PulsarReader, PlainMessagesAsMilvus25Writes) {
  FakeBroker broker(TopicWith(3, /*batched=*/false));
  auto r = PulsarChannelReader::Open(Config(broker), "by-dev-rootcoord-dml_0", StartAt::Earliest());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectEntries(ReadN(**r, 3), 0, 2);
  EXPECT_EQ(broker.SubscribeStarts()[0], std::make_pair(int64_t{-1}, int64_t{-1}));
}

TEST(PulsarReader, GapIsDetected) {
  auto topic = TopicWith(5);
  topic->Trim(3);  // entries 0..2 are gone
  FakeBroker broker(topic);
  auto r = PulsarChannelReader::Open(Config(broker), "by-dev-rootcoord-dml_0", StartAt::Offset(Off(3, 1)));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  StatusOr<std::optional<RawMessage>> m = std::optional<RawMessage>();
  for (int i = 0; i < 50 && m.ok() && !*m; ++i) m = (*r)->Poll(100);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(m.status().message().find("ledger 3 entry 1 of topic persistent://public/default/by-dev-rootcoord-dml_0 is gone"),
            std::string::npos)
      << m.status().message();
  EXPECT_NE(m.status().message().find("first available is ledger 3 entry 3"), std::string::npos);
  EXPECT_FALSE((*r)->Poll(10).ok());  // final
}

TEST(PulsarReader, ReconnectResumesJustAfterTheLastMessage) {
  FakeBroker broker(TopicWith(10));
  broker.drop_after = 3;
  auto r = PulsarChannelReader::Open(Config(broker), "by-dev-rootcoord-dml_0", StartAt::Earliest());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectEntries(ReadN(**r, 10), 0, 9);  // no loss, no double
  EXPECT_GE(broker.connections.load(), 2);
  const auto starts = broker.SubscribeStarts();
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_EQ(starts[1], std::make_pair(int64_t{3}, int64_t{2}));  // just after entry 2, batch index 1
  EXPECT_EQ(broker.SubscribeBatchIndexes()[1], 1);
}

TEST(PulsarReader, OutageShowsInLastErrorThenHeals) {
  auto topic = TopicWith(2);
  FakeBroker broker(topic);
  auto r = PulsarChannelReader::Open(Config(broker), "by-dev-rootcoord-dml_0", StartAt::Earliest());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectEntries(ReadN(**r, 2), 0, 1);
  broker.refuse = true;
  broker.drop_after = 1;
  topic->Append("msg-2");  // delivered, then the link drops; reconnects are refused
  auto first = ReadN(**r, 1);
  ASSERT_EQ(first.size(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (int i = 0; i < 5; ++i) {
    auto m = (*r)->Poll(100);
    ASSERT_TRUE(m.ok()) << m.status().ToString();  // an outage is not an error
    EXPECT_FALSE(*m);
  }
  EXPECT_FALSE((*r)->last_error().empty());
  EXPECT_GE((*r)->SinceLastContact().count(), 300);
  EXPECT_FALSE((*r)->HighWatermark(100).ok());
  topic->Append("msg-3");
  broker.refuse = false;
  auto rest = ReadN(**r, 1);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].offset, Off(3, 3));
  EXPECT_TRUE((*r)->last_error().empty());
}

TEST(PulsarReader, CloseConsumerResubscribes) {
  FakeBroker broker(TopicWith(8));
  broker.close_consumer_after = 5;
  auto r = PulsarChannelReader::Open(Config(broker), "by-dev-rootcoord-dml_0", StartAt::Offset(Off(3, 1)));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectEntries(ReadN(**r, 7), 1, 7);
  EXPECT_EQ(broker.subscribes.load(), 2);
  EXPECT_GE(broker.lookups.load(), 2);  // looked up again
}

TEST(PulsarReader, FollowsLookupRedirect) {
  auto topic = TopicWith(3);
  FakeBroker owner(topic);
  FakeBroker front(topic);
  front.redirect_to = owner.url();
  PulsarReaderConfig c = Config(front);
  c.auth_plugin = "token";
  c.auth_params = "token:jwt-abc";
  auto r = PulsarChannelReader::Open(c, "by-dev-rootcoord-dml_0", StartAt::Offset(Off(3, 0)));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectEntries(ReadN(**r, 3), 0, 2);
  EXPECT_EQ(front.lookups.load(), 1);
  EXPECT_EQ(owner.lookups.load(), 1);
  EXPECT_EQ(front.subscribes.load(), 0);
  EXPECT_EQ(owner.subscribes.load(), 1);
  EXPECT_EQ(owner.LastAuthData(), "jwt-abc");
}

TEST(PulsarReader, LatestReadsOnlyNewMessages) {
  auto topic = TopicWith(3);
  FakeBroker broker(topic);
  auto r = PulsarChannelReader::Open(Config(broker), "by-dev-rootcoord-dml_0", StartAt::Latest());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto none = (*r)->Poll(200);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);
  EXPECT_EQ((*r)->next_offset(), Off(3, 2) + 1);  // pinned just after the last message at Open
  topic->Append("msg-3");
  ExpectEntries(ReadN(**r, 1), 3, 3);
}

TEST(PulsarReader, MissingPongIsADeadLink) {
  auto topic = TopicWith(1);
  FakeBroker broker(topic);
  broker.answer_ping = false;
  PulsarReaderConfig c = Config(broker);
  c.keepalive = std::chrono::milliseconds(150);
  auto r = PulsarChannelReader::Open(c, "by-dev-rootcoord-dml_0", StartAt::Earliest());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectEntries(ReadN(**r, 1), 0, 0);
  bool saw = false;
  for (int i = 0; i < 30 && !saw; ++i) {
    ASSERT_TRUE((*r)->Poll(50).ok());
    saw = (*r)->last_error().find("no PONG") != std::string::npos || broker.subscribes.load() > 1;
  }
  EXPECT_TRUE(saw);
  topic->Append("msg-1");
  broker.answer_ping = true;
  ExpectEntries(ReadN(**r, 1), 1, 1);  // resumed after entry 0
}

TEST(PulsarReader, EndOfTopicIsFinal) {
  FakeBroker broker(TopicWith(1));
  broker.end_of_topic = true;
  auto r = PulsarChannelReader::Open(Config(broker), "by-dev-rootcoord-dml_0", StartAt::Earliest());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  StatusOr<std::optional<RawMessage>> m = std::optional<RawMessage>();
  int got = 0;
  for (int i = 0; i < 50 && m.ok(); ++i) {
    m = (*r)->Poll(100);
    if (m.ok() && *m) ++got;
  }
  EXPECT_EQ(got, 1);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("reached its end"), std::string::npos);
}

TEST(PulsarReader, OpenErrors) {
  PulsarReaderConfig c;
  c.service_url = "http://nope";
  EXPECT_EQ(PulsarChannelReader::Open(c, "ch", StartAt::Earliest()).status().code(), StatusCode::kInvalidArgument);
  c.service_url = "pulsar://127.0.0.1:1";
  c.operation_timeout = std::chrono::milliseconds(500);
  EXPECT_EQ(PulsarChannelReader::Open(c, "ch", StartAt::Earliest()).status().code(), StatusCode::kUnavailable);
  c.auth_plugin = "token";
  c.auth_params = "";
  EXPECT_EQ(PulsarChannelReader::Open(c, "ch", StartAt::Earliest()).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cdc::source
