// Helpers shared by the Pulsar reader tests that run against the fake broker.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "pulsar_fake_broker.h"
#include "source/pulsar_id.h"
#include "source/pulsar_reader.h"

namespace cdc::source::testing {

inline int64_t Off(int64_t ledger, int64_t entry, int32_t batch = 0) {
  return *PackPulsarId({ledger, entry, batch, 0});
}

// A topic on ledger 3 holding "msg-0" ... "msg-<n-1>".
inline std::shared_ptr<FakeTopic> TopicWith(int n, bool batched = true) {
  auto t = std::make_shared<FakeTopic>(3);
  for (int i = 0; i < n; ++i) t->Append("msg-" + std::to_string(i), batched);
  return t;
}

// Reads until `n` messages arrived or 10 s passed.
inline std::vector<RawMessage> ReadN(PulsarChannelReader& r, size_t n) {
  std::vector<RawMessage> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    auto m = r.Poll(100);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (!m.ok()) break;
    if (*m) out.push_back(std::move(**m));
  }
  return out;
}

// Entries first..last of a TopicWith() topic of channel by-dev-rootcoord-dml_0, in order.
inline void ExpectEntries(const std::vector<RawMessage>& got, int first, int last) {
  ASSERT_EQ(got.size(), static_cast<size_t>(last - first + 1));
  for (int i = first; i <= last; ++i) {
    const auto& m = got[i - first];
    EXPECT_EQ(m.offset, Off(3, i)) << "entry " << i;
    EXPECT_EQ(m.payload, "msg-" + std::to_string(i));
    EXPECT_EQ(m.topic, "by-dev-rootcoord-dml_0");
    EXPECT_EQ(m.timestamp_ms, 1700000000000 + i);
  }
}

}  // namespace cdc::source::testing
