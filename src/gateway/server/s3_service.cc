#include "gateway/server/s3_service.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <random>
#include <unordered_map>

#include "common/crypto.h"
#include "common/logging.h"
#include "gateway/acl.h"
#include "gateway/s3_names.h"
#include "gateway/server/s3_service_internal.h"
#include "gateway/text.h"
#include "gateway/xml.h"

namespace cairn::gateway::server {

using namespace internal;  // NOLINT(google-build-using-namespace): this file's own helpers

namespace {

constexpr size_t kBodyBufferSize = 256 * 1024;
// Request documents (Delete with 1000 keys of 1 KiB, CompleteMultipartUpload with 10000 parts).
constexpr size_t kMaxXmlBody = 4 << 20;
// S3 limits the user metadata of an object (names and values of x-amz-meta-*) to 2 KB.
constexpr size_t kMaxUserMetadata = 2048;

constexpr std::string_view kXmlContentType = "application/xml";
constexpr std::string_view kGrantHeaders[] = {"x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-read-acp",
                                              "x-amz-grant-write-acp", "x-amz-grant-full-control"};
// GET bodies up to this size go out in the same send as the response head.
constexpr size_t kInlineBodyBytes = 64 * 1024;

uint64_t RandomU64() {
  thread_local std::mt19937_64 gen(std::random_device{}());
  return gen();
}

std::string NewRequestId() {
  char buf[17];
  snprintf(buf, sizeof buf, "%016llX", static_cast<unsigned long long>(RandomU64()));
  return buf;
}

// S3 lists one key's uploads by initiation time and pages them by upload id: an id that starts
// with the time in microseconds (then 64 random bits for uniqueness) makes the two orders agree.
std::string NewUploadId() {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  char id[33];
  snprintf(id, sizeof id, "%016llx%016llx", static_cast<unsigned long long>(micros),
           static_cast<unsigned long long>(RandomU64()));
  return id;
}

}  // namespace

int64_t internal::NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string internal::Quoted(std::string_view etag) { return "\"" + std::string(etag) + "\""; }

namespace {

std::string_view StripQuotes(std::string_view s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

}  // namespace

namespace {

// Parses a decimal integer in [min, max]; nullopt otherwise.
std::optional<int64_t> ParseInt(std::string_view s, int64_t min, int64_t max) {
  int64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < min || v > max) return std::nullopt;
  return v;
}

// Blocks the calling connection thread until the writer can take bytes again.
void WaitWritable(object::ObjectWriter* writer) {
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    bool ready = false;
  };
  auto w = std::make_shared<Waiter>();
  writer->OnWritable([w] {
    std::lock_guard<std::mutex> l(w->mu);
    w->ready = true;
    w->cv.notify_one();
  });
  std::unique_lock<std::mutex> l(w->mu);
  w->cv.wait(l, [&] { return w->ready; });
}

}  // namespace

std::optional<S3Error> internal::ObjectHeadersFrom(const std::vector<std::pair<std::string, std::string>>& fields,
                                                   meta::ObjectHeaders* h) {
  static constexpr std::string_view kStorageClasses[] = {"STANDARD",     "REDUCED_REDUNDANCY",  "STANDARD_IA",
                                                         "ONEZONE_IA",   "INTELLIGENT_TIERING", "GLACIER",
                                                         "DEEP_ARCHIVE", "GLACIER_IR"};
  size_t metadata_bytes = 0;
  for (const auto& [name, value] : fields) {
    if (name == "content-type") {
      h->content_type = value;
    } else if (name == "content-encoding") {
      // aws-chunked names the framing of this request's body, not the object's encoding: S3
      // drops it and keeps the rest ("aws-chunked,gzip" is stored as "gzip").
      std::string kept;
      std::string_view rest = value;
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        std::string_view item = TrimHttpSpace(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (item.empty() || AsciiLower(item) == "aws-chunked") continue;
        if (!kept.empty()) kept += ",";
        kept += item;
      }
      h->content_encoding = kept;
    } else if (name == "content-language") {
      h->content_language = value;
    } else if (name == "content-disposition") {
      h->content_disposition = value;
    } else if (name == "cache-control") {
      h->cache_control = value;
    } else if (name == "expires") {
      h->expires = value;
    } else if (name == "x-amz-storage-class") {
      if (std::find(std::begin(kStorageClasses), std::end(kStorageClasses), value) == std::end(kStorageClasses)) {
        return Make(S3Code::kInvalidStorageClass);
      }
      if (value != "STANDARD") h->storage_class = value;
    } else if (name.starts_with("x-amz-meta-")) {
      std::string meta_name = name.substr(11);
      metadata_bytes += meta_name.size() + value.size();
      h->user_metadata.emplace_back(std::move(meta_name), value);
    }
  }
  if (metadata_bytes > kMaxUserMetadata) return Make(S3Code::kMetadataTooLarge);
  return std::nullopt;
}

Status internal::WriteAll(object::ObjectWriter* writer, std::span<const std::byte> data) {
  while (!data.empty()) {
    size_t n = writer->Write(data);
    data = data.subspan(n);
    if (data.empty()) break;
    if (n == 0) {
      WaitWritable(writer);
      n = writer->Write(data);
      if (n == 0) return Status::IOError("the object writer stopped taking data");
      data = data.subspan(n);
    }
  }
  return Status::OK();
}

namespace {

// The S3 error for a failed metadata call about an object (NotFound means NoSuchKey here).
S3Error ObjectError(const Status& s) {
  if (s.IsNotFound()) return Make(S3Code::kNoSuchKey);
  return FromStatus(s);
}

// A copy source: "bucket/key" or "/bucket/key", percent-encoded, optionally "?versionId=...".
struct CopySource {
  std::string bucket;
  std::string key;
};

Result<CopySource> ParseCopySource(std::string_view header) {
  std::string_view path = header;
  std::string_view query;
  if (size_t q = path.find('?'); q != std::string_view::npos) {
    query = path.substr(q + 1);
    path = path.substr(0, q);
  }
  CAIRN_ASSIGN_OR_RETURN(std::string decoded, PercentDecode(path, false));
  std::string_view d = decoded;
  if (!d.empty() && d.front() == '/') d.remove_prefix(1);
  const size_t slash = d.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == d.size()) {
    return Status::InvalidArgument("x-amz-copy-source must be bucket/key");
  }
  if (!query.empty()) {
    CAIRN_ASSIGN_OR_RETURN(QueryParams q, QueryParams::Parse(query));
    auto version = q.Get("versionId");
    if (version && *version != meta::kNullVersionId) {
      return Status::InvalidArgument("no such version of the copy source");
    }
  }
  return CopySource{std::string(d.substr(0, slash)), std::string(d.substr(slash + 1))};
}

}  // namespace

// ---- Metrics ---------------------------------------------------------------------------------

struct S3Service::Metrics {
  metrics::Registry& registry = metrics::Registry::Default();
  metrics::Counter* bytes_in = registry.GetCounter(
      "cairn_s3_received_bytes_total", "Request body bytes received (as sent: aws-chunked framing included)");
  metrics::Counter* bytes_out = registry.GetCounter("cairn_s3_sent_bytes_total", "Response bytes sent, heads included");
  metrics::Gauge* in_flight = registry.GetGauge("cairn_s3_requests_in_flight", "S3 requests being served");

  void Record(S3Op op, int status, uint64_t micros, uint64_t in, uint64_t out) {
    // Series are looked up in the registry (a mutex) once per thread, op and status; the
    // registry's metrics live as long as the process.
    struct Series {
      metrics::Counter* requests;
      metrics::Histogram* latency;
    };
    thread_local std::unordered_map<uint32_t, Series> cache;
    const uint32_t key = (static_cast<uint32_t>(op) << 16) | static_cast<uint32_t>(status & 0xffff);
    auto it = cache.find(key);
    if (it == cache.end()) {
      const std::string op_name(S3OpName(op));
      Series series{registry.GetCounter("cairn_s3_requests_total", "S3 requests by operation and HTTP status",
                                        {{"op", op_name}, {"status", std::to_string(status)}}),
                    registry.GetHistogram("cairn_s3_request_duration_us", "S3 request latency in microseconds",
                                          {{"op", op_name}})};
      it = cache.emplace(key, series).first;
    }
    metrics::Counter* c = it->second.requests;
    metrics::Histogram* h = it->second.latency;
    c->Increment();
    h->Record(micros);
    bytes_in->Increment(in);
    bytes_out->Increment(out);
  }
};

S3Service::S3Service(object::ObjectStore* objects, meta::MetaStore* meta, Identities* identities,
                     S3ServiceOptions options)
    : objects_(objects),
      meta_(meta),
      identities_(identities),
      secrets_([identities](std::string_view access_key) { return identities->Secret(access_key); }),
      options_(std::move(options)),
      metrics_(std::make_unique<Metrics>()) {
  if (!options_.now) options_.now = [] { return static_cast<int64_t>(::time(nullptr)); };
}

S3Service::~S3Service() = default;

void S3Service::SendError(Request& r, const S3Error& error) {
  r.status = error.http_status;
  if (r.ex.head_sent()) {
    // The status line is out: the only way left to tell the client is to cut the body short.
    r.ex.set_close();
    return;
  }
  ResponseHead head = r.Head(error.http_status);
  const std::string body = r.ex.method() == "HEAD" ? std::string() : ErrorXml(error, r.resource, r.request_id);
  if (!body.empty()) head.Add("Content-Type", std::string(kXmlContentType));
  // Whatever of the body was not read is dropped, so that the next request parses; a large one
  // closes the connection instead.
  if (!r.ex.DrainBody(HttpExchange::kMaxDrainBytes)) r.ex.set_close();
  (void)r.ex.SendResponse(head, body);
}

void S3Service::SendXml(Request& r, int status, std::string body) {
  r.status = status;
  ResponseHead head = r.Head(status);
  head.Add("Content-Type", std::string(kXmlContentType));
  (void)r.ex.SendResponse(head, body);
}

void S3Service::Handle(HttpExchange& ex) {
  const auto start = std::chrono::steady_clock::now();
  metrics_->in_flight->Add(1);
  Request r(ex);
  r.request_id = NewRequestId();
  Dispatch(r);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
  metrics_->Record(r.op, r.status, static_cast<uint64_t>(micros), ex.bytes_received(), ex.bytes_sent());
  metrics_->in_flight->Add(-1);
  CAIRN_LOG_DEBUG("s3 {} {} {} -> {} ({} us)", r.request_id, S3OpName(r.op), r.resource, r.status, micros);
}

