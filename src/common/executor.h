// Executor: somewhere to run work that may block (a RocksDB write, a chunk read), so that the
// thread that hands it over (an event loop, the engine's commit thread) never blocks.
// ThreadPool is the plain implementation: a fixed number of threads and one FIFO queue.
// Thread-safety: Post may be called from any thread, including from a task of the same pool.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cairn {

class Executor {
 public:
  virtual ~Executor() = default;
  // Runs `fn` later on one of the executor's threads.
  virtual void Post(std::function<void()> fn) = 0;
};

class ThreadPool final : public Executor {
 public:
  // REQUIRES: threads >= 1.
  explicit ThreadPool(size_t threads);
  // Runs every task already posted, then joins the threads.
  ~ThreadPool() override;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Post(std::function<void()> fn) override;

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mu_)
  bool stop_ = false;                        // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace cairn
