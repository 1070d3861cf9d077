// The daemon state machine (contract §5).
//
//   Init    --Mount-->    Ready               (start-up, before the API is up)
//   Init    --Takeover--> Ready   [Restore]   (live upgrade / failover)
//   Init    --Stop-->     Stopped
//   Ready   --Start-->    Running [start workers]
//   Ready   --Stop-->     Stopped [umount]
//   Ready   --Exit-->     Stopped             (PUT /daemon/exit: FUSE stays mounted)
//   Running --Stop-->     Ready   [stop workers]
// Any other pair fails with UnexpectedEvent("<Input>") and changes nothing.
//
// Unlike upstream (§10 #15) a transition is transactional: its action runs
// first and the state moves only if the action succeeds, so the reported state
// is always the machine's state.
//
// Thread-safety: all methods may be called concurrently; fire() serialises
// transitions (actions run under the machine's lock, so they must not call
// back into it).
#pragma once

#include <functional>
#include <mutex>
#include <string_view>

#include "nydus/result.h"

namespace nydus::daemon {

enum class DaemonState { kInit = 1, kRunning = 2, kReady = 3, kStopped = 4, kUnknown = 5 };
enum class StateInput { kMount, kTakeover, kStart, kStop, kExit };

std::string_view to_string(DaemonState s);  // "INIT", "RUNNING", …
std::string_view to_string(StateInput i);   // "Mount", "Takeover", …

class StateMachine {
 public:
  // The work a transition does; its failure leaves the state unchanged.
  using Action = std::function<Result<void>(StateInput input, DaemonState from, DaemonState to)>;

  explicit StateMachine(Action action = nullptr, DaemonState initial = DaemonState::kInit)
      : action_(std::move(action)), state_(initial) {}

  // Errors: kUnexpectedEvent (message is the input's name) when the input is
  // not legal now; the action's error when it fails.
  Result<DaemonState> fire(StateInput input);

  DaemonState state() const;

 private:
  Action action_;
  mutable std::mutex mu_;
  DaemonState state_;  // guarded by mu_
};

}  // namespace nydus::daemon
