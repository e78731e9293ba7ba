//! Driving the built `firebreak` binary as a user would: a config file in a temp dir, the
//! test's database in the environment, commands run as processes.

use std::process::{Command, Output};

use serde_json::Value;

pub use super::Backend;
use super::TestDb;

pub struct Cli {
    pub db: TestDb,
    pub dir: tempfile::TempDir,
}

impl Cli {
    pub async fn new(backend: Backend, config: &str) -> Self {
        let db = TestDb::new(backend).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("firebreak.toml"), config).unwrap();
        Self { db, dir }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_firebreak"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("FIREBREAK_DATABASE_URL", &self.db.url)
            .env("FIREBREAK_CONFIG", self.dir.path().join("firebreak.toml"))
            .env("USER", "carol")
            .env_remove("RUST_LOG");
        cmd
    }

    /// `firebreak serve` on a fresh port with Slack's secrets (the test signing secret) and
    /// its Web API at `slack_api_url`: the process, and its base URL once it answers.
    pub async fn serve_with_slack(&self, slack_api_url: &str) -> (Serving, String) {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let serving = Serving(
            self.command(&["serve"])
                .env("FIREBREAK_LISTEN", format!("127.0.0.1:{port}"))
                .env("SLACK_SIGNING_SECRET", super::slack::SIGNING_SECRET)
                .env("SLACK_BOT_TOKEN", "xoxb-serve")
                .env("SLACK_API_URL", slack_api_url)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        assert!(
            answers_health(&reqwest::Client::new(), &base).await,
            "serve answers"
        );
        (serving, base)
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub async fn list(&self) -> Value {
        serde_json::from_str(&self.ok(&["incident", "list", "--json"]).await).unwrap()
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn terminate(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// Whether a `serve` at `base` (`http://127.0.0.1:PORT`) answers `/healthz` within a few
/// seconds of being started.
pub async fn answers_health(http: &reqwest::Client, base: &str) -> bool {
    super::eventually(20, || async {
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await
}

/// A `firebreak serve` process, killed when the test ends (or panics).
pub struct Serving(pub std::process::Child);

impl Serving {
    /// Asks `serve` to stop (SIGTERM) and waits for it: its exit status and what it printed
    /// (when its output was piped).
    pub fn stop(&mut self) -> Output {
        terminate(&mut self.0);
        let placeholder = Command::new("true").spawn().unwrap();
        std::mem::replace(&mut self.0, placeholder)
            .wait_with_output()
            .unwrap()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
