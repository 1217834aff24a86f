// RbacSync against an in-process fake target that keeps roles, users, bindings and grants the
// way Milvus answers SelectRole / SelectGrant / ListCredUsers: the mirror rules of rbac_sync.h.
#include "pipeline/rbac_sync.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "milvus.grpc.pb.h"
#include "target/milvus_client.h"
#include "util/secret_box.h"

namespace cdc::pipeline {
namespace {

namespace milvuspb = milvus::proto::milvus;
namespace commonpb = milvus::proto::common;
using source::Grant;
using source::RbacState;

// The fake target's RBAC state (grants keyed like source::Grant) and the calls that changed it.
class FakeRbacTarget final : public milvuspb::MilvusService::Service {
 public:
  RbacState state;
  std::map<std::string, std::string> passwords;  // user -> base64 as received
  std::vector<std::string> changes;

  grpc::Status Connect(grpc::ServerContext*, const milvuspb::ConnectRequest*, milvuspb::ConnectResponse*) override {
    return grpc::Status::OK;
  }
  grpc::Status ListDatabases(grpc::ServerContext*, const milvuspb::ListDatabasesRequest*,
                             milvuspb::ListDatabasesResponse* resp) override {
    resp->add_db_names("default");
    resp->add_db_names("db1");
    return grpc::Status::OK;
  }
  grpc::Status ListCredUsers(grpc::ServerContext*, const milvuspb::ListCredUsersRequest*,
                             milvuspb::ListCredUsersResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& u : state.users) resp->add_usernames(u);
    return grpc::Status::OK;
  }
  grpc::Status SelectRole(grpc::ServerContext*, const milvuspb::SelectRoleRequest*,
                          milvuspb::SelectRoleResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& r : state.roles) {
      auto* result = resp->add_results();
      result->mutable_role()->set_name(r);
      for (const auto& [u, role] : state.bindings) {
        if (role == r) result->add_users()->set_name(u);
      }
    }
    return grpc::Status::OK;
  }
  grpc::Status SelectGrant(grpc::ServerContext*, const milvuspb::SelectGrantRequest* req,
                           milvuspb::SelectGrantResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& g : state.grants) {
      if (g.role != req->entity().role().name() || g.db != req->entity().db_name()) continue;
      auto* e = resp->add_entities();
      e->mutable_role()->set_name(g.role);
      e->mutable_object()->set_name(g.object_type);
      e->set_object_name(g.object_name);
      e->set_db_name(g.db);
      e->mutable_grantor()->mutable_privilege()->set_name(g.privilege);
    }
    return grpc::Status::OK;
  }
  grpc::Status CreateRole(grpc::ServerContext*, const milvuspb::CreateRoleRequest* req, commonpb::Status*) override {
    return Change("CreateRole " + req->entity().name(), [&] { state.roles.insert(req->entity().name()); });
  }
  grpc::Status DropRole(grpc::ServerContext*, const milvuspb::DropRoleRequest* req, commonpb::Status*) override {
    return Change("DropRole " + req->role_name(), [&] { state.roles.erase(req->role_name()); });
  }
  grpc::Status OperateUserRole(grpc::ServerContext*, const milvuspb::OperateUserRoleRequest* req,
                               commonpb::Status*) override {
    const bool add = req->type() == milvuspb::AddUserToRole;
    return Change(std::string(add ? "Bind " : "Unbind ") + req->username() + "/" + req->role_name(), [&] {
      if (add) state.bindings.insert({req->username(), req->role_name()});
      if (!add) state.bindings.erase({req->username(), req->role_name()});
    });
  }
  grpc::Status OperatePrivilege(grpc::ServerContext*, const milvuspb::OperatePrivilegeRequest* req,
                                commonpb::Status*) override {
    const auto& e = req->entity();
    Grant g{e.role().name(), e.object().name(), e.db_name(), e.object_name(), e.grantor().privilege().name()};
    const bool grant = req->type() == milvuspb::Grant;
    return Change(std::string(grant ? "Grant " : "Revoke ") + g.privilege + " to " + g.role, [&] {
      if (grant) state.grants.insert(g);
      if (!grant) state.grants.erase(g);
    });
  }
  grpc::Status CreateCredential(grpc::ServerContext*, const milvuspb::CreateCredentialRequest* req,
                                commonpb::Status*) override {
    return Change("CreateCredential " + req->username(), [&] {
      state.users.insert(req->username());
      passwords[req->username()] = req->password();
    });
  }
  grpc::Status DeleteCredential(grpc::ServerContext*, const milvuspb::DeleteCredentialRequest* req,
                                commonpb::Status*) override {
    return Change("DeleteCredential " + req->username(), [&] { state.users.erase(req->username()); });
  }

 private:
  template <typename F>
  grpc::Status Change(const std::string& what, F f) {
    std::lock_guard<std::mutex> lock(mu_);
    changes.push_back(what);
    f();
    return grpc::Status::OK;
  }
  std::mutex mu_;
};

class RbacSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A target as Milvus starts: admin, public with its built-in grants on every database, root.
    fake_.state.roles = {"admin", "public"};
    fake_.state.users = {"root"};
    fake_.state.grants = {{"public", "Global", "*", "*", "DescribeCollection"}};
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    target::ConnectParams params;
    params.uri = "http://127.0.0.1:" + std::to_string(port_);
    auto client = target::MilvusClient::Connect(params);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(client).value();
    applier_ = std::make_unique<target::MilvusApplier>(client_.get(), target::RetryPolicy{1}, &stop_);
  }
  void TearDown() override { server_->Shutdown(); }

  // The source: role r1 (Search on db1.c1), users u1 (password given) and u2 (none), both in r1.
  static RbacState Source() {
    RbacState s;
    s.roles = {"admin", "public", "r1"};
    s.users = {"root", "u1", "u2"};
    s.bindings = {{"u1", "r1"}, {"u2", "r1"}};
    s.grants = {{"public", "Global", "*", "*", "DescribeCollection"}, {"r1", "Collection", "db1", "c1", "Search"}};
    return s;
  }

  FakeRbacTarget fake_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<target::MilvusClient> client_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<target::MilvusApplier> applier_;
};

TEST_F(RbacSyncTest, StartMakesTheTargetEqualAndReportsUsersWithoutPasswords) {
  fake_.state.roles.insert("stale");  // a role the source does not have
  fake_.state.grants.insert({"stale", "Global", "default", "*", "Insert"});
  fake_.state.users.insert("ops");  // the target's own user
  fake_.state.bindings.insert({"ops", "admin"});
  RbacSync sync("t1", applier_.get(), {{"u1", "pw-1"}});
  ASSERT_TRUE(sync.Start(Source()).ok());

  EXPECT_EQ(fake_.state.roles, (std::set<std::string>{"admin", "public", "r1"}));
  EXPECT_EQ(fake_.state.grants, Source().grants);
  EXPECT_EQ(fake_.state.users, (std::set<std::string>{"ops", "root", "u1"}));
  EXPECT_EQ(fake_.passwords["u1"], Base64Encode("pw-1"));  // as the SDKs send it
  EXPECT_EQ(fake_.state.bindings, (std::set<std::pair<std::string, std::string>>{{"ops", "admin"}, {"u1", "r1"}}));
  EXPECT_EQ(sync.missing_users(), (std::vector<std::string>{"u2"}));
  for (const auto& c : fake_.changes) EXPECT_EQ(c.find("admin"), std::string::npos) << c;  // built-ins untouched
}

TEST_F(RbacSyncTest, LaterChangesAreMirroredIncludingRemovals) {
  RbacSync sync("t1", applier_.get(), {{"u1", "pw-1"}});
  ASSERT_TRUE(sync.Start(Source()).ok());
  fake_.changes.clear();

  RbacState next = Source();
  next.grants.erase({"r1", "Collection", "db1", "c1", "Search"});  // revoke
  next.grants.insert({"r1", "Global", "default", "*", "CreateCollection"});
  next.users.erase("u1");  // deleted on the source while the task runs
  next.bindings.erase({"u1", "r1"});
  ASSERT_TRUE(sync.Sync(next).ok());
  EXPECT_EQ(fake_.state.grants, next.grants);
  EXPECT_FALSE(fake_.state.users.count("u1"));
  EXPECT_TRUE(fake_.state.users.count("root"));
  EXPECT_EQ(fake_.changes.front().rfind("Revoke", 0), 0u);  // removals first

  next.roles.erase("r1");
  next.grants.erase({"r1", "Global", "default", "*", "CreateCollection"});
  next.bindings.clear();
  ASSERT_TRUE(sync.Sync(next).ok());
  EXPECT_EQ(fake_.state.roles, (std::set<std::string>{"admin", "public"}));
  EXPECT_TRUE(sync.missing_users() == std::vector<std::string>{"u2"});  // still on the source, still missing
}

}  // namespace
}  // namespace cdc::pipeline
