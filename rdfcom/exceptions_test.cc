#include "rdfcom/exceptions_cmd.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/config/config.h"
#include "common/json/proto.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::rdfcom {
namespace {

namespace fs = std::filesystem;
using ::rdf::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kConfig[] = R"cfg(
nodes { name: "primary" role: PRIMARY host: "127.0.0.1" data_dir: "primary" key_file: "p.key" }
nodes { name: "backup" role: BACKUP host: "127.0.0.1" audit_port: 17420 data_dir: "backup"
        key_file: "b.key" }
volumes { name: "$DATA01" }
volumes { name: "$DATA02" }
volumes { name: "$SCRATCH" unprotected: true }
)cfg";

class ExceptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::rdf::testing::MakeTestDir("exceptions_test");
    std::ofstream(dir_ + "/rdf.textproto") << kConfig;
    absl::StatusOr<config::Config> c = config::Load(dir_ + "/rdf.textproto");
    ASSERT_OK(c.status());
    config_ = *c;
  }
  void TearDown() override { ::rdf::testing::RemoveTestDir(dir_); }

  // An exception line as the updater writes it (json::MessageToJson of the record).
  static std::string Line(int64_t time_us, const std::string& volume, uint64_t asn,
                          uint32_t error = 10, const std::string& raw_key = "k1") {
    proto::ExceptionRecord e;
    e.set_time_us(time_us);
    e.set_asn(asn);
    e.set_primary_time_us(time_us - 5);
    e.set_txid(asn * 10);
    e.set_volume(volume);
    e.set_file("LOAD");
    e.set_op(error == 10 ? "INSERT" : "DELETE");
    e.set_error(error);
    e.set_key(absl::CHexEscape(raw_key));
    e.set_action("skipped");
    return json::MessageToJson(e);
  }

  // Appends `lines` to <node's data_dir>/exceptions/<file>.
  void Append(const std::string& file, const std::vector<std::string>& lines,
              const std::string& node = "backup") {
    const std::string dir = config::ExceptionDir(*config_.FindNode(node));
    fs::create_directories(dir);
    std::ofstream out(dir + "/" + file, std::ios::app);
    for (const std::string& l : lines) out << l << "\n";
  }

  // Runs the command; returns stdout, keeps stderr in err_.
  std::string Run(const std::string& volume = "", bool json = false,
                  const std::string& node = "") {
    ExceptionsOptions o;
    o.config = &config_;
    o.node = node;
    o.volume = volume;
    o.json = json;
    std::ostringstream out, err;
    absl::StatusOr<ExceptionsResult> r = RunExceptions(o, out, err);
    EXPECT_OK(r.status());
    if (r.ok()) result_ = *r;
    err_ = err.str();
    return out.str();
  }

  static std::vector<std::string> Lines(const std::string& text) {
    return absl::StrSplit(text, '\n', absl::SkipEmpty());
  }

  std::string dir_;
  config::Config config_;
  ExceptionsResult result_;
  std::string err_;
};

TEST_F(ExceptionsTest, NoLogFilesPrintsNoExceptions) {
  EXPECT_EQ(Run(), "no exceptions\n");
  EXPECT_EQ(Run("$DATA01"), "no exceptions\n");
  EXPECT_EQ(Run("", true), "");  // JSON: no objects
  EXPECT_EQ(result_.printed, 0u);
}

TEST_F(ExceptionsTest, TableMergesVolumesByTime) {
  // 1795608442000000 us is 2026-11-25T12:07:22Z.
  Append("DATA01.jsonl", {Line(1795608442000000, "$DATA01", 7),
                          Line(1795608442000300, "$DATA01", 9, 11, std::string("\x00\xff", 2))});
  Append("DATA02.jsonl", {Line(1795608442000100, "$DATA02", 8)});
  const std::vector<std::string> lines = Lines(Run());
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_THAT(lines[0], AllOf(StartsWith("TIME"), HasSubstr("VOLUME"), HasSubstr("ERROR"),
                              HasSubstr("KEY"), HasSubstr("TXID"), HasSubstr("ASN"),
                              HasSubstr("ACTION")));
  EXPECT_THAT(lines[1], AllOf(StartsWith("2026-11-25T12:07:22.000000Z  $DATA01"),
                              HasSubstr(" 10 "), HasSubstr(" INSERT "), HasSubstr(" LOAD "),
                              HasSubstr(" k1 "), HasSubstr(" 70 "), HasSubstr(" 7 "),
                              HasSubstr(" skipped")));
  EXPECT_THAT(lines[2], StartsWith("2026-11-25T12:07:22.000100Z  $DATA02"));
  EXPECT_THAT(lines[3], AllOf(StartsWith("2026-11-25T12:07:22.000300Z  $DATA01"),
                              HasSubstr(" 11 "), HasSubstr(" DELETE "),
                              HasSubstr(" \\x00\\xff ")));
  // Columns line up: the volume column starts at the same place everywhere.
  EXPECT_EQ(lines[0].find("VOLUME"), lines[1].find("$DATA01"));
  EXPECT_EQ(result_.printed, 3u);
  EXPECT_EQ(err_, "");
}

