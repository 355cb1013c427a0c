#include "rdfcom/validate.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/status_macros.h"
#include "common/config/config.h"
#include "common/net/curve_keys.h"
#include "rdfcom/nodes.h"

namespace rdf::rdfcom {
namespace {

// Prints check lines and counts them.
class Checker {
 public:
  explicit Checker(std::ostream& out) : out_(out) {}

  void Ok(std::string_view what) {
    out_ << "ok   " << what << "\n";
    ++result_.passed;
  }
  void Fail(std::string_view what_and_fix) {
    out_ << "FAIL " << what_and_fix << "\n";
    ++result_.failed;
  }
  ValidateResult Finish() {
    const int total = result_.passed + result_.failed;
    if (result_.ok()) {
      out_ << "validate: all " << total << " checks passed\n";
    } else {
      out_ << "validate: " << result_.failed << " of " << total << " checks failed\n";
    }
    return result_;
  }

 private:
  std::ostream& out_;
  ValidateResult result_;
};

// The loader's message, one problem per line, under a FAIL line.
void FailLoad(const std::string& path, const absl::Status& s, Checker& ck) {
  std::string text = absl::StrCat("configuration ", path, " does not load");
  if (s.code() == absl::StatusCode::kInvalidArgument) {
    absl::StrAppend(&text, " (fix each problem as its line says):");
    for (absl::string_view line : absl::StrSplit(s.message(), '\n', absl::SkipEmpty())) {
      absl::StrAppend(&text, "\n     ", line);
    }
  } else {
    absl::StrAppend(&text, ": ", s.message(), "; check the --config path and its permissions");
  }
  ck.Fail(text);
}

// Key file: exists, private, parses, matches the configured public_key.
void CheckKeyFile(const config::Config& c, const proto::NodeConfig& n, Checker& ck) {
  absl::StatusOr<curve::KeyPair> keys = curve::ReadNodeKeyPair(c, n);
  if (!keys.ok()) {
    std::string text = absl::StrCat(n.name(), ": ", keys.status().message());
    // ReadKeyFile names the fix for a missing or public file and a broken
    // pair; a damaged or unreadable file gets one here.
    if (!absl::StrContains(text, "keygen") && !absl::StrContains(text, "chmod")) {
      absl::StrAppend(&text, "; repair the file, or make new keys with rdfcom --config ", c.path,
                      " keygen --force");
    }
    return ck.Fail(text);
  }
  struct stat st;
  const unsigned mode = stat(n.key_file().c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
  ck.Ok(absl::StrFormat(
      "%s: key file %s (mode %04o) holds a valid key pair%s", n.name(), n.key_file(), mode,
      n.public_key().empty()
          ? " (the configuration sets no public_key for this node: peers read it from this "
            "file, which works only where they can read it)"
          : " matching the configured public_key"));
}

// Every other node's public key, which this node's CURVE link needs.
void CheckPeerKeys(const config::Config& c, const proto::NodeConfig& n, Checker& ck) {
  for (const proto::NodeConfig& peer : c.proto.nodes()) {
    if (peer.name() == n.name()) continue;
    absl::StatusOr<std::string> key = curve::PublicKeyOf(c, peer);
    if (!key.ok()) {
      ck.Fail(absl::StrCat(n.name(), ": peer ", peer.name(), "'s public key is not known: ",
                           key.status().message()));
      continue;
    }
    ck.Ok(absl::StrCat(n.name(), ": public key of peer ", peer.name(), " is known (",
                       peer.public_key().empty()
                           ? absl::StrCat("from its key file ", peer.key_file())
                           : std::string("set in the configuration"),
                       ")"));
  }
}

// data_dir: a writable directory, or missing under a writable directory
// (processes create it with mkdir -p; validate does not).
void CheckDataDir(const proto::NodeConfig& n, Checker& ck) {
  const std::string& dir = n.data_dir();
  const std::string what = absl::StrCat(n.name(), ": data_dir ", dir);
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return ck.Fail(absl::StrCat(what, " exists but is not a directory; move the file away, "
                                        "or set data_dir to a directory"));
    }
    if (access(dir.c_str(), W_OK | X_OK) != 0) {
      return ck.Fail(absl::StrCat(what, " is not writable (", std::strerror(errno),
                                  "); give the user that runs rdf write access to it"));
    }
    return ck.Ok(absl::StrCat(what, " is a writable directory"));
  }
  auto missing = [] { return errno == ENOENT || errno == ENOTDIR; };
  if (!missing()) {
    return ck.Fail(absl::StrCat(what, " cannot be examined (", std::strerror(errno),
                                "); fix the permissions of its parent folders"));
  }
  // The nearest thing that exists on the way up ("/" always does).
  std::filesystem::path up = std::filesystem::path(dir).parent_path();
  int found;
  while ((found = stat(up.c_str(), &st)) != 0 && missing() && up != up.parent_path()) {
    up = up.parent_path();
  }
  if (found != 0) {
    return ck.Fail(absl::StrCat(what, " does not exist, and ", up.string(),
                                " cannot be examined (", std::strerror(errno),
                                "); fix the permissions of its parent folders"));
  }
  if (!S_ISDIR(st.st_mode)) {
    return ck.Fail(absl::StrCat(what, " does not exist and cannot be created: ", up.string(),
                                " is not a directory; set data_dir to a path under a directory"));
  }
  if (access(up.c_str(), W_OK | X_OK) != 0) {
    return ck.Fail(absl::StrCat(what, " does not exist and cannot be created: ", up.string(),
                                " is not writable (", std::strerror(errno),
                                "); create data_dir, or give the user that runs rdf write "
                                "access to ",
                                up.string()));
  }
  ck.Ok(absl::StrCat(what, " does not exist yet; it can be created (", up.string(),
                     " is a writable directory)"));
}

// The node's listening ports, where its host is an address of this machine.
void CheckPorts(const proto::NodeConfig& n, Checker& ck) {
  const struct {
    const char* field;
    uint32_t port;
  } ports[] = {{"audit_port", n.audit_port()},
               {"control_port", n.control_port()},
               {"metrics_port", n.metrics_port()}};
  for (const auto& p : ports) {
    if (p.port == 0) continue;  // does not listen
    const std::string what = absl::StrCat(n.name(), ": ", p.field, " ", n.host(), ":", p.port);
    absl::StatusOr<PortState> state = ProbeListenPort(n.host(), p.port);
    if (!state.ok()) {
      ck.Fail(absl::StrCat(what, ": ", state.status().message(), "; fix host or ", p.field,
                           " in the configuration"));
      continue;
    }
    switch (*state) {
      case PortState::kFree:
        ck.Ok(absl::StrCat(what, " is free"));
        break;
      case PortState::kNotLocal:
        ck.Ok(absl::StrCat(what, " skipped (not local)"));
        break;
      case PortState::kInUse:
        ck.Fail(absl::StrCat(what, ": port ", p.port, " on ", n.host(),
                             " is in use (is a monitor or receiver already running?); stop "
                             "what listens there, or choose another ",
                             p.field));
        break;
    }
  }
}

int ListenerCount(const config::Config& c) {
  int count = 0;
  for (const proto::NodeConfig& n : c.proto.nodes()) {
    count += (n.audit_port() != 0) + (n.control_port() != 0) + (n.metrics_port() != 0);
  }
  return count;
}

}  // namespace

