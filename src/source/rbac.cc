#include "source/rbac.h"

#include <vector>

namespace cdc::source {

namespace {

std::vector<std::string> Split(std::string_view s) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= s.size()) {
    size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) slash = s.size();
    parts.emplace_back(s.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

constexpr std::string_view kPrivilegePrefix = "Privilege";

}  // namespace

bool RbacKeys::Put(std::string_view rel, std::string_view value) { return Change(rel, value, true); }

bool RbacKeys::Delete(std::string_view rel) { return Change(rel, {}, false); }

bool RbacKeys::Change(std::string_view rel, std::string_view value, bool put) {
  const auto p = Split(rel);
  auto set_in = [put](auto& set, const auto& item) {
    return put ? set.insert(item).second : set.erase(item) > 0;
  };
  if (p.size() == 2 && p[0] == "users" && !p[1].empty()) return set_in(users_, p[1]);
  if (p.size() == 2 && p[0] == "roles" && !p[1].empty()) return set_in(roles_, p[1]);
  if (p.size() == 3 && p[0] == "user-role-mapping") return set_in(bindings_, std::make_pair(p[1], p[2]));
  if (p.size() == 4 && p[0] == "grantee-privileges") {
    // "{db}.{object}"; names cannot hold a '.', so a key without one is a legacy default-db grant.
    Grantee g{p[1], p[2], "default", p[3]};
    if (auto dot = p[3].find('.'); dot != std::string::npos) {
      g.db = p[3].substr(0, dot);
      g.object_name = p[3].substr(dot + 1);
    }
    if (!put) return grantees_.erase(g) > 0;
    auto& id = grantees_[g];
    const bool changed = id != value;
    id = std::string(value);
    return changed;
  }
  if (p.size() == 3 && p[0] == "grantee-id") {
    std::string privilege = p[2];
    if (privilege.rfind(kPrivilegePrefix, 0) == 0) privilege = privilege.substr(kPrivilegePrefix.size());
    auto& privileges = privileges_[p[1]];
    const bool changed = set_in(privileges, privilege);
    if (privileges.empty()) privileges_.erase(p[1]);
    return changed;
  }
  return false;
}

RbacState RbacKeys::State() const {
  RbacState s;
  s.users = users_;
  s.roles = roles_;
  s.bindings = bindings_;
  for (const auto& [g, id] : grantees_) {
    auto it = privileges_.find(id);
    if (it == privileges_.end()) continue;
    for (const auto& privilege : it->second) s.grants.insert(Grant{g.role, g.object_type, g.db, g.object_name, privilege});
  }
  return s;
}

void RbacKeys::Clear() {
  users_.clear();
  roles_.clear();
  bindings_.clear();
  grantees_.clear();
  privileges_.clear();
}

}  // namespace cdc::source
