//! Test helpers in the zero-to-production style: a fresh database per test (a temp SQLite
//! file, or a new Postgres database), an app on a random port, and a [`on_both!`] macro
//! that runs the same test body on both backends.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use firebreak::app::App;
use firebreak::config::Config;
use firebreak::incident::clock::ManualClock;
use firebreak::incident::{Actor, Command, Outcome, ParseOptions, ServiceError, Source, command};
use firebreak::store::Store;
use sqlx::Connection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The Postgres server tests create their databases on. `scripts/test` sets it when it had
/// to start its own server.
pub fn postgres_admin_url() -> String {
    std::env::var("FIREBREAK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test. SQLite files vanish with the temp dir; Postgres
/// databases are dropped on a best-effort basis when the test ends.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("firebreak.db").display());
                Self {
                    url,
                    backend,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("firebreak_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "Postgres at {admin} is needed for the Postgres half of the suite: {e}"
                        )
                    });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let base = admin
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_string())
                    .unwrap_or(admin);
                Self {
                    url: format!("{base}/{name}"),
                    backend,
                    _dir: None,
                }
            }
        }
    }

    pub async fn store(&self) -> Store {
        Store::open(&self.url).await.expect("open store")
    }
}

/// A config with fast retries, suitable for tests; `extra` is appended TOML.
pub fn test_config(extra: &str) -> Config {
    let base = "[effects]\nbase_backoff = \"20ms\"\nmax_backoff = \"200ms\"\npoll_interval = \"20ms\"\nlease = \"5s\"\nattempt_timeout = \"4s\"\nbreaker_threshold = 50\ncli_wait = \"5s\"\n";
    Config::parse(&format!("{base}{extra}")).expect("test config parses")
}

/// TOML for one webhook pointing at `url`.
pub fn webhook(name: &str, url: &str, min_severity: &str) -> String {
    format!(
        "[[notify.webhook]]\nname = \"{name}\"\nurl = \"{url}\"\nmin_severity = \"{min_severity}\"\n"
    )
}

/// An app with its own database, not serving (for service-level tests).
pub struct TestService {
    pub db: TestDb,
    pub app: App,
    pub clock: ManualClock,
}

pub async fn service(backend: Backend, config: Config) -> TestService {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    known_people(&store).await;
    let mut app = App::with_store(config, store, Default::default()).expect("app builds");
    let clock = ManualClock::starting_at(chrono::Utc::now());
    app.service = app.service.clone().with_clock(Arc::new(clock.clone()));
    TestService { db, app, clock }
}

impl TestService {
    /// Parses a chat line and applies it as `actor`.
    pub async fn run_as(&self, actor: &Actor, line: &str) -> Result<Outcome, ServiceError> {
        let cmd: Command =
            command::parse_line(line, ParseOptions::default()).map_err(ServiceError::User)?;
        self.app.service.apply(cmd, actor).await
    }

    pub async fn run(&self, line: &str) -> Result<Outcome, ServiceError> {
        self.run_as(&alice(), line).await
    }

    pub async fn ok(&self, line: &str) -> Outcome {
        self.run(line)
            .await
            .unwrap_or_else(|e| panic!("`{line}` failed: {e}"))
    }
}

pub fn alice() -> Actor {
    Actor::new(Source::Slack, "U_ALICE", "alice")
}

/// The people tests act as, with display names in the people cache (as the Slack edge
/// leaves them), so documents name them.
pub async fn known_people(store: &Store) {
    let alice = firebreak::incident::Identity::slack("U_ALICE").unwrap();
    store
        .hint_person(&alice, "alice")
        .await
        .expect("seed the people cache");
}

/// An app serving HTTP on a random port with its worker running.
pub struct TestApp {
    pub db: TestDb,
    pub app: App,
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<anyhow::Result<()>>,
    /// An API token with every scope, for reading the HTTP API ([`TestApp::get`]).
    pub token: String,
}

