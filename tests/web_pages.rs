//! The web pages and signing in to them with an API token: browsers without a credential
//! are sent to `/signin` (the API still answers 401); a bad, revoked or read-less token
//! makes no session; a tampered cookie is no session; revoking the token ends its sessions;
//! signing out needs the session's CSRF token; the list and the incident page show an
//! incident with its title escaped. Last, the built binary signed in to over HTTP. On both
//! databases.

mod common;

use std::process::Stdio;

use common::web::{browser, location};
use common::*;
use reqwest::{Response, StatusCode};

on_both!(
    pages_send_browsers_to_sign_in_and_the_api_answers_401,
    signing_in_needs_a_valid_token_with_read,
    a_tampered_cookie_is_no_session,
    revoking_the_token_ends_its_sessions,
    signing_out_needs_the_csrf_token,
    the_pages_show_incidents_escaped,
    pages_are_not_cached_framed_or_sniffed,
    a_form_too_large_or_not_a_form_is_told_so,
    the_served_binary_signs_in_with_a_token_from_the_cli,
);

fn set_cookie(resp: &Response) -> Option<String> {
    resp.headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string())
}

/// `name=value` from a `Set-Cookie` value, as the browser sends it back.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

async fn sign_in_at(base: &str, token: &str, next: &str) -> Response {
    browser()
        .post(format!("{base}/signin"))
        .form(&[("token", token), ("next", next)])
        .send()
        .await
        .unwrap()
}

/// Signs in with `token` and returns the `Cookie` header value for the session.
async fn session(t: &TestApp, token: &str) -> String {
    let resp = sign_in_at(&t.url(""), token, "/").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    cookie_pair(&set_cookie(&resp).expect("a session cookie"))
}

