#include "common/net/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <optional>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/base/file_system.h"
#include "common/base/status_macros.h"

namespace rdf::curve {
namespace {

constexpr char kZ85Alphabet[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
constexpr size_t kMaxKeyFileBytes = 64 << 10;

// ---- files ------------------------------------------------------------------

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, absl::StrCat("write ", path));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Creates `tmp` (which must not exist) with exactly `mode`, writes
// `contents` and syncs it. Removes `tmp` on failure.
absl::Status WriteTempFile(const std::string& tmp, absl::string_view contents, mode_t mode) {
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("create ", tmp));
  absl::Status s;
  if (fchmod(fd, mode) != 0) s = ErrnoToStatus(errno, absl::StrCat("chmod ", tmp));
  if (s.ok()) s = WriteAll(fd, contents, tmp);
  if (s.ok() && fsync(fd) != 0) s = ErrnoToStatus(errno, absl::StrCat("fsync ", tmp));
  if (close(fd) != 0 && s.ok()) s = ErrnoToStatus(errno, absl::StrCat("close ", tmp));
  if (!s.ok()) unlink(tmp.c_str());
  return s;
}

std::string TempPathFor(const std::string& path) {
  return absl::StrCat(path, ".tmp.", getpid());
}

absl::Status AlreadyExists(const std::string& path) {
  return absl::AlreadyExistsError(absl::StrCat(
      "key file ", path,
      " already exists; keep it, or replace it with rdfcom keygen --force "
      "(every peer then needs the new public key)"));
}

// Moves `tmp` to `path`: rename(2) when replacing is allowed, otherwise
// link(2), which fails atomically when `path` exists.
absl::Status MoveIntoPlace(const std::string& tmp, const std::string& path, bool replace) {
  if (replace) {
    if (rename(tmp.c_str(), path.c_str()) == 0) return absl::OkStatus();
    return ErrnoToStatus(errno, absl::StrCat("rename ", tmp, " -> ", path));
  }
  const int rc = link(tmp.c_str(), path.c_str());
  const int err = errno;
  unlink(tmp.c_str());
  if (rc == 0) return absl::OkStatus();
  if (err == EEXIST) return AlreadyExists(path);
  return ErrnoToStatus(err, absl::StrCat("link ", tmp, " -> ", path));
}

// Write-temp (with `mode`), sync, move into place, sync the folder.
absl::Status WriteFileWithMode(const std::string& path, absl::string_view contents,
                               mode_t mode, bool replace) {
  const std::string tmp = TempPathFor(path);
  unlink(tmp.c_str());  // a stale temporary from a crashed run
  RDF_RETURN_IF_ERROR(WriteTempFile(tmp, contents, mode));
  absl::Status s = MoveIntoPlace(tmp, path, replace);
  if (!s.ok()) {
    unlink(tmp.c_str());
    return s;
  }
  return FileSystem::Default()->SyncDir(DirName(path));
}

absl::StatusOr<std::string> ReadFd(int fd, const std::string& path, size_t limit) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, absl::StrCat("read ", path));
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit) {
      return absl::InvalidArgumentError(
          absl::StrCat("key file ", path, " is larger than ", limit,
                       " bytes; it is not a key file"));
    }
  }
}

// ---- key file text ----------------------------------------------------------

absl::Status KeyFileError(const std::string& path, size_t line, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(path, ":", line, ": ", problem));
}

