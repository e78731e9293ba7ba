//! Post-mortems rendered from realistic records: golden files (the same bytes on SQLite and
//! Postgres), a CommonMark parse that finds every section, well-formed SVG, prompts for
//! unwritten sections, flagged impossible times, late updates; the built-in templates
//! exported as Jinja overrides render the same bytes, through the library and the CLI.

mod common;

use std::time::Duration as StdDuration;

use chrono::{Duration, TimeZone, Utc};
use common::*;
use firebreak::incident::IncidentNumber;
use firebreak::incident::clock::{Clock, ManualClock};
use firebreak::postmortem::overrides::{self, Format};
use firebreak::postmortem::view::PostmortemView;
use firebreak::postmortem::{load, render};

on_both!(
    realistic_sev1,
    drill,
    missing_and_out_of_order_times,
    exported_templates_through_the_cli,
    an_author_stays_an_author_after_someone_edits_their_section,
);

/// Every section, in the order of the references people use (Google's SRE book example,
/// Atlassian's and PagerDuty's templates).
const SECTIONS: [&str; 19] = [
    "Summary",
    "Impact",
    "Key times and durations",
    "Trigger",
    "Detection",
    "Root cause",
    "Contributing factors",
    "Resolution and recovery",
    "Responders and roles",
    "Timeline",
    "What went well",
    "What went wrong",
    "Where we got lucky",
    "Action items",
    "Supporting information",
    "Merge-freeze record",
    "Recent changes",
    "Status updates: promised and kept",
    "Appendix: action-item bookkeeping",
];

/// A service on a fixed clock (2026-03-14 09:00 UTC) with GitHub configured but no worker,
/// so the record holds only what commands wrote, at the clock's times.
async fn fixed(backend: Backend) -> TestService {
    let db = TestDb::new(backend).await;
    let config = test_config(&common::github::github_config("\"acme/api\"", "60s", ""));
    let store = db.store().await;
    known_people(&store).await;
    let mut app = firebreak::app::App::with_store(
        config,
        store,
        common::github::integrations("http://127.0.0.1:9"),
    )
    .unwrap();
    let clock = ManualClock::starting_at(Utc.with_ymd_and_hms(2026, 3, 14, 9, 0, 0).unwrap());
    app.service = app
        .service
        .clone()
        .with_clock(std::sync::Arc::new(clock.clone()));
    TestService { db, app, clock }
}

async fn step(t: &TestService, minutes: i64, line: &str) {
    t.clock.advance(Duration::minutes(minutes));
    t.ok(line).await;
}

/// The post-mortem view of incident `n`, as the renderers get it.
async fn view_of(t: &TestService, n: i64) -> PostmortemView {
    load(&t.app.store, IncidentNumber(n))
        .await
        .unwrap()
        .expect("the incident exists")
}

async fn render_md(t: &TestService, n: i64) -> String {
    render::markdown(&view_of(t, n).await).unwrap()
}

fn golden(name: &str, actual: &str) {
    let path = format!(
        "{}/tests/fixtures/postmortem/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var("FIREBREAK_UPDATE_GOLDEN").is_ok() {
        std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("missing golden file {path}; run with FIREBREAK_UPDATE_GOLDEN=1")
    });
    assert!(
        expected == actual,
        "{name} differs from its golden file; rerun with FIREBREAK_UPDATE_GOLDEN=1 and review the diff.\n{actual}"
    );
}

/// Exports the built-in templates as overrides (what `postmortem templates export` calls)
/// and renders `view` with them: the same bytes as the built-ins, Markdown and HTML, and no
/// warning (a broken override would fall back to the built-in, with one).
fn assert_exported_templates_match(view: &PostmortemView) {
    let dir = tempfile::tempdir().unwrap();
    let files = overrides::export(dir.path(), false).unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
    for format in [Format::Markdown, Format::Html] {
        let built_in = match format {
            Format::Markdown => render::markdown(view).unwrap(),
            Format::Html => render::html(view).unwrap(),
        };
        let exported = overrides::render(Some(dir.path()), view, format).unwrap();
        assert_eq!(
            exported.warning, None,
            "{format:?}: the exported override renders"
        );
        assert_same_bytes(&format!("{format:?}"), &exported.text, &built_in);
    }
}

