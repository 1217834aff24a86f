#include "etcd_test_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "etcd/rpc.grpc.pb.h"

namespace cdc::testing {

namespace {

// A loopback port that was free a moment ago (the kernel's choice for port 0).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

bool OnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::string dirs = path;
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

}  // namespace

EtcdTestServer::EtcdTestServer() {
  client_port_ = FreePort();
  do {
    peer_port_ = FreePort();
  } while (peer_port_ == client_port_ && peer_port_ != 0);
}

EtcdTestServer::~EtcdTestServer() { Kill(); }

bool EtcdTestServer::Available() { return OnPath("etcd") && OnPath("etcdctl"); }

std::string EtcdTestServer::endpoint() const { return "127.0.0.1:" + std::to_string(client_port_); }

std::string EtcdTestServer::Log() const { return ReadFileBytes(dir_.File("etcd.log")); }

void EtcdTestServer::UseTls(std::string cert_path, std::string key_path, std::string ca_path,
                            std::string client_cert_path, std::string client_key_path) {
  tls_cert_ = std::move(cert_path);
  tls_key_ = std::move(key_path);
  tls_ca_ = std::move(ca_path);
  tls_client_cert_ = std::move(client_cert_path);
  tls_client_key_ = std::move(client_key_path);
}

std::string EtcdTestServer::Start(std::chrono::milliseconds timeout) {
  if (running()) return "already running";
  if (!dir_.ok() || client_port_ == 0 || peer_port_ == 0) return "no temp dir or no free port";
  const bool tls = !tls_cert_.empty();
  const std::string client_url = (tls ? "https://" : "http://") + endpoint();
  const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> args = {"etcd",
                                   "--name=cdc-unit",
                                   "--data-dir=" + dir_.File("data"),
                                   "--listen-client-urls=" + client_url,
                                   "--advertise-client-urls=" + client_url,
                                   "--listen-peer-urls=" + peer_url,
                                   "--initial-advertise-peer-urls=" + peer_url,
                                   "--initial-cluster=cdc-unit=" + peer_url,
                                   "--logger=zap",
                                   "--log-level=warn"};
  if (tls) {
    for (std::string flag : {"--cert-file=" + tls_cert_, "--key-file=" + tls_key_, "--trusted-ca-file=" + tls_ca_,
                             std::string("--client-cert-auth=true")}) {
      args.push_back(flag);
    }
  }
  const std::string log_path = dir_.File("etcd.log");
  auto argv = Argv(args);  // built before fork: the child only makes async-signal-safe calls
  pid_t pid = fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    execvp(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;

  // Ready when a linearizable Range gets an answer from etcd (an auth error counts: etcd checks
  // permissions after the read index, which needs a leader).
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int wstatus = 0;
    if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return "etcd exited during start-up; log:\n" + Log();
    }
    // A fresh channel per try: a channel that saw "connection refused" may wait out a backoff.
    grpc::ChannelArguments channel_args;
    channel_args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
    if (tls) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = ReadFileBytes(tls_ca_);
      ssl.pem_cert_chain = ReadFileBytes(tls_client_cert_);
      ssl.pem_private_key = ReadFileBytes(tls_client_key_);
      creds = grpc::SslCredentials(ssl);
    }
    auto channel = grpc::CreateCustomChannel(endpoint(), creds, channel_args);
    auto kv = etcdserverpb::KV::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    etcdserverpb::RangeRequest req;
    req.set_key("health");
    etcdserverpb::RangeResponse resp;
    grpc::Status st = kv->Range(&ctx, req, &resp);
    if (st.error_code() != grpc::StatusCode::UNAVAILABLE && st.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      return "";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Kill();
  return "etcd not ready in time; log:\n" + Log();
}

void EtcdTestServer::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int wstatus = 0;
  waitpid(pid_, &wstatus, 0);
  pid_ = -1;
}

void EtcdTestServer::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int wstatus = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill();
}

int EtcdTestServer::Etcdctl(const std::vector<std::string>& args, std::string* output) const {
  std::vector<std::string> full = {"etcdctl", "--endpoints=" + endpoint(), "--dial-timeout=3s"};
  full.insert(full.end(), args.begin(), args.end());
  auto argv = Argv(full);  // etcdctl 3.4 speaks the v3 API by default
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(pipe_fds[1], STDOUT_FILENO);
    dup2(pipe_fds[1], STDERR_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  if (output) *output = out;
  return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
}

}  // namespace cdc::testing
