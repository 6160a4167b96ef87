//! A handler of messages as the consumers call it (stream events, queue jobs): a function
//! pointer written by an attribute, or a shared closure; and running one to its outcome, with
//! a panic caught as an error and its claim renewed while it runs.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;

/// The future a handler returns, boxed; its error's text is what a dead letter records.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A handler of messages `T` with their context `C` (a delivery, a job).
pub(crate) enum Handler<T, C> {
    /// An attribute's wrapper of the function.
    Fn(fn(T, C) -> HandlerFuture),
    Shared(Arc<dyn Fn(T, C) -> HandlerFuture + Send + Sync>),
}

impl<T, C> Clone for Handler<T, C> {
    fn clone(&self) -> Self {
        match self {
            Handler::Fn(f) => Handler::Fn(*f),
            Handler::Shared(f) => Handler::Shared(Arc::clone(f)),
        }
    }
}

impl<T: 'static, C: 'static> Handler<T, C> {
    /// A handler from a closure returning any future of `Result<(), E>` with `E: Display`.
    pub(crate) fn from_fn<F, Fut, E>(handler: F) -> Self
    where
        F: Fn(T, C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        Handler::Shared(Arc::new(move |message, context| -> HandlerFuture {
            let run = handler(message, context);
            Box::pin(async move { run.await.map_err(|e| e.to_string()) })
        }))
    }
}

impl<T, C> Handler<T, C> {
    pub(crate) fn call(&self, message: T, context: C) -> HandlerFuture {
        match self {
            Handler::Fn(f) => f(message, context),
            Handler::Shared(f) => f(message, context),
        }
    }
}

/// Runs `call` to its outcome (a panic becomes an error saying so), calling `renew` every
/// `every` while it runs. The outcome is answered as soon as the handler ends, a renewal in
/// flight then abandoned.
pub(crate) async fn run_renewing<R: Future<Output = ()>>(
    call: HandlerFuture,
    every: Duration,
    mut renew: impl FnMut() -> R,
) -> Result<(), String> {
    let call = AssertUnwindSafe(call).catch_unwind();
    let renewing = async {
        loop {
            tokio::time::sleep(every).await;
            renew().await;
        }
    };
    tokio::select! {
        result = call => match result {
            Ok(result) => result,
            Err(panic) => Err(format!("the handler panicked: {}", panic_message(&*panic))),
        },
        never = renewing => never,
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// `<host>-<process id>-<random>`: a consumer's or worker's name, unique per start, telling
/// whose it is.
pub(crate) fn worker_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(64)
        .collect();
    let host = if host.is_empty() { "host".into() } else { host };
    format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// Ctrl-C, or `SIGTERM` on Unix (what container runtimes send).
pub(crate) async fn stop_signal() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Sleeps `wait` (jittered); `true` when `stop` was set before or meanwhile.
pub(crate) async fn pause(stop: &tokio::sync::watch::Sender<bool>, wait: Duration) -> bool {
    let mut stop = stop.subscribe();
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(crate::util::jittered(wait)) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outcome is answered when the handler ends, though a renewal is in flight and
    /// never ends; renewals run while the handler does.
    #[tokio::test(start_paused = true)]
    async fn the_outcome_does_not_wait_for_a_renewal_in_flight() {
        let renewals = std::sync::atomic::AtomicU32::new(0);
        let call: HandlerFuture = Box::pin(async {
            tokio::time::sleep(Duration::from_millis(35)).await;
            Ok(())
        });
        let started = tokio::time::Instant::now();
        let run = run_renewing(call, Duration::from_millis(10), || {
            renewals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            std::future::pending::<()>()
        });
        // Fails (rather than hangs) if the outcome waited for the renewal.
        let outcome = tokio::time::timeout(Duration::from_secs(1), run)
            .await
            .expect("answered without the renewal");
        assert_eq!(outcome, Ok(()));
        assert_eq!(started.elapsed(), Duration::from_millis(35));
        assert_eq!(renewals.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_panic_is_an_error_saying_so() {
        let call: HandlerFuture = Box::pin(async { panic!("out of ink") });
        let outcome = run_renewing(call, Duration::from_secs(1), || async {}).await;
        assert_eq!(outcome, Err("the handler panicked: out of ink".to_owned()));
    }
}
