//! The drill report from a runbook run on a manual clock: each step's target against when
//! it ended, how and by whom (a failed freeze, a manual step ticked 2m late); time to
//! announce, freeze and tell customers from the deliveries on record, else the steps; the
//! recovery objective; served over HTTP behind the post-mortem's scope, written by the CLI,
//! shown in the post-mortem; hostile text rendering safely everywhere. Both databases.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use firebreak::incident::IncidentNumber;
use firebreak::postmortem::overrides::{self, Format};
use firebreak::runbook::report::{self, DrillReport, Lookup};
use reqwest::StatusCode;
use sqlx::Connection;

on_both!(
    a_drill_reports_each_step_planned_against_actual,
    milestones_come_from_deliveries_and_the_freeze_record,
    the_recovery_objective_is_judged_from_mitigation,
    served_over_http_behind_the_postmortem_scope,
    written_by_the_cli,
    the_postmortem_shows_the_runbook_only_for_an_incident_with_one,
    hostile_text_renders_safely,
);

const RUNBOOK: &str = r#"
title = "Regional outage"
severities = ["sev1"]
recovery_objective = "1h"

[[step]]
id = "announce"
title = "Tell the company"
at = "T+0"
owner = "comms"
action = "announce"

[[step]]
id = "freeze"
title = "Freeze merges"
at = "T+2m"
action = "freeze"

[[step]]
id = "restore"
title = "Restore the databases"
at = "T+3m"
owner = "team:dba"

[[step]]
id = "customers"
title = "Tell customers"
at = "T+10m"
owner = "comms"
action = "notify"
webhook = "statuspage"
text = "We are investigating an outage in one region."
"#;

/// A config whose runbook directory holds `regional.toml` (and `hostile.toml` when given),
/// with the `statuspage` webhook on a closed port (nothing is delivered unless a test
/// records it) and drills sending there too.
fn config(dir: &tempfile::TempDir, hostile: Option<&str>) -> firebreak::config::Config {
    std::fs::write(dir.path().join("regional.toml"), RUNBOOK).unwrap();
    if let Some(text) = hostile {
        std::fs::write(dir.path().join("hostile.toml"), text).unwrap();
    }
    test_config(&format!(
        "[runbooks]\ndir = {:?}\ndrill_webhook = \"statuspage\"\n{}",
        dir.path().display().to_string(),
        webhook("statuspage", "http://127.0.0.1:9/hook", "SEV4")
    ))
}

async fn runbook_service(backend: Backend) -> (TestService, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let t = service(backend, config(&dir, None)).await;
    (t, dir)
}

/// Moves the clock on and runs what is due, as the sweep would.
async fn at_minute(t: &TestService, declared: DateTime<Utc>, minute: i64) {
    let now = declared + Duration::minutes(minute);
    t.clock.advance(now - t.clock_now());
    t.app.service.run_runbooks().await.unwrap();
}

trait Now {
    fn clock_now(&self) -> DateTime<Utc>;
}

impl Now for TestService {
    fn clock_now(&self) -> DateTime<Utc> {
        use firebreak::incident::clock::Clock;
        self.clock.now()
    }
}

/// Declares `line` (incident 1 of a fresh store) and plays the runbook: the announcement
/// at T+0, the freeze failing at T+2m (no GitHub here), the restore ticked by alice at T+5m
/// (2m late) and the customer notice queued at T+10m. Returns the declaration time.
async fn play(t: &TestService, line: &str) -> DateTime<Utc> {
    let declared = t.clock_now();
    t.ok(line).await;
    at_minute(t, declared, 0).await;
    at_minute(t, declared, 2).await;
    at_minute(t, declared, 5).await;
    t.ok("runbook done INC-1 restore").await;
    at_minute(t, declared, 10).await;
    declared
}

