//! The embedded store's readers: a fixed set of threads, each owning one read-only
//! connection for its whole life.
//!
//! Reads used to run on the async runtimes' blocking pools with pooled connections, so a
//! connection moved from thread to thread and each of the 20–30 blocking threads the
//! runtimes kept made its own allocations for SQLite's page caches and statements; the
//! allocator then held free memory in as many places (docs/PERFORMANCE.md, "Peak memory
//! at 1M statements"). Pinned connections keep each cache's memory with one thread, the
//! number of threads that touch SQLite from the read side is fixed, and reads go to the
//! most recently idle thread.

use super::{internal, StoreError, StoreResult};
use rusqlite::{params, Connection};
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// A read to run: it is handed the thread's connection, or why there is none.
type Job = Box<dyn FnOnce(Result<&Connection, &str>) + Send>;

/// Reads waiting for a thread, and the threads waiting for a read.
struct Queue {
    jobs: VecDeque<Job>,
    /// Idle threads, the one idle longest first: a read goes to the last one to become
    /// idle, so under light load one or two threads do all the reading and the memory
    /// the allocator keeps for a thread stays with them, where a fair hand-out had every
    /// thread keep some (about 50 MB more while the projection caught up at 1M).
    /// A thread woken without a read (spurious, or its read taken by a busier thread)
    /// is still listed or lists itself again.
    idle: Vec<usize>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// One per thread: a read is handed to exactly the thread it wakes.
    wake: Vec<Condvar>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(super) struct Readers {
    shared: Arc<Shared>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Readers {
    /// Starts `count` reader threads on the statements file `path` with the key index
    /// `keys_path` attached; each opens its connection at its first read.
    pub(super) fn start(path: &str, keys_path: &str, count: usize) -> Result<Readers, String> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                idle: Vec::with_capacity(count),
                closed: false,
            }),
            wake: (0..count).map(|_| Condvar::new()).collect(),
        });
        let mut threads = Vec::with_capacity(count);
        for i in 0..count {
            let shared = shared.clone();
            let (path, keys_path) = (path.to_owned(), keys_path.to_owned());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("sqlite-reader-{i}"))
                    .spawn(move || reader_loop(&shared, i, &path, &keys_path))
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok(Readers {
            shared,
            threads: Mutex::new(threads),
        })
    }

    /// Runs `f` on a reader's connection, off the async threads. Reads wait their turn
    /// in one queue, first come first served; how many run at once is the number of
    /// readers.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let r = match conn {
                Ok(c) => f(c).map_err(internal),
                Err(e) => Err(internal(e)),
            };
            let _ = tx.send(r);
        });
        {
            let mut q = self.shared.lock();
            if q.closed {
                return Err(StoreError::Unavailable("the store is closed".into()));
            }
            q.jobs.push_back(job);
            if let Some(i) = q.idle.pop() {
                self.shared.wake[i].notify_one();
            }
        }
        // A read that panicked dropped its answer; its thread goes on with a new connection.
        rx.await
            .map_err(|_| StoreError::Internal("a read failed unexpectedly".into()))?
    }

    /// Stops taking reads; the threads end once the queued ones are done.
    fn stop(&self) {
        let mut q = self.shared.lock();
        q.closed = true;
        for i in q.idle.drain(..) {
            self.shared.wake[i].notify_one();
        }
    }

    /// Stops taking reads and waits for the threads to finish the queued ones.
    pub(super) async fn close(&self) {
        self.stop();
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        if !threads.is_empty() {
            let _ = tokio::task::spawn_blocking(move || {
                for t in threads {
                    let _ = t.join();
                }
            })
            .await;
        }
    }
}

impl Drop for Readers {
    /// A store dropped without `close` still ends its threads.
    fn drop(&mut self) {
        self.stop();
    }
}