// Parses one `name = value` line into `keys`.
absl::Status ParseKeyLine(absl::string_view line, size_t number, const std::string& path,
                          KeyPair* keys) {
  const size_t eq = line.find('=');
  if (eq == absl::string_view::npos) {
    return KeyFileError(path, number, "expected 'public-key = <key>' or 'secret-key = <key>'");
  }
  const absl::string_view name = absl::StripAsciiWhitespace(line.substr(0, eq));
  const absl::string_view value = absl::StripAsciiWhitespace(line.substr(eq + 1));
  std::string* slot = name == "public-key"   ? &keys->public_key
                      : name == "secret-key" ? &keys->secret_key
                                             : nullptr;
  if (slot == nullptr) {
    return KeyFileError(path, number,
                        absl::StrCat("unknown name '", name,
                                     "'; a key file holds only public-key and secret-key"));
  }
  if (!slot->empty()) {
    return KeyFileError(path, number, absl::StrCat(name, " is given twice"));
  }
  if (!IsZ85Key(value)) {
    return KeyFileError(path, number,
                        absl::StrCat(name, " is not ", kZ85KeyLength, " Z85 characters (",
                                     value.size(), " characters)"));
  }
  *slot = std::string(value);
  return absl::OkStatus();
}

absl::StatusOr<KeyPair> ParseKeyFile(absl::string_view text, const std::string& path) {
  KeyPair keys;
  size_t number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    RDF_RETURN_IF_ERROR(ParseKeyLine(line, number, path, &keys));
  }
  for (const auto& [name, value] : {std::pair<const char*, const std::string*>{
                                        "public-key", &keys.public_key},
                                    {"secret-key", &keys.secret_key}}) {
    if (value->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": no ", name, " line; the file is damaged or not a key file"));
    }
  }
  return keys;
}

absl::Status CheckPair(const KeyPair& keys, const std::string& what) {
  absl::StatusOr<std::string> pub = PublicKeyFromSecret(keys.secret_key);
  if (!pub.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", pub.status().message()));
  if (*pub != keys.public_key) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": public-key does not belong to secret-key (edited or damaged); make a new pair "
              "with rdfcom keygen --force"));
  }
  return absl::OkStatus();
}

absl::Status CheckPrivate(const struct stat& st, const std::string& path) {
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("key file ", path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "key file %s is accessible by group or others (mode %04o); a secret key must be "
        "private: chmod 600 %s",
        path, st.st_mode & 07777, path));
  }
  return absl::OkStatus();
}

// ---- configuration text -----------------------------------------------------
//
// A small scanner for protobuf text format: just enough structure (strings,
// comments, braces, identifiers) to find the top-level `nodes` blocks and
// their `name` and `public_key` values without re-serializing anything.

enum class TokenKind { kIdent, kString, kOpen, kClose, kColon, kOther };

struct Token {
  TokenKind kind;
  size_t start;
  size_t end;  // one past the last character
};

bool IsIdentStart(char c) { return absl::ascii_isalpha(c) || c == '_'; }
bool IsIdentChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }

// The end of the string literal starting at `i` (a quote), or nullopt when
// it is not closed on its line.
std::optional<size_t> StringEnd(absl::string_view text, size_t i) {
  const char quote = text[i];
  for (size_t j = i + 1; j < text.size(); ++j) {
    if (text[j] == '\\') {
      ++j;
    } else if (text[j] == quote) {
      return j + 1;
    } else if (text[j] == '\n') {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view text) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (absl::ascii_isspace(c)) {
      ++i;
    } else if (c == '#') {
      i = std::min(text.find('\n', i), text.size());
    } else if (c == '"' || c == '\'') {
      std::optional<size_t> end = StringEnd(text, i);
      if (!end) return absl::InvalidArgumentError("unterminated string in the configuration");
      tokens.push_back({TokenKind::kString, i, *end});
      i = *end;
    } else if (IsIdentStart(c)) {
      size_t j = i + 1;
      while (j < text.size() && IsIdentChar(text[j])) ++j;
      tokens.push_back({TokenKind::kIdent, i, j});
      i = j;
    } else {
      TokenKind kind = (c == '{' || c == '<')   ? TokenKind::kOpen
                       : (c == '}' || c == '>') ? TokenKind::kClose
                       : c == ':'               ? TokenKind::kColon
                                                : TokenKind::kOther;
      tokens.push_back({kind, i, i + 1});
      ++i;
    }
  }
  return tokens;
}

