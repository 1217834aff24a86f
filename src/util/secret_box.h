// SecretBox: authenticated encryption (AES-256-GCM) of small secrets such as target
// tokens and passwords, so the task store never holds them in clear text.
// Immutable after construction; thread-safe.
#pragma once

#include <string>

#include "util/status.h"

namespace cdc {

class SecretBox {
 public:
  // Reads a 32-byte key stored as 64 hex characters from `path`; when the file does not
  // exist, creates it with a fresh random key and mode 0600.
  static StatusOr<SecretBox> FromKeyFile(const std::string& path);
  // A box over a raw 32-byte key (tests).
  static StatusOr<SecretBox> FromKey(const std::string& raw_key);

  // Returns "v1:" + base64(nonce | ciphertext | tag). Empty input gives empty output.
  StatusOr<std::string> Seal(const std::string& plaintext) const;
  // Reverses Seal; a wrong key or tampered text is an error.
  StatusOr<std::string> Open(const std::string& sealed) const;

 private:
  explicit SecretBox(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

std::string Base64Encode(const std::string& raw);
StatusOr<std::string> Base64Decode(const std::string& text);

}  // namespace cdc
