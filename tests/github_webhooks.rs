//! The `pull_request` webhook against real payload shapes (`tests/fixtures/
//! github-webhooks/`), on SQLite and Postgres: repository names in any case, ruleset-style
//! branch globs (in the webhook and in the reconciler's pull request listing), `edited`
//! with a new base, `ready_for_review`, GitHub's default form-encoded content type, and
//! what the status says and links to.

mod common;

use std::time::Duration;

use common::fake_github::{FakeGitHub, Limits};
use common::github::{WEBHOOK_SECRET, deliver, github_config, integrations, signed};
use common::*;
use firebreak::github::freeze::STATUS_CONTEXT;
use firebreak::github::webhook::sign;
use serde_json::{Value, json};

on_both!(
    a_repo_frozen_before_another_still_gets_its_status,
    repository_names_match_in_any_case,
    glob_branches_are_matched_like_ruleset_ref_names,
    double_star_globs_cross_slashes,
    edited_into_a_frozen_base_and_ready_for_review_get_the_status,
    form_encoded_deliveries_are_accepted,
    statuses_say_the_key_once_and_link_the_incident_page,
);

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/github-webhooks"
);
const PUBLIC_URL: &str = "https://fb.example";

struct Hooks {
    app: TestApp,
    gh: FakeGitHub,
}

async fn hooks(backend: Backend, repos: &str, extra: &str, server: &str) -> Hooks {
    let gh = FakeGitHub::start(Limits {
        minute: Duration::from_millis(100),
        ..Limits::default()
    })
    .await;
    let toml = format!("{}{server}", github_config(repos, "100ms", extra));
    let app = spawn_app_with(backend, test_config(&toml), integrations(&gh.url), None).await;
    Hooks { app, gh }
}

impl Hooks {
    async fn run(&self, line: &str) {
        common::github::run_as_ops(&self.app, line).await;
    }

    async fn settle(&self) {
        common::github::settle_without_failures(&self.app).await;
    }

    /// Delivers `payload` as JSON, signed, and waits for what it queued.
    async fn deliver(&self, payload: &Value) -> u16 {
        let body = serde_json::to_vec(payload).unwrap();
        let status = deliver(&self.app, "pull_request", &body, signed(&body))
            .await
            .status()
            .as_u16();
        self.settle().await;
        status
    }

    fn status(&self, repo: &str, sha: &str) -> Option<String> {
        self.gh.latest_status(repo, sha, STATUS_CONTEXT)
    }

    fn latest(&self, repo: &str, sha: &str) -> Value {
        let statuses = self.gh.statuses(repo, sha);
        let mine = statuses
            .iter()
            .rev()
            .find(|s| s["context"] == STATUS_CONTEXT);
        mine.cloned()
            .unwrap_or_else(|| panic!("no status on {sha}"))
    }
}

/// A real payload for `action`, moved to `repo` (default branch `default_branch`), with the
/// pull request's base `base` and head `sha`.
fn payload(name: &str, repo: &str, default_branch: &str, base: &str, sha: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}.json")).unwrap();
    let mut p: Value = serde_json::from_str(&text).unwrap();
    let (owner, short) = repo.split_once('/').unwrap();
    for path in [
        "/repository",
        "/pull_request/base/repo",
        "/pull_request/head/repo",
    ] {
        let r = p.pointer_mut(path).unwrap();
        r["full_name"] = json!(repo);
        r["name"] = json!(short);
        r["owner"]["login"] = json!(owner);
        r["default_branch"] = json!(default_branch);
    }
    p["pull_request"]["base"]["ref"] = json!(base);
    p["pull_request"]["base"]["label"] = json!(format!("{owner}:{base}"));
    p["pull_request"]["head"]["sha"] = json!(sha);
    p
}

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(20)
}