/// Equal strings, or a failure that shows where they part.
fn assert_same_bytes(what: &str, actual: &str, expected: &str) {
    if actual == expected {
        return;
    }
    let at = actual
        .bytes()
        .zip(expected.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(actual.len().min(expected.len()));
    let around = |s: &str| {
        String::from_utf8_lossy(&s.as_bytes()[at.saturating_sub(60)..(at + 60).min(s.len())])
            .into_owned()
    };
    panic!(
        "{what}: the exported template's output differs from the built-in's at byte {at} \
         (lengths {} and {}):\nexported: {:?}\nbuilt-in: {:?}",
        actual.len(),
        expected.len(),
        around(actual),
        around(expected)
    );
}

fn headings(md: &str) -> Vec<String> {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for event in Parser::new(md) {
        match event {
            Event::Start(Tag::Heading { .. }) => current = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = current.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => out.extend(current.take()),
            _ => {}
        }
    }
    out
}

/// The page parses with zero errors, carries no script or event handler, and its chart is
/// well-formed SVG; returns the parsed page.
fn assert_clean_html(html: &str) -> scraper::Html {
    assert_no_script(html);
    assert_svg_well_formed(html);
    let parsed = scraper::Html::parse_document(html);
    assert!(
        parsed.errors.is_empty(),
        "the HTML parses without errors: {:?}",
        parsed.errors
    );
    parsed
}

/// No script element and no event-handler attribute anywhere in the page.
fn assert_no_script(html: &str) {
    let parsed = scraper::Html::parse_document(html);
    let all = scraper::Selector::parse("*").unwrap();
    for el in parsed.select(&all) {
        assert_ne!(el.value().name(), "script", "a script element");
        for (name, _) in el.value().attrs() {
            assert!(!name.starts_with("on"), "an event handler: {name}");
        }
    }
}

fn assert_svg_well_formed(html: &str) {
    let start = html.find("<svg").expect("an SVG chart");
    let end = html.find("</svg>").expect("the SVG closes") + "</svg>".len();
    let mut reader = quick_xml::Reader::from_str(&html[start..end]);
    let mut depth = 0i32;
    loop {
        match reader.read_event().expect("well-formed SVG") {
            quick_xml::events::Event::Start(_) => depth += 1,
            quick_xml::events::Event::End(_) => depth -= 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "every SVG element is closed");
}

async fn realistic_sev1(backend: Backend) {
    let t = fixed(backend).await;
    t.ok("declare sev1 Checkout API returns 502 --started 2026-03-14T08:42:00Z --detected 2026-03-14T08:51:00Z").await;
    step(&t, 3, "ack INC-1").await;
    step(&t, 2, "assign INC-1 comms bob").await;
    step(&t, 4, "note INC-1 Error rate at 38% on checkout-api").await;
    step(
        &t,
        6,
        "update INC-1 Investigating elevated 502s from checkout-api; payments unaffected",
    )
    .await;
    for i in 0..17 {
        step(
            &t,
            1,
            &format!("note INC-1 Observation {i}: pods restarting in eu-west-1, *not* us-east"),
        )
        .await;
    }
    step(&t, 2, "status INC-1 identified").await;
    step(
        &t,
        4,
        "update INC-1 Bad connection-pool config in deploy 4512 identified --next 20m",
    )
    .await;
    step(&t, 35, "update INC-1 Rolling back deploy 4512").await;
    step(&t, 3, "assign INC-1 commander carol").await;
    for i in 0..6 {
        step(&t, 2, &format!("note INC-1 Rollback progress {i}/6")).await;
    }
    step(&t, 2, "status INC-1 mitigated").await;
    step(
        &t,
        10,
        "update INC-1 Error rate back to baseline; monitoring",
    )
    .await;
    step(&t, 20, "unfreeze INC-1").await;
    // Monitored overnight: the incident runs into a second day before it is resolved.
    step(
        &t,
        22 * 60,
        "note INC-1 No errors overnight; closing in the morning",
    )
    .await;
    step(&t, 20, "resolve INC-1 Rolled back deploy 4512").await;
    step(
        &t,
        60,
        "action add INC-1 Validate pool settings in CI --owner dana --term immediate",
    )
    .await;
    step(
        &t,
        1,
        "action add INC-1 Canary stage for checkout-api --owner erin --term medium",
    )
    .await;
    step(
        &t,
        1,
        "action add INC-1 Load-test connection limits quarterly --term long",
    )
    .await;
    step(&t, 1, "action done INC-1 1").await;
    let again = t.run("action done INC-1 1").await.unwrap_err();
    assert!(
        again
            .user_message()
            .contains("action item 1 is already done"),
        "ticked once, refused the second time (no second bookkeeping row): {again}"
    );
    step(
        &t,
        1,
        "postmortem set INC-1 summary Checkout failed for 2 hours after a bad pool config shipped.",
    )
    .await;
    step(
        &t,
        1,
        "postmortem set INC-1 impact About 18% of checkouts failed between 08:42 and 10:52 UTC:\n\n- ~12,000 orders delayed\n- See [the dashboard](https://grafana.example/d/checkout) and `pool_active`\n\n<script>alert(1)</script>",
    )
    .await;
    step(
        &t,
        1,
        "postmortem set INC-1 root-cause Deploy 4512 cut the pool to 2 connections.",
    )
    .await;

    step(&t, 1, "postmortem INC-1 reviewer add dana").await;
    step(&t, 1, "postmortem INC-1 status in-review").await;
    let err = t
        .run("postmortem INC-1 reviewer add dana")
        .await
        .unwrap_err();
    assert!(err.user_message().contains("already reviews"), "{err}");

    let md = render_md(&t, 1).await;
    golden("sev1.md", &md);
    assert!(
        md.contains("\nstatus: in-review\n") && md.contains("\nreviewers: [\"dana\"]\n"),
        "the document's status and reviewers are in its front matter"
    );
    let found = headings(&md);
    let in_order: Vec<&String> = found
        .iter()
        .filter(|h| SECTIONS.iter().any(|s| h.starts_with(s)))
        .collect();
    assert_eq!(
        in_order.len(),
        SECTIONS.len(),
        "every section once: {found:?}"
    );
    for (h, want) in in_order.iter().zip(SECTIONS) {
        assert!(h.starts_with(want), "sections in order: {found:?}");
    }
    assert_eq!(
        md.matches("**late** (due").count(),
        1,
        "the one late update is flagged"
    );
    assert!(md.contains("on time (due"));
    assert!(
        md.contains(
            "> _Not written yet._ Add it with `/incident postmortem set went-well <text>`."
        )
    );
    assert!(
        md.contains("\\*not\\* us-east"),
        "a note is chat, quoted as text, not turned into emphasis"
    );
    assert!(
        md.contains("carol took over as commander from alice"),
        "the commander handover is told as a sentence: {md}"
    );
    assert!(
        md.contains("Severity")
            || md.contains("Status changed from investigating to identified by"),
        "status changes are sentences"
    );
    assert!(
        !md.contains("action_item") && md.contains("### Appendix: action-item bookkeeping"),
        "bookkeeping is in the appendix"
    );
    assert!(
        md.starts_with(
            "---\nincident: INC-1\ntitle: \"Checkout API returns 502\"\nseverity: SEV1\n"
        ),
        "front matter for docs sites: {}",
        &md[..200]
    );
    assert!(
        md.contains("Durations count from impact start, 2026-03-14 08:42:00 UTC."),
        "says which start the durations use"
    );
    let view = view_of(&t, 1).await;
    assert!(view.timeline.len() >= 35, "{}", view.timeline.len());
    assert_eq!(
        view.appendix.len(),
        6,
        "bookkeeping in the appendix: three action items added, one done, a reviewer, a status"
    );
    let html = render::html(&view).unwrap();
    golden("sev1.html", &html);
    assert!(
        html.contains("<li>~12,000 orders delayed</li>")
            && html.contains(r#"<a href="https://grafana.example/d/checkout" rel="noopener noreferrer">the dashboard</a>"#)
            && html.contains("<code>pool_active</code>"),
        "authored Markdown renders: lists, links, code"
    );
    assert!(
        md.contains("- ~12,000 orders delayed\n- See [the dashboard](https://grafana.example/d/checkout) and `pool_active`"),
        "and stays Markdown in the .md"
    );
    let parsed = assert_clean_html(&html);
    let h2 = scraper::Selector::parse("h2, h3").unwrap();
    let titles: Vec<String> = parsed.select(&h2).map(|h| h.text().collect()).collect();
    for section in SECTIONS {
        assert!(
            titles.iter().any(|t| t.starts_with(section)),
            "HTML lacks {section}: {titles:?}"
        );
    }
    assert!(html.contains(">merge freeze</text>") && html.contains("status update (late)"));
    assert!(
        html.contains(">impact before declaration</text>"),
        "impact before the declaration is drawn"
    );
    assert_eq!(
        render::markdown(&view).unwrap(),
        md,
        "re-rendering gives the same bytes"
    );
    assert_exported_templates_match(&view);
}

/// Authors are everyone who wrote a section, in the order they first did, not only the last
/// writer of each: Bob editing Alice's impact does not make her text his alone.
async fn an_author_stays_an_author_after_someone_edits_their_section(backend: Backend) {
    let t = fixed(backend).await;
    let bob = firebreak::incident::Actor::new(
        firebreak::incident::timeline::Source::Slack,
        "U_BOB",
        "bob",
    );
    let bob_id = firebreak::incident::Identity::slack("U_BOB").unwrap();
    t.app.store.hint_person(&bob_id, "bob").await.unwrap();
    t.ok("declare sev2 Search is slow").await;
    step(&t, 5, "postmortem set INC-1 impact Search p99 at 4 s").await;
    t.clock.advance(Duration::minutes(5));
    t.run_as(
        &bob,
        "postmortem set INC-1 impact Search p99 at 4 s for 20 minutes",
    )
    .await
    .unwrap();
    t.run_as(&bob, "postmortem set INC-1 summary Slow search")
        .await
        .unwrap();
    step(&t, 1, "postmortem set INC-1 lucky Low traffic").await;
    step(
        &t,
        1,
        "postmortem set INC-1 went-poorly Paged the wrong team",
    )
    .await;
    let md = render_md(&t, 1).await;
    assert!(
        md.contains("\nauthors: [\"alice\", \"bob\"]\n"),
        "both writers, first Alice, once each: {}",
        md.lines().take(14).collect::<Vec<_>>().join("\n")
    );
    assert!(
        md.contains("Search p99 at 4 s for 20 minutes"),
        "Bob's edit is the text"
    );
    assert!(
        md.contains("## What went wrong\n\nPaged the wrong team"),
        "`went-poorly`, the section's old name, still writes it"
    );
    assert!(
        md.contains("- Time to detect: not recorded (impact start unknown)"),
        "no start, no 0s: {md}"
    );
    // Detected after the declaration (a clock a minute ahead): flagged, not a duration.
    let started = (t.clock.now() - Duration::minutes(5)).to_rfc3339();
    let later = (t.clock.now() + Duration::seconds(50)).to_rfc3339();
    t.ok(&format!(
        "declare sev3 Skewed clock --started {started} --detected {later}"
    ))
    .await;
    let md = render_md(&t, 2).await;
    assert!(
        md.contains("- Time to detect: **⚠ impossible order: detected after the declaration**"),
        "{md}"
    );
}

async fn drill(backend: Backend) {
    let t = fixed(backend).await;
    t.ok("declare sev2 Region failover rehearsal --drill").await;
    step(&t, 5, "update INC-1 Failing over to eu-central-1").await;
    let open = view_of(&t, 1).await;
    assert_exported_templates_match(&open);
    step(&t, 25, "resolve INC-1 Failover took 25 minutes").await;
    let md = render_md(&t, 1).await;
    golden("drill.md", &md);
    let resolved = view_of(&t, 1).await;
    let html = render::html(&resolved).unwrap();
    golden("drill.html", &html);
    assert_clean_html(&html);
    assert!(html.contains("(DRILL)"), "the page says it was a drill");
    assert!(md.contains("\n# INC-1: Region failover rehearsal (DRILL)\n"));
    assert!(
        md.contains("\ndrill: true\n"),
        "front matter says it was a drill"
    );
    // Entries added after resolution appear when rendered again.
    step(&t, 30, "note INC-1 The runbook step for DNS was missing").await;
    assert!(
        render_md(&t, 1)
            .await
            .contains("The runbook step for DNS was missing")
    );
    step(&t, 1, "note INC-1 <script>alert(1)</script> & friends").await;
    let view = view_of(&t, 1).await;
    let html = render::html(&view).unwrap();
    assert_clean_html(&html);
    assert!(
        !html.contains("<script>")
            && html.contains("&#60;script&#62;alert(1)&#60;/script&#62; &#38; friends"),
        "HTML is escaped: {}",
        html.lines().find(|l| l.contains("alert")).unwrap_or("")
    );
    // In the Markdown, raw HTML and links in what people typed stay text.
    step(
        &t,
        1,
        "note INC-1 <img src=x onerror=alert(1)> [click](https://evil.example) <https://evil.example> <b>bold</b>",
    )
    .await;
    let md = render_md(&t, 1).await;
    use pulldown_cmark::{Event, Parser, Tag};
    let live: Vec<String> = Parser::new(&md)
        .filter_map(|e| match e {
            Event::Html(h) | Event::InlineHtml(h) => Some(h.to_string()),
            Event::Start(Tag::Link { dest_url, .. }) => Some(dest_url.to_string()),
            _ => None,
        })
        .collect();
    assert!(live.is_empty(), "no HTML or links from user text: {live:?}");
    assert!(md.contains("onerror=alert(1)"), "the text itself is kept");
    let view = view_of(&t, 1).await;
    assert_exported_templates_match(&view);
}

async fn missing_and_out_of_order_times(backend: Backend) {
    let t = fixed(backend).await;
    // Detected before it started: someone typed the wrong time. `declare` refuses that now,
    // but records written before it did can hold it, so it is written directly.
    let err = t.run("declare sev3 Search results stale --started 2026-03-14T08:30:00Z --detected 2026-03-14T08:10:00Z").await.unwrap_err();
    assert!(
        err.user_message()
            .contains("--detected is before --started"),
        "{err}"
    );
    t.ok("declare sev3 Search results stale --started 2026-03-14T08:30:00Z")
        .await;
    let mut inc = t
        .app
        .store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    inc.detected_at = Some(Utc.with_ymd_and_hms(2026, 3, 14, 8, 10, 0).unwrap());
    let mut tx = t.app.store.begin().await.unwrap();
    assert!(
        tx.compare_and_set_incident(&inc, inc.version)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let err = t.run("postmortem INC-1 status final").await.unwrap_err();
    assert!(
        err.user_message()
            .contains("can't be final while the incident is open"),
        "{err}"
    );
    step(&t, 90, "resolve INC-1").await;
    step(&t, 1, "postmortem INC-1 status final").await;
    let edit = t
        .run("postmortem set INC-1 lucky Edited after final")
        .await
        .unwrap_err();
    assert!(
        edit.user_message()
            .contains("is final; set its status back"),
        "a final document is not edited behind its reviewers' backs: {edit}"
    );
    let md = render_md(&t, 1).await;
    golden("odd-times.md", &md);
    assert!(!md.contains("Edited after final"));
    assert!(md.contains("\nstatus: final\n"));
    assert!(
        md.contains("Time to detect: **⚠ impossible order: detected before impact start**"),
        "{md}"
    );
    assert!(md.contains("Acknowledged: not recorded"));
    assert!(md.contains("Time to mitigate: not recorded"));
    assert!(md.contains("No status updates were sent."));
    let view = view_of(&t, 1).await;
    let html = render::html(&view).unwrap();
    golden("odd-times.html", &html);
    assert_clean_html(&html);
    assert!(
        html.contains(">impact before declaration</text>"),
        "impact from 08:30, declared at 09:00, is drawn"
    );
    assert_exported_templates_match(&view);
    let _ = StdDuration::from_secs(0);
}

/// `firebreak postmortem templates export DIR` writes both templates and the config that
/// uses them; a second export refuses to overwrite them; and with that config the CLI's
/// post-mortems are the same bytes as without it (while an edit to a template shows).
async fn exported_templates_through_the_cli(backend: Backend) {
    use common::process::{Cli, stderr};
    let cli = Cli::new(backend, "").await;
    cli.ok(&[
        "incident",
        "declare",
        "sev2",
        "Queue <backlog> isn't",
        "draining",
    ])
    .await;
    cli.ok(&[
        "incident",
        "update",
        "1",
        "Draining *slowly*: [graph](https://g.example) & <script>alert(1)</script>",
    ])
    .await;
    cli.ok(&["incident", "note", "1", "\"quoted\" <b>text</b> & 'more'"])
        .await;
    let runs: [&[&str]; 4] = [
        &["postmortem", "1"],
        &["postmortem", "INC-1", "--format", "html"],
        &["postmortem", "--format", "md", "INC-1"],
        &["postmortem", "1", "--format", "html"],
    ];
    let mut built_in = Vec::new();
    for args in runs {
        built_in.push(cli.ok(args).await);
    }
    assert!(
        built_in[1].contains("<h1>INC-1: Queue &#60;backlog&#62; isn&#39;t draining</h1>"),
        "{}",
        built_in[1]
    );

    // A path the user can fix is a sentence and exit 2, with nothing else on stderr.
    let nowhere = cli.dir.path().join("no such dir").join("pm.html");
    let bad_out = cli
        .run(&["postmortem", "1", "--out", nowhere.to_str().unwrap()])
        .await;
    assert_eq!(bad_out.status.code(), Some(2));
    let err = stderr(&bad_out);
    assert!(
        err.trim_end()
            == format!(
                "error: Could not write the post-mortem to {}: a directory on the path does not exist. Give a file in a directory that exists.",
                nowhere.display()
            ),
        "{err}"
    );

    let dir = cli.dir.path().join("pm templates");
    let export = ["postmortem", "templates", "export", dir.to_str().unwrap()];
    let said = cli.ok(&export).await;
    for format in [Format::Markdown, Format::Html] {
        let file = dir.join(format.file_name());
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format.jinja_source()
        );
        assert!(
            said.contains(&file.display().to_string()),
            "names {}: {said}",
            file.display()
        );
    }
    let config = &said[said.find("[postmortem]").expect("the config to use them")..];
    assert_eq!(
        config.trim_end(),
        format!(
            "[postmortem]\ntemplates_dir = {:?}",
            dir.display().to_string()
        )
    );

    std::fs::write(dir.join("postmortem.html"), "edited").unwrap();
    let again = cli.run(&export).await;
    assert_eq!(again.status.code(), Some(2), "refuses to overwrite");
    let err = stderr(&again);
    assert!(
        err.starts_with("error: ")
            && err.contains("postmortem.md and ")
            && err.contains("already exist; nothing was written. Pass --force to overwrite them.")
            && err.lines().count() == 1,
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("postmortem.html")).unwrap(),
        "edited",
        "left alone"
    );
    let mut forced = export.to_vec();
    forced.push("--force");
    cli.ok(&forced).await;
    assert_eq!(
        std::fs::read_to_string(dir.join("postmortem.html")).unwrap(),
        Format::Html.jinja_source()
    );

    std::fs::write(cli.dir.path().join("firebreak.toml"), config).unwrap();
    for (args, expected) in runs.iter().zip(&built_in) {
        let out = cli.run(args).await;
        assert!(
            out.status.success() && stderr(&out).is_empty(),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_same_bytes(
            &format!("{args:?}"),
            &String::from_utf8(out.stdout).unwrap(),
            expected,
        );
    }
    let edited = Format::Html
        .jinja_source()
        .replace("<h1>", "<h1 class=\"ours\">");
    std::fs::write(dir.join("postmortem.html"), edited).unwrap();
    let ours = cli.ok(runs[1]).await;
    assert!(
        ours.contains("<h1 class=\"ours\">INC-1: Queue &#60;backlog&#62;"),
        "the override is the one rendered: {ours}"
    );
}

#[tokio::test]
async fn template_overrides_are_used_and_broken_ones_fall_back_naming_file_and_line() {
    use firebreak::postmortem::overrides::{Format, render as render_with};
    let t = fixed(Backend::Sqlite).await;
    t.ok("declare sev2 Login errors").await;
    step(&t, 5, "update INC-1 Fixed the session store").await;
    let view = view_of(&t, 1).await;
    let dir = tempfile::tempdir().unwrap();

    std::fs::write(dir.path().join("postmortem.md"), "# {{ v.number }} for the board\n{% for e in v.timeline %}* {{ e.offset }} {{ e.text }}\n{% endfor %}").unwrap();
    let ok = render_with(Some(dir.path()), &view, Format::Markdown).unwrap();
    assert_eq!(ok.warning, None);
    assert_eq!(
        ok.text,
        "# INC-1 for the board\n* T+0s Declared SEV2: Login errors\n* T+5m Fixed the session store\n"
    );

    std::fs::write(dir.path().join("postmortem.html"), "<h1>{{ v.number }}</h1>\n<p>{{ v.title }}</p>\n{% for e in v.timeline %}\n{{ e.text }\n{% endfor %}").unwrap();
    let broken = render_with(Some(dir.path()), &view, Format::Html).unwrap();
    let warning = broken.warning.expect("the broken override is reported");
    assert!(
        warning.contains("postmortem.html:4"),
        "names the file and line: {warning}"
    );
    assert!(
        broken.text.starts_with("<!DOCTYPE html>")
            && broken.text.contains("<h2 id=\"timeline\">Timeline</h2>"),
        "fell back to the built-in template"
    );
    let _ = StdDuration::ZERO;
}
