#include "api/http_server.h"

#include <httplib.h>

#include <chrono>
#include <thread>

#include "util/log.h"

namespace cdc {

HttpServer::HttpServer(HttpServerOptions options, CdcService* service)
    : options_(std::move(options)), service_(service), server_(std::make_unique<httplib::Server>()) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  httplib::Server& s = *server_;
  s.set_payload_max_length(static_cast<size_t>(options_.max_body_bytes));
  s.set_read_timeout(30, 0);
  s.set_write_timeout(30, 0);
  s.set_keep_alive_max_count(100);

  auto cdc = [this](const httplib::Request& req, httplib::Response& res) {
    CdcReply reply = service_->Handle(req.method, req.body);
    res.status = reply.http_status;
    res.set_content(reply.body.dump() + "\n", "application/json");
  };
  s.Post("/cdc", cdc);
  s.Get("/cdc", cdc);
  s.Put("/cdc", cdc);
  s.Delete("/cdc", cdc);
  s.Patch("/cdc", cdc);
  s.Options("/cdc", cdc);

  s.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    nlohmann::json body = {{"status", "ok"}, {"version", options_.version}};
    res.set_content(body.dump() + "\n", "application/json");
  });
  s.Get("/cdc/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(service_->MetricsText(), "text/plain; version=0.0.4");
  });
  // A refused body (too large) still gets the JSON envelope that names the limit.
  s.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 413 && req.path == "/cdc") {
      auto body = CdcService::ErrorBody(400, "the request body is too large: the limit is " +
                                                 std::to_string(options_.max_body_bytes) + " bytes");
      res.status = 200;  // /cdc always answers HTTP 200; the class is in `code`
      res.set_content(body.dump() + "\n", "application/json");
    }
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    GetLogger("api")->error("request failed with an internal error: {}", what);
    res.status = 200;
    res.set_content(CdcService::ErrorBody(500, "internal error: " + what).dump() + "\n", "application/json");
  });

  if (!s.bind_to_port(options_.host, options_.port)) {
    return Unavailable("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                       " (address in use or not available)");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() is a no-op until the listener runs; wait for it so Stop() can never hang.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server_->is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  GetLogger("api")->info("listening on {}:{}", options_.host, options_.port);
  return Status::Ok();
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace cdc