async fn repository_names_match_in_any_case(backend: Backend) {
    let t = hooks(backend, "\"acme/api\"", "", "").await;
    t.gh.add_repo("Acme/API", "main");
    t.run("freeze --reason Region outage").await;
    t.settle().await;
    let p = payload("pull_request.opened.0", "Acme/API", "main", "main", &sha(1));
    assert_eq!(t.deliver(&p).await, 200);
    assert_eq!(
        t.status("Acme/API", &sha(1)).as_deref(),
        Some("failure"),
        "Acme/API is the configured acme/api"
    );
    let p = payload("pull_request.opened.0", "ACME/Api", "main", "main", &sha(2));
    assert_eq!(t.deliver(&p).await, 200);
    assert_eq!(t.status("Acme/API", &sha(2)).as_deref(), Some("failure"));

    let t = hooks(backend, "\"acme/*\"", "", "").await;
    t.gh.add_repo("Acme/Web", "main");
    t.run("freeze").await;
    t.settle().await;
    let p = payload("pull_request.opened.0", "Acme/Web", "main", "main", &sha(3));
    assert_eq!(t.deliver(&p).await, 200);
    assert_eq!(
        t.status("Acme/Web", &sha(3)).as_deref(),
        Some("failure"),
        "Acme/Web is under acme/*"
    );
    let p = payload(
        "pull_request.opened.0",
        "other/api",
        "main",
        "main",
        &sha(4),
    );
    assert_eq!(t.deliver(&p).await, 200);
    assert_eq!(t.status("other/api", &sha(4)), None, "not configured");
}

async fn glob_branches_are_matched_like_ruleset_ref_names(backend: Backend) {
    let t = hooks(backend, "\"acme/api\"", "branches = [\"release/*\"]", "").await;
    t.gh.add_repo("acme/api", "main");
    t.gh.add_pull("acme/api", 1, &sha(1), "release/2.3");
    t.gh.add_pull("acme/api", 2, &sha(2), "release/2.3/x");
    t.gh.add_pull("acme/api", 3, &sha(3), "main");
    t.gh.add_pull("acme/api", 4, &sha(4), "release");
    t.run("freeze").await;
    t.settle().await;
    assert_eq!(
        t.status("acme/api", &sha(1)).as_deref(),
        Some("failure"),
        "an open pull request into release/2.3 is marked by the reconciler"
    );
    for n in [2, 3, 4] {
        assert_eq!(t.status("acme/api", &sha(n)), None, "pull request {n}");
    }
    let ruleset = t.gh.rulesets("acme/api");
    assert_eq!(
        ruleset[0]["conditions"]["ref_name"]["include"][0],
        "refs/heads/release/*"
    );

    let p = payload(
        "pull_request.opened.0",
        "acme/api",
        "main",
        "release/2.4",
        &sha(5),
    );
    assert_eq!(t.deliver(&p).await, 200);
    assert_eq!(t.status("acme/api", &sha(5)).as_deref(), Some("failure"));
    for (base, n) in [("release/2.4/y", 6), ("main", 7), ("releases/2.4", 8)] {
        let p = payload("pull_request.opened.0", "acme/api", "main", base, &sha(n));
        assert_eq!(t.deliver(&p).await, 200);
        assert_eq!(t.status("acme/api", &sha(n)), None, "{base}");
    }

    t.run("unfreeze").await;
    t.settle().await;
    for n in [1, 5] {
        assert_eq!(t.status("acme/api", &sha(n)).as_deref(), Some("success"));
    }
}