void S3Service::Dispatch(Request& r) {
  HttpExchange& ex = r.ex;
  std::string_view raw_path, raw_query;
  SplitTarget(ex.target(), &raw_path, &raw_query);
  r.resource = std::string(raw_path);
  const std::string host = ex.Header("host").value_or("");
  auto target = ResolveTarget(ex.target(), host, options_.domains);
  if (!target.ok()) return SendError(r, Make(S3Code::kInvalidURI, target.status().message()));
  r.target = std::move(*target);
  r.op = ClassifyOperation(ex.method(), r.target, ex.Header("x-amz-copy-source").has_value());

  // A browser's CORS preflight carries no credentials; the bucket's CORS rules answer it.
  if (r.op == S3Op::kPreflight) return Preflight(r);

  // The bucket is read before anything else so that every answer to a browser, the refusals of
  // authentication included, carries the CORS headers its rules give: a page can then read why
  // its request failed. (A CORS rule is public by nature: any preflight reveals it too.)
  if (!r.bucket().empty() && ValidateBucketName(r.bucket()).ok()) {
    auto b = meta_->GetBucket(r.bucket());
    if (b.ok()) {
      r.bucket_info = std::move(*b);
    } else if (!b.status().IsNoSuchBucket()) {
      return SendError(r, FromStatus(b.status()));
    }
  }
  if (r.bucket_info && !r.bucket_info->cors.empty()) {
    // Whether or not a rule matches, the answer depends on these headers: caches must know.
    r.cors_headers = {{"Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"}};
    if (auto origin = ex.Header("origin")) {
      if (auto rules = CorsOf(*r.bucket_info)) {
        CorsRequest cr;
        cr.origin = *origin;
        cr.method = std::string(ex.method());
        if (const CorsRule* rule = MatchCors(*rules, cr)) r.cors_headers = CorsResponseHeaders(*rule, cr);
      }
    }
  }

  // Authentication: who signed the request (SigV4 header, presigned, or anonymous).
  SigV4Request sreq;
  sreq.method = ex.method();
  sreq.path = raw_path;
  sreq.raw_query = raw_query;
  for (const auto& f : ex.fields()) {
    const auto n = f.name_string();
    const auto v = f.value();
    sreq.headers.emplace_back(AsciiLower(std::string_view(n.data(), n.size())), std::string(v.data(), v.size()));
  }
  auto auth = VerifyRequest(sreq, secrets_, options_.now(), options_.region);
  if (!auth.ok()) {
    S3Error e = FromStatus(auth.status());
    return SendError(r, e);
  }
  r.auth = std::move(*auth);
  if (!r.auth.anonymous) {
    auto principal = identities_->PrincipalOf(r.auth.access_key);
    // The key was disabled or deleted between the signature check and now.
    if (!principal) return SendError(r, Make(S3Code::kInvalidAccessKeyId));
    r.principal = std::move(*principal);
  }
  constexpr std::string_view kAdminPrefix = "/_cairn/admin/v1/";
  if (!r.target.virtual_host && raw_path.starts_with(kAdminPrefix)) {
    r.op = S3Op::kAdmin;
    r.cors_headers.clear();
    return Admin(r, raw_path.substr(kAdminPrefix.size()));
  }

  if (r.op == S3Op::kUnknown) {
    if (r.auth.anonymous) return SendError(r, Make(S3Code::kAccessDenied));
    return SendError(r, Make(S3Code::kNotImplemented, "Cairn does not implement this operation yet."));
  }
  if (!r.key().empty()) {
    if (r.key().size() > kMaxObjectKeyBytes) return SendError(r, Make(S3Code::kKeyTooLongError));
    if (Status s = ValidateObjectKey(r.key()); !s.ok()) {
      return SendError(r, Make(S3Code::kInvalidArgument, s.message()));
    }
  }
  if (!r.bucket().empty() && r.op != S3Op::kCreateBucket) {
    // Every operation but CreateBucket needs its bucket; anonymous requesters learn nothing
    // about which names exist. Answering here also means no operation can act on a bucket
    // created by someone else after this look-up (the mutations check the owner they expect).
    if (!r.bucket_info) {
      if (r.principal.anonymous) return SendError(r, Make(S3Code::kAccessDenied));
      if (Status s = ValidateBucketName(r.bucket()); !s.ok()) {
        return SendError(r, Make(S3Code::kInvalidBucketName, s.message()));
      }
      return SendError(r, Make(S3Code::kNoSuchBucket));
    }
    if (auto expected = ex.Header("x-amz-expected-bucket-owner"); expected && *expected != r.bucket_info->owner) {
      return SendError(r, Make(S3Code::kAccessDenied));
    }
  }

  // Authorization, in one place: every operation below runs only if Check allowed it. Two
  // operations decide per key after reading their bodies, with the same Check: a form upload
  // (its key and signer are form fields) and DeleteObjects (each key is a DeleteObject).
  if (r.op == S3Op::kPostObject) return PostObject(r);
  if (r.op == S3Op::kDeleteObjects) {
    // Without a bucket policy the decision does not depend on the key (the bucket's ACL decides):
    // a requester who may delete nothing is refused as a whole, as any other operation is.
    if (r.bucket_info->policy.empty() && !Check(r, Access(r, S3Op::kDeleteObjects, "")).allowed) {
      return SendError(r, Make(S3Code::kAccessDenied));
    }
    return DeleteObjects(r);
  }
  if ((r.op == S3Op::kGetObject || r.op == S3Op::kHeadObject) && r.principal.anonymous) {
    for (const auto& [name, value] : r.target.query.all()) {
      if (name.starts_with("response-")) {
        // S3: an unsigned request may not make a public object answer as HTML (or any other type).
        return SendError(r, Make(S3Code::kInvalidRequest,
                                 "Request specific response headers cannot be used for anonymous GET requests."));
      }
    }
  }
  // What the decision needs is read once, here, for every requester; the operation uses these
  // very records, so it acts on exactly what was authorized.
  AccessRequest ar = Access(r, r.op, r.key());
  const bool object_op = AccessFor(r.op).target == AclTarget::kObject;
  if (object_op) {
    auto o = meta_->GetObject(r.bucket(), r.key());
    if (o.ok()) {
      r.object = std::move(*o);
      ar.object_acl = &r.object->acl;
    } else if (!o.status().IsNotFound()) {
      return SendError(r, ObjectError(o.status()));
    }
  }
  const bool upload_op = r.op == S3Op::kUploadPart || r.op == S3Op::kUploadPartCopy ||
                         r.op == S3Op::kCompleteMultipartUpload || r.op == S3Op::kAbortMultipartUpload ||
                         r.op == S3Op::kListParts;
  if (upload_op) {
    const auto upload_id = r.Query("uploadId");
    if (!upload_id) return SendError(r, Make(S3Code::kInvalidRequest, "uploadId is required"));
    auto upload = meta_->GetUploadInfo(r.bucket(), r.key(), *upload_id);
    if (upload.ok()) {
      r.upload = std::move(*upload);
      ar.upload_initiator = &r.upload->acl.owner;
    } else if (!upload.status().IsNoSuchUpload() && !upload.status().IsInvalidArgument()) {
      return SendError(r, FromStatus(upload.status()));
    }
  }
  if (!Check(r, ar).allowed) return SendError(r, Make(S3Code::kAccessDenied));
  // Allowed to learn that it is missing (authorization refuses others).
  if (object_op && !r.object) return SendError(r, Make(S3Code::kNoSuchKey));
  if (upload_op && !r.upload) return SendError(r, Make(S3Code::kNoSuchUpload));
  if (r.op == S3Op::kCopyObject || r.op == S3Op::kUploadPartCopy) {
    // A copy reads its source: the requester needs GetObject there too, and the copy reads the
    // version that was checked (r.copy_source), never one that replaced it meanwhile.
    auto src = ParseCopySource(*ex.Header("x-amz-copy-source"));
    if (!src.ok()) return SendError(r, Make(S3Code::kInvalidArgument, src.status().message()));
    auto src_bucket = meta_->GetBucket(src->bucket);
    if (src_bucket.ok()) {
      auto o = meta_->GetObject(src->bucket, src->key);
      if (o.ok()) {
        r.copy_source = std::move(*o);
      } else if (!o.status().IsNotFound()) {
        return SendError(r, ObjectError(o.status()));
      }
    } else if (!src_bucket.status().IsNoSuchBucket() && !src_bucket.status().IsInvalidArgument()) {
      return SendError(r, FromStatus(src_bucket.status()));
    }
    AccessRequest source;
    source.op = S3Op::kGetObject;
    source.bucket = src->bucket;
    source.key = src->key;
    source.bucket_info = src_bucket.ok() ? &*src_bucket : nullptr;
    source.object_acl = r.copy_source ? &r.copy_source->acl : nullptr;
    if (!Check(r, source).allowed) return SendError(r, Make(S3Code::kAccessDenied));
    if (!src_bucket.ok()) return SendError(r, Make(S3Code::kNoSuchBucket));
    if (!r.copy_source) return SendError(r, Make(S3Code::kNoSuchKey));
  }

  switch (r.op) {
    case S3Op::kListBuckets:
      return ListBuckets(r);
    case S3Op::kCreateBucket:
      return CreateBucket(r);
    case S3Op::kDeleteBucket:
      return DeleteBucket(r);
    case S3Op::kHeadBucket:
      return HeadBucket(r);
    case S3Op::kGetBucketLocation:
      return GetBucketLocation(r);
    case S3Op::kGetBucketVersioning:
      return GetBucketVersioning(r);
    case S3Op::kGetBucketAcl:
      return GetAcl(r);
    case S3Op::kListObjects:
      return ListObjects(r, 1);
    case S3Op::kListObjectsV2:
      return ListObjects(r, 2);
    case S3Op::kListObjectVersions:
      return ListObjectVersions(r);
    case S3Op::kListMultipartUploads:
      return ListMultipartUploads(r);
    case S3Op::kPutObject:
      return PutObject(r);
    case S3Op::kCopyObject:
      return CopyObject(r);
    case S3Op::kGetObject:
      return GetObject(r, false);
    case S3Op::kHeadObject:
      return GetObject(r, true);
    case S3Op::kDeleteObject:
      return DeleteObject(r);
    case S3Op::kGetObjectAcl:
      return GetAcl(r);
    case S3Op::kGetObjectTagging:
      return GetObjectTagging(r);
    case S3Op::kCreateMultipartUpload:
      return CreateMultipartUpload(r);
    case S3Op::kUploadPart:
      return UploadPart(r, false);
    case S3Op::kUploadPartCopy:
      return UploadPart(r, true);
    case S3Op::kCompleteMultipartUpload:
      return CompleteMultipartUpload(r);
    case S3Op::kAbortMultipartUpload:
      return AbortMultipartUpload(r);
    case S3Op::kListParts:
      return ListParts(r);
    case S3Op::kPutBucketAcl:
    case S3Op::kPutObjectAcl:
      return PutAcl(r);
    case S3Op::kGetBucketPolicy:
      return GetBucketPolicy(r);
    case S3Op::kPutBucketPolicy:
      return PutBucketPolicy(r);
    case S3Op::kDeleteBucketPolicy:
      return DeleteBucketPolicy(r);
    case S3Op::kGetBucketCors:
      return GetBucketCors(r);
    case S3Op::kPutBucketCors:
      return PutBucketCors(r);
    case S3Op::kDeleteBucketCors:
      return DeleteBucketCors(r);
    case S3Op::kDeleteObjects:
    case S3Op::kPostObject:
    case S3Op::kPreflight:
    case S3Op::kAdmin:
    case S3Op::kUnknown:
      break;
  }
  SendError(r, Make(S3Code::kNotImplemented));
}