async fn report_of(t: &TestService, n: i64) -> DrillReport {
    match report::load(&t.app.store, IncidentNumber(n)).await.unwrap() {
        Lookup::Found(r) => *r,
        Lookup::NoIncident => panic!("INC-{n} exists"),
        Lookup::NoRunbook => panic!("INC-{n} has a runbook"),
    }
}

/// The Markdown table row of step `id`.
fn md_row<'a>(md: &'a str, id: &str) -> &'a str {
    let start = format!("| `{id}` ");
    md.lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("a row for {id}:\n{md}"))
}

async fn a_drill_reports_each_step_planned_against_actual(backend: Backend) {
    let (t, _dir) = runbook_service(backend).await;
    play(&t, "declare sev1 Region down --runbook regional --drill").await;
    let r = report_of(&t, 1).await;
    assert!(r.drill);
    assert_eq!((r.runbook_name.as_str(), r.kind), ("regional", "drill"));

    let md = report::markdown(&r).unwrap();
    assert!(
        md.starts_with("# Drill report: INC-1: Region down (DRILL)\n"),
        "{md}"
    );
    assert_eq!(
        md_row(&md, "announce"),
        "| `announce` Tell the company | comms | T+0s | T+0s | done | firebreak |  | the DRILL notice was queued with the declaration |"
    );
    assert_eq!(
        md_row(&md, "freeze"),
        "| `freeze` Freeze merges | commander | T+2m | T+2m | failed | firebreak |  | merge freezes need GitHub, which is not configured |"
    );
    assert_eq!(
        md_row(&md, "restore"),
        "| `restore` Restore the databases | team dba | T+3m | T+5m | done | alice | **2m late** |  |"
    );
    assert_eq!(
        md_row(&md, "customers"),
        "| `customers` Tell customers | comms | T+10m | T+10m | done | firebreak |  | queued to webhook statuspage |"
    );
    for line in [
        "| Time to announce | T+0s | T+0s |  | step announce was done (no delivery on record) |",
        "| Time to freeze | T+2m | not done |  | step freeze failed: merge freezes need GitHub, which is not configured |",
        "| Time to tell customers | T+10m | T+10m |  | step customers was done (no delivery on record) |",
        "Recovery objective not met yet: the incident is neither mitigated nor resolved (objective 1h00m).",
        "## Failed\n\n- `freeze` Freeze merges: merge freezes need GitHub, which is not configured\n",
        "## Late\n\n- `restore` Restore the databases: done at T+5m, target T+3m: 2m late\n",
        "## Skipped\n\nNone.\n",
        "## Never done\n\nNone.\n",
    ] {
        assert!(md.contains(line), "{line}\nin:\n{md}");
    }

    let html = report::html(&r).unwrap();
    let page = assert_clean_html(&html);
    let rows = cells(&page, "table.plan tbody tr");
    assert_eq!(
        rows[2],
        [
            "restore Restore the databases",
            "team dba",
            "T+3m",
            "T+5m",
            "done",
            "alice",
            "2m late",
            ""
        ]
    );
    assert_eq!(rows[1][4], "failed");
    assert_eq!(
        rows[1][7],
        "merge freezes need GitHub, which is not configured"
    );
    assert_eq!(rows[5][0], "Time to freeze", "the milestones follow");
    assert!(
        html.contains(
            "<h1>Drill report: INC-1: Region down <span class=\"drill\">DRILL</span></h1>"
        )
    );
}

