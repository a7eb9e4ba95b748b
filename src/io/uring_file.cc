// UringFile and UringEnv: see uring_file.h.
//
// How WriteAtAndSync orders the sync behind the writes: the write pieces are submitted
// unlinked, so the kernel runs them concurrently, and the fsync(IORING_FSYNC_DATASYNC) request
// carries IOSQE_IO_DRAIN, which holds it until every request submitted before it on the ring has
// completed. IOSQE_IO_LINK would also order the sync after the writes, but a link chain runs its
// members one after the other, which would serialise the pieces. Because each thread's ring holds
// only the current call's requests, the drain waits for exactly our writes. Writes, sync and the
// wait for all their completions go to the kernel in one io_uring_enter.
//
// A piece that completes short (or with EINTR/EAGAIN) is finished with sequential requests after
// the batch, and the sync is then issued again so that it covers those bytes. The first failed
// piece, in file order, gives the returned Status; a failed sync is returned when every write
// succeeded.
//
// Thread-safety: see uring_file.h.
#include "io/uring_file.h"

#include <liburing.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

namespace cairn::io {

namespace {

// Ring size: the most requests one call has in flight.
constexpr unsigned kRingDepth = 64;
// WriteAtAndSync cuts a write into at most kMaxPieces pieces of at least kMinPieceBytes.
// Measured on this project's test machine (virtio disk, ext4, O_DIRECT appends into
// preallocated segments, `cairn bench engine --workload append --size 1MiB --concurrency 1`):
// 16 pieces of 64 KiB gave ~300 MB/s, 4 of 256 KiB ~600 MB/s, one piece ~650-800 MB/s. Writes
// into unwritten extents are punted to io-wq workers, so pieces cost more than they overlap.
// One piece it is: the gain over psync is one system call for write and sync together.
constexpr size_t kMaxPieces = 16;
constexpr size_t kMinPieceBytes = size_t{1} << 20;
// Piece boundaries fall on page boundaries even for buffered files.
constexpr size_t kPieceAlignment = 4096;
// Upper bound for the length of one request (the SQE length field is 32 bits, and Linux stops a
// single read or write at about 2 GiB). A power of two, so a multiple of any O_DIRECT alignment.
constexpr size_t kMaxIoBytes = size_t{1} << 30;
// user_data of the sync request; write pieces use their index.
constexpr uint64_t kSyncTag = ~uint64_t{0};

bool Retryable(int res) { return res == -EINTR || res == -EAGAIN; }

std::string Context(std::string_view op, const std::string& path) {
  std::string s("io_uring ");
  s += op;
  s += ' ';
  s += path;
  return s;
}

void ForgetRingAfterFork();

// This thread's ring. Every call leaves it empty: all submitted requests reaped, no request
// prepared but unsubmitted.
class ThreadRing {
 public:
  ThreadRing() = default;
  ThreadRing(const ThreadRing&) = delete;
  ThreadRing& operator=(const ThreadRing&) = delete;
  ~ThreadRing() { Reset(); }

  // The ring, created on first use; nullptr when this thread cannot have one.
  io_uring* Get() {
    if (!ready_ && !failed_) {
      // A child of fork() shares the parent's rings; it must make its own.
      static const bool at_fork_registered = pthread_atfork(nullptr, nullptr, &ForgetRingAfterFork) == 0;
      (void)at_fork_registered;
      if (io_uring_queue_init(kRingDepth, &ring_, 0) == 0) {
        ready_ = true;
      } else {
        failed_ = true;
      }
    }
    return ready_ ? &ring_ : nullptr;
  }

  // A fresh SQE. REQUIRES: fewer than kRingDepth prepared since the last Run.
  io_uring_sqe* Sqe() { return io_uring_get_sqe(&ring_); }

