// RbacKeys: the source Milvus's roles, users, user-role bindings and grants, rebuilt from
// its etcd keys under <meta root>/root-coord/credential/ (plain keys, real deletes, no
// snapshots or tombstones):
//   users/{user}                                   JSON with the bcrypt hash (not kept)
//   roles/{role}                                   empty
//   user-role-mapping/{user}/{role}                empty
//   grantee-privileges/{role}/{object type}/{db}.{object}   grantee id (legacy: no "{db}.")
//   grantee-id/{grantee id}/Privilege{Name}        grantor user
// A grant exists when both its grantee key and a privilege under that id exist.
// Owned by the Catalog, which serializes calls; not thread-safe on its own.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

namespace cdc::source {

struct Grant {
  std::string role;
  std::string object_type;  // "Global", "Collection", "User"
  std::string db;
  std::string object_name;  // a collection or user name, or "*"
  std::string privilege;    // as the API names it, e.g. "Search" (etcd: "PrivilegeSearch")

  auto Tie() const { return std::tie(role, object_type, db, object_name, privilege); }
  bool operator<(const Grant& o) const { return Tie() < o.Tie(); }
  bool operator==(const Grant& o) const { return Tie() == o.Tie(); }
};

struct RbacState {
  std::set<std::string> users;
  std::set<std::string> roles;
  std::set<std::pair<std::string, std::string>> bindings;  // (user, role)
  std::set<Grant> grants;

  bool operator==(const RbacState& o) const {
    return users == o.users && roles == o.roles && bindings == o.bindings && grants == o.grants;
  }
};

class RbacKeys {
 public:
  // `rel` is the key below "root-coord/credential/". True when the state changed.
  bool Put(std::string_view rel, std::string_view value);
  bool Delete(std::string_view rel);
  RbacState State() const;
  void Clear();

 private:
  struct Grantee {
    std::string role, object_type, db, object_name;
    auto Tie() const { return std::tie(role, object_type, db, object_name); }
    bool operator<(const Grantee& o) const { return Tie() < o.Tie(); }
  };
  bool Change(std::string_view rel, std::string_view value, bool put);

  std::set<std::string> users_;
  std::set<std::string> roles_;
  std::set<std::pair<std::string, std::string>> bindings_;
  std::map<Grantee, std::string> grantees_;                     // -> grantee id
  std::map<std::string, std::set<std::string>> privileges_;     // grantee id -> privileges
};

}  // namespace cdc::source
