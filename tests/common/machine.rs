//! Calling firebreak's API for machines as a token holder: an app serving on a random port
//! on its own database (its whole router, behind the token guard), real API tokens with a
//! name and scopes, and a restart (a new `App` on the same database) for what must survive
//! one.

use std::net::SocketAddr;

use firebreak::app::App;
use firebreak::config::Config;
use firebreak::incident::{IncidentNumber, TimelineEntry};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Backend, TestDb, create_token, known_people};

/// An app serving the HTTP API, called as one token.
pub struct MachineApi {
    pub db: TestDb,
    pub app: App,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    http: reqwest::Client,
    /// The token requests are sent with.
    token: String,
}

/// The answer to one request.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub replayed: bool,
    /// `Idempotent-Answer-Lost`: the first answer was lost; this is the incident as it is now.
    pub answer_lost: bool,
    pub body: Value,
}

impl Answer {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

impl MachineApi {
    /// A fresh database and an app on it, called with a new token `name` with `scopes`.
    pub async fn start(backend: Backend, config: Config, name: &str, scopes: &[&str]) -> Self {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        known_people(&store).await;
        let token = create_token(&store, name, &scopes.join(",")).await;
        store.close().await;
        Self::serve(db, config, token).await
    }

    /// Stops this app and starts a new one on the same database (what a restart keeps).
    pub async fn restart(self, config: Config) -> Self {
        self.shutdown.cancel();
        self.app.store.close().await;
        Self::serve(self.db, config, self.token).await
    }

    /// The same app, called with another new token.
    pub async fn as_caller(&self, name: &str, scopes: &[&str]) -> Caller<'_> {
        let token = create_token(&self.app.store, name, &scopes.join(",")).await;
        Caller { api: self, token }
    }

    async fn serve(db: TestDb, config: Config, token: String) -> Self {
        let store = db.store().await;
        let app = App::with_store(config, store, Default::default()).expect("app builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let router = app.router();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        Self {
            db,
            app,
            addr,
            shutdown,
            http: reqwest::Client::new(),
            token,
        }
    }

    pub async fn post(&self, path: &str, body: &Value, key: Option<&str>) -> Answer {
        self.send(&self.token, path, body.to_string(), key).await
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> Answer {
        self.send(&self.token, path, body.to_string(), None).await
    }

    /// `body` exactly as given, with a key.
    pub async fn post_text(&self, path: &str, body: &str, key: Option<&str>) -> Answer {
        self.send(&self.token, path, body.to_string(), key).await
    }

    /// An empty body without a `Content-Type`, as `curl -X POST` sends.
    pub async fn post_empty(&self, path: &str) -> Answer {
        let response = self
            .http
            .post(format!("http://{}{path}", self.addr))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        answer(response).await
    }

    /// A request with no token at all.
    pub async fn post_anonymous(&self, path: &str, body: &Value) -> Answer {
        let response = self
            .http
            .post(format!("http://{}{path}", self.addr))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request");
        answer(response).await
    }

    async fn send(&self, token: &str, path: &str, body: String, key: Option<&str>) -> Answer {
        let mut request = self
            .http
            .post(format!("http://{}{path}", self.addr))
            .header("content-type", "application/json")
            .bearer_auth(token)
            .body(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        answer(request.send().await.expect("request")).await
    }

    /// How many incidents exist.
    pub async fn incident_count(&self) -> usize {
        self.app
            .store
            .list_incidents(false, 1000)
            .await
            .unwrap()
            .len()
    }

    pub async fn timeline(&self, n: i64) -> Vec<TimelineEntry> {
        let inc = self
            .app
            .store
            .incident_by_number(IncidentNumber(n))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("INC-{n} exists"));
        self.app.store.timeline(&inc.id).await.unwrap()
    }
}

/// Another token calling the same app.
pub struct Caller<'a> {
    api: &'a MachineApi,
    token: String,
}

impl Caller<'_> {
    pub async fn post(&self, path: &str, body: &Value, key: Option<&str>) -> Answer {
        self.api
            .send(&self.token, path, body.to_string(), key)
            .await
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let replayed = response.headers().contains_key("idempotent-replayed");
    let answer_lost = response.headers().contains_key("idempotent-answer-lost");
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        replayed,
        answer_lost,
        body,
    }
}
