// S3 POST Object: an upload from an HTML form (gateway/post_object.h has the form and policy
// rules). The body is streamed: fields first, held in memory; when the file part begins, the
// form's signature and policy are checked and the request is authorized, then the file's bytes go
// to an ObjectWriter as they arrive, and the object is committed only after the whole body was
// read and the size fits the policy's content-length-range. Any refusal leaves nothing stored.
#include <algorithm>
#include <map>

#include "common/logging.h"
#include "gateway/acl.h"
#include "common/crypto.h"
#include "gateway/post_object.h"
#include "gateway/s3_names.h"
#include "gateway/server/s3_service_internal.h"
#include "gateway/sigv4.h"
#include "gateway/text.h"
#include "gateway/xml.h"

namespace cairn::gateway::server {

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace {

constexpr size_t kPostBufferSize = 256 * 1024;
// The object headers a form asks for (the same names as the PUT headers, as form fields).
std::optional<S3Error> HeadersFromFields(const std::map<std::string, std::string>& fields,
                                         std::string_view file_content_type, meta::ObjectHeaders* h) {
  if (auto e = ObjectHeadersFrom({fields.begin(), fields.end()}, h)) return e;
  // Without a Content-Type field, S3 keeps the file part's own type.
  if (h->content_type.empty()) h->content_type = std::string(file_content_type);
  return std::nullopt;
}

// The S3 error for a refusal by the policy or signature checks.
S3Error PostError(const Status& s) {
  if (s.IsInvalidPolicyDocument()) return Make(S3Code::kInvalidPolicyDocument, s.message());
  if (s.IsInvalidArgument()) return Make(S3Code::kInvalidArgument, s.message());
  return FromStatus(s);
}

}  // namespace

void S3Service::PostObject(Request& r) {
  const auto content_type = r.ex.Header("content-type");
  auto boundary = FormBoundary(content_type.value_or(""));
  if (!boundary.ok()) {
    return SendError(r, Make(S3Code::kPreconditionFailed, "Bucket POST must be of the enclosure-type multipart/form-data"));
  }
  // S3 authenticates a form upload by its form alone: whatever signed the HTTP request (whose
  // body hash nobody checks here) does not speak for the form.
  r.principal = Principal{};
  r.auth = AuthResult{};

  // Everything the callbacks decide, kept here so that the handler can answer after parsing.
  std::map<std::string, std::string> fields;  // lowercase names; the first value of a repeated name
  std::optional<S3Error> refusal;
  std::unique_ptr<object::ObjectWriter> writer;
  std::optional<std::pair<uint64_t, uint64_t>> length_range;
  crypto::Md5Hasher md5;
  uint64_t size = 0;
  bool file_done = false;
  meta::ObjectRecord record;

  auto refuse = [&](S3Error e) {
    refusal = std::move(e);
    return Status::Cancelled("refused");
  };

  MultipartFormParser::Callbacks cb;
  cb.on_field = [&](std::string name, std::string value) -> Status {
    fields.emplace(AsciiLower(name), std::move(value));
    return Status::OK();
  };
  cb.on_file_begin = [&](std::string_view filename, std::string_view file_type) -> Status {
    // The form is complete as far as S3 reads it: check who signed it and what it may do.
    auto key_field = fields.find("key");
    if (key_field == fields.end()) {
      return refuse(Make(S3Code::kInvalidArgument, "Bucket POST must contain a field named 'key'.  If it is "
                                                   "specified, please check the order of the fields."));
    }
    std::string key = key_field->second;
    if (size_t at = key.find("${filename}"); at != std::string::npos) {
      key.replace(at, 11, std::string(filename));
    }
    fields["key"] = key;
    fields["bucket"] = r.bucket();
    if (key.empty()) return refuse(Make(S3Code::kInvalidArgument, "User key must have a length greater than 0."));
    if (key.size() > kMaxObjectKeyBytes) return refuse(Make(S3Code::kKeyTooLongError));
    if (Status s = ValidateObjectKey(key); !s.ok()) return refuse(Make(S3Code::kInvalidArgument, s.message()));

    const bool signed_form = fields.count("x-amz-signature") > 0 || fields.count("x-amz-credential") > 0 ||
                             fields.count("x-amz-algorithm") > 0;
    auto policy_field = fields.find("policy");
    if (policy_field != fields.end()) {
      auto sig = VerifyPostSignature(fields, secrets_, options_.region);
      if (!sig.ok()) return refuse(PostError(sig.status()));
      auto principal = identities_->PrincipalOf(sig->access_key);
      if (!principal) return refuse(Make(S3Code::kInvalidAccessKeyId));
      r.principal = std::move(*principal);
      r.auth.anonymous = false;
      r.auth.access_key = sig->access_key;
      auto policy = ParsePostPolicy(policy_field->second);
      if (!policy.ok()) return refuse(PostError(policy.status()));
      if (Status s = CheckPostPolicy(*policy, fields, options_.now() * 1000); !s.ok()) return refuse(PostError(s));
      length_range = ContentLengthRange(*policy);
    } else if (signed_form) {
      return refuse(Make(S3Code::kInvalidArgument, "Bucket POST must contain a field named 'policy'."));
    }
    r.form_fields = &fields;
    AccessRequest ar = Access(r, S3Op::kPostObject, key);
    ar.sets_acl = fields.count("acl") > 0;
    if (!Check(r, ar).allowed) {
      return refuse(Make(S3Code::kAccessDenied));
    }

    meta::ObjectHeaders headers;
    if (auto e = HeadersFromFields(fields, file_type, &headers)) return refuse(std::move(*e));
    const std::string owner = NewObjectOwner(r);
    auto acl = CannedAcl(fields.count("acl") ? fields["acl"] : "private", owner, r.bucket_info->owner);
    if (!acl.ok()) return refuse(Make(S3Code::kInvalidArgument, acl.status().message()));
    record.bucket = r.bucket();
    record.key = key;
    record.SetHeaders(headers);
    record.acl = std::move(*acl);
    writer = objects_->NewWriter(r.ex.content_length().value_or(UINT64_MAX));
    return Status::OK();
  };
  cb.on_file_data = [&](std::span<const std::byte> data) -> Status {
    size += data.size();
    const uint64_t max = std::min(options_.max_put_size, length_range ? length_range->second : UINT64_MAX);
    if (size > max) {
      S3Error e = Make(S3Code::kEntityTooLarge, "Your proposed upload exceeds the maximum allowed size");
      e.extra = {{"MaxSizeAllowed", std::to_string(max)}};
      return refuse(std::move(e));
    }
    md5.Update(data);
    return WriteAll(writer.get(), data);
  };
  cb.on_file_end = [&]() -> Status {
    file_done = true;
    return Status::OK();
  };

  MultipartFormParser parser(*boundary, FormLimits{}, std::move(cb));
  thread_local std::vector<std::byte> buf(kPostBufferSize);
  Status parse = Status::OK();
  while (parse.ok()) {
    auto n = r.ex.ReadBody(buf);
    if (!n.ok()) {
      parse = n.status();
      break;
    }
    if (*n == 0) {
      parse = parser.Finish();
      break;
    }
    parse = parser.Feed(std::span<const std::byte>(buf.data(), *n));
  }
  auto fail = [&](const S3Error& e) {
    if (writer) writer->Abort();
    SendError(r, e);
  };
  if (refusal) return fail(*refusal);
  if (!parse.ok()) {
    if (parse.IsIncompleteBody()) {
      r.ex.set_close();
      return fail(Make(S3Code::kIncompleteBody));
    }
    if (!writer && parse.IsInvalidArgument() && parser.file_seen() == false) {
      return fail(Make(S3Code::kInvalidArgument, "POST requires exactly one file upload per request."));
    }
    if (parse.IsInvalidArgument()) return fail(Make(S3Code::kMalformedPOSTRequest, parse.message()));
    return fail(FromStatus(parse));
  }
  if (!writer || !file_done) {
    return fail(Make(S3Code::kInvalidArgument, "POST requires exactly one file upload per request."));
  }
  if (length_range && size < length_range->first) {
    S3Error e = Make(S3Code::kEntityTooSmall, "Your proposed upload is smaller than the minimum allowed size");
    e.extra = {{"ProposedSize", std::to_string(size)}, {"MinSizeAllowed", std::to_string(length_range->first)}};
    return fail(e);
  }
  record.etag = crypto::HexEncode(md5.Finish());
  record.last_modified_ms = NowMillis();
  auto committed = writer->FinishSync(std::move(record), {});
  if (!committed.ok()) return SendError(r, FromStatus(committed.status()));

  const std::string etag = Quoted(committed->etag);
  // An absolute URL of the new object, as S3 gives it (path style, from the Host the form posted to).
  const std::string location =
      "http://" + r.ex.Header("host").value_or("localhost") + "/" + r.bucket() + "/" + UriEncode(committed->key, true);
  auto redirect = fields.find("success_action_redirect");
  if (redirect == fields.end()) redirect = fields.find("redirect");
  if (redirect != fields.end() && !redirect->second.empty()) {
    std::string url = redirect->second;
    url += url.find('?') == std::string::npos ? '?' : '&';
    url += "bucket=" + UriEncode(r.bucket(), false) + "&key=" + UriEncode(committed->key, false) +
           "&etag=" + UriEncode(etag, false);
    ResponseHead head = r.Head(303);
    head.Add("Location", url);
    head.Add("ETag", etag);
    r.status = 303;
    (void)r.ex.SendResponse(head, "");
    return;
  }
  const std::string status = fields.count("success_action_status") ? fields["success_action_status"] : "";
  if (status == "201") {
    XmlWriter x;
    x.Declaration();
    x.Open("PostResponse");
    x.Element("Location", location);
    x.Element("Bucket", r.bucket());
    x.Element("Key", committed->key);
    x.Element("ETag", etag);
    std::string body = x.Take();
    ResponseHead head = r.Head(201);
    head.Add("ETag", etag);
    head.Add("Location", location);
    head.Add("Content-Type", "application/xml");
    r.status = 201;
    (void)r.ex.SendResponse(head, body);
    return;
  }
  const int code = status == "200" ? 200 : 204;
  ResponseHead head = r.Head(code);
  head.Add("ETag", etag);
  head.Add("Location", location);
  r.status = code;
  (void)r.ex.SendResponse(head, "");
}

}  // namespace cairn::gateway::server