// A string literal's value (quotes removed, simple escapes resolved).
std::string Unquote(absl::string_view literal) {
  std::string out;
  for (size_t i = 1; i + 1 < literal.size(); ++i) {
    char c = literal[i];
    if (c == '\\' && i + 2 < literal.size()) {
      c = literal[++i];
      if (c == 'n') c = '\n';
      if (c == 't') c = '\t';
    }
    out.push_back(c);
  }
  return out;
}

struct Span {
  size_t start = 0;
  size_t end = 0;
};

struct NodeBlock {
  size_t close = 0;  // position of the closing brace
  std::string name;
  std::optional<Span> name_value;
  std::vector<Span> public_key_values;
};

// A field `ident: "..." "..."` at token `i`: the span of its (possibly
// concatenated) string value, or nullopt when it is not that shape.
std::optional<Span> StringField(const std::vector<Token>& t, size_t i) {
  if (i + 2 >= t.size() || t[i + 1].kind != TokenKind::kColon ||
      t[i + 2].kind != TokenKind::kString) {
    return std::nullopt;
  }
  size_t k = i + 2;
  while (k + 1 < t.size() && t[k + 1].kind == TokenKind::kString) ++k;
  return Span{t[i + 2].start, t[k].end};
}

// Records `name` / `public_key` fields of the nodes block being scanned.
void NoteNodeField(absl::string_view text, const std::vector<Token>& t, size_t i,
                   NodeBlock* block) {
  const absl::string_view ident = text.substr(t[i].start, t[i].end - t[i].start);
  if (ident != "name" && ident != "public_key") return;
  std::optional<Span> value = StringField(t, i);
  if (!value) return;
  if (ident == "public_key") {
    block->public_key_values.push_back(*value);
    return;
  }
  block->name_value = value;
  block->name = Unquote(text.substr(value->start, value->end - value->start));
}

// The top-level `nodes { ... }` blocks of `text`.
absl::StatusOr<std::vector<NodeBlock>> FindNodeBlocks(absl::string_view text) {
  RDF_ASSIGN_OR_RETURN(std::vector<Token> t, Tokenize(text));
  std::vector<NodeBlock> blocks;
  int depth = 0;
  bool in_nodes = false;
  for (size_t i = 0; i < t.size(); ++i) {
    const absl::string_view word = text.substr(t[i].start, t[i].end - t[i].start);
    if (t[i].kind == TokenKind::kOpen) {
      ++depth;
    } else if (t[i].kind == TokenKind::kClose) {
      if (depth == 0) return absl::InvalidArgumentError("unbalanced '}' in the configuration");
      if (--depth == 0 && in_nodes) {
        blocks.back().close = t[i].start;
        in_nodes = false;
      }
    } else if (t[i].kind == TokenKind::kIdent && depth == 0 && word == "nodes") {
      size_t j = i + 1;
      if (j < t.size() && t[j].kind == TokenKind::kColon) ++j;
      if (j < t.size() && t[j].kind == TokenKind::kOpen) {
        blocks.emplace_back();
        in_nodes = true;
        depth = 1;
        i = j;
      }
    } else if (t[i].kind == TokenKind::kIdent && depth == 1 && in_nodes) {
      NoteNodeField(text, t, i, &blocks.back());
    }
  }
  if (depth != 0) return absl::InvalidArgumentError("unbalanced '{' in the configuration");
  return blocks;
}

struct Edit {
  size_t pos;
  size_t len;
  std::string replacement;
};

