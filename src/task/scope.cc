#include "task/scope.h"

#include <algorithm>
#include <cctype>

namespace cdc {

namespace {

std::pair<std::string, std::string> Split(const std::string& name) {
  auto dot = name.find('.');
  if (dot == std::string::npos) return {"default", name};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Whether the scope name `pattern` of task `owner` covers `name`. A `*` database gives way to the
// owner's own list for a named database, as at run time (TaskSpec::CollectionInScope).
bool Covers(const TaskSpec& owner, const std::string& pattern, const std::string& name) {
  if (!ScopeMatches(pattern, name)) return false;
  const std::string pattern_db = Split(pattern).first;
  const std::string name_db = Split(name).first;
  return !(pattern_db == "*" && name_db != "*" && owner.db_collections && owner.db_collections->count(name_db));
}

}  // namespace

std::string TargetKey(const TaskSpec& spec) {
  std::string uri = spec.milvus.EffectiveUri();
  for (const char* scheme : {"http://", "https://", "tcp://", "grpc://"}) {
    if (uri.rfind(scheme, 0) == 0) {
      uri = uri.substr(std::string(scheme).size());
      break;
    }
  }
  while (!uri.empty() && uri.back() == '/') uri.pop_back();
  std::transform(uri.begin(), uri.end(), uri.begin(), [](unsigned char c) { return std::tolower(c); });
  const bool bracketed = !uri.empty() && uri.front() == '[';
  const bool has_port = bracketed ? uri.find("]:") != std::string::npos : uri.find(':') != std::string::npos;
  if (!has_port) uri += ":19530";
  return uri;
}

bool ScopeMatches(const std::string& pattern, const std::string& name) {
  auto [pdb, pcoll] = Split(pattern);
  auto [ndb, ncoll] = Split(name);
  return (pdb == "*" || pdb == ndb) && (pcoll == "*" || pcoll == ncoll);
}

Status CheckScope(TaskSpec* spec, const std::vector<TaskSpec>& others) {
  if (spec->enable_user_role) {
    for (const auto& o : others) {
      if (o.enable_user_role) return InvalidArgument("the enable user role param is duplicate");
    }
  }
  const std::vector<std::string> names = spec->ScopeNames();
  std::vector<std::string> duplicates;
  std::vector<std::string> excludes;
  for (const auto& name : names) {
    for (const auto& o : others) {
      for (const auto& existing : o.ScopeNames()) {
        bool duplicate = false;
        if (existing == name) {
          duplicate = true;
        } else if (name == "*.*") {
          excludes.push_back(existing);  // a new *.* only clashes with another *.*
        } else if (Covers(o, existing, name) && !Contains(o.exclude_collections, name)) {
          duplicate = true;
        } else if (ScopeMatches(name, existing)) {
          excludes.push_back(existing);
        }
        if (duplicate && !Contains(duplicates, name)) duplicates.push_back(name);
      }
    }
  }
  if (!duplicates.empty()) {
    std::string list;
    for (const auto& d : duplicates) list += (list.empty() ? "" : " ") + d;
    return InvalidArgument("the collection name is duplicate with existing task, [" + list + "]");
  }
  for (const auto& nm : spec->name_mapping) {
    std::vector<std::string> sources;
    if (nm.collection_mapping.empty()) {
      sources.push_back(nm.source_db + ".*");
    } else {
      for (const auto& [src, _] : nm.collection_mapping) sources.push_back(nm.source_db + "." + src);
    }
    for (const auto& src : sources) {
      bool inside = std::any_of(names.begin(), names.end(), [&](const std::string& n) { return Covers(*spec, n, src); });
      if (!inside) {
        return InvalidArgument("the collection name in the name mapping is not in the collection info, checkout it");
      }
    }
  }
  std::sort(excludes.begin(), excludes.end());
  excludes.erase(std::unique(excludes.begin(), excludes.end()), excludes.end());
  spec->exclude_collections = excludes;
  return Status::Ok();
}

}  // namespace cdc