// ---- Authorization and per-bucket documents ---------------------------------------------------

AccessRequest S3Service::Access(const Request& r, S3Op op, std::string_view key) const {
  AccessRequest ar;
  ar.op = op;
  ar.bucket = r.bucket();
  ar.key = key;
  ar.bucket_info = r.bucket_info ? &*r.bucket_info : nullptr;
  if (op == S3Op::kPutObject || op == S3Op::kCopyObject || op == S3Op::kCreateMultipartUpload) {
    ar.sets_acl = r.ex.Header("x-amz-acl").has_value();
    for (std::string_view name : kGrantHeaders) ar.sets_acl = ar.sets_acl || r.ex.Header(name).has_value();
  }
  return ar;
}

AccessDecision S3Service::Check(Request& r, AccessRequest ar) {
  const meta::BucketInfo* bucket = ar.bucket_info;
  std::shared_ptr<const BucketPolicy> policy;
  if (bucket != nullptr && !r.principal.root && !bucket->policy.empty()) {
    policy = PolicyOf(*bucket);
    ar.policy = policy.get();
    ar.policy_unreadable = policy == nullptr;
    // The condition keys S3 documents for these operations, as far as Cairn knows them.
    auto& c = ar.context;
    c["aws:sourceip"] = r.ex.peer_address();
    c["aws:securetransport"] = "false";
    const int64_t now = options_.now();
    c["aws:currenttime"] = FormatIso8601(now * 1000);
    c["aws:epochtime"] = std::to_string(now);
    c["aws:principaltype"] = r.principal.anonymous ? "Anonymous" : "User";
    if (auto v = r.ex.Header("user-agent")) c["aws:useragent"] = *v;
    if (auto v = r.ex.Header("referer")) c["aws:referer"] = *v;
    if (r.form_fields != nullptr) {
      // A form upload: its ACL and object headers are form fields, not request headers.
      if (auto it = r.form_fields->find("acl"); it != r.form_fields->end()) c["s3:x-amz-acl"] = it->second;
      if (auto it = r.form_fields->find("x-amz-storage-class"); it != r.form_fields->end()) {
        c["s3:x-amz-storage-class"] = it->second;
      }
    } else {
      if (auto v = r.ex.Header("x-amz-acl")) c["s3:x-amz-acl"] = *v;
      for (std::string_view name : kGrantHeaders) {
        if (auto v = r.ex.Header(name)) c["s3:" + std::string(name)] = *v;
      }
      if (auto v = r.ex.Header("x-amz-content-sha256")) c["s3:x-amz-content-sha256"] = *v;
      if (auto v = r.ex.Header("x-amz-copy-source")) c["s3:x-amz-copy-source"] = *v;
      if (auto v = r.ex.Header("x-amz-metadata-directive")) c["s3:x-amz-metadata-directive"] = *v;
      if (auto v = r.ex.Header("x-amz-storage-class")) c["s3:x-amz-storage-class"] = *v;
    }
    if (!r.principal.anonymous) {
      c["s3:signatureversion"] = "AWS4-HMAC-SHA256";
      c["s3:authtype"] = ar.op == S3Op::kPostObject                ? "POST"
                         : r.auth.method == AuthMethod::kPresigned ? "REST-QUERY-STRING"
                                                                   : "REST-HEADER";
    }
    if (ar.op == S3Op::kListObjects || ar.op == S3Op::kListObjectsV2 || ar.op == S3Op::kListObjectVersions) {
      // S3 defines s3:prefix for every listing; an absent prefix is the empty one.
      c["s3:prefix"] = r.Query("prefix").value_or("");
      if (auto v = r.Query("delimiter")) c["s3:delimiter"] = *v;
      if (auto v = r.Query("max-keys")) c["s3:max-keys"] = *v;
    }
  }
  const AccessDecision d = Authorize(r.principal, ar);
  LogDecision(r, ar, d);
  return d;
}

void S3Service::LogDecision(const Request& r, const AccessRequest& ar, const AccessDecision& d) const {
  CAIRN_LOG_DEBUG("authz {} {} {} {} s3://{}/{} -> {} ({})", r.request_id,
                  r.principal.anonymous ? std::string("anonymous") : r.principal.user_name,
                  r.principal.anonymous ? std::string("-") : r.auth.access_key, S3OpName(ar.op), ar.bucket, ar.key,
                  d.allowed ? "allow" : "deny", d.reason);
}

std::shared_ptr<const BucketPolicy> S3Service::PolicyOf(const meta::BucketInfo& bucket) {
  if (bucket.policy.empty()) return nullptr;
  {
    std::lock_guard<std::mutex> l(cache_mu_);
    auto it = policies_.find(bucket.name);
    if (it != policies_.end() && it->second.first == bucket.policy) return it->second.second;
  }
  auto parsed = BucketPolicy::Parse(bucket.policy, bucket.name);
  std::shared_ptr<const BucketPolicy> policy;
  if (parsed.ok()) {
    policy = std::make_shared<const BucketPolicy>(std::move(*parsed));
  } else {
    // Stored policies were checked when they were put; one that fails now (a parser change) is
    // logged once and remembered: the decision then refuses (AccessRequest::policy_unreadable).
    CAIRN_LOG_WARN("bucket {}: stored policy no longer parses: {}", bucket.name, parsed.status().ToString());
  }
  std::lock_guard<std::mutex> l(cache_mu_);
  policies_[bucket.name] = {bucket.policy, policy};
  return policy;
}

std::shared_ptr<const CorsConfiguration> S3Service::CorsOf(const meta::BucketInfo& bucket) {
  if (bucket.cors.empty()) return nullptr;
  {
    std::lock_guard<std::mutex> l(cache_mu_);
    auto it = cors_.find(bucket.name);
    if (it != cors_.end() && it->second.first == bucket.cors) return it->second.second;
  }
  auto parsed = ParseCorsConfiguration(bucket.cors);
  std::shared_ptr<const CorsConfiguration> config;
  if (parsed.ok()) {
    config = std::make_shared<const CorsConfiguration>(std::move(*parsed));
  } else {
    // Logged once and remembered: such a bucket answers browsers without CORS headers.
    CAIRN_LOG_WARN("bucket {}: stored CORS configuration no longer parses: {}", bucket.name,
                   parsed.status().ToString());
  }
  std::lock_guard<std::mutex> l(cache_mu_);
  cors_[bucket.name] = {bucket.cors, config};
  return config;
}

bool S3Service::RequestedAcl(Request& r, const std::string& owner, meta::Acl* acl) {
  const std::string bucket_owner = r.bucket_info ? r.bucket_info->owner : owner;
  const auto canned = r.ex.Header("x-amz-acl");
  std::vector<GrantHeader> grants;
  for (std::string_view name : kGrantHeaders) {
    if (auto v = r.ex.Header(name)) grants.push_back({std::string(name), *v});
  }
  if (canned && !grants.empty()) {
    SendError(r, Make(S3Code::kInvalidRequest, "Specifying both Canned ACLs and Header Grants is not allowed"));
    return false;
  }
  auto result = [&]() -> Result<meta::Acl> {
    if (grants.empty()) return CannedAcl(canned.value_or("private"), owner, bucket_owner);
    return AclFromGrantHeaders(grants, owner,
                               [this](std::string_view id) { return identities_->CanonicalIdExists(id); });
  }();
  if (!result.ok()) {
    const Status& s = result.status();
    SendError(r, s.IsNotSupported() ? Make(S3Code::kUnresolvableGrantByEmailAddress)
                                    : Make(S3Code::kInvalidArgument, s.message()));
    return false;
  }
  *acl = std::move(*result);
  return true;
}

void S3Service::WriteOwner(XmlWriter& x, std::string_view canonical_id, std::string_view element) const {
  x.Open(element);
  x.Element("ID", canonical_id);
  x.Element("DisplayName", identities_->DisplayName(canonical_id));
  x.Close();
}

std::string S3Service::NewObjectOwner(const Request& r) const {
  if (r.principal.anonymous) return r.bucket_info ? r.bucket_info->owner : std::string();
  return r.principal.canonical_id;
}

// ---- Shared pieces ---------------------------------------------------------------------------

namespace {

// The headers a PUT (or an upload's initiation, or a REPLACE copy) stores with the object.
Result<meta::ObjectHeaders> HeadersFromRequest(const HttpExchange& ex, S3Error* error) {
  std::vector<std::pair<std::string, std::string>> fields;
  for (const auto& f : ex.fields()) {
    const auto n = f.name_string();
    fields.emplace_back(AsciiLower(std::string_view(n.data(), n.size())),
                        std::string(f.value().data(), f.value().size()));
  }
  meta::ObjectHeaders h;
  if (auto e = ObjectHeadersFrom(fields, &h)) {
    *error = std::move(*e);
    return Status::InvalidArgument("object headers");
  }
  return h;
}

// Content-MD5, decoded; nullopt when absent. Error (InvalidDigest) when malformed.
Result<std::optional<crypto::Md5Digest>> ContentMd5(const HttpExchange& ex) {
  auto v = ex.Header("content-md5");
  if (!v) return std::optional<crypto::Md5Digest>();
  auto raw = crypto::Base64Decode(*v);
  if (!raw || raw->size() != crypto::kMd5Size) return Status::InvalidArgument("Content-MD5 is not a base64 MD5");
  crypto::Md5Digest d;
  std::copy(raw->begin(), raw->end(), reinterpret_cast<char*>(d.data()));
  return std::optional<crypto::Md5Digest>(d);
}

// Evaluates the x-amz-copy-source-if-* headers; every failure is 412 for a copy.
bool CopyConditionsHold(const HttpExchange& ex, const meta::ObjectRecord& src) {
  ConditionalHeaders c;
  c.if_match = ex.Header("x-amz-copy-source-if-match");
  c.if_none_match = ex.Header("x-amz-copy-source-if-none-match");
  c.if_modified_since = ex.Header("x-amz-copy-source-if-modified-since");
  c.if_unmodified_since = ex.Header("x-amz-copy-source-if-unmodified-since");
  return EvaluateConditions(c, src.etag, src.last_modified_ms / 1000) == ConditionResult::kProceed;
}

// Copies bytes [offset, offset + length) of `src` into `writer`, returning their MD5.
Result<crypto::Md5Digest> CopyInto(object::ObjectStore* objects, const meta::ObjectRecord& src, uint64_t offset,
                                   uint64_t length, object::ObjectWriter* writer) {
  thread_local std::vector<std::byte> buf(1 << 20);
  crypto::Md5Hasher md5;
  uint64_t done = 0;
  while (done < length) {
    const uint64_t n = std::min<uint64_t>(buf.size(), length - done);
    std::span<std::byte> piece(buf.data(), n);
    CAIRN_RETURN_IF_ERROR(objects->ReadRange(src, offset + done, piece));
    md5.Update(piece);
    CAIRN_RETURN_IF_ERROR(WriteAll(writer, piece));
    done += n;
  }
  return md5.Finish();
}

}  // namespace

