// Pulsar client authentication: what CONNECT and AUTH_RESPONSE carry. Resolved again on every
// handshake so a token file that is rotated is picked up. Never log the result.
#pragma once

#include <string>

#include "util/status.h"

namespace cdc::source::pulsar {

struct AuthData {
  std::string method;  // "" (none), "token" or "basic"
  std::string data;    // the JWT, or "user:password"
};

// plugin: "", "token", "basic" or the Java class names of the two; params: "token:<jwt>",
// "file:<path>", a bare JWT or {"token":"..."} for token; "userId:<u>,password:<p>" or
// {"userId":"...","password":"..."} for basic. Errors never quote the secret.
StatusOr<AuthData> ResolveAuth(const std::string& plugin, const std::string& params);

}  // namespace cdc::source::pulsar