// Where a `public_key` goes when the block has none: a line of its own after
// the name's line when the name ends its line, else right after the name.
Edit InsertionFor(absl::string_view text, const NodeBlock& block, const std::string& quoted) {
  const size_t after = block.name_value->end;
  size_t eol = text.find('\n', after);
  if (eol == absl::string_view::npos) eol = text.size();
  absl::string_view rest = absl::StripLeadingAsciiWhitespace(text.substr(after, eol - after));
  const bool name_ends_line = (rest.empty() || rest[0] == '#') && eol < block.close;
  if (!name_ends_line) return {after, 0, absl::StrCat(" public_key: ", quoted)};
  const size_t bol = text.rfind('\n', block.name_value->start);
  const size_t line_start = bol == absl::string_view::npos ? 0 : bol + 1;
  size_t indent_end = line_start;
  while (indent_end < text.size() && (text[indent_end] == ' ' || text[indent_end] == '\t')) {
    ++indent_end;
  }
  return {eol + 1, 0,
          absl::StrCat(text.substr(line_start, indent_end - line_start), "public_key: ", quoted,
                       "\n")};
}

absl::StatusOr<std::string> ResolvePath(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf) == nullptr) {
    return ErrnoToStatus(errno, absl::StrCat("configuration ", path));
  }
  return std::string(buf);
}

}  // namespace

bool IsZ85Key(absl::string_view key) {
  return key.size() == kZ85KeyLength &&
         key.find_first_not_of(kZ85Alphabet) == absl::string_view::npos;
}

absl::StatusOr<KeyPair> GenerateKeyPair() {
  char pub[kZ85KeyLength + 1] = {};
  char sec[kZ85KeyLength + 1] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    if (zmq_errno() == ENOTSUP) {
      return absl::UnimplementedError("this libzmq was built without CURVE support");
    }
    return absl::InternalError(absl::StrCat("zmq_curve_keypair: ", zmq_strerror(zmq_errno())));
  }
  return KeyPair{pub, sec};
}

absl::StatusOr<std::string> PublicKeyFromSecret(absl::string_view secret_key) {
  if (!IsZ85Key(secret_key)) {
    return absl::InvalidArgumentError("secret key is not 40 Z85 characters");
  }
  const std::string secret(secret_key);
  char pub[kZ85KeyLength + 1] = {};
  if (zmq_curve_public(pub, secret.c_str()) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("secret key is not a valid Z85 key (", zmq_strerror(zmq_errno()), ")"));
  }
  return std::string(pub);
}

std::string FormatKeyFile(const KeyPair& keys, absl::string_view node) {
  return absl::StrCat(
      "# rdf CURVE key pair", node.empty() ? "" : absl::StrCat(" of node \"", node, "\""),
      " (docs/security.md), written by rdfcom keygen.\n"
      "# The secret key never leaves this file: keep it mode 0600.\n"
      "# The public key also goes into the configuration (nodes { public_key }).\n"
      "public-key = ",
      keys.public_key, "\nsecret-key = ", keys.secret_key, "\n");
}

absl::Status WriteKeyFile(const std::string& path, const KeyPair& keys, bool force) {
  if (!IsZ85Key(keys.public_key)) {
    return absl::InvalidArgumentError("public key is not 40 Z85 characters");
  }
  RDF_RETURN_IF_ERROR(CheckPair(keys, "key pair"));
  RDF_RETURN_IF_ERROR(FileSystem::Default()->CreateDirs(DirName(path)));
  if (!force && access(path.c_str(), F_OK) == 0) return AlreadyExists(path);
  return WriteFileWithMode(path, FormatKeyFile(keys), 0600, force);
}

absl::StatusOr<KeyPair> ReadKeyFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    return absl::NotFoundError(absl::StrCat(
        "key file ", path, " does not exist; run rdfcom keygen to create the node keys"));
  }
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open key file ", path));
  absl::Cleanup closer = [fd] { close(fd); };
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoToStatus(errno, absl::StrCat("stat ", path));
  RDF_RETURN_IF_ERROR(CheckPrivate(st, path));
  RDF_ASSIGN_OR_RETURN(std::string text, ReadFd(fd, path, kMaxKeyFileBytes));
  RDF_ASSIGN_OR_RETURN(KeyPair keys, ParseKeyFile(text, path));
  RDF_RETURN_IF_ERROR(CheckPair(keys, path));
  return keys;
}

