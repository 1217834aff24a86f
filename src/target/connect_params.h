// ConnectParams: how to reach one target Milvus (address, credentials, database, TLS), plus the
// pure helpers that turn it into what gRPC needs: the parsed address, the TLS material read from
// disk, and the per-call metadata. No I/O except LoadTlsMaterial (reads the PEM files).
//
// Secrets: `token` and the private key never appear in a returned Status message.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace cdc::target {

struct ConnectParams {
  std::string uri;      // "http://h:p", "https://h:p" (TLS) or "h:p"; port defaults to 19530
  std::string token;    // "user:password" or an API key; empty = no auth
  std::string db_name;  // sent as `dbname` metadata when not empty
  // dial_config. Any *_path set (or an https:// uri) turns TLS on. server_pem_path alone =
  // one-way TLS; ca_pem_path + client_pem_path + client_key_path = mutual TLS (all three needed).
  // server_name overrides the name checked against the server certificate.
  std::string server_name, server_pem_path, ca_pem_path, client_pem_path, client_key_path;
  int connect_timeout_s = 5;  // <= 0 means 5
  int call_timeout_s = 30;    // deadline on every later call; <= 0 means 30
};

// The address part of ConnectParams::uri.
struct TargetUri {
  std::string host;  // without brackets for IPv6
  int port = 0;
  bool tls = false;  // scheme was https
  // "host:port" ("[v6]:port"), the gRPC target and the name used in messages.
  std::string Authority() const;
};

// Accepts "http://h:p", "https://h:p", "h:p", "h", "[::1]:p", with an optional trailing "/".
// Rejects other schemes, paths, user info, and bad ports with InvalidArgument.
StatusOr<TargetUri> ParseTargetUri(const std::string& uri);

// TLS settings resolved from ConnectParams, with the PEM contents read from disk.
struct TlsMaterial {
  bool enabled = false;
  bool mutual = false;
  std::string root_pem;        // empty = system roots
  std::string cert_chain_pem;  // mutual only
  std::string private_key_pem;  // mutual only
  std::string target_name_override;  // from server_name
};

// Decides whether TLS is on (uri_tls or any dial_config path) and reads the PEM files.
// Errors start with "bad TLS config: ", e.g. "bad TLS config: cannot read ca_pem_path <file>: ...".
StatusOr<TlsMaterial> LoadTlsMaterial(const ConnectParams& params, bool uri_tls);

// Standard base64 (RFC 4648, with padding).
std::string Base64Encode(std::string_view in);

// The metadata every call carries: ("authorization", base64(token)) when token is not empty and
// ("dbname", db) where db is `db_override` if not empty, else params.db_name, if not empty.
std::vector<std::pair<std::string, std::string>> BuildCallMetadata(const ConnectParams& params,
                                                                   const std::string& db_override = "");

// True if `value` can be sent as an ASCII gRPC metadata value (printable, no leading/trailing
// space). Database names that fail this are rejected by Connect.
bool IsValidMetadataValue(std::string_view value);

// Replaces every occurrence of the token, its base64 form and (if at least 4 characters) its
// password part in `message` with "***". Used on every server-provided text we pass on.
std::string RedactSecrets(std::string message, const std::string& token);

}  // namespace cdc::target
