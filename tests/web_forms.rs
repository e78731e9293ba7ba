//! The pages' forms (declare, post an update, change the status, resolve) as a browser
//! sends them: through the same service and `[permissions]` as chat, each once however often
//! it is sent (its one-time `form_id`), refused with a sentence on the page and nothing
//! written when the session may not, the text is bad or the incident is gone; a form
//! without its CSRF token, or posted with an API token, is refused by the guard. On both
//! databases.

mod common;

use common::*;
use firebreak::incident::{IncidentNumber, Severity, Status, TimelineEntry};
use reqwest::{Response, StatusCode};

on_both!(
    declaring_through_the_form_makes_one_incident,
    a_double_submit_declares_once,
    a_form_without_its_csrf_token_or_with_an_api_token_is_refused,
    a_session_without_the_declare_scope_is_told_and_nothing_is_written,
    permissions_refuse_a_token_session_with_their_sentence,
    the_incident_forms_update_change_status_and_resolve,
    hostile_or_impossible_changes_are_refused_with_a_sentence,
);

/// A client that shows redirects rather than following them, and keeps no cookies.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(resp: &Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_string()
}

/// Signs in with a new token named `name` with `scopes` and returns the session's cookie.
async fn session(t: &TestApp, name: &str, scopes: &str) -> String {
    let token = create_token(&t.app.store, name, scopes).await;
    let resp = browser()
        .post(t.url("/signin"))
        .form(&[("token", token.as_str()), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

async fn get_page(t: &TestApp, path: &str, cookie: &str) -> String {
    let resp = browser()
        .get(t.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.text().await.unwrap()
}

/// The form `#id` on `page`: where it posts, and its hidden fields (csrf, form_id).
fn form(page: &str, id: &str) -> (String, Vec<(String, String)>) {
    let html = scraper::Html::parse_document(page);
    let sel = scraper::Selector::parse(&format!("form#{id}")).unwrap();
    let form = html
        .select(&sel)
        .next()
        .unwrap_or_else(|| panic!("no form #{id}: {page}"));
    assert_eq!(form.value().attr("method"), Some("post"));
    let action = form.value().attr("action").unwrap().to_string();
    let hidden = scraper::Selector::parse("input[type=hidden]").unwrap();
    let fields = form
        .select(&hidden)
        .map(|i| {
            let v = i.value();
            (
                v.attr("name").unwrap().to_string(),
                v.attr("value").unwrap().to_string(),
            )
        })
        .collect();
    (action, fields)
}

/// The options of the select `name` inside form `#id`.
fn options(page: &str, id: &str, name: &str) -> Vec<String> {
    let html = scraper::Html::parse_document(page);
    let sel = scraper::Selector::parse(&format!("form#{id} select[name={name}] option")).unwrap();
    html.select(&sel)
        .map(|o| o.value().attr("value").unwrap().to_string())
        .collect()
}

/// The sentence in `<p class="error">` on `page`.
fn error_on(page: &str) -> String {
    let html = scraper::Html::parse_document(page);
    let sel = scraper::Selector::parse("p.error").unwrap();
    let p = html
        .select(&sel)
        .next()
        .unwrap_or_else(|| panic!("no error sentence: {page}"));
    p.text().collect()
}

/// Posts `hidden` and `more` to `action` with `cookie`.
async fn post(
    t: &TestApp,
    action: &str,
    cookie: &str,
    hidden: &[(String, String)],
    more: &[(&str, &str)],
) -> Response {
    let mut body: Vec<(String, String)> = hidden.to_vec();
    body.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    browser()
        .post(t.url(action))
        .header("cookie", cookie)
        .form(&body)
        .send()
        .await
        .unwrap()
}

async fn incident_count(t: &TestApp) -> usize {
    t.app.store.list_incidents(false, 100).await.unwrap().len()
}

async fn timeline_of(t: &TestApp, n: i64) -> Vec<TimelineEntry> {
    let incident = t
        .app
        .store
        .incident_by_number(IncidentNumber(n))
        .await
        .unwrap()
        .expect("the incident");
    t.app.store.timeline(&incident.id).await.unwrap()
}

async fn declaring_through_the_form_makes_one_incident(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    let cookie = session(&t, "web", "read,declare").await;
    let page = get_page(&t, "/", &cookie).await;
    let (action, hidden) = form(&page, "declare");
    assert_eq!(action, "/incidents");
    let names: Vec<&str> = hidden.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["csrf", "form_id"]);
    assert_eq!(
        options(&page, "declare", "severity"),
        ["SEV1", "SEV2", "SEV3", "SEV4"]
    );
    for field in ["name=\"title\"", "name=\"drill\" value=\"1\""] {
        assert!(page.contains(field), "{field}: {page}");
    }
    let resp = post(
        &t,
        &action,
        &cookie,
        &hidden,
        &[
            ("severity", "SEV1"),
            ("title", "Checkout <b>502</b>s"),
            ("drill", "1"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/incidents/INC-1");
    let list = t.app.store.list_incidents(false, 10).await.unwrap();
    assert_eq!(list.len(), 1);
    let i = &list[0];
    assert_eq!(
        (i.severity, i.title.as_str(), i.drill),
        (Severity::Sev1, "Checkout <b>502</b>s", true)
    );
    assert_eq!(i.declared_by, "api:web");
    let timeline = timeline_of(&t, 1).await;
    assert_eq!(timeline.len(), 1, "{timeline:?}");
    assert_eq!(timeline[0].kind.as_str(), "declared");
    assert_eq!(timeline[0].actor, "api:web");
    // The page it leads to shows it, escaped; a fresh form id each time the list is shown.
    let shown = get_page(&t, "/incidents/INC-1", &cookie).await;
    assert!(
        shown.contains("Checkout &#60;b&#62;502&#60;/b&#62;s"),
        "{shown}"
    );
    let again = get_page(&t, "/", &cookie).await;
    assert_ne!(form(&again, "declare").1[1], hidden[1], "a new form_id");
}

async fn a_double_submit_declares_once(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    let cookie = session(&t, "web", "read,declare").await;
    let page = get_page(&t, "/", &cookie).await;
    let (action, hidden) = form(&page, "declare");
    let fields = [("severity", "SEV2"), ("title", "Queue backlog")];
    // Sent twice at once (a double click), then once more after.
    let (a, b) = tokio::join!(
        post(&t, &action, &cookie, &hidden, &fields),
        post(&t, &action, &cookie, &hidden, &fields)
    );
    for resp in [a, b] {
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&resp), "/incidents/INC-1");
    }
    let third = post(&t, &action, &cookie, &hidden, &fields).await;
    assert_eq!(location(&third), "/incidents/INC-1");
    assert_eq!(incident_count(&t).await, 1);
    assert_eq!(timeline_of(&t, 1).await.len(), 1);
    // The same form id with something else in it is not a retry: refused, nothing written.
    let other = post(
        &t,
        &action,
        &cookie,
        &hidden,
        &[("severity", "SEV2"), ("title", "Something else")],
    )
    .await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let sentence = error_on(&other.text().await.unwrap());
    assert!(
        sentence.contains("already sent with other content"),
        "{sentence}"
    );
    assert_eq!(incident_count(&t).await, 1);
    // Another session's form id of the same value is its own.
    let other_cookie = session(&t, "web2", "read,declare").await;
    let mut theirs = form(&get_page(&t, "/", &other_cookie).await, "declare").1;
    theirs[1].1 = hidden[1].1.clone();
    let resp = post(&t, &action, &other_cookie, &theirs, &fields).await;
    assert_eq!(location(&resp), "/incidents/INC-2");
    // A form without its form id is refused, not declared without protection.
    let bare = vec![hidden[0].clone()];
    let resp = post(&t, &action, &cookie, &bare, &fields).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_on(&resp.text().await.unwrap()).contains("one-time id"));
    assert_eq!(incident_count(&t).await, 2);
}

async fn a_form_without_its_csrf_token_or_with_an_api_token_is_refused(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    t.ok("declare sev2 Cache stampede").await;
    let cookie = session(&t, "web", "read,declare,update").await;
    let page = get_page(&t, "/", &cookie).await;
    let (_, hidden) = form(&page, "declare");
    let without: Vec<(String, String)> = hidden
        .iter()
        .filter(|(n, _)| n != "csrf")
        .cloned()
        .collect();
    let fields = [("severity", "SEV2"), ("title", "Forged")];
    let resp = post(&t, "/incidents", &cookie, &without, &fields).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.text().await.unwrap().contains("CSRF"));
    let update = [("text", "forged update")];
    let resp = post(&t, "/incidents/INC-1/updates", &cookie, &without, &update).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // An API token, however scoped, does not post the pages' forms (the API is for that).
    let resp = t
        .client()
        .post(t.url("/incidents"))
        .form(&[("severity", "SEV2"), ("title", "By token"), ("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("signed-in session"),
        "{body}"
    );
    // No session at all: 401.
    let resp = browser()
        .post(t.url("/incidents"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(incident_count(&t).await, 1);
    assert_eq!(timeline_of(&t, 1).await.len(), 1);
}

async fn a_session_without_the_declare_scope_is_told_and_nothing_is_written(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    let cookie = session(&t, "reader", "read,update").await;
    let (action, hidden) = form(&get_page(&t, "/", &cookie).await, "declare");
    let resp = post(
        &t,
        &action,
        &cookie,
        &hidden,
        &[("severity", "SEV1"), ("title", "Not mine to declare")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let page = resp.text().await.unwrap();
    assert_eq!(
        error_on(&page),
        "You cannot declare incidents here: this session does not have the declare scope."
    );
    // The page again, with what was typed kept.
    assert!(page.contains("value=\"Not mine to declare\""), "{page}");
    assert_eq!(incident_count(&t).await, 0);
    assert!(t.app.store.audit_log(10).await.unwrap().is_empty());
    // An empty title and an unknown severity are sentences too.
    let declarer = session(&t, "declarer", "read,declare").await;
    let (_, hidden) = form(&get_page(&t, "/", &declarer).await, "declare");
    for (severity, title, expected) in [
        ("SEV2", "   ", "Give the incident a title"),
        ("SEV9", "Disk full", "SEV9"),
    ] {
        let fields = [("severity", severity), ("title", title)];
        let resp = post(&t, &action, &declarer, &hidden, &fields).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{title}");
        let sentence = error_on(&resp.text().await.unwrap());
        assert!(sentence.contains(expected), "{sentence}");
    }
    assert_eq!(incident_count(&t).await, 0);
}

async fn permissions_refuse_a_token_session_with_their_sentence(backend: Backend) {
    // Alice (slack:U_ALICE) declares the incident the resolve forms try.
    let lists = "declare = [\"slack:U1\", \"slack:U_ALICE\"]\nresolve = [\"slack:U1\"]\n";
    let config = test_config(&format!("[permissions]\n{lists}"));
    let t = spawn_app(backend, config).await;
    let cookie = session(&t, "web", "read,declare,update").await;
    let (action, hidden) = form(&get_page(&t, "/", &cookie).await, "declare");
    let resp = post(
        &t,
        &action,
        &cookie,
        &hidden,
        &[("severity", "SEV1"), ("title", "Refused")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        error_on(&resp.text().await.unwrap()),
        "You are not allowed to declare incidents; ask someone listed under [permissions] declare in the firebreak config."
    );
    assert_eq!(incident_count(&t).await, 0);
    // The refusal is on the audit log, as chat's is.
    let audit = t.app.store.audit_log(10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert!(audit[0].text.contains("api:web"), "{audit:?}");
    // Resolving is `resolve`'s list, whether by its form or by the status form.
    t.ok("declare sev2 Cache stampede").await;
    let page = get_page(&t, "/incidents/INC-1", &cookie).await;
    let (action, hidden) = form(&page, "resolve");
    let resp = post(&t, &action, &cookie, &hidden, &[("summary", "done")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(error_on(&resp.text().await.unwrap()).contains("[permissions] resolve"));
    let (action, hidden) = form(&page, "status");
    let resp = post(&t, &action, &cookie, &hidden, &[("status", "resolved")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let incident = t
        .app
        .store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(incident.status, Status::Investigating);
}

async fn the_incident_forms_update_change_status_and_resolve(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    t.ok("declare sev2 Cache stampede").await;
    let cookie = session(&t, "web", "read,update").await;
    let page = get_page(&t, "/incidents/1", &cookie).await;
    let (action, hidden) = form(&page, "update");
    assert_eq!(action, "/incidents/INC-1/updates");
    let text = "<script>alert(1)</script> rolled back & watching";
    let resp = post(&t, &action, &cookie, &hidden, &[("text", text)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/incidents/INC-1");
    // Sent again (a resent POST): one update.
    let again = post(&t, &action, &cookie, &hidden, &[("text", text)]).await;
    assert_eq!(location(&again), "/incidents/INC-1");
    let updates: Vec<TimelineEntry> = timeline_of(&t, 1)
        .await
        .into_iter()
        .filter(|e| e.kind.as_str() == "update")
        .collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].actor, "api:web");
    let page = get_page(&t, "/incidents/INC-1", &cookie).await;
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62; rolled back &#38; watching"),
        "{page}"
    );
    assert!(page.contains(&format!("<li data-id=\"{}\">", updates[0].id)));

    let (action, hidden) = form(&page, "status");
    assert_eq!(
        options(&page, "status", "status"),
        [
            "investigating",
            "identified",
            "monitoring",
            "mitigated",
            "resolved"
        ]
    );
    let resp = post(&t, &action, &cookie, &hidden, &[("status", "monitoring")]).await;
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        resp.text().await
    );
    let page = get_page(&t, "/incidents/INC-1", &cookie).await;
    assert!(page.contains("<dd>monitoring</dd>"), "{page}");

    let (action, hidden) = form(&page, "resolve");
    let resp = post(
        &t,
        &action,
        &cookie,
        &hidden,
        &[("summary", "Cache warmed")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let incident = t
        .app
        .store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(incident.status, Status::Resolved);
    assert_eq!(incident.summary.as_deref(), Some("Cache warmed"));
    let page = get_page(&t, "/incidents/INC-1", &cookie).await;
    assert!(page.contains("This incident is resolved."), "{page}");
}

async fn hostile_or_impossible_changes_are_refused_with_a_sentence(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    t.ok("declare sev2 Cache stampede").await;
    let cookie = session(&t, "web", "read,update").await;
    let page = get_page(&t, "/incidents/INC-1", &cookie).await;
    let (action, hidden) = form(&page, "update");
    let before = timeline_of(&t, 1).await.len();
    // 40 KB of update: over the limit, refused with the limit, the text kept in the form.
    let huge = "a".repeat(40 * 1024);
    let resp = post(&t, &action, &cookie, &hidden, &[("text", &huge)]).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let shown = resp.text().await.unwrap();
    let sentence = error_on(&shown);
    assert!(sentence.contains("the limit is 4,000"), "{sentence}");
    // Empty, and the same again with hostile markup in the way.
    for text in ["", "   "] {
        let resp = post(&t, &action, &cookie, &hidden, &[("text", text)]).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{text:?}");
    }
    let (status_action, status_hidden) = form(&page, "status");
    let resp = post(
        &t,
        &status_action,
        &cookie,
        &status_hidden,
        &[("status", "<b>on fire</b>")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let shown = resp.text().await.unwrap();
    assert!(!shown.contains("<b>on fire"), "{shown}");
    assert_eq!(timeline_of(&t, 1).await.len(), before, "nothing written");
    // No such incident: said on the list.
    let resp = post(
        &t,
        "/incidents/INC-9/updates",
        &cookie,
        &hidden,
        &[("text", "hello")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        error_on(&resp.text().await.unwrap()),
        "There is no incident INC-9."
    );
    // A session without the update scope.
    let reader = session(&t, "reader", "read").await;
    let (_, reader_hidden) = form(&get_page(&t, "/incidents/INC-1", &reader).await, "update");
    let resp = post(&t, &action, &reader, &reader_hidden, &[("text", "hi")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(error_on(&resp.text().await.unwrap()).contains("update scope"));
    // Resolving a resolved incident (a page left open elsewhere).
    t.ok("resolve INC-1 Fixed").await;
    let (action, hidden) = form(&page, "resolve");
    let resp = post(&t, &action, &cookie, &hidden, &[("summary", "again")]).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error_on(&resp.text().await.unwrap()),
        "The incident is already resolved."
    );
    let incident = t
        .app
        .store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(incident.summary.as_deref(), Some("Fixed"));
}
