// `milvus-cdc inspect`: prints the source's decoded change stream as JSON lines, for
// operators asking "what is in my log?" and for our own tests. Reads the same etcd
// metadata and Kafka/Pulsar channels a task would, through the same LogReader.
#pragma once

#include <string>
#include <vector>

namespace cdc::inspect {

// Runs the command with its arguments (after "inspect"); returns the exit code.
int Run(const std::vector<std::string>& args);

}  // namespace cdc::inspect
