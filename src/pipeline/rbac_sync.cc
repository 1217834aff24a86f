#include "pipeline/rbac_sync.h"

#include <algorithm>

#include "util/log.h"

namespace cdc::pipeline {

namespace {

const std::set<std::string> kBuiltinRoles = {"admin", "public"};
constexpr const char* kRootUser = "root";

target::RbacGrant ToTarget(const source::Grant& g) {
  return target::RbacGrant{g.role, g.object_type, g.object_name, g.db, g.privilege};
}

template <typename T>
std::vector<T> Minus(const std::set<T>& a, const std::set<T>& b) {
  std::vector<T> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

}  // namespace

RbacSync::RbacSync(std::string task_id, target::MilvusApplier* applier, std::map<std::string, std::string> passwords)
    : task_id_(std::move(task_id)), applier_(applier), passwords_(std::move(passwords)) {}

Status RbacSync::ReadTarget() {
  target_ = source::RbacState{};
  ASSIGN_OR_RETURN(auto users, applier_->ListUsers());
  target_.users.insert(users.begin(), users.end());
  ASSIGN_OR_RETURN(auto roles, applier_->SelectRoles());
  ASSIGN_OR_RETURN(auto dbs, applier_->ListDatabases());
  dbs.push_back("*");  // the built-in grants of public are on every database
  for (const auto& [role, bound] : roles) {
    target_.roles.insert(role);
    for (const auto& user : bound) target_.bindings.insert({user, role});
    for (const auto& db : dbs) {
      auto grants = applier_->SelectGrants(role, db);
      if (!grants.ok()) {
        if (db == "*") continue;  // a target that does not take "*" here lists those grants per database
        return grants.status();
      }
      for (const auto& g : *grants) {
        target_.grants.insert(source::Grant{g.role, g.object_type, g.db, g.object_name, g.privilege});
      }
    }
  }
  return Status::Ok();
}

Status RbacSync::Start(const source::RbacState& source) {
  Status st = ReadTarget().WithContext("cannot read the target's roles, users and grants");
  if (st.ok()) {
    source_users_ = source.users;
    st = Sync(source);
  }
  return ExplainMissingCredentials(st);
}

Status ExplainMissingCredentials(const Status& st) {
  if (st.ok() || st.message().find("fail to get authorization") == std::string::npos) return st;
  return Status(st.code(), st.message() + " (replicating roles and grants needs the target's credentials: set "
                                          "milvus_connect_param.token to an admin's user:password)");
}

Status RbacSync::Sync(const source::RbacState& source) { return ExplainMissingCredentials(SyncInner(source)); }

Status RbacSync::SyncInner(const source::RbacState& source) {
  auto log = GetLogger("apply");
  // Removals.
  for (const auto& g : Minus(target_.grants, source.grants)) {
    RETURN_IF_ERROR(applier_->OperatePrivilege(ToTarget(g), /*grant_it=*/false));
    target_.grants.erase(g);
  }
  std::set<std::string> managed = source.users;
  managed.insert(source_users_.begin(), source_users_.end());
  for (const auto& b : Minus(target_.bindings, source.bindings)) {
    if (!managed.count(b.first)) continue;  // the target's own users keep their roles
    RETURN_IF_ERROR(applier_->OperateUserRole(b.first, b.second, /*add=*/false));
    target_.bindings.erase(b);
  }
  for (const auto& role : Minus(target_.roles, source.roles)) {
    if (kBuiltinRoles.count(role)) continue;
    RETURN_IF_ERROR(applier_->DropRole(role));
    target_.roles.erase(role);
    for (auto it = target_.bindings.begin(); it != target_.bindings.end();) {
      it = it->second == role ? target_.bindings.erase(it) : std::next(it);
    }
  }
  for (const auto& user : Minus(source_users_, source.users)) {
    if (user == kRootUser || !target_.users.count(user)) continue;
    RETURN_IF_ERROR(applier_->DeleteCredential(user));
    target_.users.erase(user);
    log->info("task {}: user {} deleted on the target (deleted on the source)", task_id_, user);
  }
  // Additions.
  std::vector<std::string> missing;
  for (const auto& user : Minus(source.users, target_.users)) {
    auto pw = passwords_.find(user);
    if (user == kRootUser) continue;
    if (pw == passwords_.end()) {
      missing.push_back(user);
      continue;
    }
    RETURN_IF_ERROR(applier_->CreateCredential(user, pw->second));
    target_.users.insert(user);
    log->info("task {}: user {} created on the target with the given initial password", task_id_, user);
  }
  for (const auto& role : Minus(source.roles, target_.roles)) {
    RETURN_IF_ERROR(applier_->CreateRole(role));
    target_.roles.insert(role);
  }
  for (const auto& b : Minus(source.bindings, target_.bindings)) {
    if (!target_.users.count(b.first) || !target_.roles.count(b.second)) continue;
    RETURN_IF_ERROR(applier_->OperateUserRole(b.first, b.second, /*add=*/true));
    target_.bindings.insert(b);
  }
  for (const auto& g : Minus(source.grants, target_.grants)) {
    if (!target_.roles.count(g.role)) continue;
    RETURN_IF_ERROR(applier_->OperatePrivilege(ToTarget(g), /*grant_it=*/true));
    target_.grants.insert(g);
  }
  source_users_ = source.users;
  std::lock_guard<std::mutex> lock(mu_);
  if (!missing.empty() && missing != missing_) {
    log->warn("task {}: {} source user(s) missing on the target and no initial password given (user_passwords)",
              task_id_, missing.size());
  }
  missing_ = std::move(missing);
  return Status::Ok();
}

std::vector<std::string> RbacSync::missing_users() const {
  std::lock_guard<std::mutex> lock(mu_);
  return missing_;
}

}  // namespace cdc::pipeline
