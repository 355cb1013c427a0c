#include "rdfcom/validate.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/substitute.h"
#include "common/net/curve_keys.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::rdfcom {
namespace {

namespace fs = std::filesystem;
using ::rdf::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// A TCP socket bound to 127.0.0.1 on a free port, listening until destroyed
// (what a running receiver or monitor looks like).
class HeldPort {
 public:
  HeldPort() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(fd_, 1), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~HeldPort() { close(fd_); }
  uint32_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint32_t port_ = 0;
};

// A port nothing listens on (held briefly, then released).
uint32_t FreePort() { return HeldPort().port(); }

class ValidateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::rdf::testing::MakeTestDir("validate_test");
    cfg_path_ = dir_ + "/rdf.textproto";
    HeldPort a, b;  // both at once: two different ports
    audit_port_ = a.port();
    control_port_ = b.port();
  }
  void TearDown() override { ::rdf::testing::RemoveTestDir(dir_); }

  // Writes the configuration: both nodes on `host`, the backup listening on
  // audit_port_, the primary's monitor on control_port_.
  void WriteConfig(const std::string& host = "127.0.0.1", const std::string& extra_backup = "") {
    std::ofstream(cfg_path_) << absl::Substitute(R"cfg(
nodes {
  name: "primary"
  role: PRIMARY
  host: "$0"
  control_port: $1
  data_dir: "primary"
  key_file: "keys/primary.key"
}
nodes {
  name: "backup"
  role: BACKUP
  host: "$0"
  audit_port: $2
  data_dir: "backup"
  key_file: "keys/backup.key"
  $3
}
volumes { name: "$$DATA01" }
)cfg",
                                                 host, control_port_, audit_port_, extra_backup);
  }

  // Makes a key pair for `node` and writes its key file.
  curve::KeyPair MakeKey(const std::string& node) {
    absl::StatusOr<curve::KeyPair> keys = curve::GenerateKeyPair();
    EXPECT_OK(keys.status());
    EXPECT_OK(curve::WriteKeyFile(KeyFile(node), *keys));
    return *keys;
  }
  std::string KeyFile(const std::string& node) { return dir_ + "/keys/" + node + ".key"; }

  // Runs validate; returns its output, sets failed_.
  std::string Validate(const std::string& node = "") {
    std::ostringstream out;
    ValidateResult r = RunValidate({cfg_path_, node}, out);
    failed_ = r.failed;
    return out.str();
  }

  std::string dir_, cfg_path_;
  uint32_t audit_port_ = 0, control_port_ = 0;
  int failed_ = -1;
};

TEST_F(ValidateTest, ReadySystemPassesEveryCheck) {
  WriteConfig();
  MakeKey("primary");
  MakeKey("backup");
  fs::create_directories(dir_ + "/primary");
  const std::string out = Validate();
  EXPECT_EQ(failed_, 0) << out;
  EXPECT_THAT(out, AllOf(HasSubstr("ok   configuration " + cfg_path_ + " loads"),
                         HasSubstr("ok   primary: key file " + KeyFile("primary") +
                                   " (mode 0600) holds a valid key pair"),
                         HasSubstr("ok   primary: public key of peer backup is known"),
                         HasSubstr("ok   primary: data_dir " + dir_ +
                                   "/primary is a writable directory"),
                         HasSubstr("ok   backup: data_dir " + dir_ +
                                   "/backup does not exist yet; it can be created"),
                         HasSubstr(absl::StrCat("ok   backup: audit_port 127.0.0.1:", audit_port_,
                                                " is free")),
                         HasSubstr(absl::StrCat("ok   primary: control_port 127.0.0.1:",
                                                control_port_, " is free")),
                         HasSubstr("validate: all "), Not(HasSubstr("FAIL"))));
  EXPECT_FALSE(fs::exists(dir_ + "/backup")) << "validate must not create data_dir";
}

