// CURVE keys of the extractor -> receiver link (docs/security.md).
//
// Every node has one CURVE key pair. The secret key lives only in the node's
// key file (NodeConfig.key_file, mode 0600); the configuration holds only
// public keys (NodeConfig.public_key), which `rdfcom keygen` writes into it.
// Keys are Z85 text, 40 characters each (32 bytes).
//
// Key file format (text, one `name = value` per line, '#' starts a comment
// line; blank lines are ignored):
//
//   # rdf CURVE key pair of node "backup"
//   public-key = rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7
//   secret-key = JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6
//
// (Z85 uses '#' and '=' too: only a line whose first non-blank character is
// '#' is a comment, and a line is split at its first '='.)
//
// Thread safety: every function here is safe to call from any thread; none
// keeps state.
#ifndef RDF_COMMON_NET_CURVE_KEYS_H_
#define RDF_COMMON_NET_CURVE_KEYS_H_

#include <cstddef>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/config/config.h"

namespace rdf::curve {

// Length of a Z85-encoded CURVE key.
inline constexpr size_t kZ85KeyLength = 40;

struct KeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters; never log it
};

// Whether `key` is 40 characters of the Z85 alphabet.
bool IsZ85Key(absl::string_view key);

// A fresh key pair (zmq_curve_keypair). kUnimplemented when libzmq was built
// without CURVE support; kInternal on any other libzmq failure.
absl::StatusOr<KeyPair> GenerateKeyPair();

// The public key that belongs to `secret_key` (zmq_curve_public).
// kInvalidArgument when `secret_key` is not a Z85 key.
absl::StatusOr<std::string> PublicKeyFromSecret(absl::string_view secret_key);

// The key file text for `keys` (the format above); `node` only names the
// node in the leading comment and may be empty.
std::string FormatKeyFile(const KeyPair& keys, absl::string_view node = "");

// Writes `keys` to `path` with mode 0600 (never readable by others, not even
// briefly): creates missing parent folders, writes a temporary file next to
// `path`, syncs it and moves it into place, then syncs the folder, so after
// a crash `path` holds either its old contents or `keys`.
// Fails with kAlreadyExists naming the file when `path` exists and `force`
// is false (the check and the move are one atomic step: link(2)); with
// `force` the old file is replaced. kInvalidArgument when `keys` is not a
// matching pair of Z85 keys. File-system errors as ErrnoToStatus gives them.
absl::Status WriteKeyFile(const std::string& path, const KeyPair& keys,
                          bool force = false);

// Reads and checks a key file:
//   kNotFound         the file does not exist (the message names it and says
//                     to run `rdfcom keygen`);
//   kPermissionDenied the file is accessible by group or others (the message
//                     says `chmod 600 <file>`), or cannot be opened (EACCES);
//   kInvalidArgument  malformed content, "<file>:<line>: <problem>", or a
//                     public key that does not belong to the secret key.
absl::StatusOr<KeyPair> ReadKeyFile(const std::string& path);

// The public key of `node`: its configured public_key when set, otherwise
// the public key in its key file (so a loopback system, where both key files
// are local, works before the configuration is edited).
// kFailedPrecondition when neither is available (the message names the
// node, the key file, the underlying problem and the fix).
// REQUIRES: `node` is one of `config`'s nodes.
absl::StatusOr<std::string> PublicKeyOf(const config::Config& config,
                                        const proto::NodeConfig& node);

// The node's own key pair, for the process that runs as `node`: reads its
// key file (errors as ReadKeyFile) and, when the configuration sets the
// node's public_key, checks it equals the file's (kFailedPrecondition
// otherwise: the key file was regenerated without updating the
// configuration, or the other way round; peers would refuse this node).
absl::StatusOr<KeyPair> ReadNodeKeyPair(const config::Config& config,
                                        const proto::NodeConfig& node);

// Rewrites the configuration text `text` so that the `nodes { ... }` block
// of each node named in `node_to_public_key` sets `public_key: "<z85>"`:
// an existing public_key value in that block is replaced (the rest of its
// line, e.g. a trailing comment, is kept); otherwise a line
// `public_key: "<z85>"` is inserted after the block's `name:` line, with the
// same indentation (or, when the name shares its line with other fields or
// the closing brace, inserted right after the name value). Every other byte
// is kept, comments included.
// kNotFound when a named node has no `nodes` block with that name;
// kInvalidArgument when a key is not a Z85 key or the text cannot be
// scanned (unbalanced braces, unterminated string).
absl::StatusOr<std::string> SetPublicKeysInText(
    absl::string_view text,
    const std::map<std::string, std::string>& node_to_public_key);

// SetPublicKeysInText applied to the configuration file at `config_path`,
// in place and atomically (temporary file in the same folder, fsync,
// rename, fsync of the folder; the file keeps its mode; a symbolic link is
// followed, not replaced). The new text must load (config::Parse) before
// the file is replaced: otherwise kInvalidArgument with the loader's message
// and the file is untouched. Read errors as ReadKeyFile's (kNotFound, ...).
absl::Status SetPublicKeysInConfig(
    const std::string& config_path,
    const std::map<std::string, std::string>& node_to_public_key);

}  // namespace rdf::curve

#endif  // RDF_COMMON_NET_CURVE_KEYS_H_
