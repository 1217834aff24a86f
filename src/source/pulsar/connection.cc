#include "source/pulsar/connection.h"

#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "source/pulsar/frame.h"

namespace cdc::source::pulsar {

namespace {
int MsUntil(Clock::time_point deadline) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms <= 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 1 << 30));
}

std::string SslError() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}
}  // namespace

StatusOr<std::vector<Endpoint>> ParseServiceUrl(const std::string& url) {
  bool tls = false;
  std::string rest;
  if (url.rfind("pulsar://", 0) == 0) {
    rest = url.substr(9);
  } else if (url.rfind("pulsar+ssl://", 0) == 0) {
    rest = url.substr(13);
    tls = true;
  } else {
    return InvalidArgument("Pulsar service URL '" + url + "' must start with pulsar:// or pulsar+ssl://");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::vector<Endpoint> out;
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t comma = rest.find(',', pos);
    if (comma == std::string::npos) comma = rest.size();
    std::string hp = rest.substr(pos, comma - pos);
    pos = comma + 1;
    if (hp.empty()) continue;
    Endpoint ep;
    ep.tls = tls;
    ep.port = tls ? 6651 : 6650;
    const size_t bracket = hp.find(']');
    const size_t colon = hp.rfind(':');
    const bool has_port = colon != std::string::npos && (hp.front() != '[' || (bracket != std::string::npos && colon > bracket));
    if (has_port) {
      const std::string port = hp.substr(colon + 1);
      char* end = nullptr;
      const long p = std::strtol(port.c_str(), &end, 10);
      if (port.empty() || *end != '\0' || p <= 0 || p > 65535) {
        return InvalidArgument("Pulsar service URL '" + url + "': bad port in '" + hp + "'");
      }
      ep.port = static_cast<uint16_t>(p);
      hp = hp.substr(0, colon);
    }
    if (hp.size() > 2 && hp.front() == '[' && hp.back() == ']') hp = hp.substr(1, hp.size() - 2);
    if (hp.empty()) return InvalidArgument("Pulsar service URL '" + url + "': empty host");
    ep.host = hp;
    out.push_back(ep);
  }
  if (out.empty()) return InvalidArgument("Pulsar service URL '" + url + "' names no host");
  return out;
}

struct Connection::Tls {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  ~Tls() {
    if (ssl) SSL_free(ssl);
    if (ctx) SSL_CTX_free(ctx);
  }
};

Connection::Connection(Endpoint endpoint, int fd) : endpoint_(std::move(endpoint)), fd_(fd) {}

Connection::~Connection() {
  tls_.reset();
  if (fd_ >= 0) ::close(fd_);
}

Status Connection::WaitFd(short events, Clock::time_point deadline, bool* timed_out) {
  *timed_out = false;
  for (;;) {
    pollfd p{fd_, events, 0};
    const int rc = ::poll(&p, 1, MsUntil(deadline));
    if (rc > 0) return Status::Ok();
    if (rc == 0) {
      *timed_out = true;
      return Status::Ok();
    }
    if (errno != EINTR) return Unavailable(std::string("poll: ") + std::strerror(errno));
  }
}

StatusOr<std::unique_ptr<Connection>> Connection::Dial(const Endpoint& ep, const TlsOptions& tls,
                                                       Clock::time_point deadline) {
  const std::string where = "Pulsar " + std::string(ep.tls ? "pulsar+ssl://" : "pulsar://") + ep.HostPort();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int gai = ::getaddrinfo(ep.host.c_str(), std::to_string(ep.port).c_str(), &hints, &res);
  if (gai != 0) return Unavailable(where + ": cannot resolve host: " + ::gai_strerror(gai));
  std::string last = "no address";
  std::unique_ptr<Connection> conn;
  for (addrinfo* ai = res; ai && !conn; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last = std::strerror(errno);
      continue;
    }
    auto candidate = std::unique_ptr<Connection>(new Connection(ep, fd));
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = std::strerror(errno);
        continue;
      }
      bool timed_out = false;
      Status st = candidate->WaitFd(POLLOUT, deadline, &timed_out);
      if (!st.ok() || timed_out) {
        last = timed_out ? "connect timed out" : st.message();
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last = std::strerror(err);
        continue;
      }
    }
    conn = std::move(candidate);
  }
  ::freeaddrinfo(res);
  if (!conn) return Unavailable(where + ": cannot connect: " + last);
  const int one = 1;
  ::setsockopt(conn->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (!ep.tls) return conn;

  conn->tls_ = std::make_unique<Tls>();
  Tls& t = *conn->tls_;
  t.ctx = SSL_CTX_new(TLS_client_method());
  if (!t.ctx) return Internal(where + ": SSL_CTX_new: " + SslError());
  SSL_CTX_set_min_proto_version(t.ctx, TLS1_2_VERSION);
  if (!tls.allow_insecure) {
    SSL_CTX_set_verify(t.ctx, SSL_VERIFY_PEER, nullptr);
    const int ok = tls.ca_file.empty() ? SSL_CTX_set_default_verify_paths(t.ctx)
                                       : SSL_CTX_load_verify_locations(t.ctx, tls.ca_file.c_str(), nullptr);
    if (ok != 1) return InvalidArgument(where + ": cannot load CA '" + tls.ca_file + "': " + SslError());
  }
  t.ssl = SSL_new(t.ctx);
  if (!t.ssl) return Internal(where + ": SSL_new: " + SslError());
  SSL_set_fd(t.ssl, conn->fd_);
  // SNI carries host names only (RFC 6066: no IP literals); the hostname check covers both.
  in6_addr addr;
  const bool ip_literal =
      ::inet_pton(AF_INET, ep.host.c_str(), &addr) == 1 || ::inet_pton(AF_INET6, ep.host.c_str(), &addr) == 1;
  if (!ip_literal) SSL_set_tlsext_host_name(t.ssl, ep.host.c_str());
  if (!tls.allow_insecure && tls.verify_hostname) SSL_set1_host(t.ssl, ep.host.c_str());
  for (;;) {
    const int rc = SSL_connect(t.ssl);
    if (rc == 1) break;
    const int err = SSL_get_error(t.ssl, rc);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      const long verify = SSL_get_verify_result(t.ssl);
      std::string why = SslError();
      if (verify != X509_V_OK) why += std::string(" (certificate: ") + X509_verify_cert_error_string(verify) + ")";
      return Unavailable(where + ": TLS handshake failed: " + why);
    }
    bool timed_out = false;
    RETURN_IF_ERROR(conn->WaitFd(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, &timed_out));
    if (timed_out) return Unavailable(where + ": TLS handshake timed out");
  }
  return conn;
}

