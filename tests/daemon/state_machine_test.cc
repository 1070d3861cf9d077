#include "nydus/daemon/state_machine.h"

#include <gtest/gtest.h>

namespace nydus::daemon {
namespace {

using S = DaemonState;
using I = StateInput;

TEST(StateMachineTest, TransitionTableOfContract) {
  struct Row {
    S from;
    I in;
    std::optional<S> to;
  };
  const Row rows[] = {
      {S::kInit, I::kMount, S::kReady},       {S::kInit, I::kTakeover, S::kReady}, {S::kInit, I::kStop, S::kStopped},
      {S::kInit, I::kStart, std::nullopt},    {S::kInit, I::kExit, std::nullopt},  {S::kReady, I::kStart, S::kRunning},
      {S::kReady, I::kStop, S::kStopped},     {S::kReady, I::kExit, S::kStopped},  {S::kReady, I::kTakeover, std::nullopt},
      {S::kReady, I::kMount, std::nullopt},   {S::kRunning, I::kStop, S::kReady},  {S::kRunning, I::kStart, std::nullopt},
      {S::kRunning, I::kExit, std::nullopt},  {S::kRunning, I::kTakeover, std::nullopt},
      {S::kStopped, I::kStart, std::nullopt}, {S::kStopped, I::kStop, std::nullopt},
  };
  for (const Row& row : rows) {
    StateMachine m(nullptr, row.from);
    auto r = m.fire(row.in);
    if (row.to) {
      ASSERT_TRUE(r) << to_string(row.from) << " + " << to_string(row.in);
      EXPECT_EQ(*r, *row.to);
      EXPECT_EQ(m.state(), *row.to);
    } else {
      ASSERT_FALSE(r) << to_string(row.from) << " + " << to_string(row.in);
      EXPECT_EQ(r.error().code(), ErrorCode::kUnexpectedEvent);
      EXPECT_EQ(r.error().message(), to_string(row.in));
      EXPECT_EQ(m.state(), row.from);
    }
  }
}

TEST(StateMachineTest, FailedActionLeavesStateUnchanged) {
  int calls = 0;
  StateMachine m([&](I in, S from, S to) -> Result<void> {
    ++calls;
    EXPECT_EQ(in, I::kTakeover);
    EXPECT_EQ(from, S::kInit);
    EXPECT_EQ(to, S::kReady);
    return fail(ErrorCode::kInternal, "MissingSupervisorPath");
  });
  auto r = m.fire(I::kTakeover);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "MissingSupervisorPath");
  EXPECT_EQ(m.state(), S::kInit);  // upstream would be Ready here while reporting INIT (§10 #15)
  EXPECT_EQ(calls, 1);
  // A second takeover is judged from INIT again, not rejected as UnexpectedEvent.
  EXPECT_EQ(m.fire(I::kTakeover).error().message(), "MissingSupervisorPath");
  EXPECT_FALSE(m.fire(I::kStart));
}

TEST(StateMachineTest, StateNames) {
  EXPECT_EQ(to_string(S::kInit), "INIT");
  EXPECT_EQ(to_string(S::kReady), "READY");
  EXPECT_EQ(to_string(S::kRunning), "RUNNING");
  EXPECT_EQ(to_string(S::kStopped), "STOPPED");
  EXPECT_EQ(to_string(S::kUnknown), "UNKNOWN");
}

}  // namespace
}  // namespace nydus::daemon