TEST_F(ExceptionsTest, VolumeFilterTakesTheNameWithOrWithoutDollar) {
  Append("DATA01.jsonl", {Line(1000, "$DATA01", 1)});
  Append("DATA02.jsonl", {Line(2000, "$DATA02", 2)});
  for (const char* name : {"$DATA02", "DATA02", "data02"}) {
    const std::string out = Run(name);
    EXPECT_THAT(out, AllOf(HasSubstr("$DATA02"), Not(HasSubstr("$DATA01")))) << name;
  }
  EXPECT_EQ(Run("$SCRATCH"), "no exceptions\n");  // configured, but has no updater
}

TEST_F(ExceptionsTest, UnknownVolumeIsAnError) {
  ExceptionsOptions o;
  o.config = &config_;
  o.volume = "$DATA99";
  std::ostringstream out, err;
  EXPECT_THAT(RunExceptions(o, out, err).status(),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("no volume named \"$DATA99\""),
                             HasSubstr("$DATA01, $DATA02, $SCRATCH"))));
  EXPECT_THAT(FindVolumeByName(config_, "").status(),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_F(ExceptionsTest, JsonPrintsTheStoredLinesInTimeOrder) {
  const std::string a = Line(1000, "$DATA01", 1), b = Line(1500, "$DATA02", 2),
                    c = Line(2000, "$DATA01", 3, 11);
  Append("DATA01.jsonl", {a, c});
  Append("DATA02.jsonl", {b});
  EXPECT_EQ(Run("", true), absl::StrCat(a, "\n", b, "\n", c, "\n"));
  EXPECT_EQ(Run("DATA01", true), absl::StrCat(a, "\n", c, "\n"));
  EXPECT_THAT(a, HasSubstr("\"asn\":1,"));  // numbers stay numbers
}

TEST_F(ExceptionsTest, MalformedLineIsReportedAndTheRestPrinted) {
  const std::string torn = Line(1500, "$DATA01", 2).substr(0, 30);  // a crash mid-write
  Append("DATA01.jsonl", {Line(1000, "$DATA01", 1), torn, "", Line(2000, "$DATA01", 3)});
  const std::string out = Run("", true);
  EXPECT_EQ(Lines(out).size(), 2u);
  EXPECT_EQ(result_.malformed, 1u);
  EXPECT_THAT(err_, AllOf(HasSubstr(config::ExceptionDir(*config_.FindNode("backup")) +
                                    "/DATA01.jsonl:2: malformed exception record"),
                          HasSubstr("skipped")));
  EXPECT_EQ(Lines(err_).size(), 1u) << err_;  // the blank line 3 is no error
}

TEST_F(ExceptionsTest, DefaultNodeIsTheBackup) {
  Append("DATA01.jsonl", {Line(1000, "$DATA01", 1)}, "backup");
  Append("DATA02.jsonl", {Line(1000, "$DATA02", 2)}, "primary");
  EXPECT_THAT(Run(), AllOf(HasSubstr("$DATA01"), Not(HasSubstr("$DATA02"))));
  EXPECT_THAT(Run("", false, "primary"), AllOf(HasSubstr("$DATA02"), Not(HasSubstr("$DATA01"))));
}

TEST_F(ExceptionsTest, OtherFilesInTheFolderAreIgnored) {
  Append("DATA01.jsonl", {Line(1000, "$DATA01", 1)});
  Append("notes.txt", {"not an exception log"});
  EXPECT_THAT(Lines(Run("", true)), ElementsAre(Line(1000, "$DATA01", 1)));
  EXPECT_EQ(err_, "");
}

}  // namespace
}  // namespace rdf::rdfcom
