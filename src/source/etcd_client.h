// EtcdClient: a small etcd v3 client over gRPC, built on our generated etcd API subset
// (proto/etcd). It serves both the etcd task store and the source metadata follower.
//
// One object holds one gRPC channel per configured endpoint and talks to the first reachable
// one, moving to the next endpoint when a call finds the current one unavailable (simple
// failover). Every unary call has a deadline (call_timeout_s for the whole call, retries
// included) and retries UNAVAILABLE a few times with backoff. When a user name is set, the
// client authenticates and sends the token as `token` metadata, re-authenticating once when
// etcd says the token is invalid (simple tokens expire after inactivity).
//
// Errors name etcd, the operation, the key and the endpoint, e.g.
//   "etcd Put 'cdc/task_info/t1' on 127.0.0.1:2379: unavailable: ...".
// The password and the token never appear in a Status or a log line.
//
// Ownership: created by Connect, owned by the caller. Watches share the connection state, so a
// Watch may outlive the client that created it. Thread-safety: every method may be called
// from any thread concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "util/status.h"

namespace cdc::source {

// One key at one revision (mvccpb.KeyValue).
struct EtcdKv {
  std::string key, value;
  int64_t create_revision = 0, mod_revision = 0, version = 0, lease = 0;
};

// One change seen by a watch. For kDelete, kv.key is the key and kv.mod_revision the revision
// of the delete; prev_kv is the value before the change (absent for a put of a new key).
struct EtcdEvent {
  enum class Type { kPut, kDelete } type = Type::kPut;
  EtcdKv kv;
  std::optional<EtcdKv> prev_kv;
};

// One operation of a transaction. `value` is used by kPut only.
struct EtcdOp {
  enum class Type { kPut, kDelete, kDeletePrefix } type = Type::kPut;
  std::string key, value;
};

struct EtcdOptions {
  std::vector<std::string> endpoints;  // "host:port"; an "http://" or "https://" scheme is ignored
  std::string username, password;      // no authentication when username is empty
  bool enable_tls = false;
  std::string tls_cert_path, tls_key_path, tls_ca_cert_path;  // PEM files; CA empty = system roots
  int dial_timeout_s = 5;   // budget of Connect
  int call_timeout_s = 10;  // budget of each call, retries included
  int64_t range_page_size = 1000;  // keys per Range page in GetPrefix (tests use small pages)

  // Endpoints, auth (only when enableAuth) and TLS of a config section.
  static EtcdOptions FromConfig(const EtcdConfig& config);
};

class EtcdClient {
 public:
  // Opens the channels and proves that an endpoint answers a real RPC (Auth.Authenticate when a
  // user name is set, else Maintenance.Status) within dial_timeout_s, trying the endpoints in
  // order. Blocks up to dial_timeout_s. A wrong user or password fails at once with
  // kInvalidArgument ("... authentication failed for user 'root': ...").
  static StatusOr<std::unique_ptr<EtcdClient>> Connect(const EtcdOptions& options);

  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // The value of `key`, or nullopt when it does not exist.
  StatusOr<std::optional<EtcdKv>> Get(const std::string& key);
  // Every key under `prefix` in key order, read page by page (range_page_size keys, continuing
  // from the last key + "\0") at ONE revision, that of the first page, so the result is a
  // consistent snapshot; *revision receives it. If that revision is compacted while paging, the
  // read starts over once at the newest revision.
  StatusOr<std::vector<EtcdKv>> GetPrefix(const std::string& prefix, int64_t* revision = nullptr);
  Status Put(const std::string& key, const std::string& value, int64_t lease = 0);
  // Deleting a missing key is not an error.
  Status Delete(const std::string& key);
  Status DeletePrefix(const std::string& prefix);
  // Runs all ops in one atomic transaction (etcd limits a transaction to --max-txn-ops, 128 by
  // default, and rejects two puts of one key). When `deleted` is given, it receives for each op
  // the number of keys it deleted (0 for puts).
  Status Txn(const std::vector<EtcdOp>& ops, std::vector<int64_t>* deleted = nullptr);

  // Lease ids; a lease's keys vanish when it expires or is revoked.
  StatusOr<int64_t> GrantLease(int64_t ttl_s);
  Status RevokeLease(int64_t id);
  // Renews the lease once; kNotFound when it has expired or was revoked.
  Status KeepAliveOnce(int64_t id);

  // A running watch. Destroying it stops it.
  class Watch {
   public:
    virtual ~Watch() = default;
    // Ends the watch and blocks until its thread has exited; after it returns no callback runs.
    // Idempotent. Must not be called from inside a callback of the same watch.
    virtual void Stop() = 0;
  };

  // Watches every key under `prefix` from `start_revision` (inclusive; 0 = changes after this
  // call returns) with previous values, on a thread of its own.
  //
  // on_events receives each non-empty batch in revision order, with the header revision of the
  // response that carried it. When the stream breaks, the watch reconnects with exponential
  // backoff (100 ms .. 5 s) and resumes from the last delivered revision + 1, so no event is
  // lost or repeated. on_error is called once per outage (when it begins) with a kUnavailable
  // Status naming etcd and the endpoint, while the watch keeps retrying. If the revision to
  // resume from was compacted, or etcd cancels the watch (e.g. permission denied), on_error
  // gets a kFailedPrecondition Status (naming the compacted revision) and the watch ends.
  // Callbacks run on the watch thread, one at a time.
  StatusOr<std::unique_ptr<Watch>> WatchPrefix(
      const std::string& prefix, int64_t start_revision,
      std::function<void(const std::vector<EtcdEvent>&, int64_t revision)> on_events,
      std::function<void(const Status&)> on_error);

  // The endpoint currently in use; safe to log.
  std::string endpoint() const;

  struct Conn;  // connection state shared with watches (etcd_client.cc)

 private:
  explicit EtcdClient(std::shared_ptr<Conn> conn);
  StatusOr<int64_t> CurrentRevision(const std::string& prefix);

  std::shared_ptr<Conn> conn_;
};

// The smallest key greater than every key starting with `prefix` ("\0" when there is none: the
// range then extends to the end of the keyspace). Exposed for tests.
std::string PrefixRangeEnd(const std::string& prefix);

}  // namespace cdc::source