TEST_F(ValidateTest, MissingKeyFileFailsWithTheFix) {
  WriteConfig();
  MakeKey("primary");
  const std::string out = Validate();
  EXPECT_THAT(out, AllOf(HasSubstr("FAIL backup: key file " + KeyFile("backup") +
                                   " does not exist; run rdfcom keygen"),
                         HasSubstr("FAIL primary: peer backup's public key is not known"),
                         HasSubstr("ok   primary: key file")));
  EXPECT_EQ(failed_, 2) << out;
  EXPECT_THAT(out, HasSubstr("validate: 2 of "));
}

TEST_F(ValidateTest, KeyFileReadableByOthersFails) {
  WriteConfig();
  MakeKey("primary");
  MakeKey("backup");
  ASSERT_EQ(chmod(KeyFile("backup").c_str(), 0644), 0);
  const std::string out = Validate("backup");
  EXPECT_THAT(out, HasSubstr("FAIL backup: key file " + KeyFile("backup") +
                             " is accessible by group or others (mode 0644)"));
  EXPECT_THAT(out, HasSubstr("chmod 600 " + KeyFile("backup")));
  EXPECT_EQ(failed_, 1) << out;
}

TEST_F(ValidateTest, ConfiguredPublicKeyThatDiffersFromTheKeyFileFails) {
  const curve::KeyPair other = *curve::GenerateKeyPair();
  WriteConfig("127.0.0.1", absl::StrCat("public_key: \"", other.public_key, "\""));
  MakeKey("primary");
  MakeKey("backup");
  const std::string out = Validate("backup");
  EXPECT_THAT(out, AllOf(HasSubstr("FAIL backup: the key file " + KeyFile("backup")),
                         HasSubstr("peers would refuse this node"), HasSubstr("keygen --force")));
  EXPECT_EQ(failed_, 1) << out;
}

TEST_F(ValidateTest, ConfiguredPublicKeyThatMatchesPasses) {
  const curve::KeyPair keys = *curve::GenerateKeyPair();
  WriteConfig("127.0.0.1", absl::StrCat("public_key: \"", keys.public_key, "\""));
  ASSERT_OK(curve::WriteKeyFile(KeyFile("backup"), keys));
  const std::string out = Validate("backup");
  EXPECT_THAT(out, HasSubstr("holds a valid key pair matching the configured public_key"));
}

TEST_F(ValidateTest, DamagedKeyFileFailsWithTheFix) {
  WriteConfig();
  MakeKey("primary");
  fs::create_directories(dir_ + "/keys");
  std::ofstream(KeyFile("backup")) << "public-key = nonsense\n";
  ASSERT_EQ(chmod(KeyFile("backup").c_str(), 0600), 0);
  const std::string out = Validate("backup");
  EXPECT_THAT(out, AllOf(HasSubstr("FAIL backup: " + KeyFile("backup") + ":1:"),
                         HasSubstr("keygen --force")));
}

TEST_F(ValidateTest, PortInUseFails) {
  HeldPort held;
  audit_port_ = held.port();
  if (control_port_ == audit_port_) control_port_ = FreePort();
  WriteConfig();
  MakeKey("primary");
  MakeKey("backup");
  const std::string out = Validate();
  EXPECT_THAT(out, HasSubstr(absl::StrCat(
                       "FAIL backup: audit_port 127.0.0.1:", held.port(), ": port ", held.port(),
                       " on 127.0.0.1 is in use (is a monitor or receiver already running?)")));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("ok   primary: control_port 127.0.0.1:", control_port_,
                                          " is free")));
  EXPECT_EQ(failed_, 1) << out;
}

TEST_F(ValidateTest, PortsOfAnotherMachineAreSkipped) {
  WriteConfig("192.0.2.1");  // TEST-NET-1: no address of this machine
  MakeKey("primary");
  MakeKey("backup");
  const std::string out = Validate();
  EXPECT_THAT(out, HasSubstr(absl::StrCat("ok   backup: audit_port 192.0.2.1:", audit_port_,
                                          " skipped (not local)")));
  EXPECT_EQ(failed_, 0) << out;
}