// Reads the request body and hands it on: strips aws-chunked framing (checking every chunk
// signature), hashes it (MD5 always, SHA-256 when the payload is signed) and passes the bytes to
// the writer. Nothing is committed here; the caller decides after the digests are checked.
struct BodyDigest {
  crypto::Md5Digest md5;
  uint64_t size = 0;
};

//
// Errors: IncompleteBody (the body ended early or its aws-chunked framing is broken),
// EntityTooLarge (more than max_size bytes), ContentSha256Mismatch, ChecksumMismatch (the body
// differs from Content-MD5), SignatureDoesNotMatch (a chunk), InvalidArgument (malformed HTTP
// chunked framing), or what the writer reports.
static Result<BodyDigest> PumpBody(HttpExchange& ex, const AuthResult& auth, uint64_t max_size,
                                   const std::optional<crypto::Md5Digest>& content_md5, object::ObjectWriter* writer) {
  thread_local std::vector<std::byte> buf(kBodyBufferSize);
  crypto::Md5Hasher md5;
  crypto::Sha256Hasher sha;
  const bool want_sha = auth.payload_mode == PayloadMode::kSignedSha256;
  std::optional<AwsChunkedDecoder> decoder;
  if (auth.payload_mode == PayloadMode::kStreamingSigned) {
    CAIRN_ASSIGN_OR_RETURN(ChunkSignatureVerifier verifier, ChunkSignatureVerifier::FromAuthResult(auth));
    AwsChunkedDecoder::Options opts;
    opts.expected_decoded_length = auth.decoded_content_length;
    decoder.emplace(std::move(verifier), opts);
  }
  uint64_t size = 0;
  auto deliver = [&](std::span<const std::byte> data) -> Status {
    size += data.size();
    if (size > max_size) return Status::EntityTooLarge("more than " + std::to_string(max_size) + " bytes");
    md5.Update(data);
    return WriteAll(writer, data);
  };
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(size_t n, ex.ReadBody(buf));
    if (n == 0) break;
    std::span<const std::byte> piece(buf.data(), n);
    if (want_sha) sha.Update(piece);
    if (decoder) {
      CAIRN_RETURN_IF_ERROR(decoder->Feed(piece, deliver));
    } else {
      CAIRN_RETURN_IF_ERROR(deliver(piece));
    }
  }
  if (decoder) CAIRN_RETURN_IF_ERROR(decoder->Finish());
  if (want_sha) CAIRN_RETURN_IF_ERROR(CheckPayloadSha256(auth, sha.Finish()));
  const crypto::Md5Digest digest = md5.Finish();
  if (content_md5 && *content_md5 != digest) return Status::ChecksumMismatch("the body differs from Content-MD5");
  return BodyDigest{digest, size};
}

// The S3 error for a body that could not be read or did not verify. When the body was not read
// to its end the connection cannot carry another request.
static S3Error BodyError(HttpExchange& ex, const Status& s) {
  if (s.IsIncompleteBody() || s.IsEntityTooLarge() || s.IsInvalidArgument()) ex.set_close();
  return FromStatus(s);
}

// ---- Buckets ---------------------------------------------------------------------------------

void S3Service::ListBuckets(Request& r) {
  auto buckets = meta_->ListBuckets();
  if (!buckets.ok()) return SendError(r, FromStatus(buckets.status()));
  XmlWriter x;
  x.Declaration();
  x.Open("ListAllMyBucketsResult", kS3XmlNamespace);
  WriteOwner(x, r.principal.canonical_id);
  x.Open("Buckets");
  for (const auto& b : *buckets) {
    // A user sees its own buckets; root sees all.
    if (!r.principal.root && b.owner != r.principal.canonical_id) continue;
    x.Open("Bucket");
    x.Element("Name", b.name);
    x.Element("CreationDate", FormatIso8601(b.created_ms));
    x.Close();
  }
  x.Close();
  SendXml(r, 200, x.Take());
}

void S3Service::CreateBucket(Request& r) {
  if (Status s = ValidateBucketName(r.bucket()); !s.ok()) {
    return SendError(r, Make(S3Code::kInvalidBucketName, s.message()));
  }
  auto body = r.ex.ReadSmallBody(64 * 1024);
  if (!body.ok()) return SendError(r, Make(S3Code::kMalformedXML, body.status().message()));
  std::string region = options_.region;
  if (!body->empty()) {
    auto config = ParseCreateBucketConfiguration(*body);
    if (!config.ok()) return SendError(r, FromStatus(config.status()));
    const std::string& lc = config->location_constraint;
    if (!(lc == options_.region || (lc.empty() && options_.region == "us-east-1"))) {
      return SendError(
          r, Make(S3Code::kInvalidLocationConstraint,
                  "The specified location constraint is not valid; this server serves " + options_.region + "."));
    }
  }
  if (r.bucket_info) {
    return SendError(r, Make(r.bucket_info->owner == r.principal.canonical_id ? S3Code::kBucketAlreadyOwnedByYou
                                                                              : S3Code::kBucketAlreadyExists));
  }
  meta::BucketInfo info;
  info.name = r.bucket();
  info.owner = r.principal.canonical_id;
  info.created_ms = NowMillis();
  info.region = region;
  if (!RequestedAcl(r, info.owner, &info.acl)) return;
  Status s = meta_->CreateBucket(info);
  if (s.IsAlreadyExists()) {
    // Created by someone else between the look-up and now.
    auto other = meta_->GetBucket(r.bucket());
    const bool mine = other.ok() && other->owner == r.principal.canonical_id;
    return SendError(r, Make(mine ? S3Code::kBucketAlreadyOwnedByYou : S3Code::kBucketAlreadyExists));
  }
  if (!s.ok()) return SendError(r, FromStatus(s));
  ResponseHead head = r.Head(200);
  head.Add("Location", "/" + r.bucket());
  r.status = 200;
  (void)r.ex.SendResponse(head, "");
}

namespace {

// The answer when the bucket changed hands between authorization and the mutation.
S3Error BucketChanged() {
  return Make(S3Code::kOperationAborted,
              "A conflicting conditional operation is currently in progress against this resource.");
}

}  // namespace

Status S3Service::UpdateOwnBucket(const Request& r, const std::function<void(meta::BucketInfo*)>& change) {
  return meta_->UpdateBucket(r.bucket(), [&](meta::BucketInfo* b) {
    // Only the bucket the request was authorized against: not one created under its name since.
    if (b->owner != r.bucket_info->owner || b->created_ms != r.bucket_info->created_ms) {
      return Status::PreconditionFailed("the bucket changed");
    }
    change(b);
    return Status::OK();
  });
}

void S3Service::DeleteBucket(Request& r) {
  Status s = meta_->DeleteBucket(r.bucket(), &*r.bucket_info);
  if (s.IsPreconditionFailed()) return SendError(r, BucketChanged());
  if (!s.ok()) return SendError(r, FromStatus(s));
  {
    std::lock_guard<std::mutex> l(cache_mu_);
    policies_.erase(r.bucket());
    cors_.erase(r.bucket());
  }
  r.status = 204;
  (void)r.ex.SendResponse(r.Head(204), "");
}

void S3Service::HeadBucket(Request& r) {
  const meta::BucketInfo* b = &*r.bucket_info;
  ResponseHead head = r.Head(200);
  head.Add("x-amz-bucket-region", b->region.empty() ? options_.region : b->region);
  r.status = 200;
  (void)r.ex.SendResponse(head, "");
}

void S3Service::GetBucketLocation(Request& r) {
  const meta::BucketInfo* b = &*r.bucket_info;
  XmlWriter x;
  x.Declaration();
  const std::string region = b->region.empty() ? options_.region : b->region;
  // us-east-1 is reported as an empty LocationConstraint, as S3 does.
  x.Open("LocationConstraint", kS3XmlNamespace);
  std::string doc = x.Take();
  if (region != "us-east-1") {
    doc.insert(doc.size() - std::string_view("</LocationConstraint>").size(), XmlEscape(region));
  }
  SendXml(r, 200, std::move(doc));
}

void S3Service::GetBucketVersioning(Request& r) {
  XmlWriter x;
  x.Declaration();
  x.Open("VersioningConfiguration", kS3XmlNamespace);  // never enabled: no Status element
  SendXml(r, 200, x.Take());
}

void S3Service::GetAcl(Request& r) {
  const std::string& bucket_owner = r.bucket_info->owner;
  meta::Acl acl = EffectiveAcl(r.bucket_info->acl, bucket_owner);
  if (!r.key().empty()) acl = EffectiveAcl(r.object->acl, bucket_owner);
  SendXml(r, 200, AclToXml(acl, [this](std::string_view id) { return identities_->DisplayName(id); }));
}

void S3Service::PutAcl(Request& r) {
  const bool object = !r.key().empty();
  const std::string owner = object ? EffectiveAcl(r.object->acl, r.bucket_info->owner).owner : r.bucket_info->owner;
  auto body = r.ex.ReadSmallBody(64 * 1024);
  if (!body.ok()) return SendError(r, Make(S3Code::kMalformedACLError, body.status().message()));
  if (r.auth.payload_mode == PayloadMode::kSignedSha256) {
    if (Status s = CheckPayloadSha256(r.auth, crypto::Sha256(*body)); !s.ok()) return SendError(r, FromStatus(s));
  }
  bool has_headers = r.ex.Header("x-amz-acl").has_value();
  for (std::string_view name : kGrantHeaders) has_headers = has_headers || r.ex.Header(name).has_value();
  meta::Acl acl;
  if (has_headers) {
    if (!body->empty()) {
      return SendError(r, Make(S3Code::kUnexpectedContent, "This request does not support content"));
    }
    if (!RequestedAcl(r, owner, &acl)) return;
  } else {
    if (body->empty()) {
      return SendError(r, Make(S3Code::kMissingSecurityHeader, "Your request was missing a required header"));
    }
    auto parsed = AclFromXml(*body, owner, [this](std::string_view id) { return identities_->CanonicalIdExists(id); });
    if (!parsed.ok()) {
      const Status& s = parsed.status();
      if (s.IsMalformedXml()) return SendError(r, Make(S3Code::kMalformedACLError));
      if (s.IsNotSupported()) return SendError(r, Make(S3Code::kUnresolvableGrantByEmailAddress));
      if (s.IsAccessDenied()) return SendError(r, Make(S3Code::kAccessDenied, s.message()));
      return SendError(r, Make(S3Code::kInvalidArgument, s.message()));
    }
    acl = std::move(*parsed);
  }
  Status s = object ? meta_->SetObjectAcl(r.bucket(), r.key(), acl, &*r.object)
                    : UpdateOwnBucket(r, [&](meta::BucketInfo* b) { b->acl = acl; });
  if (s.IsPreconditionFailed()) return SendError(r, BucketChanged());
  if (!s.ok()) return SendError(r, object ? ObjectError(s) : FromStatus(s));
  r.status = 200;
  (void)r.ex.SendResponse(r.Head(200), "");
}

