// Routing: HTTP request -> typed ApiRequest, and ApiResult -> HTTP response.
//
// route() applies upstream's rules in upstream's order (contract §1.6, §2.0,
// §2.2.0): URI normalisation, exact path match (miss -> 404 NoRoute), then the
// route's method / body-presence / query checks (-> 400 BadRequest or
// QueryString), then body decoding (-> 400 ParseBody). respond() converts the
// daemon's reply: an error is wrapped in the route's group name with the
// status of §1.7; a success whose payload kind the route does not expect is
// answered 500 `<Group>(ResponsePayloadType)` instead of crashing (§10 #1).
//
// Pure functions: no I/O, no shared state; thread-safe.
#pragma once

#include <string_view>

#include "nydus/api/error.h"
#include "nydus/api/http_server.h"
#include "nydus/api/types.h"

namespace nydus::api {

struct RoutedRequest {
  ApiRequest request;
  ErrorWrapper wrapper;  // the group errors are reported under
};

Result<RoutedRequest, HttpError> route(const HttpRequest& req);

HttpResponse respond(ErrorWrapper wrapper, const ApiRequest& request, const ApiResult& result);

// The response for a request that never reached the daemon.
HttpResponse error_response(const HttpError& e);

// The path part of a request-target after upstream's normalisation, or
// nullopt when the target is not a valid URI (-> 400 BadRequest).
std::optional<std::string_view> request_path(std::string_view target, std::string_view* query);

}  // namespace nydus::api
