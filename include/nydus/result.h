// Error values shared by every layer of nydus-cpp.
//
// Functions that can fail return Result<T>: either a T or an Error. An Error
// carries a small, stable ErrorCode (what kind of failure, for callers that
// branch on it and for the API's "code" field) and a human-readable message
// (what went wrong, naming the offending key, path or value). Exceptions from
// third-party libraries are caught where those libraries are called and turned
// into Errors; none cross a public header.
//
// Thread-safety: plain values, safe to copy and move between threads.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace nydus {

// The classes of failure. Kept short on purpose: each maps to one HTTP status
// family (see api/error.h) and one errno (see errno_of).
enum class ErrorCode {
  kInvalidArgument,  // caller supplied something malformed or out of range
  kNotFound,         // the named object does not exist
  kAlreadyExists,    // the named object exists already
  kNotReady,         // the service is not in a state to do this yet
  kUnsupported,      // this build or daemon kind cannot do this
  kUnexpectedEvent,  // state machine input not legal in the current state
  kIo,               // an operating-system call failed
  kCorrupt,          // data read from an image or blob is inconsistent
  kInternal,         // a bug or an impossible condition
};

// Stable identifier of a code, e.g. "InvalidArgument". Used on the wire.
std::string_view to_string(ErrorCode code);

// The errno a filesystem operation should report for this code.
int errno_of(ErrorCode code);

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "<Code>: <message>", for logs.
  std::string to_string() const;

  // Returns a copy whose message is "<context>: <message>".
  Error with_context(std::string_view context) const;

  bool operator==(const Error&) const = default;

 private:
  ErrorCode code_;
  std::string message_;
};

template <class T, class E = Error>
using Result = tl::expected<T, E>;

// Shorthand for returning an error: `return fail(ErrorCode::kNotFound, "…");`
inline tl::unexpected<Error> fail(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error(code, std::move(message)));
}

// An Error from the current errno (or `err`), e.g. "open /x: No such file or directory".
Error os_error(std::string_view what, int err);

}  // namespace nydus
