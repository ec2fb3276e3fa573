//! The thread-and-runtime harness every receiver runs on.
//!
//! [`ServerHandle::spawn`] starts a named OS thread that owns a tokio runtime, binds a TCP
//! listener on `127.0.0.1` (port 0 picks a free one) and runs the server future there. The
//! handle reports the bound address, stops the server when dropped, and re-raises a panic
//! of the server thread in the dropping thread (unless that thread is already panicking), so
//! a receiver bug fails the test that used it.

use std::future::Future;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

/// A running server: its address, and the means to stop it.
///
/// Dropping the handle signals the server to stop and joins its thread.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

/// A future that resolves when the server is asked to stop; given to the server body.
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// Resolves once [`ServerHandle`] was dropped or [`ServerHandle::stop`] was called.
    pub async fn stopped(&mut self) {
        while !*self.0.borrow() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }

    /// Whether stop was requested (non-blocking).
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }
}

impl ServerHandle {
    /// Binds `127.0.0.1:port` (0 = any free port), then runs `body(listener, stop)` on a new
    /// thread named `name` with a multi-thread tokio runtime of 2 workers.
    ///
    /// # Errors
    /// The bind error, or an error building the runtime or spawning the thread.
    pub fn spawn<F, Fut>(name: &str, port: u16, body: F) -> std::io::Result<ServerHandle>
    where
        F: FnOnce(TcpListener, StopSignal) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("{name}-rt"))
            .enable_all()
            .build()?;
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(std_listener) {
                        Ok(listener) => body(listener, StopSignal(rx)).await,
                        Err(e) => panic!("cannot register listener with tokio: {e}"),
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(ServerHandle {
            addr,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// The address the server listens on (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Asks the server to stop and waits for its thread (what `Drop` does).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
        if let Some(thread) = self.thread.take()
            && let Err(panic) = thread.join()
            && !std::thread::panicking()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Polls `cond` every 5 ms until it returns true or `timeout` passes; returns the last result.
///
/// This is how tests wait for a receiver (never a bare `sleep`): the deadline bounds the test,
/// and the test then asserts exact counts.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
