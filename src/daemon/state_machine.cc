#include "nydus/daemon/state_machine.h"

#include <optional>

namespace nydus::daemon {
namespace {

std::optional<DaemonState> next_state(DaemonState from, StateInput in) {
  using S = DaemonState;
  using I = StateInput;
  switch (from) {
    case S::kInit:
      if (in == I::kMount || in == I::kTakeover) return S::kReady;
      if (in == I::kStop) return S::kStopped;
      break;
    case S::kReady:
      if (in == I::kStart) return S::kRunning;
      if (in == I::kStop || in == I::kExit) return S::kStopped;
      break;
    case S::kRunning:
      if (in == I::kStop) return S::kReady;
      break;
    default:
      break;
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(DaemonState s) {
  switch (s) {
    case DaemonState::kInit: return "INIT";
    case DaemonState::kRunning: return "RUNNING";
    case DaemonState::kReady: return "READY";
    case DaemonState::kStopped: return "STOPPED";
    case DaemonState::kUnknown: return "UNKNOWN";
  }
  return "UNKNOWN";
}

std::string_view to_string(StateInput i) {
  switch (i) {
    case StateInput::kMount: return "Mount";
    case StateInput::kTakeover: return "Takeover";
    case StateInput::kStart: return "Start";
    case StateInput::kStop: return "Stop";
    case StateInput::kExit: return "Exit";
  }
  return "Unknown";
}

Result<DaemonState> StateMachine::fire(StateInput input) {
  std::lock_guard<std::mutex> lock(mu_);
  auto to = next_state(state_, input);
  if (!to) return fail(ErrorCode::kUnexpectedEvent, std::string(to_string(input)));
  if (action_) {
    if (auto r = action_(input, state_, *to); !r) return tl::unexpected(r.error());
  }
  state_ = *to;
  return state_;
}

DaemonState StateMachine::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

}  // namespace nydus::daemon