void S3Service::GetBucketPolicy(Request& r) {
  if (r.bucket_info->policy.empty()) return SendError(r, Make(S3Code::kNoSuchBucketPolicy));
  r.status = 200;
  ResponseHead head = r.Head(200);
  head.Add("Content-Type", "application/json");
  (void)r.ex.SendResponse(head, r.bucket_info->policy);
}

void S3Service::PutBucketPolicy(Request& r) {
  auto body = r.ex.ReadSmallBody(kMaxBucketPolicyBytes);
  if (!body.ok()) {
    if (body.status().IsIncompleteBody()) return SendError(r, Make(S3Code::kIncompleteBody));
    return SendError(r, Make(S3Code::kMalformedPolicy, "Policies must be no larger than 20 KB"));
  }
  if (r.auth.payload_mode == PayloadMode::kSignedSha256) {
    if (Status s = CheckPayloadSha256(r.auth, crypto::Sha256(*body)); !s.ok()) return SendError(r, FromStatus(s));
  }
  if (body->empty()) return SendError(r, Make(S3Code::kMalformedPolicy, "Policies must be valid JSON"));
  auto parsed = BucketPolicy::Parse(*body, r.bucket());
  if (!parsed.ok()) return SendError(r, Make(S3Code::kMalformedPolicy, parsed.status().message()));
  // Users named by name are resolved now: the policy means them, not whoever gets the name later.
  std::map<std::string, std::string> users;
  for (const std::string& name : parsed->PrincipalUserNames()) {
    auto id = identities_->CanonicalIdOf(name);
    if (!id) {
      return SendError(r, Make(S3Code::kMalformedPolicy,
                               name == "root" ? "Invalid principal in policy: root is not subject to bucket policies"
                                              : "Invalid principal in policy: no user " + name));
    }
    users[name] = *id;
  }
  for (const std::string& id : parsed->PrincipalCanonicalIds()) {
    if (!identities_->CanonicalIdExists(id)) {
      return SendError(r, Make(S3Code::kMalformedPolicy, "Invalid principal in policy: no user with id " + id));
    }
  }
  Status s = UpdateOwnBucket(r, [&](meta::BucketInfo* b) {
    b->policy = *body;
    b->policy_users = users;
  });
  if (s.IsPreconditionFailed()) return SendError(r, BucketChanged());
  if (!s.ok()) return SendError(r, FromStatus(s));
  r.status = 204;
  (void)r.ex.SendResponse(r.Head(204), "");
}

void S3Service::DeleteBucketPolicy(Request& r) {
  Status s = UpdateOwnBucket(r, [](meta::BucketInfo* b) {
    b->policy.clear();
    b->policy_users.clear();
  });
  if (s.IsPreconditionFailed()) return SendError(r, BucketChanged());
  if (!s.ok()) return SendError(r, FromStatus(s));
  r.status = 204;
  (void)r.ex.SendResponse(r.Head(204), "");
}

void S3Service::GetBucketCors(Request& r) {
  if (r.bucket_info->cors.empty()) return SendError(r, Make(S3Code::kNoSuchCORSConfiguration));
  SendXml(r, 200, r.bucket_info->cors);
}

void S3Service::PutBucketCors(Request& r) {
  auto content_md5 = ContentMd5(r.ex);
  if (!content_md5.ok()) return SendError(r, Make(S3Code::kInvalidDigest));
  auto body = r.ex.ReadSmallBody(64 * 1024);
  if (!body.ok()) {
    if (body.status().IsIncompleteBody()) return SendError(r, Make(S3Code::kIncompleteBody));
    return SendError(r, Make(S3Code::kMalformedXML, body.status().message()));
  }
  if (*content_md5 && crypto::Md5(*body) != **content_md5) return SendError(r, Make(S3Code::kBadDigest));
  if (r.auth.payload_mode == PayloadMode::kSignedSha256) {
    if (Status s = CheckPayloadSha256(r.auth, crypto::Sha256(*body)); !s.ok()) return SendError(r, FromStatus(s));
  }
  auto config = ParseCorsConfiguration(*body);
  if (!config.ok()) {
    const Status& s = config.status();
    if (s.IsInvalidArgument()) return SendError(r, Make(S3Code::kInvalidRequest, s.message()));
    return SendError(r, FromStatus(s));
  }
  const std::string stored = CorsXml(*config);
  Status s = UpdateOwnBucket(r, [&](meta::BucketInfo* b) { b->cors = stored; });
  if (s.IsPreconditionFailed()) return SendError(r, BucketChanged());
  if (!s.ok()) return SendError(r, FromStatus(s));
  r.status = 200;
  (void)r.ex.SendResponse(r.Head(200), "");
}

void S3Service::DeleteBucketCors(Request& r) {
  Status s = UpdateOwnBucket(r, [](meta::BucketInfo* b) { b->cors.clear(); });
  if (s.IsPreconditionFailed()) return SendError(r, BucketChanged());
  if (!s.ok()) return SendError(r, FromStatus(s));
  r.status = 204;
  (void)r.ex.SendResponse(r.Head(204), "");
}

void S3Service::Preflight(Request& r) {
  const auto origin = r.ex.Header("origin");
  const auto method = r.ex.Header("access-control-request-method");
  if (!origin || !method) {
    return SendError(r, Make(S3Code::kInvalidRequest, "Insufficient information. Origin request header needed."));
  }
  const S3Error refused = Make(S3Code::kAccessForbidden,
                               "CORSResponse: This CORS request is not allowed. This is usually because the "
                               "evaluation of Origin, request method / Access-Control-Request-Method or "
                               "Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.");
  // A missing bucket and one without CORS rules get the same answer: a preflight tells nothing
  // about which buckets exist.
  auto bucket = meta_->GetBucket(r.bucket());
  if (!bucket.ok()) {
    if (bucket.status().IsNoSuchBucket() || bucket.status().IsInvalidArgument()) return SendError(r, refused);
    return SendError(r, FromStatus(bucket.status()));
  }
  auto rules = CorsOf(*bucket);
  if (!rules) return SendError(r, refused);
  CorsRequest cr;
  cr.origin = *origin;
  cr.method = *method;
  cr.preflight = true;
  if (auto requested = r.ex.Header("access-control-request-headers")) {
    std::string_view rest = *requested;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (!item.empty()) cr.request_headers.emplace_back(item);
    }
  }
  const CorsRule* rule = MatchCors(*rules, cr);
  if (rule == nullptr) return SendError(r, refused);
  r.cors_headers = CorsResponseHeaders(*rule, cr);
  r.status = 200;
  (void)r.ex.SendResponse(r.Head(200), "");
}

void S3Service::GetObjectTagging(Request& r) {
  XmlWriter x;
  x.Declaration();
  x.Open("Tagging", kS3XmlNamespace);
  x.Open("TagSet");
  SendXml(r, 200, x.Take());
}

namespace {

// Reads max-keys (or max-uploads, max-parts): default 1000, capped at 1000.
std::optional<uint32_t> MaxParam(const std::optional<std::string>& v) {
  if (!v) return 1000;
  auto n = ParseInt(*v, 0, INT32_MAX);
  if (!n) return std::nullopt;
  return static_cast<uint32_t>(std::min<int64_t>(*n, 1000));
}

// The parameters every listing shares: encoding-type, max-keys, prefix and delimiter.
struct ListingParams {
  bool url = false;  // encoding-type=url
  meta::ListObjectsOptions opts;
  std::string Encode(const std::string& v) const { return url ? UrlEncodeListingValue(v) : v; }
};

// Reads them; the S3 error when one is malformed.
std::optional<S3Error> ParseListingParams(const QueryParams& q, ListingParams* p) {
  const auto encoding = q.Get("encoding-type");
  if (encoding && *encoding != "url")
    return Make(S3Code::kInvalidArgument, "Invalid Encoding Method specified in Request");
  p->url = encoding.has_value();
  const auto max_keys = MaxParam(q.Get("max-keys"));
  if (!max_keys) return Make(S3Code::kInvalidArgument, "Provided max-keys not an integer or within integer range");
  p->opts.prefix = q.Get("prefix").value_or("");
  p->opts.delimiter = q.Get("delimiter").value_or("");
  p->opts.max_keys = *max_keys;
  return std::nullopt;
}

void WriteCommonPrefixes(XmlWriter& x, const ListingParams& p, const std::vector<std::string>& prefixes) {
  for (const auto& prefix : prefixes) {
    x.Open("CommonPrefixes");
    x.Element("Prefix", p.Encode(prefix));
    x.Close();
  }
}

}  // namespace

// One page of a bucket listing; NoSuchBucket when the bucket is missing, also for max-keys=0
// (which lists nothing, so only the bucket is looked up).
static Result<meta::ListObjectsResult> ListPage(meta::MetaStore* meta, const std::string& bucket,
                                                const meta::ListObjectsOptions& opts) {
  if (opts.max_keys == 0) {
    auto b = meta->GetBucket(bucket);
    if (!b.ok()) return b.status();
    return meta::ListObjectsResult{};
  }
  return meta->ListObjects(bucket, opts);
}

