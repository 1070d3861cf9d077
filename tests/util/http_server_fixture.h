// A gtest fixture that runs one HttpServer on a socket in a fresh temporary
// directory, for the transport tests of tests/api.
//
//   class MyTest : public testutil::HttpServerFixture {};
//   TEST_F(MyTest, X) {
//     ASSERT_NO_FATAL_FAILURE(start([](HttpRequest r, HttpResponder respond) { ... }));
//     RawClient c = connect();
//     ...
//   }
//
// Header-only: it uses the nydus_http library the api tests link; the
// testutil library itself stays below every layer.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <utility>

#include "nydus/api/http_server.h"
#include "util/raw_client.h"

namespace nydus::testutil {

class HttpServerFixture : public ::testing::Test {
 protected:
  // Starts server_ with `handler`; `tweak` adjusts the options first. A failed
  // start is a fatal test failure (wrap the call in ASSERT_NO_FATAL_FAILURE).
  void start(api::HttpHandler handler, const std::function<void(api::HttpServerOptions&)>& tweak = {}) {
    api::HttpServerOptions o;
    o.socket_path = socket_path();
    if (tweak) tweak(o);
    auto s = api::HttpServer::start(o, std::move(handler));
    ASSERT_TRUE(s) << s.error().to_string();
    server_ = std::move(*s);
  }

  // A new connection to the server. A failed connect is a test failure and
  // returns a client whose every send and read fails.
  RawClient connect() {
    auto c = RawClient::connect(socket_path());
    if (!c) {
      ADD_FAILURE() << "connect: " << c.error().to_string();
      return RawClient::unconnected(c.error().to_string());
    }
    return std::move(*c);
  }

  std::string socket_path() const { return dir_.file("api.sock"); }

  TempDir dir_;
  std::unique_ptr<api::HttpServer> server_;
};

}  // namespace nydus::testutil
