// The API's error model: what a route answers when something fails.
//
// Three layers, as in upstream nydus-api (the text of `message` depends on it):
//   DaemonError  - why the daemon refused (NotReady, Unsupported, Other("…"), …)
//   ApiError     - where it failed (DaemonAbnormal(…), MountFilesystem(…), Metrics(…), …)
//   HttpError    - what the client sees: a transport-level rejection (NoRoute,
//                  BadRequest, QueryString, ParseBody) or an ApiError wrapped in
//                  the route's group name (Mount(…), Configure(…), …).
// Each error renders three ways: message() is upstream's Debug text, e.g.
// `Mount(MountFilesystem(Other("object or filesystem already exists")))`;
// status() is upstream's HTTP status; code() is a stable identifier of the
// error class ("NotFound", "Unsupported", …) that replaces upstream's constant
// "UNDEFINED". body() is the JSON {"code": …, "message": …}.
//
// Plain values; thread-safe to copy.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "nydus/json.h"
#include "nydus/result.h"

namespace nydus::api {

struct DaemonError {
  enum class Kind { kNotReady, kUnsupported, kUnexpectedEvent, kOther, kSerde, kUpgradeManager };
  Kind kind = Kind::kOther;
  std::string text;  // event name, Other's message, serde debug text, upgrade failure
  ErrorCode code = ErrorCode::kInternal;

  static DaemonError not_ready() { return {Kind::kNotReady, "", ErrorCode::kNotReady}; }
  static DaemonError unsupported() { return {Kind::kUnsupported, "", ErrorCode::kUnsupported}; }
  static DaemonError unexpected_event(std::string event) {
    return {Kind::kUnexpectedEvent, std::move(event), ErrorCode::kUnexpectedEvent};
  }
  // Other("<message>"): the message keeps upstream's sentence and adds detail.
  static DaemonError other(ErrorCode code, std::string message) { return {Kind::kOther, std::move(message), code}; }
  static DaemonError from(const Error& e) { return other(e.code(), e.message()); }
  // Upstream's NotFound, AlreadyExists and FsTypeMismatch, in HEAD's words
  // (contract §2.5): the only place these sentences are written.
  static DaemonError not_found() { return other(ErrorCode::kNotFound, "object or filesystem doesn't exist"); }
  static DaemonError already_exists() {
    return other(ErrorCode::kAlreadyExists, "object or filesystem already exists");
  }
  static DaemonError fs_type_mismatch() {
    return other(ErrorCode::kInvalidArgument, "filesystem type mismatch, expect RAFS");
  }
  static DaemonError upgrade_manager(std::string what) {
    return {Kind::kUpgradeManager, std::move(what), ErrorCode::kInternal};
  }

  std::string debug() const;  // e.g. `Other("object or filesystem doesn't exist")`
  bool operator==(const DaemonError&) const = default;
};

struct ApiError {
  enum class Kind {
    kDaemonAbnormal,       // DaemonAbnormal(<daemon>)
    kMountFilesystem,      // MountFilesystem(<daemon>)
    kMetricsDaemon,        // Metrics(Daemon(<daemon>))
    kMetricsNoCounter,     // Metrics(Stats(NoCounter))
    kMetricsSerialize,     // Metrics(Stats(Serialize(<text>)))
    kEvents,               // Events("<text>")
    kResponsePayloadType,  // ResponsePayloadType
    kRequestSend,          // RequestSend(SendError { .. })
    kResponseRecv,         // ResponseRecv(RecvError)
    kWakeup,               // Wakeup(<text>)
  };
  Kind kind = Kind::kDaemonAbnormal;
  DaemonError daemon;  // for kDaemonAbnormal, kMountFilesystem, kMetricsDaemon
  std::string text;    // for kEvents, kMetricsSerialize, kWakeup
  ErrorCode code = ErrorCode::kInternal;

  static ApiError daemon_abnormal(DaemonError d) { return {Kind::kDaemonAbnormal, d, "", d.code}; }
  static ApiError mount(DaemonError d) { return {Kind::kMountFilesystem, d, "", d.code}; }
  static ApiError metrics(DaemonError d) { return {Kind::kMetricsDaemon, d, "", d.code}; }
  static ApiError no_counter() { return {Kind::kMetricsNoCounter, {}, "", ErrorCode::kNotFound}; }
  // Upstream's answer to an invalid log level or config key: 500 ResponsePayloadType.
  // `code` says what really went wrong (kInvalidArgument there).
  static ApiError payload_type(ErrorCode code = ErrorCode::kInternal) {
    return {Kind::kResponsePayloadType, {}, "", code};
  }
  static ApiError request_send() { return {Kind::kRequestSend, {}, "", ErrorCode::kInternal}; }
  static ApiError response_recv() { return {Kind::kResponseRecv, {}, "", ErrorCode::kInternal}; }

  std::string debug() const;
  unsigned status() const;  // upstream's translate_status_code
  bool operator==(const ApiError&) const = default;
};

// The route group an ApiError is reported under (upstream's HttpError wrapper variant).
enum class ErrorWrapper {
  kDaemonInfo, kEvents, kFsBackendInfo, kConfigure, kUpgrade, kMount,
  kGlobalMetrics, kFsFilesMetrics, kPattern, kBackendMetrics, kBlobcacheMetrics, kInflightMetrics,
  kGetBlobObjects, kCreateBlobObject, kDeleteBlobObject, kDeleteBlobFile,
};
std::string_view to_string(ErrorWrapper w);

struct HttpError {
  enum class Kind { kNoRoute, kBadRequest, kQueryString, kParseBody, kApi };
  Kind kind = Kind::kBadRequest;
  std::string text;              // kQueryString: the message; kBadRequest: optional detail for logs
  json::Error parse;             // kParseBody
  ErrorWrapper wrapper{};        // kApi
  ApiError api;                  // kApi

  static HttpError no_route() { return {Kind::kNoRoute, "", {}, {}, {}}; }
  static HttpError bad_request(std::string why = "") { return {Kind::kBadRequest, std::move(why), {}, {}, {}}; }
  static HttpError query_string(std::string what) { return {Kind::kQueryString, std::move(what), {}, {}, {}}; }
  static HttpError parse_body(json::Error e) { return {Kind::kParseBody, "", std::move(e), {}, {}}; }
  static HttpError wrap(ErrorWrapper w, ApiError e) { return {Kind::kApi, "", {}, w, std::move(e)}; }

  std::string message() const;     // upstream Debug rendering
  unsigned status() const;
  std::string_view code() const;   // stable class identifier
  std::string body() const;        // {"code":…,"message":…}
};

// Rust's Debug rendering of a string: quoted, with \" \\ \n \r \t \0 and \u{…} escapes.
std::string rust_debug_string(std::string_view s);

}  // namespace nydus::api