void S3Service::ListObjects(Request& r, int version) {
  ListingParams p;
  if (auto e = ParseListingParams(r.target.query, &p)) return SendError(r, *e);
  meta::ListObjectsOptions& opts = p.opts;
  const auto token = r.Query("continuation-token");
  const auto start_after = r.Query("start-after");
  const auto marker = r.Query("marker");
  if (version == 2) {
    if (token) {
      auto decoded = crypto::Base64Decode(*token);
      if (!decoded || decoded->empty()) {
        return SendError(r, Make(S3Code::kInvalidArgument, "The continuation token provided is incorrect"));
      }
      opts.start_after = *decoded;
    } else if (start_after) {
      opts.start_after = *start_after;
    }
  } else if (marker) {
    opts.start_after = *marker;
  }
  auto listed = ListPage(meta_, r.bucket(), opts);
  if (!listed.ok()) return SendError(r, FromStatus(listed.status()));
  const meta::ListObjectsResult& page = *listed;
  auto enc = [&p](const std::string& v) { return p.Encode(v); };
  const bool url = p.url;

  const bool fetch_owner = version == 1 || r.Query("fetch-owner") == "true";
  XmlWriter x;
  x.Declaration();
  x.Open("ListBucketResult", kS3XmlNamespace);
  x.Element("Name", r.bucket());
  x.Element("Prefix", enc(opts.prefix));
  if (version == 1) {
    x.Element("Marker", enc(marker.value_or("")));
  } else {
    if (start_after) x.Element("StartAfter", enc(*start_after));
    if (token) x.Element("ContinuationToken", *token);
    x.Element("KeyCount", static_cast<uint64_t>(page.objects.size() + page.common_prefixes.size()));
  }
  x.Element("MaxKeys", opts.max_keys);
  if (!opts.delimiter.empty()) x.Element("Delimiter", enc(opts.delimiter));
  x.Element("IsTruncated", page.is_truncated);
  if (page.is_truncated) {
    if (version == 1) {
      if (!opts.delimiter.empty()) x.Element("NextMarker", enc(page.next_start_after));
    } else {
      x.Element("NextContinuationToken",
                crypto::Base64Encode(std::span(reinterpret_cast<const uint8_t*>(page.next_start_after.data()),
                                               page.next_start_after.size())));
    }
  }
  if (url) x.Element("EncodingType", "url");
  for (const auto& o : page.objects) {
    x.Open("Contents");
    x.Element("Key", enc(o.key));
    x.Element("LastModified", FormatIso8601(o.last_modified_ms));
    x.Element("ETag", Quoted(o.etag));
    x.Element("Size", o.size);
    if (fetch_owner) WriteOwner(x, o.acl.owner.empty() ? r.bucket_info->owner : o.acl.owner);
    x.Element("StorageClass", o.storage_class.empty() ? "STANDARD" : o.storage_class);
    x.Close();
  }
  WriteCommonPrefixes(x, p, page.common_prefixes);
  SendXml(r, 200, x.Take());
}

void S3Service::ListObjectVersions(Request& r) {
  ListingParams p;
  if (auto e = ParseListingParams(r.target.query, &p)) return SendError(r, *e);
  meta::ListObjectsOptions& opts = p.opts;
  const std::string key_marker = r.Query("key-marker").value_or("");
  const std::string version_marker = r.Query("version-id-marker").value_or("");
  opts.start_after = key_marker;
  auto listed = ListPage(meta_, r.bucket(), opts);
  if (!listed.ok()) return SendError(r, FromStatus(listed.status()));
  const meta::ListObjectsResult& page = *listed;
  auto enc = [&p](const std::string& v) { return p.Encode(v); };
  const bool url = p.url;
  XmlWriter x;
  x.Declaration();
  x.Open("ListVersionsResult", kS3XmlNamespace);
  x.Element("Name", r.bucket());
  x.Element("Prefix", enc(opts.prefix));
  x.Element("KeyMarker", enc(key_marker));
  x.Element("VersionIdMarker", version_marker);
  x.Element("MaxKeys", opts.max_keys);
  if (!opts.delimiter.empty()) x.Element("Delimiter", enc(opts.delimiter));
  x.Element("IsTruncated", page.is_truncated);
  if (page.is_truncated) {
    x.Element("NextKeyMarker", enc(page.next_start_after));
    // A common prefix has no version; an object's one version is "null".
    const bool last_is_object = !page.objects.empty() && page.objects.back().key == page.next_start_after;
    if (last_is_object) x.Element("NextVersionIdMarker", meta::kNullVersionId);
  }
  if (url) x.Element("EncodingType", "url");
  for (const auto& o : page.objects) {
    x.Open("Version");
    x.Element("Key", enc(o.key));
    x.Element("VersionId", o.version_id);
    x.Element("IsLatest", true);
    x.Element("LastModified", FormatIso8601(o.last_modified_ms));
    x.Element("ETag", Quoted(o.etag));
    x.Element("Size", o.size);
    WriteOwner(x, o.acl.owner.empty() ? r.bucket_info->owner : o.acl.owner);
    x.Element("StorageClass", o.storage_class.empty() ? "STANDARD" : o.storage_class);
    x.Close();
  }
  WriteCommonPrefixes(x, p, page.common_prefixes);
  SendXml(r, 200, x.Take());
}

void S3Service::ListMultipartUploads(Request& r) {
  const auto encoding = r.Query("encoding-type");
  if (encoding && *encoding != "url")
    return SendError(r, Make(S3Code::kInvalidArgument, "Invalid Encoding Method specified in Request"));
  const bool url = encoding.has_value();
  auto enc = [url](const std::string& v) { return url ? UrlEncodeListingValue(v) : v; };
  const auto max = MaxParam(r.Query("max-uploads"));
  if (!max)
    return SendError(r, Make(S3Code::kInvalidArgument, "Provided max-uploads not an integer or within integer range"));
  meta::ListUploadsOptions opts;
  opts.prefix = r.Query("prefix").value_or("");
  opts.key_marker = r.Query("key-marker").value_or("");
  opts.upload_id_marker = opts.key_marker.empty() ? "" : r.Query("upload-id-marker").value_or("");
  const std::string delimiter = r.Query("delimiter").value_or("");
  opts.max_uploads = *max;

  // With a delimiter, uploads whose key has the delimiter after the prefix are rolled up into
  // common prefixes, each counted once against max-uploads, as in a listing of objects.
  std::vector<meta::MultipartUpload> uploads;
  std::vector<std::string> prefixes;
  bool truncated = false;
  std::string next_key, next_id;
  meta::ListUploadsOptions cursor = opts;
  bool exhausted = false;
  while (!truncated && !exhausted) {
    cursor.max_uploads = std::max<uint32_t>(*max, 1);
    auto res = meta_->ListUploads(r.bucket(), cursor);
    if (!res.ok()) return SendError(r, FromStatus(res.status()));
    for (auto& u : res->uploads) {
      if (uploads.size() + prefixes.size() >= *max) {
        truncated = true;
        break;
      }
      next_key = u.key;
      next_id = u.upload_id;
      if (!delimiter.empty()) {
        const size_t d = u.key.find(delimiter, opts.prefix.size());
        if (d != std::string::npos) {
          std::string cp = u.key.substr(0, d + delimiter.size());
          if (prefixes.empty() || prefixes.back() != cp) prefixes.push_back(std::move(cp));
          continue;
        }
      }
      uploads.push_back(std::move(u));
    }
    if (!truncated) {
      if (!res->is_truncated) {
        exhausted = true;
      } else {
        cursor.key_marker = res->next_key_marker;
        cursor.upload_id_marker = res->next_upload_id_marker;
      }
    }
  }
  XmlWriter x;
  x.Declaration();
  x.Open("ListMultipartUploadsResult", kS3XmlNamespace);
  x.Element("Bucket", r.bucket());
  x.Element("KeyMarker", enc(opts.key_marker));
  x.Element("UploadIdMarker", opts.upload_id_marker);
  if (truncated) {
    x.Element("NextKeyMarker", enc(next_key));
    x.Element("NextUploadIdMarker", next_id);
  }
  x.Element("Prefix", enc(opts.prefix));
  if (!delimiter.empty()) x.Element("Delimiter", enc(delimiter));
  x.Element("MaxUploads", *max);
  x.Element("IsTruncated", truncated);
  if (url) x.Element("EncodingType", "url");
  for (const auto& u : uploads) {
    x.Open("Upload");
    x.Element("Key", enc(u.key));
    x.Element("UploadId", u.upload_id);
    const std::string& initiator = u.acl.owner.empty() ? r.bucket_info->owner : u.acl.owner;
    WriteOwner(x, initiator, "Initiator");
    WriteOwner(x, initiator);
    x.Element("StorageClass", u.headers.storage_class.empty() ? "STANDARD" : u.headers.storage_class);
    x.Element("Initiated", FormatIso8601(u.initiated_ms));
    x.Close();
  }
  for (const auto& p : prefixes) {
    x.Open("CommonPrefixes");
    x.Element("Prefix", enc(p));
    x.Close();
  }
  SendXml(r, 200, x.Take());
}

void S3Service::DeleteObjects(Request& r) {
  auto md5 = ContentMd5(r.ex);
  if (!md5.ok()) return SendError(r, Make(S3Code::kInvalidDigest));
  auto body = r.ex.ReadSmallBody(kMaxXmlBody);
  if (!body.ok()) {
    if (body.status().IsIncompleteBody()) return SendError(r, Make(S3Code::kIncompleteBody));
    return SendError(r, Make(S3Code::kMalformedXML, body.status().message()));
  }
  if (*md5 && crypto::Md5(*body) != **md5) return SendError(r, Make(S3Code::kBadDigest));
  if (r.auth.payload_mode == PayloadMode::kSignedSha256) {
    if (Status s = CheckPayloadSha256(r.auth, crypto::Sha256(*body)); !s.ok()) return SendError(r, FromStatus(s));
  }
  auto req = ParseDeleteRequest(*body);
  if (!req.ok()) return SendError(r, FromStatus(req.status()));

  XmlWriter x;
  x.Declaration();
  x.Open("DeleteResult", kS3XmlNamespace);
  for (const auto& entry : req->objects) {
    Status s;
    if (entry.key.empty() || entry.key.size() > kMaxObjectKeyBytes || !ValidateObjectKey(entry.key).ok()) {
      s = Status::InvalidArgument("invalid key");
    } else if (entry.version_id && *entry.version_id != meta::kNullVersionId) {
      s = Status::InvalidArgument("Invalid version id specified");
    } else if (!Check(r, Access(r, S3Op::kDeleteObject, entry.key)).allowed) {
      s = Status::AccessDenied("Access Denied");
    } else {
      auto d = objects_->Delete(r.bucket(), entry.key);
      s = d.ok() || d.status().IsNotFound() ? Status::OK() : d.status();
    }
    if (s.ok()) {
      if (req->quiet) continue;
      x.Open("Deleted");
      x.Element("Key", entry.key);
      if (entry.version_id) x.Element("VersionId", *entry.version_id);
      x.Close();
    } else {
      const S3Error e = s.IsInvalidArgument() ? Make(S3Code::kInvalidArgument, s.message()) : FromStatus(s);
      x.Open("Error");
      x.Element("Key", entry.key);
      if (entry.version_id) x.Element("VersionId", *entry.version_id);
      x.Element("Code", S3CodeName(e.code));
      x.Element("Message", e.message);
      x.Close();
    }
  }
  SendXml(r, 200, x.Take());
}

// ---- Objects ---------------------------------------------------------------------------------

// Checks that a PUT-like request announces a body length within `max`. Returns false after
// answering with the error.
// The object bytes a PUT-like request announces, or UINT64_MAX when unknown (chunked).
static uint64_t AnnouncedSize(const HttpExchange& ex, const AuthResult& auth) {
  std::optional<uint64_t> size =
      auth.payload_mode == PayloadMode::kStreamingSigned ? auth.decoded_content_length : ex.content_length();
  return size.value_or(UINT64_MAX);
}

