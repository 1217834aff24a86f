#include "target/connect_params.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

namespace cdc::target {

namespace {

constexpr int kDefaultMilvusPort = 19530;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

StatusOr<int> ParsePort(std::string_view text, const std::string& uri) {
  if (text.empty() || text.size() > 5) return InvalidArgument("bad target uri '" + uri + "': bad port");
  int port = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return InvalidArgument("bad target uri '" + uri + "': bad port");
    port = port * 10 + (c - '0');
  }
  if (port < 1 || port > 65535) {
    return InvalidArgument("bad target uri '" + uri + "': port out of range 1-65535");
  }
  return port;
}

// Reads a whole file; `what` names the dial_config key for the message.
StatusOr<std::string> ReadPemFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    return InvalidArgument(std::string("bad TLS config: cannot read ") + what + " " + path + ": " +
                           (err != 0 ? std::strerror(err) : "open failed"));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    return InvalidArgument(std::string("bad TLS config: cannot read ") + what + " " + path);
  }
  std::string data = buf.str();
  if (data.empty()) {
    return InvalidArgument(std::string("bad TLS config: ") + what + " " + path + " is empty");
  }
  return data;
}

void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

}  // namespace

std::string TargetUri::Authority() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

StatusOr<TargetUri> ParseTargetUri(const std::string& uri) {
  TargetUri out;
  std::string_view rest = uri;
  if (rest.empty()) return InvalidArgument("bad target uri: empty");
  if (StartsWith(rest, "https://")) {
    out.tls = true;
    rest.remove_prefix(8);
  } else if (StartsWith(rest, "http://")) {
    rest.remove_prefix(7);
  } else if (rest.find("://") != std::string_view::npos) {
    return InvalidArgument("bad target uri '" + uri + "': scheme must be http:// or https://");
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) {
    return InvalidArgument("bad target uri '" + uri + "': a path is not supported; use db_name");
  }
  if (rest.find('@') != std::string_view::npos) {
    return InvalidArgument("bad target uri: credentials in the uri are not supported; use token");
  }
  if (rest.empty()) return InvalidArgument("bad target uri '" + uri + "': no host");

  std::string_view host, port_text;
  if (rest.front() == '[') {  // [v6]:port
    size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgument("bad target uri '" + uri + "': unclosed '['");
    }
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgument("bad target uri '" + uri + "': junk after ']'");
      port_text = after.substr(1);
      if (port_text.empty()) return InvalidArgument("bad target uri '" + uri + "': bad port");
    }
  } else {
    size_t colon = rest.find(':');
    if (colon != std::string_view::npos && rest.find(':', colon + 1) != std::string_view::npos) {
      return InvalidArgument("bad target uri '" + uri + "': write IPv6 addresses as [addr]:port");
    }
    host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = rest.substr(colon + 1);
      if (port_text.empty()) return InvalidArgument("bad target uri '" + uri + "': bad port");
    }
  }
  if (host.empty()) return InvalidArgument("bad target uri '" + uri + "': no host");
  for (char c : host) {
    if (c <= ' ' || c == 0x7f) return InvalidArgument("bad target uri '" + uri + "': bad host");
  }
  out.host = std::string(host);
  if (port_text.empty()) {
    out.port = kDefaultMilvusPort;
  } else {
    ASSIGN_OR_RETURN(out.port, ParsePort(port_text, uri));
  }
  return out;
}

StatusOr<TlsMaterial> LoadTlsMaterial(const ConnectParams& p, bool uri_tls) {
  TlsMaterial tls;
  const bool any_mutual = !p.ca_pem_path.empty() || !p.client_pem_path.empty() || !p.client_key_path.empty();
  tls.enabled = uri_tls || any_mutual || !p.server_pem_path.empty();
  if (!tls.enabled) return tls;
  tls.target_name_override = p.server_name;
  if (any_mutual) {
    std::string missing;
    auto need = [&missing](const std::string& v, const char* name) {
      if (v.empty()) missing += missing.empty() ? name : std::string(", ") + name;
    };
    need(p.ca_pem_path, "ca_pem_path");
    need(p.client_pem_path, "client_pem_path");
    need(p.client_key_path, "client_key_path");
    if (!missing.empty()) {
      return InvalidArgument(
          "bad TLS config: mutual TLS needs ca_pem_path, client_pem_path and client_key_path; missing " +
          missing);
    }
    tls.mutual = true;
    ASSIGN_OR_RETURN(tls.root_pem, ReadPemFile(p.ca_pem_path, "ca_pem_path"));
    ASSIGN_OR_RETURN(tls.cert_chain_pem, ReadPemFile(p.client_pem_path, "client_pem_path"));
    ASSIGN_OR_RETURN(tls.private_key_pem, ReadPemFile(p.client_key_path, "client_key_path"));
    return tls;
  }
  if (!p.server_pem_path.empty()) {
    ASSIGN_OR_RETURN(tls.root_pem, ReadPemFile(p.server_pem_path, "server_pem_path"));
  }
  return tls;
}

std::string Base64Encode(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t left = in.size() - i;
  if (left > 0) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (left == 2) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += left == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> BuildCallMetadata(const ConnectParams& params,
                                                                   const std::string& db_override) {
  std::vector<std::pair<std::string, std::string>> md;
  if (!params.token.empty()) md.emplace_back("authorization", Base64Encode(params.token));
  const std::string& db = db_override.empty() ? params.db_name : db_override;
  if (!db.empty()) md.emplace_back("dbname", db);
  return md;
}

bool IsValidMetadataValue(std::string_view value) {
  if (value.empty()) return true;
  if (value.front() == ' ' || value.back() == ' ') return false;
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

std::string RedactSecrets(std::string message, const std::string& token) {
  if (token.empty()) return message;
  ReplaceAll(message, token, "***");
  ReplaceAll(message, Base64Encode(token), "***");
  size_t colon = token.find(':');
  if (colon != std::string::npos) {
    std::string password = token.substr(colon + 1);
    if (password.size() >= 4) ReplaceAll(message, password, "***");
  }
  return message;
}

}  // namespace cdc::target
