//! The operations pages: `/freezes` (wanted and actual per target, holds, exemptions, errors,
//! GitHub headroom) against the fake GitHub with one bad repository among several, and
//! `/effects` with its retry form: CSRF, who may retry, double submits and unknown ids, and
//! hostile text escaped. Last, the built binary serving both pages to a signed-in browser.
//! On both databases.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::fake_github::{FakeGitHub, Limits};
use common::github::{github_config, integrations, run_as_ops};
use common::web::{browser, location};
use common::*;
use firebreak::effects::EffectState;
use reqwest::{Response, StatusCode};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

on_both!(
    the_freezes_page_shows_holds_and_the_one_failing_target,
    the_effects_page_lists_a_failed_effect_escaped,
    retrying_needs_csrf_and_the_unfreeze_all_permission,
    a_retry_queues_the_effect_again_once,
    the_served_binary_shows_both_pages_and_retries,
    a_thousand_targets_render_with_the_bad_one_first,
);

/// Signs in at `base` with `token`; the `Cookie` header value for the session.
async fn session_at(base: &str, token: &str) -> String {
    let resp = browser()
        .post(format!("{base}/signin"))
        .form(&[("token", token), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

async fn page_at(base: &str, path: &str, cookie: &str) -> String {
    let resp = browser()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.text().await.unwrap()
}

/// The text of the element `selector` picks on `page`, whitespace squeezed.
fn text_of(page: &str, selector: &str) -> String {
    let html = scraper::Html::parse_document(page);
    let sel = scraper::Selector::parse(selector).unwrap();
    let el = html
        .select(&sel)
        .next()
        .unwrap_or_else(|| panic!("nothing matches {selector}: {page}"));
    el.text()
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The retry form's CSRF token for effect `id`, if the page offers one.
fn retry_csrf(page: &str, id: i64) -> Option<String> {
    let html = scraper::Html::parse_document(page);
    let sel = format!("form[action='/effects/{id}/retry'] input[name=csrf]");
    let sel = scraper::Selector::parse(&sel).unwrap();
    let input = html.select(&sel).next()?;
    Some(input.value().attr("value").unwrap().to_string())
}

/// The sign-out form's CSRF token: every signed-in page has it.
fn session_csrf(page: &str) -> String {
    let html = scraper::Html::parse_document(page);
    let sel = scraper::Selector::parse("form[action='/signout'] input[name=csrf]").unwrap();
    let input = html.select(&sel).next().expect("a sign-out form");
    input.value().attr("value").unwrap().to_string()
}

async fn post_retry(base: &str, id: &str, cookie: &str, csrf: Option<&str>) -> Response {
    let form: Vec<(&str, &str)> = csrf.map(|c| vec![("csrf", c)]).unwrap_or_default();
    browser()
        .post(format!("{base}/effects/{id}/retry"))
        .header("cookie", cookie)
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn the_freezes_page_shows_holds_and_the_one_failing_target(backend: Backend) {
    let gh = FakeGitHub::start(Limits {
        minute: Duration::from_millis(100),
        ..Limits::default()
    })
    .await;
    let good = ["acme/api", "acme/web", "acme/jobs", "acme/docs"];
    for repo in good {
        gh.add_repo(repo, "main");
    }
    // acme/gone is configured but GitHub does not know it: a 404, permanently.
    let repos = "\"acme/api\", \"acme/web\", \"acme/jobs\", \"acme/docs\", \"acme/gone\"";
    let config = test_config(&github_config(repos, "100ms", ""));
    let t = spawn_app_with(backend, config, integrations(&gh.url), None).await;
    let reader = create_token(&t.app.store, "reader", "read").await;
    let cookie = session_at(&t.url(""), &reader).await;

    let before = page_at(&t.url(""), "/freezes", &cookie).await;
    assert!(before.contains("No merge freeze is wanted."), "{before}");
    assert!(before.contains("No scope is frozen."), "{before}");

    // SEV1 freezes every configured repository, held by the incident; ops holds acme/api too.
    t.ok("declare sev1 Checkout <b>down</b>").await;
    run_as_ops(
        &t,
        "freeze acme/api --reason <script>alert(1)</script> release",
    )
    .await;
    assert!(queue_idle(&t.app.store, 60).await, "effects settle");
    // A pull request let through the freeze is shown on its repository, with how it ended
    // (here GitHub refused the merge: the fake has no bypass actor set up).
    gh.add_pull("acme/web", 7, &"a".repeat(40), "main");
    run_as_ops(&t, "freeze exempt acme/web#7 --reason <i>hotfix</i>").await;
    assert!(queue_idle(&t.app.store, 60).await, "the exemption settles");

    let page = page_at(&t.url(""), "/freezes", &cookie).await;
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<b>down"), "{page}");
    assert!(page.contains("name=\"viewport\""));
    let api = text_of(&page, "section[id='target-acme/api']");
    for part in [
        "Wanted frozen",
        "Actual active (blocks merges)",
        "Held by INC-1 (SEV1 Checkout <b>down</b>); ops",
    ] {
        assert!(api.contains(part), "{part}: {api}");
    }
    assert!(
        !api.contains("Failing") && !api.contains("Retrying"),
        "{api}"
    );
    for repo in good {
        let card = text_of(&page, &format!("section[id='target-{repo}']"));
        assert!(card.contains("(blocks merges)"), "{repo}: {card}");
        assert!(!card.contains("Failing"), "{repo}: {card}");
    }
    let web = text_of(&page, "section[id='target-acme/web']");
    assert!(
        web.contains(
            "Exemptions: #7 not merged, allowed by cli:ops: <i>hotfix</i> — acme/web#7 was exempted but not merged"
        ),
        "{web}"
    );
    assert!(!page.contains("<i>hotfix"), "{page}");
    let gone = text_of(&page, "section[id='target-acme/gone']");
    assert!(gone.contains("Last read never"), "{gone}");
    assert!(
        gone.contains("Failing (permanent): GitHub answered HTTP 404"),
        "{gone}"
    );
    assert!(gone.contains("404"), "{gone}");
    // The failing target comes first, so it is seen on a phone without scrolling past the
    // healthy ones.
    let first = page.find("id=\"target-acme/gone\"").unwrap();
    assert!(first < page.find("id=\"target-acme/api\"").unwrap());
    // The summary is the one `freeze status` gives.
    let summary = t.ok("freeze status").await.reply.text;
    let first_line = summary.lines().next().unwrap();
    assert!(first_line.contains("Failing: acme/gone"), "{summary}");
    // The hold with its reason, escaped, and the incident's hold linked to it.
    assert!(
        page.contains("<li>Held by ops: &#60;script&#62;alert(1)&#60;/script&#62; release"),
        "{page}"
    );
    assert!(page.contains("href=\"/incidents/INC-1\""), "{page}");
    assert!(page.contains("Frozen since"), "{page}");
    // GitHub's headroom, as the fake answered it.
    let rate = text_of(&page, "p.rate");
    assert!(
        rate.contains("requests left until the limit resets at"),
        "{rate}"
    );
    // The nav links to both pages.
    assert!(page.contains("href=\"/freezes\"") && page.contains("href=\"/effects\""));
}

/// An app with a webhook named with markup that answers 404 once (a permanent failure),
/// then 200, and one that is down for an hour; `[permissions] unfreeze_all` lists only the
/// token `ops`. INC-1 is declared: its first notice has failed, the other waits. Returns
/// the failed effect's id.
async fn failed_notice(backend: Backend) -> (TestApp, MockServer, i64) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(404))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    // A second webhook that is down and asks for an hour: its notice stays pending.
    Mock::given(method("POST"))
        .and(path("/slow"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "3600"))
        .mount(&server)
        .await;
    let config = test_config(&format!(
        "{}{}[permissions]\nunfreeze_all = [\"api:ops\"]\n",
        webhook(
            "<script>alert(2)</script>",
            &format!("{}/hook", server.uri()),
            "SEV4"
        ),
        webhook("slow", &format!("{}/slow", server.uri()), "SEV4")
    ));
    let t = spawn_app(backend, config).await;
    t.ok("declare sev2 Queue <i>backlog</i>").await;
    let store = t.app.store.clone();
    let failed = eventually(20, || {
        let store = store.clone();
        async move { !store.list_effects(true, 5).await.unwrap().is_empty() }
    })
    .await;
    assert!(failed, "the notice fails");
    let waiting = eventually(20, || {
        let store = store.clone();
        async move {
            let all = store.list_effects(false, 10).await.unwrap();
            all.iter()
                .any(|e| e.state == EffectState::Pending && e.last_error.is_some())
        }
    })
    .await;
    assert!(waiting, "the slow webhook's notice waits for its retry");
    let id = t.app.store.list_effects(true, 5).await.unwrap()[0].id;
    (t, server, id)
}

async fn the_effects_page_lists_a_failed_effect_escaped(backend: Backend) {
    let (t, _server, id) = failed_notice(backend).await;
    let ops = create_token(&t.app.store, "ops", "read,update").await;
    let cookie = session_at(&t.url(""), &ops).await;
    let page = page_at(&t.url(""), "/effects", &cookie).await;
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<i>backlog"), "{page}");
    let row = text_of(&page, &format!("li[id='effect-{id}']"));
    for part in [
        &format!("#{id} notify.webhook failed"),
        "Incident INC-1 Queue <i>backlog</i>",
        "Target webhook:<script>alert(2)</script>",
        "Attempts 1",
        "Next run not retried (gave up)",
        "webhook \"<script>alert(2)</script>\" answered HTTP 404",
    ] {
        assert!(row.contains(part), "{part}: {row}");
    }
    assert!(
        page.contains(
            "webhook &#34;&#60;script&#62;alert(2)&#60;/script&#62;&#34; answered HTTP 404"
        ),
        "{page}"
    );
    assert!(page.contains("href=\"/incidents/1\""), "{page}");
    assert!(retry_csrf(&page, id).is_some(), "ops may retry: {page}");
    // The pending notice is listed above it (newest first), with its next run and no
    // retry button.
    let pending = t.app.store.list_effects(false, 10).await.unwrap();
    let pending = pending
        .iter()
        .find(|e| e.state == EffectState::Pending)
        .expect("the slow webhook's notice waits");
    let row = text_of(&page, &format!("li[id='effect-{}']", pending.id));
    assert!(
        row.contains("pending") && row.contains("Target webhook:slow"),
        "{row}"
    );
    assert!(
        row.contains("Next run in 59m") || row.contains("Next run in 1h"),
        "{row}"
    );
    assert!(row.contains("answered HTTP 503"), "{row}");
    assert_eq!(retry_csrf(&page, pending.id), None);
    let (newer, older) = (pending.id.max(id), pending.id.min(id));
    assert!(
        page.find(&format!("id=\"effect-{newer}\"")).unwrap()
            < page.find(&format!("id=\"effect-{older}\"")).unwrap()
    );
    // A reader sees the effect, without a retry button, and is told why.
    let viewer = create_token(&t.app.store, "viewer", "read").await;
    let theirs = page_at(
        &t.url(""),
        "/effects",
        &session_at(&t.url(""), &viewer).await,
    )
    .await;
    assert!(theirs.contains(&format!("id=\"effect-{id}\"")), "{theirs}");
    assert_eq!(retry_csrf(&theirs, id), None);
    assert!(theirs.contains("without the update scope"), "{theirs}");
    // A crafted flash is not shown; only known outcomes are.
    let crafted = page_at(
        &t.url(""),
        "/effects?said=Your+password+expired&effect=1",
        &cookie,
    )
    .await;
    assert!(!crafted.contains("expired"), "{crafted}");
    assert!(!crafted.contains("class=\"said\""), "{crafted}");
}

async fn retrying_needs_csrf_and_the_unfreeze_all_permission(backend: Backend) {
    let (t, _server, id) = failed_notice(backend).await;
    let base = t.url("");
    let store = &t.app.store;
    let ops = create_token(store, "ops", "read,update").await;
    let alerts = create_token(store, "alerts", "read,update").await;
    let viewer = create_token(store, "viewer", "read").await;
    let before = store.effect(id).await.unwrap().unwrap();
    let ops_cookie = session_at(&base, &ops).await;
    let ops_page = page_at(&base, "/effects", &ops_cookie).await;
    let ops_csrf = retry_csrf(&ops_page, id).unwrap();

    // Without the CSRF token, or with another session's: 403 from the guard.
    let without = post_retry(&base, &id.to_string(), &ops_cookie, None).await;
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    assert!(
        without
            .text()
            .await
            .unwrap()
            .contains("without its CSRF token"),
        "the guard's sentence"
    );
    let alerts_cookie = session_at(&base, &alerts).await;
    let wrong = post_retry(&base, &id.to_string(), &alerts_cookie, Some(&ops_csrf)).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);

    // With their own CSRF token, but not on `unfreeze_all` (or read-only): refused with a
    // sentence.
    let alerts_page = page_at(&base, "/effects", &alerts_cookie).await;
    assert_eq!(retry_csrf(&alerts_page, id), None, "no button for alerts");
    let alerts_csrf = session_csrf(&alerts_page);
    let refused = post_retry(&base, &id.to_string(), &alerts_cookie, Some(&alerts_csrf)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        refused.text().await.unwrap(),
        "Retrying effects needs the unfreeze_all permission, and api:alerts is not on that list in [permissions]."
    );
    let viewer_cookie = session_at(&base, &viewer).await;
    let viewer_csrf = session_csrf(&page_at(&base, "/effects", &viewer_cookie).await);
    let refused = post_retry(&base, &id.to_string(), &viewer_cookie, Some(&viewer_csrf)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("update scope"));

    // An API token cannot use the form at all, whatever its scopes.
    let bearer = bearer_client(&ops)
        .post(t.url(&format!("/effects/{id}/retry")))
        .form(&[("csrf", ops_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::FORBIDDEN);

    let after = store.effect(id).await.unwrap().unwrap();
    assert_eq!(after.state, EffectState::Failed, "nothing changed");
    assert_eq!(after.attempts, before.attempts);
    assert_eq!(after.budget_from, before.budget_from);
}

async fn a_retry_queues_the_effect_again_once(backend: Backend) {
    let (t, server, id) = failed_notice(backend).await;
    let base = t.url("");
    let store = &t.app.store;
    let ops = create_token(store, "ops", "read,update").await;
    let cookie = session_at(&base, &ops).await;
    let csrf = retry_csrf(&page_at(&base, "/effects", &cookie).await, id).unwrap();
    let calls = || async {
        let all = server.received_requests().await.unwrap();
        all.iter().filter(|r| r.url.path() == "/hook").count()
    };
    assert_eq!(calls().await, 1);
    let timeline_before = incident_timeline(store, 1).await.1.len();

    let retried = post_retry(&base, &id.to_string(), &cookie, Some(&csrf)).await;
    assert_eq!(retried.status(), StatusCode::SEE_OTHER);
    let to = location(&retried);
    assert_eq!(to, format!("/effects?said=retried&effect={id}"));
    // Queued again with a fresh budget: pending (or already picked up by the worker).
    let now = store.effect(id).await.unwrap().unwrap();
    assert_ne!(now.state, EffectState::Failed, "{now:?}");
    assert!(now.attempts <= 1, "{now:?}");
    let back = page_at(&base, &to, &cookie).await;
    assert!(
        back.contains(&format!("Effect {id} is queued again")),
        "{back}"
    );
    let delivered = eventually(20, || async {
        store.effect(id).await.unwrap().unwrap().state == EffectState::Done
    })
    .await;
    assert!(delivered, "the retried notice is delivered");
    assert_eq!(calls().await, 2);
    let listed = page_at(&base, "/effects", &cookie).await;
    assert!(
        !listed.contains(&format!("id=\"effect-{id}\"")),
        "a done effect is not listed: {listed}"
    );

    // The same form again (a double submit): a sentence, and nothing runs again.
    let again = post_retry(&base, &id.to_string(), &cookie, Some(&csrf)).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    let to = location(&again);
    assert_eq!(to, format!("/effects?said=not_failed&effect={id}"));
    let back = page_at(&base, &to, &cookie).await;
    assert!(back.contains("has not failed"), "{back}");
    // An unknown or malformed id is a sentence too.
    for (given, said) in [
        ("999", "There is no effect 999."),
        ("abc", "There is no such effect."),
    ] {
        let resp = post_retry(&base, given, &cookie, Some(&csrf)).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{given}");
        let back = page_at(&base, &location(&resp), &cookie).await;
        assert!(back.contains(said), "{given}: {back}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(calls().await, 2, "the double submit ran nothing");
    let timeline = incident_timeline(store, 1).await.1;
    // As with `firebreak effects retry`, the retry itself is not a timeline entry; the
    // delivery it led to is the handler's to record.
    assert!(
        !timeline.iter().any(|e| e.text.contains("retried")),
        "{timeline:?}"
    );
    assert!(timeline.len() >= timeline_before);
}

async fn the_served_binary_shows_both_pages_and_retries(backend: Backend) {
    use common::process::*;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(410))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let port = free_port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace = \"500ms\"\n[effects]\npoll_interval = \"50ms\"\n{}",
        webhook("general", &format!("{}/h", server.uri()), "SEV4")
    );
    let cli = Cli::new(backend, &config).await;
    // The CLI delivers its own notice, which the webhook refuses for good.
    let out = cli
        .run(&["incident", "declare", "sev2", "Disk", "<em>full</em>"])
        .await;
    assert!(
        stderr(&out).contains("answered HTTP 410"),
        "{}",
        stderr(&out)
    );
    let token = cli
        .ok(&["token", "create", "--name", "web", "--scope", "read,update"])
        .await
        .trim()
        .to_string();
    let mut serve = Serving(
        cli.command(&["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    assert!(answers_health(&browser(), &base).await, "serve answers");
    let nobody = browser()
        .get(format!("{base}/freezes"))
        .send()
        .await
        .unwrap();
    assert_eq!(nobody.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&nobody), "/signin?next=%2Ffreezes");
    let cookie = session_at(&base, &token).await;

    let freezes = page_at(&base, "/freezes", &cookie).await;
    assert!(freezes.contains("No merge freeze is wanted."), "{freezes}");
    assert!(
        freezes.contains("GitHub is not configured on this server."),
        "{freezes}"
    );
    let effects = page_at(&base, "/effects", &cookie).await;
    let row = text_of(&effects, "li[id='effect-1']");
    assert!(row.contains("notify.webhook failed"), "{row}");
    assert!(row.contains("INC-1 Disk <em>full</em>"), "{row}");
    assert!(row.contains("answered HTTP 410"), "{row}");
    assert!(effects.contains("Disk &#60;em&#62;full&#60;/em&#62;"));
    // No `[permissions]` lists: whoever may freeze (everyone) may retry.
    let csrf = retry_csrf(&effects, 1).expect("a retry button");
    let retried = post_retry(&base, "1", &cookie, Some(&csrf)).await;
    assert_eq!(retried.status(), StatusCode::SEE_OTHER);
    let delivered = eventually(20, || async {
        server.received_requests().await.unwrap().len() == 2
    })
    .await;
    assert!(delivered, "serve's worker delivers the retried notice");
    let after = page_at(&base, "/effects", &cookie).await;
    assert!(
        eventually(10, || async {
            !page_at(&base, "/effects", &cookie)
                .await
                .contains("id=\"effect-1\"")
        })
        .await,
        "the delivered effect leaves the page: {after}"
    );
    terminate(&mut serve.0);
}

/// One failing target among a thousand, as the reconciler records them: the page lists it
/// first and renders in bounded time (one query per kind of row, not per target).
async fn a_thousand_targets_render_with_the_bad_one_first(backend: Backend) {
    let gh = FakeGitHub::start(Limits {
        minute: Duration::from_millis(100),
        ..Limits::default()
    })
    .await;
    let config = test_config(&github_config("\"acme/*\"", "100ms", ""));
    let t = spawn_app_with(backend, config, integrations(&gh.url), None).await;
    run_as_ops(&t, "freeze acme/* --reason release week").await;
    assert!(queue_idle(&t.app.store, 60).await, "the freeze settles");
    let store = &t.app.store;
    let at = chrono::Utc::now().timestamp_millis();
    for i in 0..1000 {
        let bad = i == 637;
        let target = firebreak::store::FreezeTarget {
            target: format!("acme/repo-{i:04}"),
            scope: "acme/*".into(),
            desired: "frozen".into(),
            actual: if bad { "error" } else { "active" }.into(),
            ruleset_id: (!bad).then_some(i),
            applied_generation: 1,
            verified_at: if bad { 0 } else { at },
            last_error: bad.then(|| "GitHub answered HTTP 403: <Resource not accessible>".into()),
            error_at: bad.then_some(at),
            retry_at: None,
        };
        assert!(store.record_target(&target).await.unwrap());
    }
    let reader = create_token(store, "reader", "read").await;
    let cookie = session_at(&t.url(""), &reader).await;
    let mut took = Vec::new();
    let mut page = String::new();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        page = page_at(&t.url(""), "/freezes", &cookie).await;
        took.push(started.elapsed());
    }
    eprintln!("GET /freezes with 1000 targets ({backend:?}): {took:?}");
    let best = took.iter().min().unwrap();
    assert!(*best < Duration::from_secs(2), "{took:?}");
    let first = page.find("<section class=\"card\" id=\"target-").unwrap();
    assert!(
        page[first..].starts_with("<section class=\"card\" id=\"target-acme/repo-0637\""),
        "the failing target first"
    );
    let bad = text_of(&page, "section[id='target-acme/repo-0637']");
    assert!(
        bad.contains("Failing (permanent): GitHub answered HTTP 403: <Resource not accessible>"),
        "{bad}"
    );
    assert!(page.contains("&#60;Resource not accessible&#62;"));
    assert_eq!(page.matches("(blocks merges)").count(), 999);
}
