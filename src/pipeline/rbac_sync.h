// RbacSync: makes the target's roles, user-role bindings and grants equal to the source's
// (extra_info.enable_user_role), and creates the source's users that the target lacks when
// the task was given their initial passwords (the source keeps only bcrypt hashes, which no
// Milvus API takes). Rules:
//   - roles, bindings and grants mirror the source: what the source lacks is removed from the
//     target too (the one user-role task per target owns the target's RBAC), except the
//     built-in roles admin and public, which are never created or dropped;
//   - users are created only with a given password, else listed by missing_users(); a user is
//     deleted on the target only when it disappears from the source while the task runs;
//     the target's own users and the root user are never touched;
//   - removals first (revoke, unbind, drop role, delete user), then additions.
// Owned by a ChangeApplier; Start/Sync on its thread; missing_users() from any thread.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "source/rbac.h"
#include "target/milvus_applier.h"
#include "util/status.h"

namespace cdc::pipeline {

// Adds to a target's "fail to get authorization" what to do about it (a task without a token).
Status ExplainMissingCredentials(const Status& st);

class RbacSync {
 public:
  RbacSync(std::string task_id, target::MilvusApplier* applier, std::map<std::string, std::string> passwords);

  // Reads the target's current roles, bindings, grants and users, then syncs to `source`.
  Status Start(const source::RbacState& source);
  // Applies what changed between the target (as last read or written) and `source`.
  Status Sync(const source::RbacState& source);

  std::vector<std::string> missing_users() const;

 private:
  Status ReadTarget();
  Status SyncInner(const source::RbacState& source);

  const std::string task_id_;
  target::MilvusApplier* const applier_;
  const std::map<std::string, std::string> passwords_;

  source::RbacState target_;               // what the target holds, as far as we know
  std::set<std::string> source_users_;     // the source's users at the last sync
  mutable std::mutex mu_;                  // guards missing_
  std::vector<std::string> missing_;
};

}  // namespace cdc::pipeline