  // Submits the `count` prepared requests, waits for all their completions and calls
  // on_cqe(user_data, res) for each. A non-OK Status means the ring itself failed (io_uring_enter
  // refused); the ring is then recreated on next use, and completions reported so far stand.
  template <typename OnCqe>
  Status Run(unsigned count, const OnCqe& on_cqe) {
    unsigned submitted = 0;
    unsigned reaped = 0;
    Status ring_error;
    while (reaped < submitted || (submitted < count && ring_error.ok())) {
      if (submitted < count && ring_error.ok()) {
        const int r = io_uring_submit_and_wait(&ring_, count - reaped);
        if (r > 0) {
          submitted += static_cast<unsigned>(r);
        } else if (r == 0 || r == -EINTR || r == -EAGAIN || r == -EBUSY) {
          // Nothing went in this time (out of kernel resources, or interrupted): reap what is in
          // flight to free resources, or yield and retry when nothing is.
          if (reaped == submitted) {
            sched_yield();
            continue;
          }
        } else {
          ring_error = Status::FromErrno(-r, "io_uring_enter");
        }
      }
      while (reaped < submitted) {
        io_uring_cqe* cqe = nullptr;
        const int w = io_uring_wait_cqe(&ring_, &cqe);
        if (w == -EINTR) continue;
        if (w < 0) {
          // Cannot happen with a healthy ring; give up on it without touching the buffers again.
          ring_error = Status::FromErrno(-w, "io_uring_wait_cqe");
          Abandon();
          return ring_error;
        }
        on_cqe(cqe->user_data, cqe->res);
        io_uring_cqe_seen(&ring_, cqe);
        ++reaped;
        if (submitted < count && ring_error.ok()) break;  // go back and submit the rest
      }
    }
    // Requests that were prepared and never submitted would be sent by the next call, pointing at
    // buffers that are gone by then: drop the ring instead.
    if (!ring_error.ok()) Reset();
    return ring_error;
  }

  // In a child of fork(): drops the ring shared with the parent, and allows a new one.
  void AfterFork() {
    Reset();
    failed_ = false;
  }

 private:
  void Reset() {
    if (ready_) io_uring_queue_exit(&ring_);
    ready_ = false;
  }
  // Leaks the ring's memory mapping but closes nothing the kernel may still write through: used
  // only when completions cannot be reaped, where freeing the buffers they target would be unsafe
  // anyway. The thread gets no new ring and falls back to psync.
  void Abandon() {
    ready_ = false;
    failed_ = true;
  }