static bool CheckBodyLength(HttpExchange& ex, const AuthResult& auth, uint64_t max, S3Error* error) {
  const uint64_t size = AnnouncedSize(ex, auth);
  if (size == UINT64_MAX && !ex.chunked()) {
    *error = Make(S3Code::kMissingContentLength);
    return false;
  }
  if (size != UINT64_MAX && size > max) {
    *error = Make(S3Code::kEntityTooLarge, "Your proposed upload exceeds the maximum allowed size");
    error->extra = {{"ProposedSize", std::to_string(size)}, {"MaxSizeAllowed", std::to_string(max)}};
    return false;
  }
  return true;
}

void S3Service::PutObject(Request& r) {
  S3Error err;
  if (!CheckBodyLength(r.ex, r.auth, options_.max_put_size, &err)) return SendError(r, err);
  auto headers = HeadersFromRequest(r.ex, &err);
  if (!headers.ok()) return SendError(r, err);
  auto content_md5 = ContentMd5(r.ex);
  if (!content_md5.ok()) return SendError(r, Make(S3Code::kInvalidDigest));
  meta::WritePrecondition pre;
  if (auto v = r.ex.Header("if-none-match")) {
    if (StripQuotes(*v) != "*")
      return SendError(r, Make(S3Code::kNotImplemented, "If-None-Match on PUT supports only *"));
    pre.must_not_exist = true;
  }
  if (auto v = r.ex.Header("if-match")) pre.if_match_etag = std::string(StripQuotes(*v));
  meta::Acl acl;
  if (!RequestedAcl(r, NewObjectOwner(r), &acl)) return;

  auto writer = objects_->NewWriter(AnnouncedSize(r.ex, r.auth));
  auto body = PumpBody(r.ex, r.auth, options_.max_put_size, *content_md5, writer.get());
  if (!body.ok()) {
    writer->Abort();
    return SendError(r, BodyError(r.ex, body.status()));
  }
  meta::ObjectRecord rec;
  rec.bucket = r.bucket();
  rec.key = r.key();
  rec.etag = crypto::HexEncode(body->md5);
  rec.last_modified_ms = NowMillis();
  rec.SetHeaders(*headers);
  rec.acl = std::move(acl);
  auto committed = writer->FinishSync(std::move(rec), pre);
  if (!committed.ok()) {
    return SendError(r, FromStatus(committed.status()));  // If-Match on a missing key: NoSuchKey
  }
  ResponseHead head = r.Head(200);
  head.Add("ETag", Quoted(committed->etag));
  r.status = 200;
  (void)r.ex.SendResponse(head, "");
}

void S3Service::CopyObject(Request& r) {
  auto src = ParseCopySource(*r.ex.Header("x-amz-copy-source"));
  if (!src.ok()) return SendError(r, Make(S3Code::kInvalidArgument, src.status().message()));
  const std::string directive = r.ex.Header("x-amz-metadata-directive").value_or("COPY");
  if (directive != "COPY" && directive != "REPLACE") {
    return SendError(r, Make(S3Code::kInvalidArgument, "Unknown metadata directive."));
  }
  S3Error err;
  auto headers = HeadersFromRequest(r.ex, &err);
  if (!headers.ok()) return SendError(r, err);
  // The copy is a new object: it gets the ACL the request asks for, not the source's.
  meta::Acl acl;
  if (!RequestedAcl(r, NewObjectOwner(r), &acl)) return;
  // The version authorization checked.
  const meta::ObjectRecord* source = &*r.copy_source;
  if (!CopyConditionsHold(r.ex, *source)) return SendError(r, Make(S3Code::kPreconditionFailed));
  const bool same = src->bucket == r.bucket() && src->key == r.key();
  if (same && directive == "COPY" && !r.ex.Header("x-amz-storage-class")) {
    return SendError(r, Make(S3Code::kInvalidRequest,
                             "This copy request is illegal because it is trying to copy an object to itself "
                             "without changing the object's metadata, storage class, website redirect location or "
                             "encryption attributes."));
  }
  if (source->size > options_.max_put_size) {
    return SendError(r, Make(S3Code::kInvalidRequest,
                             "The specified copy source is larger than the maximum allowable size for a copy "
                             "source: 5368709120"));
  }
  meta::ObjectHeaders h = directive == "COPY" ? source->Headers() : *headers;
  if (directive == "COPY") {
    if (auto sc = r.ex.Header("x-amz-storage-class")) h.storage_class = *sc == "STANDARD" ? "" : *sc;
  }
  auto writer = objects_->NewWriter(source->size);
  auto md5 = CopyInto(objects_, *source, 0, source->size, writer.get());
  if (!md5.ok()) {
    writer->Abort();
    return SendError(r, FromStatus(md5.status()));
  }
  meta::ObjectRecord rec;
  rec.bucket = r.bucket();
  rec.key = r.key();
  rec.etag = crypto::HexEncode(*md5);
  rec.last_modified_ms = NowMillis();
  rec.SetHeaders(h);
  rec.acl = std::move(acl);
  auto committed = writer->FinishSync(std::move(rec), {});
  if (!committed.ok()) return SendError(r, FromStatus(committed.status()));
  XmlWriter x;
  x.Declaration();
  x.Open("CopyObjectResult", kS3XmlNamespace);
  x.Element("LastModified", FormatIso8601(committed->last_modified_ms));
  x.Element("ETag", Quoted(committed->etag));
  SendXml(r, 200, x.Take());
}