Status Connection::Send(const std::string& frame, Clock::time_point deadline) {
  size_t off = 0;
  while (off < frame.size()) {
    short want = POLLOUT;
    if (tls_) {
      const int n = SSL_write(tls_->ssl, frame.data() + off, static_cast<int>(frame.size() - off));
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      const int err = SSL_get_error(tls_->ssl, n);
      if (err == SSL_ERROR_WANT_READ) want = POLLIN;
      else if (err != SSL_ERROR_WANT_WRITE) return Unavailable("Pulsar " + endpoint_.HostPort() + ": TLS write: " + SslError());
    } else {
      const ssize_t n = ::send(fd_, frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        return Unavailable("Pulsar " + endpoint_.HostPort() + ": send: " + std::strerror(errno));
      }
    }
    bool timed_out = false;
    RETURN_IF_ERROR(WaitFd(want, deadline, &timed_out));
    if (timed_out) return DeadlineExceeded("Pulsar " + endpoint_.HostPort() + ": send timed out");
  }
  return Status::Ok();
}

StatusOr<bool> Connection::Fill(Clock::time_point deadline) {
  char tmp[64 * 1024];
  for (;;) {
    short want = POLLIN;
    if (tls_) {
      const int n = SSL_read(tls_->ssl, tmp, sizeof(tmp));
      if (n > 0) {
        buf_.append(tmp, static_cast<size_t>(n));
        return true;
      }
      const int err = SSL_get_error(tls_->ssl, n);
      if (err == SSL_ERROR_ZERO_RETURN) return Unavailable("Pulsar " + endpoint_.HostPort() + ": connection closed");
      if (err == SSL_ERROR_WANT_WRITE) want = POLLOUT;
      else if (err != SSL_ERROR_WANT_READ) return Unavailable("Pulsar " + endpoint_.HostPort() + ": TLS read: " + SslError());
    } else {
      const ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
      if (n > 0) {
        buf_.append(tmp, static_cast<size_t>(n));
        return true;
      }
      if (n == 0) return Unavailable("Pulsar " + endpoint_.HostPort() + ": connection closed by the broker");
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        return Unavailable("Pulsar " + endpoint_.HostPort() + ": recv: " + std::strerror(errno));
      }
    }
    bool timed_out = false;
    RETURN_IF_ERROR(WaitFd(want, deadline, &timed_out));
    if (timed_out) return false;
  }
}

StatusOr<std::optional<std::string>> Connection::ReadFrame(Clock::time_point deadline, size_t max_frame_bytes) {
  for (;;) {
    if (buf_.size() >= 4) {
      const uint32_t total = GetU32(buf_.data());
      Status st = CheckFrameSize(total, max_frame_bytes);
      if (!st.ok()) return st.WithContext("Pulsar " + endpoint_.HostPort());
      if (buf_.size() >= 4 + static_cast<size_t>(total)) {
        std::string body = buf_.substr(4, total);
        buf_.erase(0, 4 + static_cast<size_t>(total));
        return std::optional<std::string>(std::move(body));
      }
    }
    ASSIGN_OR_RETURN(bool got, Fill(deadline));
    if (!got) return std::optional<std::string>();
  }
}

}  // namespace cdc::source::pulsar
