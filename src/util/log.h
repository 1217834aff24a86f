// Logging glue: one named spdlog logger per module, all writing to stderr.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace cdc {

// Returns the logger for `module` ("api", "task", "store", ...), creating it on first use.
// Thread-safe.
std::shared_ptr<spdlog::logger> GetLogger(const std::string& module);

// Sets the level of every existing and future logger. Returns false for an unknown level name.
bool SetLogLevel(const std::string& level);

}  // namespace cdc
