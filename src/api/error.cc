// Rendering of the error model: upstream's Debug text, status and our codes.
#include "nydus/api/error.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace nydus::api {

std::string rust_debug_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\0': out += "\\0"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{{{:x}}}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string DaemonError::debug() const {
  switch (kind) {
    case Kind::kNotReady: return "NotReady";
    case Kind::kUnsupported: return "Unsupported";
    case Kind::kUnexpectedEvent: return "UnexpectedEvent(" + rust_debug_string(text) + ")";
    case Kind::kOther: return "Other(" + rust_debug_string(text) + ")";
    case Kind::kSerde: return "Serde(" + text + ")";
    case Kind::kUpgradeManager: return "UpgradeManager(" + rust_debug_string(text) + ")";
  }
  return "Other(\"\")";
}

std::string ApiError::debug() const {
  switch (kind) {
    case Kind::kDaemonAbnormal: return "DaemonAbnormal(" + daemon.debug() + ")";
    case Kind::kMountFilesystem: return "MountFilesystem(" + daemon.debug() + ")";
    case Kind::kMetricsDaemon: return "Metrics(Daemon(" + daemon.debug() + "))";
    case Kind::kMetricsNoCounter: return "Metrics(Stats(NoCounter))";
    case Kind::kMetricsSerialize: return "Metrics(Stats(Serialize(" + text + ")))";
    case Kind::kEvents: return "Events(" + rust_debug_string(text) + ")";
    case Kind::kResponsePayloadType: return "ResponsePayloadType";
    case Kind::kRequestSend: return "RequestSend(SendError { .. })";
    case Kind::kResponseRecv: return "ResponseRecv(RecvError)";
    case Kind::kWakeup: return "Wakeup(" + text + ")";
  }
  return "ResponsePayloadType";
}

unsigned ApiError::status() const {
  if (kind == Kind::kDaemonAbnormal || kind == Kind::kMountFilesystem) {
    switch (daemon.kind) {
      case DaemonError::Kind::kNotReady: return 503;
      case DaemonError::Kind::kUnsupported: return 501;
      case DaemonError::Kind::kUnexpectedEvent: return 400;
      default: return 500;
    }
  }
  if (kind == Kind::kMetricsNoCounter) return 404;
  // Metrics(Daemon(_)) is 500 even for Unsupported, as upstream.
  return 500;
}

std::string_view to_string(ErrorWrapper w) {
  switch (w) {
    case ErrorWrapper::kDaemonInfo: return "DaemonInfo";
    case ErrorWrapper::kEvents: return "Events";
    case ErrorWrapper::kFsBackendInfo: return "FsBackendInfo";
    case ErrorWrapper::kConfigure: return "Configure";
    case ErrorWrapper::kUpgrade: return "Upgrade";
    case ErrorWrapper::kMount: return "Mount";
    case ErrorWrapper::kGlobalMetrics: return "GlobalMetrics";
    case ErrorWrapper::kFsFilesMetrics: return "FsFilesMetrics";
    case ErrorWrapper::kPattern: return "Pattern";
    case ErrorWrapper::kBackendMetrics: return "BackendMetrics";
    case ErrorWrapper::kBlobcacheMetrics: return "BlobcacheMetrics";
    case ErrorWrapper::kInflightMetrics: return "InflightMetrics";
    case ErrorWrapper::kGetBlobObjects: return "GetBlobObjects";
    case ErrorWrapper::kCreateBlobObject: return "CreateBlobObject";
    case ErrorWrapper::kDeleteBlobObject: return "DeleteBlobObject";
    case ErrorWrapper::kDeleteBlobFile: return "DeleteBlobFile";
  }
  return "Configure";
}

std::string HttpError::message() const {
  switch (kind) {
    case Kind::kNoRoute: return "NoRoute";
    case Kind::kBadRequest: return "BadRequest";
    case Kind::kQueryString: return "QueryString(" + rust_debug_string(text) + ")";
    case Kind::kParseBody: return "ParseBody(" + parse.to_debug() + ")";
    case Kind::kApi: return fmt::format("{}({})", to_string(wrapper), api.debug());
  }
  return "BadRequest";
}

unsigned HttpError::status() const {
  switch (kind) {
    case Kind::kNoRoute: return 404;
    case Kind::kApi: return api.status();
    default: return 400;
  }
}

std::string_view HttpError::code() const {
  switch (kind) {
    case Kind::kNoRoute: return "NoRoute";
    case Kind::kBadRequest: return "BadRequest";
    case Kind::kQueryString:
    case Kind::kParseBody: return "InvalidArgument";
    case Kind::kApi: return nydus::to_string(api.code);
  }
  return "Internal";
}

std::string HttpError::body() const {
  nlohmann::ordered_json j;
  j["code"] = code();
  j["message"] = message();
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace nydus::api
