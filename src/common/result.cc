#include "nydus/result.h"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace nydus {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "InvalidArgument";
    case ErrorCode::kNotFound: return "NotFound";
    case ErrorCode::kAlreadyExists: return "AlreadyExists";
    case ErrorCode::kNotReady: return "NotReady";
    case ErrorCode::kUnsupported: return "Unsupported";
    case ErrorCode::kUnexpectedEvent: return "UnexpectedEvent";
    case ErrorCode::kIo: return "IoError";
    case ErrorCode::kCorrupt: return "Corrupt";
    case ErrorCode::kInternal: return "Internal";
  }
  return "Internal";
}

int errno_of(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return EINVAL;
    case ErrorCode::kNotFound: return ENOENT;
    case ErrorCode::kAlreadyExists: return EEXIST;
    case ErrorCode::kNotReady: return EAGAIN;
    case ErrorCode::kUnsupported: return ENOSYS;
    case ErrorCode::kUnexpectedEvent: return EINVAL;
    case ErrorCode::kIo: return EIO;
    case ErrorCode::kCorrupt: return EIO;
    case ErrorCode::kInternal: return EIO;
  }
  return EIO;
}

std::string Error::to_string() const {
  return fmt::format("{}: {}", nydus::to_string(code_), message_);
}

Error Error::with_context(std::string_view context) const {
  return Error(code_, fmt::format("{}: {}", context, message_));
}

Error os_error(std::string_view what, int err) {
  ErrorCode code = ErrorCode::kIo;
  if (err == ENOENT) code = ErrorCode::kNotFound;
  if (err == EEXIST) code = ErrorCode::kAlreadyExists;
  if (err == EINVAL) code = ErrorCode::kInvalidArgument;
  return Error(code, fmt::format("{}: {}", what, std::strerror(err)));
}

}  // namespace nydus