async fn double_star_globs_cross_slashes(backend: Backend) {
    let extra = "branches = [\"release/**/*\", \"main\"]";
    let t = hooks(backend, "\"acme/api\"", extra, "").await;
    t.gh.add_repo("acme/api", "main");
    t.gh.add_pull("acme/api", 1, &sha(1), "release/2.3");
    t.gh.add_pull("acme/api", 2, &sha(2), "release/2.3/x");
    t.gh.add_pull("acme/api", 3, &sha(3), "main");
    t.gh.add_pull("acme/api", 4, &sha(4), "feature/x");
    t.run("freeze").await;
    t.settle().await;
    for n in [1, 2, 3] {
        assert_eq!(
            t.status("acme/api", &sha(n)).as_deref(),
            Some("failure"),
            "pull request {n}"
        );
    }
    assert_eq!(t.status("acme/api", &sha(4)), None);
    let p = payload(
        "pull_request.opened.0",
        "acme/api",
        "main",
        "release/3/rc/1",
        &sha(5),
    );
    assert_eq!(t.deliver(&p).await, 200);
    assert_eq!(t.status("acme/api", &sha(5)).as_deref(), Some("failure"));
}

async fn edited_into_a_frozen_base_and_ready_for_review_get_the_status(backend: Backend) {
    let repo = "Codertocat/Hello-World";
    let t = hooks(backend, "\"Codertocat/Hello-World\"", "", "").await;
    t.gh.add_repo(repo, "master");
    t.run("freeze").await;
    t.settle().await;

    // Retargeted from `develop` into the frozen default branch.
    let mut p = payload("pull_request.opened.0", repo, "master", "master", &sha(1));
    p["action"] = json!("edited");
    p["changes"] = json!({ "base": {
        "ref": { "from": "develop" },
        "sha": { "from": "6dcb09b5b57875f334f61aebed695e2e4193db5e" }
    }});
    assert_eq!(t.deliver(&p).await, 200);
    assert_eq!(t.status(repo, &sha(1)).as_deref(), Some("failure"));

    // A title edit changes nothing.
    let mut p = payload("pull_request.opened.0", repo, "master", "master", &sha(2));
    p["action"] = json!("edited");
    p["changes"] = json!({ "title": { "from": "Update the README" } });
    assert_eq!(t.deliver(&p).await, 202);
    assert_eq!(t.status(repo, &sha(2)), None);

    for (name, n) in [
        ("pull_request.ready_for_review.15", 3),
        ("pull_request.ready_for_review.16", 4),
    ] {
        let p = payload(name, repo, "master", "master", &sha(n));
        assert_eq!(t.deliver(&p).await, 200, "{name}");
        assert_eq!(
            t.status(repo, &sha(n)).as_deref(),
            Some("failure"),
            "{name}"
        );
    }
    for name in [
        "pull_request.converted_to_draft.6",
        "pull_request.converted_to_draft.7",
    ] {
        let p = payload(name, repo, "master", "master", &sha(5));
        assert_eq!(t.deliver(&p).await, 202, "{name}");
        assert_eq!(t.status(repo, &sha(5)), None, "{name}");
    }

    // Retargeted away from the frozen branch: the failure firebreak put there is lifted.
    let mut p = payload("pull_request.opened.0", repo, "master", "develop", &sha(1));
    p["action"] = json!("edited");
    p["changes"] = json!({ "base": {
        "ref": { "from": "master" },
        "sha": { "from": "6dcb09b5b57875f334f61aebed695e2e4193db5e" }
    }});
    assert_eq!(t.deliver(&p).await, 200);
    assert_eq!(t.status(repo, &sha(1)).as_deref(), Some("success"));
}

