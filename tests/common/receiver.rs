//! A webhook receiver on a real port that records every POST (its `Idempotency-Key`, its
//! text and when it arrived) and can be switched down (503) and up again, or made slow, to
//! play an outage. Any other request (the runbook check's GET) is counted and answered 405,
//! as Slack-style webhooks do.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// One POST as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub key: Option<String>,
    pub text: String,
    pub at: Instant,
    /// Whether it was answered 200 (the receiver was up).
    pub accepted: bool,
}

#[derive(Default)]
struct Inner {
    down: AtomicBool,
    delay_ms: AtomicU64,
    log: Mutex<Vec<Received>>,
    probes: AtomicUsize,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/{*path}", post(receive).fallback(probed))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.inner
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn log(&self) -> Vec<Received> {
        self.inner.log.lock().unwrap().clone()
    }

    /// The POSTs answered 200.
    pub fn accepted(&self) -> Vec<Received> {
        self.log().into_iter().filter(|r| r.accepted).collect()
    }

    /// How many requests other than POSTs arrived (the runbook check's GETs).
    pub fn probes(&self) -> usize {
        self.inner.probes.load(Ordering::SeqCst)
    }

    /// Distinct idempotency keys among accepted POSTs.
    pub fn distinct_keys(&self) -> std::collections::BTreeSet<String> {
        self.accepted().into_iter().filter_map(|r| r.key).collect()
    }
}

async fn probed(State(inner): State<Arc<Inner>>) -> StatusCode {
    inner.probes.fetch_add(1, Ordering::SeqCst);
    StatusCode::METHOD_NOT_ALLOWED
}

/// Logs the POST when it arrives; it counts as accepted only once answered 200 (a caller
/// that hangs up during a delay never got an answer).
async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: String) -> StatusCode {
    let text = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["text"].as_str().map(str::to_string))
        .unwrap_or(body);
    let index = {
        let mut log = inner.log.lock().unwrap();
        log.push(Received {
            key: headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            text,
            at: Instant::now(),
            accepted: false,
        });
        log.len() - 1
    };
    let delay = inner.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let accepted = !inner.down.load(Ordering::SeqCst);
    if accepted {
        let mut log = inner.log.lock().unwrap();
        log[index].accepted = true;
        log[index].at = Instant::now();
    }
    if accepted {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}