/// The next read for thread `me`, waiting as the most recently idle thread; `None` once
/// the readers are closed and no read is left.
fn next_job(shared: &Shared, me: usize) -> Option<Job> {
    let mut q = shared.lock();
    loop {
        if let Some(job) = q.jobs.pop_front() {
            return Some(job);
        }
        if q.closed {
            return None;
        }
        if !q.idle.contains(&me) {
            q.idle.push(me);
        }
        q = shared.wake[me].wait(q).unwrap_or_else(|p| p.into_inner());
    }
}

fn reader_loop(shared: &Shared, me: usize, path: &str, keys_path: &str) {
    let mut conn: Option<Connection> = None;
    while let Some(job) = next_job(shared, me) {
        let c = match &mut conn {
            Some(c) => c,
            slot @ None => match open(path, keys_path) {
                Ok(c) => slot.insert(c),
                Err(e) => {
                    job(Err(&e.to_string()));
                    continue;
                }
            },
        };
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(Ok(c)))).is_err() {
            // Whatever state the connection was left in, the next read gets a fresh one.
            conn = None;
        }
    }
}

fn open(path: &str, keys_path: &str) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.execute("ATTACH DATABASE ?1 AS ix", params![keys_path])?;
    // Rows are fetched by key from files the OS caches; a small page cache per
    // connection keeps memory bounded.
    c.execute_batch(
        "PRAGMA busy_timeout=5000; PRAGMA main.cache_size=-2048; PRAGMA ix.cache_size=-2048;",
    )?;
    c.set_prepared_statement_cache_capacity(super::STATEMENT_CACHE);
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("s.db").to_string_lossy().into_owned();
        let keys = dir.path().join("s.db.keys").to_string_lossy().into_owned();
        for p in [&path, &keys] {
            Connection::open(p)
                .and_then(|c| {
                    c.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7);")
                })
                .expect("file");
        }
        (dir, path, keys)
    }

    /// A fair hand-out would spread these reads over all eight threads; the most recently
    /// idle thread takes each instead. (At most two: a read can arrive while the thread
    /// that answered the previous one is still on its way back to the idle list.)
    #[tokio::test]
    async fn one_client_after_another_is_served_by_the_same_thread() {
        let (_dir, path, keys) = files();
        let readers = Readers::start(&path, &keys, 8).expect("start");
        let name = || Ok(std::thread::current().name().map(str::to_owned));
        readers.run(move |_| name()).await.expect("warm-up read");
        let mut names = std::collections::BTreeSet::new();
        for _ in 0..20 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            let got = readers
                .run(move |c| {
                    let x: i64 = c.query_row("SELECT x FROM ix.t", [], |r| r.get(0))?;
                    assert_eq!(x, 7);
                    name()
                })
                .await
                .expect("read");
            names.insert(got);
        }
        assert!(names.len() <= 2, "{names:?}");
        readers.close().await;
    }

    #[tokio::test]
    async fn a_read_that_panics_fails_alone_and_the_readers_go_on() {
        let (_dir, path, keys) = files();
        let readers = Readers::start(&path, &keys, 1).expect("start");
        let failed = readers
            .run(|_| -> rusqlite::Result<()> { panic!("a bug in a read") })
            .await;
        assert!(matches!(failed, Err(StoreError::Internal(_))), "{failed:?}");
        let x: i64 = readers
            .run(|c| c.query_row("SELECT x FROM t", [], |r| r.get(0)))
            .await
            .expect("the next read");
        assert_eq!(x, 7);
        readers.close().await;
        let closed = readers.run(|_| Ok(())).await;
        assert!(
            matches!(closed, Err(StoreError::Unavailable(_))),
            "{closed:?}"
        );
    }

    #[tokio::test]
    async fn more_reads_than_readers_all_complete() {
        let (_dir, path, keys) = files();
        let readers = Arc::new(Readers::start(&path, &keys, 2).expect("start"));
        let mut tasks = Vec::new();
        for i in 0..64i64 {
            let readers = readers.clone();
            tasks.push(tokio::spawn(async move {
                readers
                    .run(move |c| c.query_row("SELECT x + ?1 FROM t", [i], |r| r.get::<_, i64>(0)))
                    .await
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.expect("task").expect("read"), 7 + i as i64);
        }
        readers.close().await;
    }
}