async fn get_with(t: &TestApp, path: &str, cookie: &str) -> Response {
    browser()
        .get(t.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// The sign-out form's CSRF token on a page.
fn csrf_on(page: &str) -> String {
    let html = scraper::Html::parse_document(page);
    let sel = scraper::Selector::parse("form[action='/signout'] input[name=csrf]").unwrap();
    let input = html.select(&sel).next().expect("a sign-out form");
    input.value().attr("value").unwrap().to_string()
}

async fn pages_send_browsers_to_sign_in_and_the_api_answers_401(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    t.ok("declare sev2 Cache stampede").await;
    let b = browser();
    for (path, to) in [
        ("/", "/signin"),
        ("/incidents/1", "/signin?next=%2Fincidents%2F1"),
        (
            "/?open=1&severity=SEV1",
            "/signin?next=%2F%3Fopen%3D1%26severity%3DSEV1",
        ),
        (
            "/incidents/INC-1/postmortem.html",
            "/signin?next=%2Fincidents%2FINC-1%2Fpostmortem.html",
        ),
    ] {
        let resp = b.get(t.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&resp), to, "{path}");
    }
    for path in ["/api/incidents", "/api/incidents/1", "/metrics"] {
        let resp = b.get(t.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    }
    // A write without a credential is a 401 too, not a redirect.
    let resp = b.post(t.url("/api/incidents")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let form = b
        .get(t.url("/signin?next=%2Fincidents%2F1"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let page = form.text().await.unwrap();
    assert!(page.contains("name=\"viewport\""), "{page}");
    assert!(page.contains("value=\"/incidents/1\""), "{page}");
}

async fn signing_in_needs_a_valid_token_with_read(backend: Backend) {
    let config = test_config("[server]\npublic_url = \"https://fb.example.com\"\n");
    let t = spawn_app(backend, config).await;
    let store = &t.app.store;
    let reader = create_token(store, "reader", "read").await;
    let declarer = create_token(store, "declarer", "declare").await;
    let gone = create_token(store, "gone", "read").await;
    assert!(
        store
            .revoke_token("gone", chrono::Utc::now())
            .await
            .unwrap()
    );
    let base = t.url("");
    for (token, sentence) in [
        (
            "fbk_nope",
            "That token is not valid: it is unknown or has been revoked.",
        ),
        (
            "",
            "That token is not valid: it is unknown or has been revoked.",
        ),
        (
            &gone,
            "That token is not valid: it is unknown or has been revoked.",
        ),
        (
            &declarer,
            "The token &#34;declarer&#34; has the scopes declare; signing in needs one with the read scope.",
        ),
    ] {
        let resp = sign_in_at(&base, token, "/incidents/1").await;
        assert_eq!(resp.status(), StatusCode::OK, "{token}");
        assert!(set_cookie(&resp).is_none(), "no session for {token}");
        let page = resp.text().await.unwrap();
        assert!(page.contains(sentence), "{token}: {page}");
        assert!(page.contains("<form method=\"post\" action=\"/signin\">"));
    }
    // Posted from another site: refused, whatever the token.
    let foreign = browser()
        .post(t.url("/signin"))
        .header("origin", "https://evil.example")
        .form(&[("token", reader.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&foreign).is_none());
    // From this site (its public URL): a session, then on to `next`.
    let ok = browser()
        .post(t.url("/signin"))
        .header("origin", "https://fb.example.com")
        .form(&[("token", reader.as_str()), ("next", "/incidents/1")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&ok), "/incidents/1");
    let cookie = set_cookie(&ok).unwrap();
    for part in [
        "firebreak_session=",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=43200",
        "Secure",
    ] {
        assert!(cookie.contains(part), "{part}: {cookie}");
    }
    assert!(!cookie.contains(&reader), "the token is not in the cookie");
    // Only a path on this site is followed.
    for next in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let resp = sign_in_at(&base, &reader, next).await;
        assert_eq!(location(&resp), "/", "{next}");
    }
    // The session reads pages and the API.
    let session = cookie_pair(&cookie);
    assert_eq!(get_with(&t, "/", &session).await.status(), StatusCode::OK);
    let api = get_with(&t, "/api/incidents", &session).await;
    assert_eq!(api.status(), StatusCode::OK);
    assert_eq!(api.text().await.unwrap(), "[]");
}

async fn a_tampered_cookie_is_no_session(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    let reader = create_token(&t.app.store, "reader", "read").await;
    let good = session(&t, &reader).await;
    assert_eq!(get_with(&t, "/", &good).await.status(), StatusCode::OK);
    let (name, value) = good.split_once('=').unwrap();
    let (id, rest) = value.split_once('.').unwrap();
    let other_id = format!("{name}={}.{rest}", id.parse::<i64>().unwrap() - 1);
    let mut flipped = good.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for bad in [
        other_id.as_str(),
        flipped.as_str(),
        "firebreak_session=",
        "firebreak_session=1.99999999999.00.x",
    ] {
        let page = get_with(&t, "/", bad).await;
        assert_eq!(page.status(), StatusCode::SEE_OTHER, "{bad}");
        assert_eq!(location(&page), "/signin");
        let api = get_with(&t, "/api/incidents", bad).await;
        assert_eq!(api.status(), StatusCode::UNAUTHORIZED, "{bad}");
    }
}

async fn revoking_the_token_ends_its_sessions(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    let store = &t.app.store;
    let reader = create_token(store, "reader", "read").await;
    let other = create_token(store, "other", "read").await;
    let cookie = session(&t, &reader).await;
    let kept = session(&t, &other).await;
    assert_eq!(get_with(&t, "/", &cookie).await.status(), StatusCode::OK);
    assert!(
        store
            .revoke_token("reader", chrono::Utc::now())
            .await
            .unwrap()
    );
    let page = get_with(&t, "/", &cookie).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    let api = get_with(&t, "/api/incidents", &cookie).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = api.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    assert_eq!(get_with(&t, "/", &kept).await.status(), StatusCode::OK);
}

async fn signing_out_needs_the_csrf_token(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    let store = &t.app.store;
    let reader = create_token(store, "reader", "read,declare").await;
    let cookie = session(&t, &reader).await;
    let other = session(&t, &reader).await;
    let page = get_with(&t, "/", &cookie).await.text().await.unwrap();
    let csrf = csrf_on(&page);
    let other_csrf = csrf_on(&get_with(&t, "/", &other).await.text().await.unwrap());
    assert_ne!(csrf, other_csrf, "each session has its own CSRF token");
    let post = |form: Vec<(&'static str, String)>, cookie: Option<&str>| {
        let mut req = browser().post(t.url("/signout")).form(&form);
        if let Some(c) = cookie {
            req = req.header("cookie", c.to_string());
        }
        req.send()
    };
    let without = post(vec![], Some(&cookie)).await.unwrap();
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&without).is_none());
    let sentence = without.text().await.unwrap();
    assert!(
        sentence.starts_with("This form came without its CSRF token"),
        "{sentence}"
    );
    let wrong = post(vec![("csrf", other_csrf)], Some(&cookie))
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert!(wrong.text().await.unwrap().contains("does not belong"));
    // An API token cannot sign out a session, and no credential is a 401.
    let bearer = bearer_client(&reader)
        .post(t.url("/signout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::FORBIDDEN);
    let nobody = post(vec![("csrf", csrf.clone())], None).await.unwrap();
    assert_eq!(nobody.status(), StatusCode::UNAUTHORIZED);
    // A session does not write through the API, whatever its token's scopes.
    let declare = browser()
        .post(t.url("/api/incidents"))
        .header("cookie", &cookie)
        .json(&serde_json::json!({ "severity": "sev2", "title": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(declare.status(), StatusCode::UNAUTHORIZED);
    let out = post(vec![("csrf", csrf)], Some(&cookie)).await.unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&out), "/signin");
    let cleared = set_cookie(&out).unwrap();
    assert!(
        cleared.starts_with("firebreak_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    // The server ended it too: the old cookie, replayed, is sent to sign in; the other
    // session of the same token still works.
    let replayed = get_with(&t, "/incidents", &cookie).await;
    assert_eq!(replayed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&replayed), "/signin?next=%2Fincidents");
    let api = get_with(&t, "/api/incidents", &cookie).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(get_with(&t, "/", &other).await.status(), StatusCode::OK);
    // Signing out the other one twice is harmless.
    let other_csrf = csrf_on(&get_with(&t, "/", &other).await.text().await.unwrap());
    for _ in 0..2 {
        let _ = post(vec![("csrf", other_csrf.clone())], Some(&other)).await;
    }
    assert_eq!(
        get_with(&t, "/", &other).await.status(),
        StatusCode::SEE_OTHER
    );
}

async fn a_form_too_large_or_not_a_form_is_told_so(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    let reader = create_token(&t.app.store, "reader", "read").await;
    let cookie = session(&t, &reader).await;
    let csrf = csrf_on(&get_with(&t, "/", &cookie).await.text().await.unwrap());
    let signout = |body: String, content_type: &'static str| {
        browser()
            .post(t.url("/signout"))
            .header("cookie", cookie.clone())
            .header("content-type", content_type)
            .body(body)
    };
    let form = "application/x-www-form-urlencoded";
    let big = format!("csrf={csrf}&text={}", "a".repeat(70 * 1024));
    let resp = signout(big, form).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let text = resp.text().await.unwrap();
    assert!(text.contains("larger than 64 KB"), "{text}");
    let json = format!("{{\"csrf\": \"{csrf}\"}}");
    let resp = signout(json, "application/json").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let text = resp.text().await.unwrap();
    assert!(text.contains("application/x-www-form-urlencoded"), "{text}");
    // Neither signed out: the session still reads.
    assert_eq!(get_with(&t, "/", &cookie).await.status(), StatusCode::OK);
    let resp = signout(format!("csrf={csrf}"), form).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

async fn pages_are_not_cached_framed_or_sniffed(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    t.ok("declare sev2 Cache check").await;
    let reader = create_token(&t.app.store, "reader", "read").await;
    let cookie = session(&t, &reader).await;
    let signin = browser().get(t.url("/signin")).send().await.unwrap();
    let incident = get_with(&t, "/incidents/1", &cookie).await;
    let script = get_with(&t, "/assets/live.js", &cookie).await;
    for resp in [&signin, &incident, &script] {
        let h = resp.headers();
        assert_eq!(h["cache-control"], "no-store", "{}", resp.url());
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        let csp = h["content-security-policy"].to_str().unwrap();
        for part in [
            "script-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(part), "{csp}");
        }
    }
    // Nothing inline runs under that policy: the page's only script is the served file.
    let page = incident.text().await.unwrap();
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    assert!(page.contains("<script src=\"/assets/live.js\""), "{page}");
}

async fn the_pages_show_incidents_escaped(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    // INC-1 open, INC-2 newer but resolved: the open one is listed first all the same.
    t.ok("declare sev1 <script>alert(1)</script> & checkout")
        .await;
    t.ok("declare sev2 Old <b>thing</b>").await;
    t.ok("resolve INC-2 Fixed").await;
    let reader = create_token(&t.app.store, "reader", "read").await;
    let cookie = session(&t, &reader).await;
    let list = get_with(&t, "/", &cookie).await;
    assert_eq!(list.status(), StatusCode::OK);
    let page = list.text().await.unwrap();
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<b>thing"), "{page}");
    let escaped = "&#60;script&#62;alert(1)&#60;/script&#62; &#38; checkout";
    assert!(page.contains(escaped), "{page}");
    let (open, resolved) = (page.find("INC-1").unwrap(), page.find("INC-2").unwrap());
    assert!(open < resolved, "open incidents first");
    assert!(page.contains("SEV1") && page.contains("href=\"/incidents/1\""));
    assert!(page.contains("Signed in with the token “reader”"), "{page}");
    // Filters are links, and filter.
    assert!(page.contains("href=\"/?open=1\""), "{page}");
    let open_only = get_with(&t, "/?open=1", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(open_only.contains("INC-1") && !open_only.contains("INC-2"));
    let sev2 = get_with(&t, "/?severity=SEV2&drill=0", &cookie).await;
    let sev2 = sev2.text().await.unwrap();
    assert!(sev2.contains("INC-2") && !sev2.contains("INC-1"), "{sev2}");
    let drills = get_with(&t, "/?drill=1", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(drills.contains("No incidents match."), "{drills}");

    let one = get_with(&t, "/incidents/1", &cookie).await;
    assert_eq!(one.status(), StatusCode::OK);
    let page = one.text().await.unwrap();
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains(escaped), "{page}");
    for part in [
        "SEV1",
        "T+",
        " UTC",
        "Commander",
        "href=\"/incidents/INC-1/postmortem.html\"",
        "name=\"viewport\"",
    ] {
        assert!(page.contains(part), "{part}: {page}");
    }
    let same = get_with(&t, "/incidents/INC-1", &cookie).await;
    assert_eq!(same.status(), StatusCode::OK);
    let postmortem = get_with(&t, "/incidents/INC-1/postmortem.html", &cookie).await;
    assert_eq!(postmortem.status(), StatusCode::OK);
    let missing = get_with(&t, "/incidents/9", &cookie).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.text().await.unwrap(), "There is no incident INC-9.");
}

async fn the_served_binary_signs_in_with_a_token_from_the_cli(backend: Backend) {
    use common::process::*;
    let port = free_port();
    let config = format!("[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace = \"500ms\"\n");
    let cli = Cli::new(backend, &config).await;
    cli.ok(&["incident", "declare", "sev2", "Queue", "<i>backlog</i>"])
        .await;
    let token = cli
        .ok(&["token", "create", "--name", "web", "--scope", "read"])
        .await
        .trim()
        .to_string();
    let mut serve = Serving(
        cli.command(&["serve"])
            .env_remove("FIREBREAK_SESSION_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    {
        assert!(answers_health(&browser(), &base).await, "serve answers");
        let first = browser().get(format!("{base}/incidents/1")).send().await;
        let first = first.unwrap();
        assert_eq!(first.status(), StatusCode::SEE_OTHER);
        let next = location(&first);
        let form = browser().get(format!("{base}{next}")).send().await.unwrap();
        assert!(
            form.text()
                .await
                .unwrap()
                .contains("value=\"/incidents/1\"")
        );
        let signed = sign_in_at(&base, &token, "/incidents/1").await;
        assert_eq!(signed.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&signed), "/incidents/1");
        let cookie = cookie_pair(&set_cookie(&signed).unwrap());
        let page = browser()
            .get(format!("{base}/incidents/1"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.unwrap();
        assert!(
            page.contains("Queue &#60;i&#62;backlog&#60;/i&#62;"),
            "{page}"
        );
        let csrf = csrf_on(&page);
        let out = browser()
            .post(format!("{base}/signout"))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
    }
    let out = serve.stop();
    assert!(out.status.success(), "serve exits on SIGTERM");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("FIREBREAK_SESSION_KEY is not set"),
        "the made-up key is warned about: {log}"
    );
}
