// VerifySide: what the verifier reads from one Milvus (SOURCE or TARGET): its databases,
// collections, schemas and partitions, key-ordered pages, rows by key, counts, and (source only)
// fresh timestamps. MilvusSide reads a real Milvus through a MilvusClient; unit tests fake it.
// Implementations must be callable from two threads at once (the verifier reads the next source
// page while it reads the target), and Cancel from a third. MilvusSide either borrows a client
// (which outlives it) or owns one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "schema.pb.h"
#include "target/collection_reader.h"
#include "target/milvus_client.h"
#include "task/task_spec.h"
#include "util/status.h"

namespace cdc::verify {

using target::Page;
using target::PkValue;
using target::ReadOptions;

// One collection (or one partition of it) on one side.
struct Table {
  std::string db;
  std::string name;
  std::string partition;  // empty: the whole collection
  std::string pk_field;
  bool varchar_pk = false;
};

class VerifySide {
 public:
  virtual ~VerifySide() = default;

  virtual StatusOr<std::vector<std::string>> ListDatabases() = 0;
  virtual StatusOr<std::vector<std::string>> ListCollections(const std::string& db) = 0;
  // The collection's schema; nullopt when the collection does not exist.
  virtual StatusOr<std::optional<milvus::proto::schema::CollectionSchema>> Describe(const std::string& db,
                                                                                  const std::string& name) = 0;
  virtual StatusOr<std::vector<std::string>> ListPartitions(const std::string& db, const std::string& name) = 0;

  // As CollectionReader (key order, limit 0 = the whole range).
  virtual StatusOr<Page> ReadRange(const Table& table, const std::optional<PkValue>& after,
                                   const std::optional<PkValue>& upto, int64_t limit,
                                   const ReadOptions& options) = 0;
  virtual StatusOr<Page> ReadKeys(const Table& table, const std::vector<PkValue>& keys,
                                  const ReadOptions& options) = 0;
  virtual StatusOr<int64_t> Count(const Table& table, const std::optional<PkValue>& after,
                                  const std::optional<PkValue>& upto, const ReadOptions& options) = 0;
  // A fresh timestamp of this side's TSO (used on the source only).
  virtual StatusOr<uint64_t> AllocTimestamp() = 0;
  // "source 127.0.0.1:19530", for messages.
  virtual std::string Name() const = 0;
  // Aborts calls in flight and fails later ones (a stopping run); irreversible.
  virtual void Cancel() {}
};

// How to dial a task's target: its milvus_connect_param (legacy host/port/username forms too).


class MilvusSide : public VerifySide {
 public:
  // Borrows `client`: Cancel does nothing (its owner cancels it).
  MilvusSide(target::MilvusClient* client, std::string role) : client_(client), role_(std::move(role)) {}
  // Owns `client`: Cancel cancels it.
  MilvusSide(std::unique_ptr<target::MilvusClient> client, std::string role)
      : owned_(std::move(client)), client_(owned_.get()), role_(std::move(role)) {}

  StatusOr<std::vector<std::string>> ListDatabases() override;
  StatusOr<std::vector<std::string>> ListCollections(const std::string& db) override;
  StatusOr<std::optional<milvus::proto::schema::CollectionSchema>> Describe(const std::string& db,
                                                                          const std::string& name) override;
  StatusOr<std::vector<std::string>> ListPartitions(const std::string& db, const std::string& name) override;
  StatusOr<Page> ReadRange(const Table& table, const std::optional<PkValue>& after, const std::optional<PkValue>& upto,
                           int64_t limit, const ReadOptions& options) override;
  StatusOr<Page> ReadKeys(const Table& table, const std::vector<PkValue>& keys, const ReadOptions& options) override;
  StatusOr<int64_t> Count(const Table& table, const std::optional<PkValue>& after, const std::optional<PkValue>& upto,
                          const ReadOptions& options) override;
  StatusOr<uint64_t> AllocTimestamp() override;
  std::string Name() const override { return role_ + " " + client_->endpoint(); }
  void Cancel() override {
    if (owned_) owned_->Cancel();
  }

 private:
  const std::unique_ptr<target::MilvusClient> owned_;
  target::MilvusClient* const client_;
  const std::string role_;
};

}  // namespace cdc::verify