  io_uring ring_ = {};
  bool ready_ = false;
  bool failed_ = false;
};

thread_local ThreadRing tls_ring;

// Runs in the child after fork(), on its only thread: the thread that forked. Unmapping and
// closing the inherited ring leaves the parent's ring untouched.
void ForgetRingAfterFork() { tls_ring.AfterFork(); }

}  // namespace

Result<size_t> UringFile::ReadAt(uint64_t offset, std::span<std::byte> buf) {
  if (tls_ring.Get() == nullptr) return PreadAll(offset, buf);
  size_t done = 0;
  while (done < buf.size()) {
    const size_t want = std::min(buf.size() - done, kMaxIoBytes);
    io_uring_sqe* sqe = tls_ring.Sqe();
    io_uring_prep_read(sqe, fd(), buf.data() + done, static_cast<unsigned>(want), offset + done);
    sqe->user_data = 0;
    int res = 0;
    CAIRN_RETURN_IF_ERROR(tls_ring.Run(1, [&res](uint64_t, int r) { res = r; }));
    if (Retryable(res)) continue;
    if (res < 0) return Status::FromErrno(-res, Context("read", path()));
    if (res == 0) break;  // end of file
    done += static_cast<size_t>(res);
    // An O_DIRECT read that stops off the alignment grid has reached end of file.
    if (done % DirectAlignment() != 0) break;
  }
  return done;
}

Status UringFile::WriteAt(uint64_t offset, std::span<const iovec> iov) {
  if (tls_ring.Get() == nullptr) return PwritevAll(offset, iov);
  return WritePieces(offset, iov, /*sync=*/false);
}

Status UringFile::WriteAtAndSync(uint64_t offset, std::span<const iovec> iov) {
  if (tls_ring.Get() == nullptr) {
    CAIRN_RETURN_IF_ERROR(PwritevAll(offset, iov));
    return Fdatasync();
  }
  return WritePieces(offset, iov, /*sync=*/true);
}

Status UringFile::Sync() {
  if (tls_ring.Get() == nullptr) return Fdatasync();
  return UringSync();
}

Status UringFile::UringSync() {
  while (true) {
    io_uring_sqe* sqe = tls_ring.Sqe();
    io_uring_prep_fsync(sqe, fd(), IORING_FSYNC_DATASYNC);
    sqe->user_data = kSyncTag;
    int res = 0;
    CAIRN_RETURN_IF_ERROR(tls_ring.Run(1, [&res](uint64_t, int r) { res = r; }));
    if (res == -EINTR) continue;
    if (res < 0) return Status::FromErrno(-res, Context("fdatasync", path()));
    return Status::OK();
  }
}

Status UringFile::WriteSequential(uint64_t offset, std::span<const iovec> iov) {
  IovecCursor cursor(iov);
  std::vector<iovec> slice;
  while (!cursor.done()) {
    slice.clear();
    cursor.Peek(kMaxIoBytes, IOV_MAX, &slice);
    io_uring_sqe* sqe = tls_ring.Sqe();
    io_uring_prep_writev(sqe, fd(), slice.data(), static_cast<unsigned>(slice.size()), offset);
    sqe->user_data = 0;
    int res = 0;
    CAIRN_RETURN_IF_ERROR(tls_ring.Run(1, [&res](uint64_t, int r) { res = r; }));
    if (Retryable(res)) continue;
    if (res < 0) return Status::FromErrno(-res, Context("writev", path()));
    if (res == 0) return Status::IOError(Context("writev wrote nothing", path()));
    cursor.Advance(static_cast<size_t>(res));
    offset += static_cast<uint64_t>(res);
  }
  return Status::OK();
}

Status UringFile::WritePieces(uint64_t offset, std::span<const iovec> iov, bool sync) {
  const size_t total = IovecBytes(iov);
  if (total == 0) return sync ? UringSync() : Status::OK();

  // Cut [offset, offset + total) into pieces on alignment boundaries (relative to `offset`, which
  // O_DIRECT callers already align).
  const size_t align = std::max(DirectAlignment(), kPieceAlignment);
  const size_t count = std::clamp<size_t>(total / kMinPieceBytes, 1, kMaxPieces);
  size_t piece_bytes = (total + count - 1) / count;
  piece_bytes = std::min((piece_bytes + align - 1) / align * align, kMaxIoBytes);

  struct Piece {
    uint64_t offset = 0;
    size_t len = 0;
    std::vector<iovec> iov;
    int res = 0;
  };
  std::vector<Piece> pieces;
  IovecCursor cursor(iov);
  uint64_t at = offset;
  while (!cursor.done()) {
    Piece p;
    p.offset = at;
    p.len = cursor.Peek(piece_bytes, IOV_MAX, &p.iov);
    cursor.Advance(p.len);
    at += p.len;
    pieces.push_back(std::move(p));
  }

  // Submit in batches that fit the ring (one batch unless the iovec list is very long); the sync
  // rides with the last batch.
  constexpr size_t kBatch = kRingDepth - 1;
  int sync_res = 0;
  for (size_t first = 0; first < pieces.size(); first += kBatch) {
    const size_t end = std::min(first + kBatch, pieces.size());
    const bool with_sync = sync && end == pieces.size();
    for (size_t i = first; i < end; ++i) {
      io_uring_sqe* sqe = tls_ring.Sqe();
      io_uring_prep_writev(sqe, fd(), pieces[i].iov.data(), static_cast<unsigned>(pieces[i].iov.size()),
                           pieces[i].offset);
      sqe->user_data = i;
    }
    if (with_sync) {
      io_uring_sqe* sqe = tls_ring.Sqe();
      io_uring_prep_fsync(sqe, fd(), IORING_FSYNC_DATASYNC);
      sqe->flags |= IOSQE_IO_DRAIN;
      sqe->user_data = kSyncTag;
    }
    const auto n = static_cast<unsigned>(end - first + (with_sync ? 1 : 0));
    CAIRN_RETURN_IF_ERROR(tls_ring.Run(n, [&](uint64_t tag, int res) {
      if (tag == kSyncTag) {
        sync_res = res;
      } else {
        pieces[tag].res = res;
      }
    }));
  }

  // Finish short or interrupted pieces; stop at the first real error.
  bool wrote_after_sync = false;
  for (Piece& p : pieces) {
    if (p.res < 0 && !Retryable(p.res)) return Status::FromErrno(-p.res, Context("writev", path()));
    const size_t written = p.res < 0 ? 0 : static_cast<size_t>(p.res);
    if (written >= p.len) continue;
    IovecCursor rest(p.iov);
    rest.Advance(written);
    std::vector<iovec> remainder;
    rest.Peek(p.len - written, p.iov.size(), &remainder);
    CAIRN_RETURN_IF_ERROR(WriteSequential(p.offset + written, remainder));
    wrote_after_sync = true;
  }
  if (!sync) return Status::OK();
  // A failed sync is reported even if a later one would succeed: the kernel reports a writeback
  // error once, so a second fdatasync can pass although data was lost.
  if (sync_res < 0 && sync_res != -EINTR) return Status::FromErrno(-sync_res, Context("fdatasync", path()));
  if (wrote_after_sync || sync_res == -EINTR) return UringSync();
  return Status::OK();
}

Result<std::unique_ptr<File>> UringEnv::OpenFile(const std::string& path, const OpenOptions& options) {
  CAIRN_ASSIGN_OR_RETURN(OpenedFd opened, OpenDescriptor(path, options));
  return std::unique_ptr<File>(std::make_unique<UringFile>(opened.fd, path, opened.direct_alignment));
}

}  // namespace cairn::io
