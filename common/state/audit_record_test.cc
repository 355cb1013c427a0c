// Audit record payloads: the in-place encoding with the after image taken
// from a view (tmf's writes) is the standard one, and the wire scanners read
// the header and the images without parsing.
#include "common/state/audit_record.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf {
namespace {

proto::AuditRecord Data(bool compensation) {
  proto::AuditRecord r;
  r.set_type(proto::DATA);
  r.set_txid(77);
  r.set_time_us(123456);
  r.set_volume("$DATA01");
  r.set_file("F");
  r.set_key("k1");
  r.set_before(std::string(300, 'b'));
  r.set_op(proto::UPDATE);
  r.set_compensation(compensation);
  return r;
}

std::string Written(const AuditPayload& p) {
  std::string out(p.size(), '\0');
  p.WriteTo(out.data());
  return out;
}

TEST(AuditPayloadTest, AfterFromAViewEncodesAsTheRecordWithAfterSet) {
  for (bool compensation : {false, true}) {
    for (size_t len : {size_t{0}, size_t{5}, size_t{200}, size_t{70000}}) {
      const std::string value(len, 'v');
      proto::AuditRecord full = Data(compensation);
      full.set_after(value);
      proto::AuditRecord head = Data(compensation);
      AuditPayload p(&head, absl::string_view(value));
      EXPECT_EQ(Written(p), EncodeAuditPayload(full)) << compensation << " " << len;
    }
  }
}

TEST(AuditPayloadTest, WithoutAnAfterImageItIsThePlainEncoding) {
  proto::AuditRecord full = Data(false);
  full.set_op(proto::DELETE);
  proto::AuditRecord head = full;
  AuditPayload p(&head, std::nullopt);
  EXPECT_EQ(Written(p), EncodeAuditPayload(full));
}

TEST(ScanAuditImagesTest, ViewsOfBothImagesOrNone) {
  proto::AuditRecord r = Data(false);
  r.set_after("after!");
  const std::string payload = EncodeAuditPayload(r);
  auto i = ScanAuditImages(payload);
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(i->before, std::string(300, 'b'));
  EXPECT_EQ(i->after, "after!");
  auto h = ScanAuditHeader(payload);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->txid, 77u);
  EXPECT_EQ(h->volume, "$DATA01");
  r.clear_before();
  r.clear_after();
  i = ScanAuditImages(EncodeAuditPayload(r));
  ASSERT_TRUE(i.ok());
  EXPECT_FALSE(i->before.has_value());
  EXPECT_FALSE(i->after.has_value());
  EXPECT_EQ(ScanAuditImages(payload.substr(0, payload.size() - 3)).status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace rdf
