// EtcdTestServer: a private single-member etcd (the `etcd` binary on PATH) for unit tests, on
// free loopback ports in its own temporary data directory. The test owns the process: it is
// killed by PID when the object goes away (and by the kernel if the test process dies first).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "../util/test_helpers.h"

namespace cdc::testing {

class EtcdTestServer {
 public:
  // Picks ports and a data directory; does not start anything.
  EtcdTestServer();
  ~EtcdTestServer();
  EtcdTestServer(const EtcdTestServer&) = delete;
  EtcdTestServer& operator=(const EtcdTestServer&) = delete;

  // True when the etcd and etcdctl binaries can be found (tests skip otherwise).
  static bool Available();

  // Serves clients over TLS with these PEM files (before Start), requiring client certificates
  // signed by `ca_path`; the readiness probe presents `client_cert_path`/`client_key_path`.
  void UseTls(std::string cert_path, std::string key_path, std::string ca_path, std::string client_cert_path,
              std::string client_key_path);

  // Starts etcd (again, on the same data directory and ports after Kill/Stop) and polls until
  // it serves a linearizable read, or `timeout` passes. Returns "" or what went wrong.
  std::string Start(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // SIGKILL, then reap. No-op when not running.
  void Kill();
  // SIGTERM, then SIGKILL after a few seconds, then reap.
  void Stop();
  bool running() const { return pid_ > 0; }

  // "127.0.0.1:<client port>".
  std::string endpoint() const;
  // Runs etcdctl (API v3) against this server with `args`; returns its exit code and puts
  // stdout+stderr in *output.
  int Etcdctl(const std::vector<std::string>& args, std::string* output = nullptr) const;
  // The server's log (for failure messages).
  std::string Log() const;

 private:
  TempDir dir_;
  int client_port_ = 0;
  int peer_port_ = 0;
  pid_t pid_ = -1;
  std::string tls_cert_, tls_key_, tls_ca_, tls_client_cert_, tls_client_key_;  // empty: plain
};

}  // namespace cdc::testing