absl::StatusOr<PortState> ProbeListenPort(const std::string& host, uint32_t port) {
  if (port == 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port ", port, " is not in 1..65535"));
  }
  addrinfo hints{};
  hints.ai_family = host == "*" ? AF_INET : AF_UNSPEC;  // ZeroMQ's "*" is IPv4
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = absl::StrCat(port);
  const int rc = getaddrinfo(host == "*" ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "host ", host, " does not resolve (",
        rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc), ")"));
  }
  absl::Cleanup release = [res] { freeaddrinfo(res); };
  bool any_free = false, any_in_use = false;
  absl::Status other;
  for (const addrinfo* a = res; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;  // e.g. no IPv6 on this machine: not one of its addresses
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const int bound = bind(fd, a->ai_addr, a->ai_addrlen);
    const int err = errno;
    close(fd);
    if (bound == 0) {
      any_free = true;
    } else if (err == EADDRINUSE) {
      any_in_use = true;
    } else if (err != EADDRNOTAVAIL && other.ok()) {
      other = ErrnoToStatus(err, absl::StrCat("cannot bind ", host, ":", port));
    }
  }
  if (any_in_use) return PortState::kInUse;
  RDF_RETURN_IF_ERROR(other);
  return any_free ? PortState::kFree : PortState::kNotLocal;
}

ValidateResult RunValidate(const ValidateOptions& options, std::ostream& out) {
  Checker ck(out);
  absl::StatusOr<config::Config> loaded = config::Load(options.config_path);
  if (!loaded.ok()) {
    FailLoad(options.config_path, loaded.status(), ck);
    return ck.Finish();
  }
  const config::Config& c = *loaded;
  std::vector<std::string> names;
  for (const proto::NodeConfig& n : c.proto.nodes()) names.push_back(n.name());
  ck.Ok(absl::StrCat("configuration ", c.path, " loads (nodes ", absl::StrJoin(names, ", "), "; ",
                     c.proto.volumes_size(), " volumes, ", c.ProtectedVolumes().size(),
                     " protected)"));
  // The loader refuses two listeners on one host and port (with localhost
  // and wildcard hosts); reaching here means there are none.
  ck.Ok(absl::StrCat("no two listeners share a host and port (", ListenerCount(c),
                     " listening ports)"));
  absl::StatusOr<std::vector<const proto::NodeConfig*>> nodes = SelectedNodes(c, options.node);
  if (!nodes.ok()) {
    ck.Fail(absl::StrCat(nodes.status().message(), "; pass one of them to --node"));
    return ck.Finish();
  }
  for (const proto::NodeConfig* n : *nodes) {
    CheckKeyFile(c, *n, ck);
    CheckPeerKeys(c, *n, ck);
    CheckDataDir(*n, ck);
    CheckPorts(*n, ck);
  }
  return ck.Finish();
}

}  // namespace rdf::rdfcom
