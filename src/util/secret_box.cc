#include "util/secret_box.h"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include <openssl/evp.h>
#include <openssl/rand.h>

namespace cdc {

namespace {
constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
const char kPrefix[] = "v1:";

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

std::string ToHex(const std::string& raw) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

StatusOr<std::string> FromHex(const std::string& hex) {
  if (hex.size() % 2 != 0) return InvalidArgument("odd number of hex digits");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = std::isxdigit(hex[i]) ? std::stoi(hex.substr(i, 1), nullptr, 16) : -1;
    int lo = std::isxdigit(hex[i + 1]) ? std::stoi(hex.substr(i + 1, 1), nullptr, 16) : -1;
    if (hi < 0 || lo < 0) return InvalidArgument("not a hex digit");
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}
}  // namespace

std::string Base64Encode(const std::string& raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  out.resize(n);
  return out;
}

StatusOr<std::string> Base64Decode(const std::string& text) {
  if (text.size() % 4 != 0) return InvalidArgument("invalid base64 length");
  // '=' may only pad the end: at most two, and nothing after them.
  const size_t first_pad = text.find('=');
  if (first_pad != std::string::npos &&
      (first_pad + 2 < text.size() || text.find_first_not_of('=', first_pad) != std::string::npos)) {
    return InvalidArgument("invalid base64 padding");
  }
  std::string out(3 * text.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return InvalidArgument("invalid base64");
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad++;
  if (text.size() > 1 && text[text.size() - 2] == '=') pad++;
  out.resize(n - pad);
  return out;
}

StatusOr<SecretBox> SecretBox::FromKey(const std::string& raw_key) {
  if (raw_key.size() != kKeyBytes) return InvalidArgument("secret key must be 32 bytes");
  return SecretBox(raw_key);
}

StatusOr<SecretBox> SecretBox::FromKeyFile(const std::string& path) {
  std::ifstream in(path);
  if (in) {
    std::string hex;
    in >> hex;
    auto raw = FromHex(hex);
    if (!raw.ok() || raw->size() != kKeyBytes) {
      return InvalidArgument("secret key file '" + path + "' must hold 64 hex characters");
    }
    return SecretBox(*raw);
  }
  std::string key(kKeyBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), kKeyBytes) != 1) {
    return Internal("cannot generate a random secret key");
  }
  mode_t old = umask(077);
  std::ofstream out(path, std::ios::trunc);
  umask(old);
  if (!out) return Unavailable("cannot create secret key file '" + path + "'");
  out << ToHex(key) << "\n";
  out.close();
  if (!out) return Unavailable("cannot write secret key file '" + path + "'");
  chmod(path.c_str(), 0600);
  return SecretBox(key);
}

StatusOr<std::string> SecretBox::Seal(const std::string& plaintext) const {
  if (plaintext.empty()) return std::string();
  unsigned char nonce[kNonceBytes];
  if (RAND_bytes(nonce, kNonceBytes) != 1) return Internal("cannot generate a nonce");
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  std::string body(plaintext.size(), '\0');
  unsigned char tag[kTagBytes];
  int len = 0;
  int tail = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                                 reinterpret_cast<const unsigned char*>(key_.data()), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(body.data()), &len,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(body.data()) + len, &tail) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, tag) != 1) {
    return Internal("encryption failed");
  }
  std::string packed(reinterpret_cast<char*>(nonce), kNonceBytes);
  packed += body;
  packed.append(reinterpret_cast<char*>(tag), kTagBytes);
  return std::string(kPrefix) + Base64Encode(packed);
}

StatusOr<std::string> SecretBox::Open(const std::string& sealed) const {
  if (sealed.empty()) return std::string();
  if (sealed.rfind(kPrefix, 0) != 0) return InvalidArgument("sealed secret has an unknown format");
  ASSIGN_OR_RETURN(std::string packed, Base64Decode(sealed.substr(sizeof(kPrefix) - 1)));
  if (packed.size() < kNonceBytes + kTagBytes) return InvalidArgument("sealed secret is truncated");
  const auto* nonce = reinterpret_cast<const unsigned char*>(packed.data());
  std::string body = packed.substr(kNonceBytes, packed.size() - kNonceBytes - kTagBytes);
  std::string tag = packed.substr(packed.size() - kTagBytes);
  std::string plain(body.size(), '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  int tail = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(key_.data()), nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                        reinterpret_cast<const unsigned char*>(body.data()), static_cast<int>(body.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len, &tail) != 1) {
    return InvalidArgument("sealed secret cannot be opened: wrong key or corrupted data");
  }
  return plain;
}

}  // namespace cdc