/// A client that sends `Authorization: Bearer <token>` with every request.
pub fn bearer_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Stores a new API token called `name` with `scopes` (`read,metrics`) and returns it.
pub async fn create_token(store: &Store, name: &str, scopes: &str) -> String {
    let token = firebreak::auth::new_token();
    let hash = firebreak::auth::token_hash(&token);
    let scopes = firebreak::auth::Scopes::parse(scopes).expect("scopes parse");
    let new = firebreak::store::NewToken {
        name,
        hash: &hash,
        scopes: &scopes,
        created_by: "cli:tests",
        at: chrono::Utc::now(),
    };
    assert!(store.create_token(&new).await.expect("store a token"));
    token
}

pub async fn spawn_app(backend: Backend, config: Config) -> TestApp {
    spawn_app_with(backend, config, Default::default(), None).await
}

/// [`spawn_app`] with integrations (Slack pointed at a fake) and optionally a manual clock.
pub async fn spawn_app_with(
    backend: Backend,
    config: Config,
    integrations: firebreak::app::Integrations,
    clock: Option<ManualClock>,
) -> TestApp {
    if std::env::var("RUST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
    }
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    known_people(&store).await;
    let token = create_token(&store, "tests", "read,declare,update,metrics").await;
    let mut app = App::with_store(config, store, integrations).expect("app builds");
    if let Some(clock) = clock {
        app = app.with_clock(Arc::new(clock));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.clone().serve(listener, shutdown.clone()));
    TestApp {
        db,
        app,
        addr,
        shutdown,
        handle,
        token,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A client that sends the app's all-scopes API token with every request.
    pub fn client(&self) -> reqwest::Client {
        bearer_client(&self.token)
    }

    /// `GET path` with the app's all-scopes API token.
    pub async fn get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.client().get(self.url(path)).send().await
    }

    /// Parses a chat line and applies it as alice; panics if it fails.
    pub async fn ok(&self, line: &str) -> Outcome {
        let cmd = command::parse_line(line, ParseOptions::default())
            .unwrap_or_else(|e| panic!("`{line}` does not parse: {e}"));
        self.app
            .service
            .apply(cmd, &alice())
            .await
            .unwrap_or_else(|e| panic!("`{line}` failed: {e}"))
    }
}

/// Polls `check` until it returns true or `secs` pass.
pub async fn eventually<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    false
}

/// Incident `INC-n` and its timeline, which most assertions start from.
pub async fn incident_timeline(
    store: &Store,
    n: i64,
) -> (
    firebreak::incident::Incident,
    Vec<firebreak::incident::TimelineEntry>,
) {
    let inc = store
        .incident_by_number(firebreak::incident::IncidentNumber(n))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("INC-{n} exists"));
    let timeline = store.timeline(&inc.id).await.unwrap();
    (inc, timeline)
}

/// Waits until the effects queue has nothing pending or running; `false` after `secs`.
pub async fn queue_idle(store: &Store, secs: u64) -> bool {
    eventually(secs, || {
        let store = store.clone();
        async move {
            let c = store.effect_counts(chrono::Utc::now()).await.unwrap();
            c.pending == 0 && c.running == 0
        }
    })
    .await
}

/// Generates `mod NAME { sqlite(), postgres() }` test pairs that call `NAME(Backend)`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(Backend::Postgres).await
            }
        }
    )*};
}
pub mod discord;
pub mod fake_discord;

/// A validating mock's verdict on a request: its status, and the `sl-violations` header
/// Prism sets when the request breaks the API's description (empty when it does not).
pub fn mock_verdict(resp: &reqwest::Response) -> (u16, String) {
    let violations = resp
        .headers()
        .get("sl-violations")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    (resp.status().as_u16(), violations)
}
pub mod fake_discord_gateway;
pub mod fake_github;
pub mod fake_slack;
pub mod github;
pub mod machine;
pub mod process;
pub mod receiver;
pub mod slack;
pub mod web;