// ProbeListenPort's answer as a word, or its error message.
std::string Probe(const std::string& host, uint32_t port) {
  absl::StatusOr<PortState> s = ProbeListenPort(host, port);
  if (!s.ok()) return std::string(s.status().message());
  switch (*s) {
    case PortState::kFree: return "free";
    case PortState::kInUse: return "in use";
    case PortState::kNotLocal: return "not local";
  }
  return "?";
}

TEST_F(ValidateTest, ProbeListenPortTellsFreeInUseAndNotLocal) {
  HeldPort held;
  EXPECT_EQ(Probe("127.0.0.1", held.port()), "in use");
  EXPECT_EQ(Probe("localhost", held.port()), "in use");
  EXPECT_EQ(Probe("*", held.port()), "in use");
  const uint32_t free_port = FreePort();
  EXPECT_EQ(Probe("127.0.0.1", free_port), "free");
  EXPECT_EQ(Probe("*", free_port), "free");
  EXPECT_EQ(Probe("192.0.2.1", free_port), "not local");
  EXPECT_THAT(ProbeListenPort("no-such-host.invalid", free_port).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not resolve")));
}

TEST_F(ValidateTest, DataDirThatIsAFileFails) {
  WriteConfig();
  MakeKey("primary");
  MakeKey("backup");
  std::ofstream(dir_ + "/backup") << "not a folder";
  const std::string out = Validate();
  EXPECT_THAT(out, HasSubstr("FAIL backup: data_dir " + dir_ +
                             "/backup exists but is not a directory; move the file away"));
  EXPECT_EQ(failed_, 1) << out;
}

TEST_F(ValidateTest, DataDirUnderAFileCannotBeCreated) {
  std::ofstream(dir_ + "/blocker") << "a file";
  WriteConfig();
  std::string text;
  {
    std::ifstream in(cfg_path_);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  text.replace(text.find("data_dir: \"backup\""), 18, "data_dir: \"blocker/sub/backup\"");
  std::ofstream(cfg_path_) << text;
  MakeKey("primary");
  MakeKey("backup");
  const std::string out = Validate("backup");
  EXPECT_THAT(out, HasSubstr("FAIL backup: data_dir " + dir_ + "/blocker/sub/backup does not "
                             "exist and cannot be created: " + dir_ +
                             "/blocker is not a directory"));
  EXPECT_EQ(failed_, 1) << out;
}

TEST_F(ValidateTest, ConfigurationThatDoesNotLoadFailsWithTheLoadersMessage) {
  control_port_ = audit_port_;  // primary's monitor on the backup's audit port
  WriteConfig();
  const std::string out = Validate();
  EXPECT_THAT(out, AllOf(HasSubstr("FAIL configuration " + cfg_path_ + " does not load"),
                         HasSubstr("port clash"), HasSubstr("use a different port"),
                         HasSubstr("validate: 1 of 1 checks failed")));
  EXPECT_EQ(failed_, 1);
}

TEST_F(ValidateTest, MissingConfigurationFails) {
  const std::string out = Validate();
  EXPECT_THAT(out, AllOf(HasSubstr("FAIL configuration " + cfg_path_ + " does not load"),
                         HasSubstr("check the --config path")));
  EXPECT_EQ(failed_, 1);
}

TEST_F(ValidateTest, NodeOptionLimitsTheChecksToThatNode) {
  WriteConfig();
  MakeKey("primary");
  MakeKey("backup");
  const std::string out = Validate("backup");
  EXPECT_THAT(out, AllOf(HasSubstr("ok   backup: public key of peer primary is known"),
                         Not(HasSubstr("primary: key file")),
                         Not(HasSubstr("control_port"))));
  EXPECT_EQ(failed_, 0) << out;
  EXPECT_THAT(Validate("tertiary"), HasSubstr("FAIL " + cfg_path_ + ": no node named"));
  EXPECT_EQ(failed_, 1);
}

}  // namespace
}  // namespace rdf::rdfcom