void S3Service::GetObject(Request& r, bool head) {
  // The record authorization read (Dispatch answered NoSuchKey when there is none).
  std::optional<meta::ObjectRecord>& rec = r.object;
  const int64_t mtime = rec->last_modified_ms / 1000;
  ConditionalHeaders cond;
  cond.if_match = r.ex.Header("if-match");
  cond.if_none_match = r.ex.Header("if-none-match");
  cond.if_modified_since = r.ex.Header("if-modified-since");
  cond.if_unmodified_since = r.ex.Header("if-unmodified-since");
  switch (EvaluateConditions(cond, rec->etag, mtime)) {
    case ConditionResult::kPreconditionFailed:
      return SendError(r, Make(S3Code::kPreconditionFailed));
    case ConditionResult::kNotModified: {
      ResponseHead h = r.Head(304);
      h.Add("ETag", Quoted(rec->etag));
      h.Add("Last-Modified", FormatHttpDate(mtime));
      r.status = 304;
      (void)r.ex.SendResponse(h, "");
      return;
    }
    case ConditionResult::kProceed:
      break;
  }

  ByteRange range{0, rec->size == 0 ? 0 : rec->size - 1};
  bool partial = false;
  std::optional<uint32_t> part_number;
  if (auto pn = r.Query("partNumber")) {
    auto n = ParseInt(*pn, 1, 10000);
    if (!n)
      return SendError(r,
                       Make(S3Code::kInvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"));
    part_number = static_cast<uint32_t>(*n);
    if (rec->part_count == 0) {
      if (*n != 1) return SendError(r, Make(S3Code::kInvalidPartNumber));
    } else {
      if (*n > rec->part_count || rec->part_sizes.size() != rec->part_count) {
        return SendError(r, Make(S3Code::kInvalidPartNumber));
      }
      uint64_t off = 0;
      for (uint32_t i = 0; i + 1 < *n; ++i) off += rec->part_sizes[i];
      const uint64_t len = rec->part_sizes[*n - 1];
      range = ByteRange{off, off + len - 1};
      partial = len != rec->size;
    }
  } else if (auto rh = r.ex.Header("range")) {
    switch (ParseRange(*rh, rec->size, &range)) {
      case RangeResult::kNone:
        break;
      case RangeResult::kSatisfiable:
        partial = true;
        break;
      case RangeResult::kUnsatisfiable: {
        S3Error e = Make(S3Code::kInvalidRange);
        e.extra = {{"RangeRequested", *rh}, {"ActualObjectSize", std::to_string(rec->size)}};
        return SendError(r, e);
      }
    }
  }
  const uint64_t length = rec->size == 0 ? 0 : range.length();

  ResponseHead h = r.Head(partial ? 206 : 200);
  h.Add("Last-Modified", FormatHttpDate(mtime));
  h.Add("ETag", Quoted(rec->etag));
  h.Add("Accept-Ranges", "bytes");
  if (partial) {
    h.Add("Content-Range",
          "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" + std::to_string(rec->size));
  }
  if (part_number && rec->part_count > 0) h.Add("x-amz-mp-parts-count", std::to_string(rec->part_count));
  auto override_or = [&](const char* param, const std::string& stored) -> std::string {
    auto v = r.Query(param);
    return v ? *v : stored;
  };
  const std::string ctype = override_or("response-content-type", rec->content_type);
  h.Add("Content-Type", ctype.empty() ? "binary/octet-stream" : ctype);
  struct {
    const char* header;
    const char* param;
    const std::string& stored;
  } optional_headers[] = {
      {"Content-Encoding", "response-content-encoding", rec->content_encoding},
      {"Content-Disposition", "response-content-disposition", rec->content_disposition},
      {"Cache-Control", "response-cache-control", rec->cache_control},
      {"Expires", "response-expires", rec->expires},
  };
  for (const auto& oh : optional_headers) {
    const std::string v = override_or(oh.param, oh.stored);
    if (!v.empty()) h.Add(oh.header, v);
  }
  if (const std::string lang = override_or("response-content-language", rec->content_language); !lang.empty()) {
    h.Add("Content-Language", lang);
  }
  if (!rec->storage_class.empty()) h.Add("x-amz-storage-class", rec->storage_class);
  for (const auto& [name, value] : rec->user_metadata) h.Add("x-amz-meta-" + name, value);

  r.status = h.status;
  if (head || length == 0) {
    (void)r.ex.SendHead(h, length);
    return;
  }
  // The head goes out with the first verified piece, so a chunk that fails its checksum before
  // anything was sent is still an error response, not a truncated body.
  Status s = objects_->SendRange(*rec, range.first, length, [&](engine::SendableRange& piece) -> Status {
    if (piece.fd >= 0) {
      if (!r.ex.head_sent()) CAIRN_RETURN_IF_ERROR(r.ex.SendHead(h, length, {}, /*more=*/true));
      return r.ex.SendFile(piece.fd, piece.offset, piece.length);
    }
    if (!r.ex.head_sent()) {
      // A small body rides in the head's send; a large one is not copied into it.
      if (piece.bytes.size() <= kInlineBodyBytes) return r.ex.SendHead(h, length, piece.bytes);
      CAIRN_RETURN_IF_ERROR(r.ex.SendHead(h, length, {}, /*more=*/true));
    }
    return r.ex.SendBytes(piece.bytes);
  });
  if (!s.ok()) {
    // A chunk the record names is missing or failed its checksum, or the client went away:
    // never the client's fault, and never a reason to send bytes that did not verify.
    CAIRN_LOG_ERROR("s3 {} GET {}/{}: {}", r.request_id, r.bucket(), r.key(), s.ToString());
    SendError(r, Make(S3Code::kInternalError));
  }
}

void S3Service::DeleteObject(Request& r) {
  auto d = objects_->Delete(r.bucket(), r.key());
  if (!d.ok() && !d.status().IsNotFound()) return SendError(r, FromStatus(d.status()));
  r.status = 204;
  (void)r.ex.SendResponse(r.Head(204), "");
}

// ---- Multipart -------------------------------------------------------------------------------

void S3Service::CreateMultipartUpload(Request& r) {
  S3Error err;
  auto headers = HeadersFromRequest(r.ex, &err);
  if (!headers.ok()) return SendError(r, err);
  meta::MultipartUpload upload;
  if (!RequestedAcl(r, NewObjectOwner(r), &upload.acl)) return;
  upload.bucket = r.bucket();
  upload.key = r.key();
  upload.initiated_ms = NowMillis();
  upload.headers = *headers;
  upload.upload_id = NewUploadId();
  auto id = meta_->CreateUpload(upload);
  if (!id.ok()) return SendError(r, FromStatus(id.status()));
  XmlWriter x;
  x.Declaration();
  x.Open("InitiateMultipartUploadResult", kS3XmlNamespace);
  x.Element("Bucket", r.bucket());
  x.Element("Key", r.key());
  x.Element("UploadId", *id);
  SendXml(r, 200, x.Take());
}

void S3Service::UploadPart(Request& r, bool copy) {
  const auto upload_id = r.Query("uploadId");
  const auto pn = r.Query("partNumber");
  if (!upload_id || !pn)
    return SendError(r, Make(S3Code::kInvalidRequest, "partNumber and uploadId are both required"));
  auto n = ParseInt(*pn, 1, 10000);
  if (!n)
    return SendError(r,
                     Make(S3Code::kInvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"));
  S3Error err;
  if (!copy && !CheckBodyLength(r.ex, r.auth, options_.max_put_size, &err)) return SendError(r, err);
  auto content_md5 = ContentMd5(r.ex);
  if (!content_md5.ok()) return SendError(r, Make(S3Code::kInvalidDigest));
  // The upload exists (Dispatch read it) before any byte is stored.

  auto writer = objects_->NewWriter(copy ? UINT64_MAX : AnnouncedSize(r.ex, r.auth));
  crypto::Md5Digest md5{};
  if (copy) {
    auto src = ParseCopySource(*r.ex.Header("x-amz-copy-source"));
    if (!src.ok()) return SendError(r, Make(S3Code::kInvalidArgument, src.status().message()));
    const meta::ObjectRecord* source = &*r.copy_source;
    if (!CopyConditionsHold(r.ex, *source)) return SendError(r, Make(S3Code::kPreconditionFailed));
    ByteRange range{0, source->size == 0 ? 0 : source->size - 1};
    uint64_t length = source->size;
    if (auto rh = r.ex.Header("x-amz-copy-source-range")) {
      auto cr = ParseCopySourceRange(*rh);
      if (!cr)
        return SendError(r, Make(S3Code::kInvalidArgument,
                                 "The x-amz-copy-source-range value must be of the form bytes=first-last"));
      if (cr->last >= source->size) {
        return SendError(r, Make(S3Code::kInvalidRange, "The requested range is not satisfiable"));
      }
      range = *cr;
      length = cr->length();
    }
    if (length > options_.max_put_size) return SendError(r, Make(S3Code::kEntityTooLarge));
    auto copied = CopyInto(objects_, *source, range.first, length, writer.get());
    if (!copied.ok()) {
      writer->Abort();
      return SendError(r, FromStatus(copied.status()));
    }
    md5 = *copied;
  } else {
    auto body = PumpBody(r.ex, r.auth, options_.max_put_size, *content_md5, writer.get());
    if (!body.ok()) {
      writer->Abort();
      return SendError(r, BodyError(r.ex, body.status()));
    }
    md5 = body->md5;
  }
  meta::PartRecord part;
  part.part_number = static_cast<uint32_t>(*n);
  part.etag = crypto::HexEncode(md5);
  part.last_modified_ms = NowMillis();
  auto committed = writer->FinishPartSync(r.bucket(), r.key(), *upload_id, std::move(part));
  if (!committed.ok()) return SendError(r, FromStatus(committed.status()));
  if (copy) {
    XmlWriter x;
    x.Declaration();
    x.Open("CopyPartResult", kS3XmlNamespace);
    x.Element("LastModified", FormatIso8601(committed->last_modified_ms));
    x.Element("ETag", Quoted(committed->etag));
    return SendXml(r, 200, x.Take());
  }
  ResponseHead head = r.Head(200);
  head.Add("ETag", Quoted(committed->etag));
  r.status = 200;
  (void)r.ex.SendResponse(head, "");
}

void S3Service::CompleteMultipartUpload(Request& r) {
  const std::string upload_id = r.Query("uploadId").value_or("");
  auto body = r.ex.ReadSmallBody(kMaxXmlBody);
  if (!body.ok()) {
    if (body.status().IsIncompleteBody()) return SendError(r, Make(S3Code::kIncompleteBody));
    return SendError(r, Make(S3Code::kMalformedXML, body.status().message()));
  }
  if (r.auth.payload_mode == PayloadMode::kSignedSha256) {
    if (Status s = CheckPayloadSha256(r.auth, crypto::Sha256(*body)); !s.ok()) return SendError(r, FromStatus(s));
  }
  auto parts = ParseCompleteMultipartUpload(*body);
  if (!parts.ok()) {
    if (parts.status().IsInvalidArgument())
      return SendError(r, Make(S3Code::kInvalidArgument, parts.status().message()));
    return SendError(r, FromStatus(parts.status()));
  }
  for (size_t i = 1; i < parts->size(); ++i) {
    if ((*parts)[i].part_number <= (*parts)[i - 1].part_number) return SendError(r, Make(S3Code::kInvalidPartOrder));
  }
  auto upload = meta_->GetUpload(r.bucket(), r.key(), upload_id);
  if (!upload.ok()) return SendError(r, FromStatus(upload.status()));
  std::vector<meta::CompletedPart> chosen;
  std::vector<std::string> etags;
  for (size_t i = 0; i < parts->size(); ++i) {
    const auto& p = (*parts)[i];
    auto it = upload->parts.find(p.part_number);
    if (it == upload->parts.end() || StripQuotes(p.etag) != it->second.etag) {
      return SendError(r, Make(S3Code::kInvalidPart));
    }
    if (i + 1 < parts->size() && it->second.size < options_.min_part_size) {
      S3Error e =
          Make(S3Code::kEntityTooSmall, "Your proposed upload is smaller than the minimum allowed object size.");
      e.extra = {{"ProposedSize", std::to_string(it->second.size)},
                 {"MinSizeAllowed", std::to_string(options_.min_part_size)},
                 {"PartNumber", std::to_string(p.part_number)},
                 {"ETag", it->second.etag}};
      return SendError(r, e);
    }
    chosen.push_back(meta::CompletedPart{p.part_number, it->second.etag});
    etags.push_back(it->second.etag);
  }
  auto etag = MultipartEtag(etags);
  if (!etag) return SendError(r, Make(S3Code::kInvalidPart));
  auto done = meta_->CompleteUpload(r.bucket(), r.key(), upload_id, chosen, *etag, NowMillis(), {});
  if (!done.ok()) return SendError(r, FromStatus(done.status()));
  if (Status s = objects_->Reclaim(done->unused_chunks); !s.ok()) {
    CAIRN_LOG_WARN("upload {}: reclaiming unused parts: {}", upload_id, s.ToString());
  }
  if (done->replaced) {
    if (Status s = objects_->Reclaim(done->replaced->chunks); !s.ok()) {
      CAIRN_LOG_WARN("object {}/{}: reclaiming the replaced version: {}", r.bucket(), r.key(), s.ToString());
    }
  }
  XmlWriter x;
  x.Declaration();
  x.Open("CompleteMultipartUploadResult", kS3XmlNamespace);
  const std::string host = r.ex.Header("host").value_or("localhost");
  x.Element("Location", "http://" + host + "/" + r.bucket() + "/" + UriEncode(r.key(), true));
  x.Element("Bucket", r.bucket());
  x.Element("Key", r.key());
  x.Element("ETag", Quoted(done->object.etag));
  SendXml(r, 200, x.Take());
}

void S3Service::AbortMultipartUpload(Request& r) {
  auto chunks = meta_->AbortUpload(r.bucket(), r.key(), r.Query("uploadId").value_or(""));
  if (!chunks.ok()) return SendError(r, FromStatus(chunks.status()));
  if (Status s = objects_->Reclaim(*chunks); !s.ok()) {
    CAIRN_LOG_WARN("aborted upload: reclaiming its parts: {}", s.ToString());
  }
  r.status = 204;
  (void)r.ex.SendResponse(r.Head(204), "");
}

void S3Service::ListParts(Request& r) {
  const std::string upload_id = r.Query("uploadId").value_or("");
  const auto max = MaxParam(r.Query("max-parts"));
  if (!max)
    return SendError(r, Make(S3Code::kInvalidArgument, "Provided max-parts not an integer or within integer range"));
  uint32_t marker = 0;
  if (auto m = r.Query("part-number-marker")) {
    auto v = ParseInt(*m, 0, 10000);
    if (!v)
      return SendError(
          r, Make(S3Code::kInvalidArgument, "Provided part-number-marker not an integer or within integer range"));
    marker = static_cast<uint32_t>(*v);
  }
  const meta::MultipartUpload* upload = &*r.upload;
  auto res = meta_->ListParts(r.bucket(), r.key(), upload_id, marker, *max);
  if (!res.ok()) return SendError(r, FromStatus(res.status()));
  XmlWriter x;
  x.Declaration();
  x.Open("ListPartsResult", kS3XmlNamespace);
  x.Element("Bucket", r.bucket());
  x.Element("Key", r.key());
  x.Element("UploadId", upload_id);
  const std::string& initiator = upload->acl.owner.empty() ? r.bucket_info->owner : upload->acl.owner;
  WriteOwner(x, initiator, "Initiator");
  WriteOwner(x, initiator);
  x.Element("StorageClass", upload->headers.storage_class.empty() ? "STANDARD" : upload->headers.storage_class);
  x.Element("PartNumberMarker", marker);
  if (res->is_truncated) x.Element("NextPartNumberMarker", res->next_part_number_marker);
  x.Element("MaxParts", *max);
  x.Element("IsTruncated", res->is_truncated);
  for (const auto& p : res->parts) {
    x.Open("Part");
    x.Element("PartNumber", p.part_number);
    x.Element("LastModified", FormatIso8601(p.last_modified_ms));
    x.Element("ETag", Quoted(p.etag));
    x.Element("Size", p.size);
    x.Close();
  }
  SendXml(r, 200, x.Take());
}

}  // namespace cairn::gateway::server