absl::StatusOr<std::string> PublicKeyOf(const config::Config& config,
                                        const proto::NodeConfig& node) {
  if (!node.public_key().empty()) return node.public_key();
  absl::StatusOr<KeyPair> keys = ReadKeyFile(node.key_file());
  if (keys.ok()) return keys->public_key;
  return absl::FailedPreconditionError(absl::StrCat(
      "no public key for node \"", node.name(), "\": ", config.path,
      " sets no public_key for it and its key file cannot be used (", keys.status().message(),
      "); run rdfcom --config ", config.path, " keygen, or set the node's public_key"));
}

absl::StatusOr<KeyPair> ReadNodeKeyPair(const config::Config& config,
                                        const proto::NodeConfig& node) {
  RDF_ASSIGN_OR_RETURN(KeyPair keys, ReadKeyFile(node.key_file()));
  if (!node.public_key().empty() && node.public_key() != keys.public_key) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the key file ", node.key_file(), " of node \"", node.name(), "\" holds public key ",
        keys.public_key, " but ", config.path, " sets public_key ", node.public_key(),
        "; peers would refuse this node. Put the file's public key into the configuration, or "
        "make new keys for every node with rdfcom --config ",
        config.path, " keygen --force"));
  }
  return keys;
}

absl::StatusOr<std::string> SetPublicKeysInText(
    absl::string_view text, const std::map<std::string, std::string>& node_to_public_key) {
  RDF_ASSIGN_OR_RETURN(std::vector<NodeBlock> blocks, FindNodeBlocks(text));
  std::vector<Edit> edits;
  for (const auto& entry : node_to_public_key) {
    // Not a structured binding: clang 14 (the fuzz build) cannot capture one.
    const std::string& name = entry.first;
    const std::string& key = entry.second;
    if (!IsZ85Key(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("public key for node \"", name, "\" is not 40 Z85 characters"));
    }
    auto block = std::find_if(blocks.begin(), blocks.end(), [&](const NodeBlock& b) {
      return b.name_value.has_value() && b.name == name;
    });
    if (block == blocks.end()) {
      return absl::NotFoundError(
          absl::StrCat("the configuration has no nodes block with name \"", name, "\""));
    }
    const std::string quoted = absl::StrCat("\"", key, "\"");
    for (const Span& v : block->public_key_values) {
      edits.push_back({v.start, v.end - v.start, quoted});
    }
    if (block->public_key_values.empty()) edits.push_back(InsertionFor(text, *block, quoted));
  }
  std::sort(edits.begin(), edits.end(),
            [](const Edit& a, const Edit& b) { return a.pos > b.pos; });
  std::string out(text);
  for (const Edit& e : edits) out.replace(e.pos, e.len, e.replacement);
  return out;
}

absl::Status SetPublicKeysInConfig(
    const std::string& config_path,
    const std::map<std::string, std::string>& node_to_public_key) {
  RDF_ASSIGN_OR_RETURN(const std::string target, ResolvePath(config_path));
  RDF_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(FileSystem::Default(), target));
  RDF_ASSIGN_OR_RETURN(const std::string updated,
                       SetPublicKeysInText(text, node_to_public_key));
  absl::StatusOr<config::Config> check = config::Parse(updated, config_path);
  if (!check.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("setting the public keys in ", config_path,
                     " would make it fail to load, so it was left unchanged:\n",
                     check.status().message()));
  }
  if (updated == text) return absl::OkStatus();
  struct stat st;
  if (stat(target.c_str(), &st) != 0) return ErrnoToStatus(errno, absl::StrCat("stat ", target));
  return WriteFileWithMode(target, updated, st.st_mode & 07777, /*replace=*/true);
}

}  // namespace rdf::curve
