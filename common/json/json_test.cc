#include <cstdint>
#include <limits>
#include <string>

#include "audit.pb.h"
#include "common/json/proto.h"
#include "common/json/writer.h"
#include "event.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "initialize.pb.h"
#include "status.pb.h"

namespace rdf::json {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string Quote(absl::string_view s) {
  std::string out;
  AppendString(s, &out);
  return out;
}

struct StringCase {
  std::string in, want;
};

TEST(JsonStringTest, EscapesAsDocumented) {
  const StringCase cases[] = {
      {"", "\"\""},
      {"plain $DATA01", "\"plain $DATA01\""},
      {"say \"hi\"", "\"say \\\"hi\\\"\""},
      {"a\\b", "\"a\\\\b\""},
      {"\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\""},
      {std::string("\0\x01\x1f", 3), "\"\\u0000\\u0001\\u001f\""},
      {"\x7f/<>", "\"\x7f/<>\""},
      {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",  // valid UTF-8 is copied
       "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
      {"a\xffz", "\"a\\ufffdz\""},                 // never valid in UTF-8
      {"\x80", "\"\\ufffd\""},                      // stray continuation byte
      {"\xc3", "\"\\ufffd\""},                      // truncated at the end
      {"\xe2\x82z", "\"\\ufffd\\ufffdz\""},         // truncated in the middle
      {"\xc0\xaf", "\"\\ufffd\\ufffd\""},           // overlong '/'
      {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},  // surrogate U+D800
      {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},  // above U+10FFFF
  };
  for (const StringCase& c : cases) EXPECT_EQ(Quote(c.in), c.want) << c.in;
}

TEST(JsonWriterTest, NumbersAreNumbers) {
  Writer w;
  w.BeginArray()
      .Int(std::numeric_limits<int64_t>::max())
      .Int(std::numeric_limits<int64_t>::min())
      .Uint(std::numeric_limits<uint64_t>::max())
      .Int(0)
      .Uint(0)
      .EndArray();
  EXPECT_EQ(w.str(),
            "[9223372036854775807,-9223372036854775808,18446744073709551615,0,0]");
}

TEST(JsonWriterTest, DoublesRoundTripAndNonFiniteIsNull) {
  Writer w;
  w.BeginArray().Double(0.1).Double(1.5).Double(-2).Double(1e20).Double(-0.0).Double(5e-324);
  w.Double(std::numeric_limits<double>::quiet_NaN())
      .Double(std::numeric_limits<double>::infinity())
      .EndArray();
  EXPECT_EQ(w.str(), "[0.1,1.5,-2,1e+20,-0,5e-324,null,null]");
}

TEST(JsonWriterTest, EmptyContainersAndBooleans) {
  Writer w;
  w.BeginObject().Key("o").BeginObject().EndObject().Key("a").BeginArray().EndArray();
  w.Field("t", true).Field("f", false).Key("n").Null().EndObject();
  EXPECT_EQ(w.str(), "{\"o\":{},\"a\":[],\"t\":true,\"f\":false,\"n\":null}");
}

TEST(JsonWriterTest, NestingPutsCommasBetweenMembersOnly) {
  Writer w;
  w.BeginObject().Field("a", 1).Key("b").BeginArray();
  w.BeginObject().Field("c", "x").EndObject().BeginObject().EndObject().Value(2);
  w.BeginArray().BeginArray().EndArray().EndArray().EndArray().Field("d", "y").EndObject();
  EXPECT_EQ(w.str(), "{\"a\":1,\"b\":[{\"c\":\"x\"},{},2,[[]]],\"d\":\"y\"}");
}

TEST(JsonWriterTest, ValuePicksTheTypeAndALiteralIsAString) {
  Writer w;
  w.BeginArray().Value("true").Value(true).Value(uint32_t{7}).Value(-7).Value(2.5f);
  w.Value(std::string("s")).EndArray();
  EXPECT_EQ(w.str(), "[\"true\",true,7,-7,2.5,\"s\"]");
}

TEST(JsonWriterTest, KeysAreEscapedLikeStrings) {
  Writer w;
  w.BeginObject().Field("a\"b\n", "").EndObject();
  EXPECT_EQ(w.str(), "{\"a\\\"b\\n\":\"\"}");
}

TEST(JsonWriterTest, TopLevelScalar) {
  Writer w;
  w.String("x");
  EXPECT_EQ(w.str(), "\"x\"");
}

TEST(MessageToJsonTest, EveryScalarInDeclarationOrderAndUnsetMessagesLeftOut) {
  proto::ProcessStatus s;
  s.set_process("extractor");
  s.set_time_us(std::numeric_limits<int64_t>::min());
  s.set_sent_asn(std::numeric_limits<uint64_t>::max());
  const std::string j = MessageToJson(s);
  EXPECT_THAT(j, StartsWith(
            "{\"version\":0,\"node\":\"\",\"process\":\"extractor\",\"volume\":\"\",\"state\":\"\","
            "\"time_us\":-9223372036854775808,"));
  EXPECT_THAT(j, Not(HasSubstr("\"position\"")));
  EXPECT_THAT(j, HasSubstr(",\"sent_asn\":18446744073709551615,"));
  EXPECT_THAT(j, HasSubstr(",\"trails\":[],"));
}

TEST(MessageToJsonTest, NestedAndRepeatedMessages) {
  proto::ProcessStatus s;
  s.mutable_position()->set_asn(9);
  s.add_trails()->set_name("MIT");
  s.add_trails()->set_bytes(3);
  const std::string j = MessageToJson(s);
  EXPECT_THAT(j, HasSubstr("\"position\":{\"segment\":0,\"offset\":0,\"asn\":9}"));
  EXPECT_THAT(j, HasSubstr("\"trails\":[{\"name\":\"MIT\",\"segments\":0,\"bytes\":0,"
                           "\"held_by\":\"\"},{\"name\":\"\",\"segments\":0,\"bytes\":3,"
                           "\"held_by\":\"\"}]"));
}

TEST(MessageToJsonTest, RepeatedIntegersAndStrings) {
  proto::VolumeCopy v;
  v.add_open_txids(7);
  v.add_open_txids(std::numeric_limits<uint64_t>::max());
  v.add_files("A\"");
  EXPECT_EQ(MessageToJson(v),
            "{\"volume\":\"\",\"snapshot_asn\":0,\"open_txids\":[7,18446744073709551615],"
            "\"records\":0,\"bytes\":0,\"files\":[\"A\\\"\"],\"tmf_applied_asn\":0}");
}

TEST(MessageToJsonTest, BytesAsHexEnumsByNameOptionalUnsetAsNull) {
  proto::AuditRecord a;
  a.set_type(proto::DATA);
  a.set_key("\x01\xff");
  a.set_after("");
  MessageOptions o;
  o.unset_as_null = true;
  const std::string j = MessageToJson(a, o);
  EXPECT_THAT(j, HasSubstr("\"type\":\"DATA\""));
  EXPECT_THAT(j, HasSubstr("\"key\":\"01ff\",\"before\":null,\"after\":\"\","
                           "\"compensation\":false"));
  EXPECT_THAT(j, HasSubstr("\"ddl\":\"DDL_OP_UNSPECIFIED\""));
  EXPECT_THAT(MessageToJson(a), Not(HasSubstr("\"before\"")));
}

TEST(MessageToJsonTest, UnknownEnumValueIsItsNumber) {
  proto::AuditRecord a;
  a.set_op(static_cast<proto::DataOp>(42));
  EXPECT_THAT(MessageToJson(a), HasSubstr("\"op\":42"));
}

TEST(MessageToJsonTest, MapsAreObjectsSortedByKey) {
  proto::Event e;
  (*e.mutable_fields())["zeta"] = "1";
  (*e.mutable_fields())["alpha"] = "2";
  EXPECT_THAT(MessageToJson(e), HasSubstr("\"fields\":{\"alpha\":\"2\",\"zeta\":\"1\"}"));
  EXPECT_THAT(MessageToJson(proto::Event()), HasSubstr("\"fields\":{}"));
}

}  // namespace
}  // namespace rdf::json