/// The deliveries and the freeze, recorded as the worker and the reconciler would.
async fn milestones_come_from_deliveries_and_the_freeze_record(backend: Backend) {
    let (t, _dir) = runbook_service(backend).await;
    let declared = play(&t, "declare sev1 Region down --runbook regional").await;
    let inc = t
        .app
        .store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    let id = inc.id.0.clone();
    let mut db = sqlx_connection(&t.db.url).await;
    let ms = |s: i64| (declared + Duration::seconds(s)).timestamp_millis();
    let customers = format!("notify.webhook:{id}:runbook:{id}:customers");
    let done = "UPDATE effects SET state = 'done', updated_at = $1 WHERE idempotency_key = $2";
    let updated = sqlx::query(done)
        .bind(ms(12 * 60))
        .bind(&customers)
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 1, "the step queued {customers}");
    let notice = "UPDATE effects SET state = 'done', updated_at = $1 \
                  WHERE incident_id = $2 AND kind = 'notify.webhook' AND idempotency_key LIKE 'notice:%'";
    let updated = sqlx::query(notice)
        .bind(ms(40))
        .bind(&id)
        .execute(&mut db)
        .await
        .unwrap();
    assert!(
        updated.rows_affected() >= 1,
        "the declaration queued a notice"
    );
    let mut tx = t.app.store.begin().await.unwrap();
    tx.append_timeline(&firebreak::incident::NewEntry {
        incident_id: Some(inc.id.clone()),
        occurred_at: declared + Duration::minutes(6),
        actor: "github:acme".into(),
        source: firebreak::incident::Source::Github,
        kind: firebreak::incident::EntryKind::FreezeApplied,
        text: "acme/api: ruleset active".into(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let r = report_of(&t, 1).await;
    assert_eq!(r.kind, "real incident");
    let md = report::markdown(&r).unwrap();
    for line in [
        "| Time to announce | T+0s | T+40s |  | the first company-wide notice was delivered |",
        "| Time to freeze | T+2m | T+6m | **4m late** | GitHub applied the merge freeze |",
        "| Time to tell customers | T+10m | T+12m | **2m late** | the customer notice was delivered |",
    ] {
        assert!(md.contains(line), "{line}\nin:\n{md}");
    }
    assert!(
        md.starts_with("# Runbook report: INC-1: Region down\n"),
        "{md}"
    );
}

async fn sqlx_connection(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url).await.unwrap()
}

async fn the_recovery_objective_is_judged_from_mitigation(backend: Backend) {
    let (t, _dir) = runbook_service(backend).await;
    let declared = play(&t, "declare sev1 Region down --runbook regional").await;
    t.clock
        .advance(declared + Duration::minutes(50) - t.clock_now());
    t.ok("status INC-1 mitigated").await;
    let r = report_of(&t, 1).await;
    assert_eq!(r.recovery.verdict, "met");
    assert_eq!(
        r.recovery.sentence,
        "Recovery objective met: mitigated at T+50m, within 1h00m."
    );
    t.ok("declare sev1 Region down again --runbook regional")
        .await;
    t.clock.advance(Duration::minutes(75));
    t.ok("resolve INC-2").await;
    let r = report_of(&t, 2).await;
    assert_eq!(
        (r.recovery.verdict, r.recovery.sentence.as_str()),
        (
            "missed",
            "Recovery objective missed: resolved at T+1h15m, 15m past 1h00m."
        )
    );
    let never: Vec<&str> = r.never_done.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        never,
        ["announce", "freeze", "restore", "customers"],
        "the resolution came before anyone ran them"
    );
}

