// Scope rules between tasks that write to the same target: a collection is replicated
// by at most one task per target, wildcards give way to names claimed earlier, and at
// most one task per target replicates users and roles. Pure functions.
#pragma once

#include <string>
#include <vector>

#include "task/task_spec.h"
#include "util/status.h"

namespace cdc {

// A canonical key for the target: "host:port" of the Milvus URI, lower-cased, without scheme.
std::string TargetKey(const TaskSpec& spec);

// True when the "db.collection" pattern (either part may be `*`) covers `name`.
bool ScopeMatches(const std::string& pattern, const std::string& name);

// Checks `spec` against `others` (tasks with the same TargetKey) and, on success, sets
// spec->exclude_collections to the names the new task's wildcards must skip.
Status CheckScope(TaskSpec* spec, const std::vector<TaskSpec>& others);

}  // namespace cdc
