#include "source/pulsar/auth.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace cdc::source::pulsar {

namespace {
std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

StatusOr<nlohmann::json> ParseJsonObject(const std::string& s, const char* plugin) {
  nlohmann::json j = nlohmann::json::parse(s, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return InvalidArgument(std::string("Pulsar auth params for ") + plugin + " are not a JSON object");
  return j;
}

std::string JsonString(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

StatusOr<std::string> ResolveToken(const std::string& params) {
  const std::string p = Trim(params);
  std::string token;
  if (!p.empty() && p.front() == '{') {
    ASSIGN_OR_RETURN(nlohmann::json j, ParseJsonObject(p, "token"));
    token = JsonString(j, "token");
  } else if (p.rfind("token:", 0) == 0) {
    token = p.substr(6);
  } else if (p.rfind("file:", 0) == 0) {
    std::string path = p.substr(5);
    if (path.rfind("//", 0) == 0) path = path.substr(2);  // file:///path
    std::ifstream in(path);
    if (!in) return InvalidArgument("Pulsar token file '" + path + "' cannot be read");
    std::stringstream ss;
    ss << in.rdbuf();
    token = ss.str();
  } else {
    token = p;
  }
  token = Trim(token);
  if (token.empty()) return InvalidArgument("Pulsar token auth: the token is empty");
  return token;
}

StatusOr<std::string> ResolveBasic(const std::string& params) {
  const std::string p = Trim(params);
  std::string user, password;
  if (!p.empty() && p.front() == '{') {
    ASSIGN_OR_RETURN(nlohmann::json j, ParseJsonObject(p, "basic"));
    user = JsonString(j, "userId");
    password = JsonString(j, "password");
  } else {
    std::stringstream ss(p);
    std::string kv;
    while (std::getline(ss, kv, ',')) {
      const size_t colon = kv.find(':');
      if (colon == std::string::npos) continue;
      const std::string key = Trim(kv.substr(0, colon));
      if (key == "userId") user = kv.substr(colon + 1);
      if (key == "password") password = kv.substr(colon + 1);
    }
  }
  if (user.empty()) return InvalidArgument("Pulsar basic auth: auth_params have no userId");
  return user + ":" + password;
}
}  // namespace

StatusOr<AuthData> ResolveAuth(const std::string& plugin, const std::string& params) {
  if (plugin.empty()) return AuthData{};
  if (plugin == "token" || plugin == "org.apache.pulsar.client.impl.auth.AuthenticationToken") {
    ASSIGN_OR_RETURN(std::string token, ResolveToken(params));
    return AuthData{"token", std::move(token)};
  }
  if (plugin == "basic" || plugin == "org.apache.pulsar.client.impl.auth.AuthenticationBasic") {
    ASSIGN_OR_RETURN(std::string data, ResolveBasic(params));
    return AuthData{"basic", std::move(data)};
  }
  return InvalidArgument("Pulsar auth plugin '" + plugin + "' is not supported (token, basic)");
}

}  // namespace cdc::source::pulsar