async fn served_over_http_behind_the_postmortem_scope(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let t = spawn_app(backend, config(&dir, None)).await;
    t.ok("declare sev1 Region down --runbook regional --drill")
        .await;
    t.ok("declare sev2 Cache stampede").await;

    let md = t.get("/incidents/INC-1/drill-report.md").await.unwrap();
    assert_eq!(md.status(), StatusCode::OK);
    assert_eq!(md.headers()["content-type"], "text/markdown; charset=utf-8");
    assert!(
        md.text()
            .await
            .unwrap()
            .contains("| `restore` Restore the databases | team dba | T+3m |")
    );
    let html = t.get("/incidents/1/drill-report.html").await.unwrap();
    assert_eq!(html.status(), StatusCode::OK);
    assert_eq!(html.headers()["content-type"], "text/html; charset=utf-8");
    assert_clean_html(&html.text().await.unwrap());

    let none = t.get("/incidents/INC-2/drill-report.html").await.unwrap();
    assert_eq!(none.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        none.text().await.unwrap(),
        "INC-2 has no runbook, so it has no drill report. A runbook is attached when an incident is declared (`declare … --runbook <name>`, or chosen by severity and title)."
    );
    let missing = t.get("/incidents/INC-9/drill-report.md").await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.text().await.unwrap(), "There is no incident INC-9.");

    // The post-mortem's access, exactly: no credential, a wrong one, and a token
    // without `read` get what the post-mortem gets, and none of them the report.
    let metrics_only = create_token(&t.app.store, "scraper", "metrics").await;
    for (who, client) in [
        ("no token", no_redirects(None)),
        ("a wrong token", no_redirects(Some("fbk_not_a_token"))),
        ("a metrics token", no_redirects(Some(&metrics_only))),
    ] {
        for (report, postmortem) in [
            (
                "/incidents/INC-1/drill-report.html",
                "/incidents/INC-1/postmortem.html",
            ),
            (
                "/incidents/INC-1/drill-report.md",
                "/incidents/INC-1/postmortem.md",
            ),
        ] {
            let got = client.get(t.url(report)).send().await.unwrap();
            let pm = client.get(t.url(postmortem)).send().await.unwrap();
            assert_eq!(got.status(), pm.status(), "{who}: {report}");
            assert!(
                matches!(got.status().as_u16(), 303 | 401 | 403),
                "{who}: {report} is refused, not {}",
                got.status()
            );
        }
    }
    let anonymous = no_redirects(None)
        .get(t.url("/incidents/INC-1/drill-report.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.status(),
        StatusCode::SEE_OTHER,
        "a browser signs in first"
    );
    assert_eq!(
        anonymous.headers()["location"],
        "/signin?next=%2Fincidents%2FINC-1%2Fdrill-report.html"
    );
    let metrics = no_redirects(Some(&metrics_only))
        .get(t.url("/incidents/INC-1/drill-report.md"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::FORBIDDEN);
    t.shutdown.cancel();
}

/// A client that shows redirects instead of following them, with `token` if given.
fn no_redirects(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().unwrap();
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// The CLI reads the same database: Markdown to stdout, HTML to a file, and sentences
/// with exit 2 for an incident without a runbook or none at all.
async fn written_by_the_cli(backend: Backend) {
    use common::process::{Cli, stderr};
    let (t, _dir) = runbook_service(backend).await;
    play(&t, "declare sev1 Region down --runbook regional --drill").await;
    t.ok("declare sev2 Cache stampede").await;
    let TestService { db, .. } = t;
    let cli = Cli {
        db,
        dir: tempfile::tempdir().unwrap(),
    };
    std::fs::write(cli.dir.path().join("firebreak.toml"), "").unwrap();
    let md = cli.ok(&["drill", "report", "INC-1"]).await;
    assert!(md.contains("| `restore` Restore the databases | team dba | T+3m | T+5m | done | alice | **2m late** |  |"), "{md}");
    let out = cli.dir.path().join("report.html");
    let said = cli
        .ok(&[
            "drill",
            "report",
            "1",
            "--format",
            "html",
            "--out",
            out.to_str().unwrap(),
        ])
        .await;
    assert_eq!(
        said.trim_end(),
        format!("Wrote the INC-1 drill report to {}.", out.display())
    );
    assert_clean_html(&std::fs::read_to_string(&out).unwrap());
    for (args, sentence) in [
        (
            ["drill", "report", "INC-2"],
            "error: INC-2 has no runbook, so it has no drill report. A runbook is attached when an incident is declared (`declare … --runbook <name>`, or chosen by severity and title).",
        ),
        (
            ["drill", "report", "INC-9"],
            "error: There is no incident INC-9.",
        ),
        (
            ["drill", "report", "nine"],
            "error: \"nine\" is not an incident; write INC-42 or 42.",
        ),
    ] {
        let run = cli.run(&args).await;
        assert_eq!(run.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&run).trim_end(), sentence);
    }
}

async fn the_postmortem_shows_the_runbook_only_for_an_incident_with_one(backend: Backend) {
    let (t, _dir) = runbook_service(backend).await;
    play(&t, "declare sev1 Region down --runbook regional").await;
    t.ok("declare sev2 Cache stampede").await;
    let with = firebreak::postmortem::load(&t.app.store, IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    let md = firebreak::postmortem::render::markdown(&with).unwrap();
    let section = &md[md
        .find("\n## Runbook: planned versus actual\n\nRunbook Regional outage (`regional`), real incident.\n\n| Step |")
        .expect("the section")..];
    assert!(
        section.contains("| `restore` Restore the databases | team dba | T+3m | T+5m | done | alice | **2m late** |  |"),
        "{section}"
    );
    assert!(section.contains("| Time to freeze | T+2m | not done |"));
    assert!(section.contains(
        "Recovery objective not met yet: the incident is neither mitigated nor resolved (objective 1h00m).\n\n## What went well"
    ));
    let html = firebreak::postmortem::render::html(&with).unwrap();
    assert!(html.contains("<h2 id=\"runbook\">Runbook: planned versus actual</h2>"));
    assert_eq!(
        cells(&assert_clean_html(&html), "table.plan tbody tr")[2][6],
        "2m late"
    );
    assert_exported_templates_match(&with);

    let without = firebreak::postmortem::load(&t.app.store, IncidentNumber(2))
        .await
        .unwrap()
        .unwrap();
    assert!(without.runbook.is_none());
    let md = firebreak::postmortem::render::markdown(&without).unwrap();
    let html = firebreak::postmortem::render::html(&without).unwrap();
    assert!(!md.contains("Runbook") && !html.contains("Runbook"));
    assert!(md.contains("\n## Timeline\n\n"));
}

const HOSTILE: &str = "<script>alert('x')</script> | *em* _u_ [l](javascript:x) `c` &amp;";

async fn hostile_text_renders_safely(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let runbook = RUNBOOK
        .replace("Regional outage", "<img src=x onerror=alert(1)> | Outage")
        .replace("Restore the databases", "Restore | the <b>databases</b>")
        .replace("team:dba", "team:<i>dba</i> | x");
    let t = service(backend, config(&dir, Some(&runbook))).await;
    let declared = t.clock_now();
    t.ok(&format!("declare sev1 {HOSTILE} --runbook hostile --drill"))
        .await;
    at_minute(&t, declared, 4).await;
    let long = format!("{HOSTILE} {}", "y|<\n".repeat(975));
    assert!((3900..4000).contains(&long.chars().count()));
    t.ok(&format!("runbook done INC-1 restore {long}")).await;
    t.ok(&format!("runbook skip INC-1 customers {HOSTILE}"))
        .await;

    let r = report_of(&t, 1).await;
    let md = report::markdown(&r).unwrap();
    assert_tables(&md, 4);
    assert_no_markup(&md);
    let whole = firebreak::postmortem::render::md(long.trim_end());
    assert!(
        md.contains(&format!(
            "## Notes in full\n\n- `restore` Restore \\| the \\<b\\>databases\\</b\\>: {whole}\n"
        )),
        "the whole note, once:\n{md}"
    );
    let html = report::html(&r).unwrap();
    let page = assert_clean_html(&html);
    let rows = cells(&page, "table.plan tbody tr");
    assert_eq!(
        rows[2][0], "restore Restore | the <b>databases</b>",
        "shown as typed"
    );
    assert_eq!(rows[2][1], "team <i>dba</i> | x");
    assert!(rows[2][7].starts_with(HOSTILE) && rows[2][7].ends_with('…'));
    assert!(rows[2][7].chars().count() <= report::TABLE_NOTE_CHARS + 1);
    let items = text_of(&page, "ul li");
    assert!(
        items.iter().any(|s| s.ends_with(long.trim_end())),
        "the whole note, as text"
    );
    assert!(
        items.iter().any(|s| s.ends_with(&format!(": {HOSTILE}"))),
        "the skip's reason"
    );
    assert!(html.contains("<title>INC-1: &#60;script&#62;"));

    let pm = firebreak::postmortem::load(&t.app.store, IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    assert_tables(&firebreak::postmortem::render::markdown(&pm).unwrap(), 4);
    assert_clean_html(&firebreak::postmortem::render::html(&pm).unwrap());
    assert_exported_templates_match(&pm);
}

/// Nothing people typed became markup: no raw HTML, no link, no emphasis.
fn assert_no_markup(md: &str) {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    for event in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match event {
            Event::Html(h) | Event::InlineHtml(h) => panic!("raw HTML in the Markdown: {h}"),
            Event::Start(Tag::Link { dest_url, .. }) => panic!("a link: {dest_url}"),
            Event::Start(Tag::Emphasis) => panic!("emphasis from typed text"),
            _ => {}
        }
    }
}

/// Every table row has its header's cells (a pipe in the text does not make a column):
/// the step table with its `steps` rows, and the three milestones.
fn assert_tables(md: &str, steps: usize) {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let mut rows: Vec<usize> = Vec::new();
    let mut widths: Vec<usize> = Vec::new();
    for event in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::TableHead) | Event::Start(Tag::TableRow) => rows.push(0),
            Event::Start(Tag::TableCell) => *rows.last_mut().unwrap() += 1,
            Event::End(TagEnd::Table) => {
                let head = rows[0];
                assert!(rows.iter().all(|&n| n == head), "cells per row: {rows:?}");
                widths.push(rows.len() - 1);
                rows.clear();
            }
            _ => {}
        }
    }
    assert_eq!(widths, [steps, 3], "the step table and the milestones");
}

