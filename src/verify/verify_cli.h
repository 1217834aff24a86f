// `milvus-cdc verify`: the offline form of the `verify` request. Reads the task (scope, name
// mapping, target credentials) from the configured task store, connects to the SOURCE
// (sourceConfig.milvus) and the task's TARGET, and prints the report JSON on stdout. The task's
// stored checkpoints give how far it has applied the source, for the re-checks of a task that
// is running on a server; a paused task is not waited for. Exit code: 0 equal, 1 different,
// 2 error (the reason on stderr). Credentials are never printed or logged.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "target/connect_params.h"

namespace cdc::verify {

// Runs the command with its arguments (after "verify"); returns the exit code.
int RunCli(const std::vector<std::string>& args);

// How to dial the source Milvus's own API (sourceConfig.milvus), as the pipeline does.
target::ConnectParams SourceConnectParams(const SourceMilvusConfig& config);

}  // namespace cdc::verify