async fn form_encoded_deliveries_are_accepted(backend: Backend) {
    let repo = "Codertocat/Hello-World";
    let t = hooks(backend, "\"Codertocat/Hello-World\"", "", "").await;
    t.gh.add_repo(repo, "master");
    t.run("freeze").await;
    t.settle().await;
    let post = |body: Vec<u8>, signature: String| {
        reqwest::Client::new()
            .post(t.app.url("/github/webhook"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-github-event", "pull_request")
            .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
    };
    // GitHub's default content type: `payload=<urlencoded JSON>`, signed as sent.
    let json =
        std::fs::read_to_string(format!("{FIXTURES}/pull_request.synchronize.22.json")).unwrap();
    let form = serde_urlencoded::to_string([("payload", json.as_str())]).unwrap();
    let resp = post(
        form.clone().into_bytes(),
        sign(WEBHOOK_SECRET, form.as_bytes()),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    t.settle().await;
    let head = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
    assert_eq!(t.status(repo, head).as_deref(), Some("failure"));

    // The signature is over the body as sent, not over the JSON inside it.
    let p = payload("pull_request.opened.0", repo, "master", "master", &sha(1));
    let inner = serde_json::to_string(&p).unwrap();
    let form = serde_urlencoded::to_string([("payload", inner.as_str())]).unwrap();
    let resp = post(form.into_bytes(), sign(WEBHOOK_SECRET, inner.as_bytes()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = post(b"other=1".to_vec(), sign(WEBHOOK_SECRET, b"other=1"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "a form without payload");
    t.settle().await;
    assert_eq!(t.status(repo, &sha(1)), None);
}

async fn statuses_say_the_key_once_and_link_the_incident_page(backend: Backend) {
    let server = format!("[server]\npublic_url = \"{PUBLIC_URL}/\"\n");
    let t = hooks(backend, "\"acme/api\"", "", &server).await;
    t.gh.add_repo("acme/api", "main");
    t.gh.add_pull("acme/api", 1, &sha(1), "main");
    t.run("declare sev1 Payments down").await;
    t.settle().await;
    let page = format!("{PUBLIC_URL}/incidents/INC-1/postmortem.html");

    let by_reconcile = t.latest("acme/api", &sha(1));
    let p = payload("pull_request.opened.0", "acme/api", "main", "main", &sha(2));
    assert_eq!(t.deliver(&p).await, 200);
    let by_webhook = t.latest("acme/api", &sha(2));
    for status in [by_reconcile, by_webhook] {
        assert_eq!(status["state"], "failure");
        let description = status["description"].as_str().unwrap();
        assert!(
            description.starts_with("INC-1 [SEV1]") && description.contains("Payments down"),
            "{description}"
        );
        assert_eq!(description.matches("INC-1").count(), 1, "{description}");
        assert!(description.chars().count() <= 140);
        assert_eq!(status["target_url"], page.as_str());
    }
    let served = t.app.get("/incidents/INC-1/postmortem.html").await.unwrap();
    assert_eq!(served.status(), 200, "the linked page exists");

    // Without a public URL there is nothing to link.
    let t = hooks(backend, "\"acme/api\"", "", "").await;
    t.gh.add_repo("acme/api", "main");
    t.gh.add_pull("acme/api", 1, &sha(1), "main");
    t.run("declare sev1 Payments down").await;
    t.settle().await;
    let status = t.latest("acme/api", &sha(1));
    assert_eq!(status["target_url"], Value::Null);
    assert_eq!(
        status["description"]
            .as_str()
            .unwrap()
            .matches("INC-1")
            .count(),
        1
    );
}

/// Two repositories frozen one after the other: each freeze takes a newer generation, and
/// a pull request on the first one (the older generation) still gets its `failure`.
async fn a_repo_frozen_before_another_still_gets_its_status(backend: Backend) {
    let t = hooks(backend, "\"acme/api\", \"acme/web\"", "", "").await;
    t.gh.add_repo("acme/api", "main");
    t.gh.add_repo("acme/web", "main");
    t.run("freeze acme/api --reason first").await;
    t.run("freeze acme/web --reason second").await;
    t.settle().await;
    for (repo, n) in [("acme/api", 1), ("acme/web", 2)] {
        let p = payload("pull_request.opened.0", repo, "main", "main", &sha(n));
        assert_eq!(t.deliver(&p).await, 200);
        assert_eq!(
            t.status(repo, &sha(n)).as_deref(),
            Some("failure"),
            "{repo} is frozen whatever was frozen after it"
        );
    }
}