/// The text of each cell of each row `selector` picks.
fn cells(page: &scraper::Html, selector: &str) -> Vec<Vec<String>> {
    let rows = scraper::Selector::parse(selector).unwrap();
    let td = scraper::Selector::parse("td").unwrap();
    page.select(&rows)
        .map(|row| {
            row.select(&td)
                .map(|c| c.text().collect::<String>())
                .collect()
        })
        .collect()
}

fn text_of(page: &scraper::Html, selector: &str) -> Vec<String> {
    let sel = scraper::Selector::parse(selector).unwrap();
    page.select(&sel).map(|e| e.text().collect()).collect()
}

/// The page parses without errors and carries no script or event handler.
fn assert_clean_html(html: &str) -> scraper::Html {
    let parsed = scraper::Html::parse_document(html);
    assert!(
        parsed.errors.is_empty(),
        "parse errors: {:?}",
        parsed.errors
    );
    let all = scraper::Selector::parse("*").unwrap();
    for el in parsed.select(&all) {
        assert_ne!(el.value().name(), "script", "a script element");
        for (name, _) in el.value().attrs() {
            assert!(!name.starts_with("on"), "an event handler: {name}");
        }
    }
    parsed
}

/// The built-in post-mortem templates exported as overrides render `view` to the same
/// bytes, runbook section included.
fn assert_exported_templates_match(view: &firebreak::postmortem::view::PostmortemView) {
    let dir = tempfile::tempdir().unwrap();
    overrides::export(dir.path(), false).unwrap();
    for format in [Format::Markdown, Format::Html] {
        let built_in = match format {
            Format::Markdown => firebreak::postmortem::render::markdown(view).unwrap(),
            Format::Html => firebreak::postmortem::render::html(view).unwrap(),
        };
        let exported = overrides::render(Some(dir.path()), view, format).unwrap();
        assert_eq!(exported.warning, None, "{format:?}");
        assert!(
            exported.text == built_in,
            "{format:?}: the override differs"
        );
    }
}
