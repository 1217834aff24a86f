// HttpServer: the HTTP listener. Routes `/cdc` to CdcService, serves `/healthz` and
// `/cdc/metrics`, caps request bodies and times out slow clients. Owns its listener
// thread (Start/Stop).
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "api/cdc_service.h"
#include "util/status.h"

namespace httplib {
class Server;
}

namespace cdc {

struct HttpServerOptions {
  std::string host = "0.0.0.0";
  int port = 8444;
  int64_t max_body_bytes = 4 << 20;
  std::string version;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, CdcService* service);
  ~HttpServer();

  // Binds the port (an error names the address) and serves on a background thread.
  Status Start();
  // Stops accepting, finishes in-flight requests and joins the thread.
  void Stop();

 private:
  const HttpServerOptions options_;
  CdcService* const service_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace cdc
