// The S3 operations: authenticate a request, run it against the object and metadata layers, and
// answer as Amazon S3 documents it (headers, XML bodies, error codes).
//
// One entry point, Handle(exchange), called by a connection for each request. It never throws
// and always leaves the exchange answered (or the connection marked for closing when the peer
// went away mid-request). Every refusal is an S3 error document from the one error table
// (gateway/s3_errors.h).
//
// Streaming: PUT bodies go through ObjectWriter piece by piece, hashed (MD5 for the ETag,
// SHA-256 when the payload is signed) and CRC'd as they arrive; the record is committed only
// after the body verified, so a bad digest or a truncated body leaves nothing visible. GET
// bodies are sent chunk by chunk from the engine's files with sendfile.
//
// Thread-safety: Handle may be called concurrently from any number of connection threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/result.h"
#include "gateway/access.h"
#include "gateway/cors.h"
#include "gateway/policy.h"
#include "gateway/s3_errors.h"
#include "gateway/s3_request.h"
#include "gateway/server/http.h"
#include "gateway/server/identity.h"
#include "gateway/sigv4.h"
#include "gateway/xml.h"
#include "meta/meta_store.h"
#include "object/object_store.h"

namespace cairn::gateway::server {

struct S3ServiceOptions {
  std::string region = "us-east-1";
  // Base domains for virtual-host addressing ("<bucket>.<domain>").
  std::vector<std::string> domains = {"localhost"};
  // The largest single PUT S3 accepts: 5 GiB.
  uint64_t max_put_size = 5ull << 30;
  // Parts other than the last must hold at least this much (S3: 5 MiB).
  uint64_t min_part_size = 5ull << 20;
  // Clock for SigV4 (unix seconds); tests replace it.
  std::function<int64_t()> now = nullptr;
  // The JSON document GET /_cairn/admin/v1/status answers (admin_api.cc); an error from it is
  // answered 503. Its argument: `?digests=1` was asked (digests of the replicas' state, which
  // reads all of it). Default: none, and the status request is 404.
  std::function<Result<std::string>(bool digests)> status = nullptr;
};

class S3Service {
 public:
  // `identities` answers who holds an access key and the names of canonical ids.
  S3Service(object::ObjectStore* objects, meta::MetaStore* meta, Identities* identities, S3ServiceOptions options);
  ~S3Service();

  // Serves one request. REQUIRES: the request head was parsed into the exchange. A body the
  // operation did not read is left for the connection to drain or close on.
  void Handle(HttpExchange& exchange);

  const S3ServiceOptions& options() const { return options_; }

 public:
  // One request's state; defined in s3_service_internal.h for the service's source files.
  struct Request;

 private:
  struct Metrics;

  void Dispatch(Request& r);
  // The request for the decision about `op` on r's bucket and `key` (whether it sets an ACL
  // included); callers add the object's ACL or the upload's initiator where they apply.
  AccessRequest Access(const Request& r, S3Op op, std::string_view key) const;
  // Adds the bucket's policy and the request's condition keys to `ar`, asks gateway/access.h
  // whether r.principal may do it, and logs the decision.
  AccessDecision Check(Request& r, AccessRequest ar);
  void LogDecision(const Request& r, const AccessRequest& ar, const AccessDecision& d) const;
  // The parsed policy / CORS rules of a bucket (cached by document text); null when it has none
  // or the stored document no longer parses.
  std::shared_ptr<const BucketPolicy> PolicyOf(const meta::BucketInfo& bucket);
  std::shared_ptr<const CorsConfiguration> CorsOf(const meta::BucketInfo& bucket);
  // The ACL a create/put request asks for (x-amz-acl or x-amz-grant-*; "private" when neither),
  // owned by `owner`. False after answering with the error.
  bool RequestedAcl(Request& r, const std::string& owner, meta::Acl* acl);
  // UpdateBucket of r's bucket, provided it is still the one the request was authorized against
  // (PreconditionFailed otherwise).
  Status UpdateOwnBucket(const Request& r, const std::function<void(meta::BucketInfo*)>& change);
  void WriteOwner(XmlWriter& x, std::string_view canonical_id, std::string_view element = "Owner") const;
  // The owner of a new object written by r's principal (the bucket owner for anonymous writers).
  std::string NewObjectOwner(const Request& r) const;
  void SendError(Request& r, const S3Error& error);
  void SendXml(Request& r, int status, std::string body);

  // Buckets
  void ListBuckets(Request& r);
  void CreateBucket(Request& r);
  void DeleteBucket(Request& r);
  void HeadBucket(Request& r);
  void GetBucketLocation(Request& r);
  void GetBucketVersioning(Request& r);
  void GetAcl(Request& r);
  void PutAcl(Request& r);
  void GetBucketPolicy(Request& r);
  void PutBucketPolicy(Request& r);
  void DeleteBucketPolicy(Request& r);
  void GetBucketCors(Request& r);
  void PutBucketCors(Request& r);
  void DeleteBucketCors(Request& r);
  void Preflight(Request& r);
  void PostObject(Request& r);
  // The admin API (users and keys) under /_cairn/admin/; admin_api.cc.
  void Admin(Request& r, std::string_view path);
  void GetObjectTagging(Request& r);
  void ListObjects(Request& r, int version);
  void ListObjectVersions(Request& r);
  void ListMultipartUploads(Request& r);
  void DeleteObjects(Request& r);
  // Objects
  void PutObject(Request& r);
  void CopyObject(Request& r);
  void GetObject(Request& r, bool head);
  void DeleteObject(Request& r);
  // Multipart
  void CreateMultipartUpload(Request& r);
  void UploadPart(Request& r, bool copy);
  void CompleteMultipartUpload(Request& r);
  void AbortMultipartUpload(Request& r);
  void ListParts(Request& r);

  object::ObjectStore* objects_;
  meta::MetaStore* meta_;
  Identities* identities_;
  SecretLookup secrets_;
  S3ServiceOptions options_;
  std::unique_ptr<Metrics> metrics_;

  std::mutex cache_mu_;
  // By bucket name: the document text and what it parsed to.
  std::map<std::string, std::pair<std::string, std::shared_ptr<const BucketPolicy>>> policies_;
  std::map<std::string, std::pair<std::string, std::shared_ptr<const CorsConfiguration>>> cors_;
};

}  // namespace cairn::gateway::server
