//! The incident lifecycle through the service, on SQLite and on Postgres: the timeline,
//! compare-and-set under concurrency, checked transitions, permissions.

mod common;

use chrono::Duration;
use common::*;
use firebreak::incident::timeline::format_offset;
use firebreak::incident::{
    Actor, EntryKind, IncidentNumber, ReplyBody, ServiceError, Source, Status, UserError,
};

on_both!(
    lifecycle_timeline_has_every_entry_in_order_with_offsets,
    fifty_concurrent_updates_are_all_recorded,
    two_concurrent_resolves_one_wins,
    two_replicas_declaring_at_once_hand_out_every_number_once,
    double_submits_at_once_declare_each_incident_once,
    bad_input_is_rejected_and_changes_nothing,
    refused_commands_are_recorded_and_change_nothing,
    stale_version_gets_a_conflict,
    timeline_is_append_only_in_the_database,
    overdue_updates_are_nudged_once_per_promise,
    a_long_list_keeps_the_oldest_sev1s_and_says_what_it_leaves_out,
);

async fn lifecycle_timeline_has_every_entry_in_order_with_offsets(backend: Backend) {
    let t = service(backend, test_config("")).await;
    let declared = t.ok("declare sev1 Checkout API returns 502").await;
    let inc = declared.reply.incident().unwrap().clone();
    assert_eq!(inc.number, IncidentNumber(1));
    let steps = [
        (Duration::minutes(2), "update INC-1 Rolled back the deploy"),
        (
            Duration::minutes(25),
            "update INC-1 Error rate falling --next 15m",
        ),
        (Duration::minutes(38), "update INC-1 Error rate at baseline"),
        (Duration::minutes(5), "status INC-1 mitigated"),
        (
            Duration::hours(23),
            "resolve INC-1 Bad config in deploy 4512",
        ),
    ];
    for (wait, line) in steps {
        t.clock.advance(wait);
        t.ok(line).await;
    }
    let stored = t
        .app
        .store
        .incident_by_number(inc.number)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, Status::Resolved);
    assert_eq!(stored.version, 6, "one compare-and-set per change");
    assert_eq!(stored.summary.as_deref(), Some("Bad config in deploy 4512"));
    assert_eq!(
        stored.mitigated_at.unwrap() - stored.declared_at,
        Duration::minutes(70)
    );

    let timeline = t.app.store.timeline(&inc.id).await.unwrap();
    let got: Vec<(EntryKind, String)> = timeline
        .iter()
        .map(|e| (e.kind, e.offset_from(stored.declared_at)))
        .collect();
    let want = [
        (EntryKind::Declared, "T+0s"),
        (EntryKind::Update, "T+2m"),
        (EntryKind::Update, "T+27m"),
        (EntryKind::Update, "T+1h05m"),
        (EntryKind::StatusChanged, "T+1h10m"),
        (EntryKind::Resolved, "T+1d00h"),
    ];
    let want: Vec<(EntryKind, String)> = want.iter().map(|(k, o)| (*k, o.to_string())).collect();
    assert_eq!(got, want);
    assert_eq!(timeline[1].text, "Rolled back the deploy");
    assert!(
        timeline
            .iter()
            .all(|e| e.actor == "slack:U_ALICE" && e.source == Source::Slack)
    );
    assert!(
        timeline
            .windows(2)
            .all(|w| w[0].occurred_at <= w[1].occurred_at)
    );
    assert_eq!(
        format_offset(timeline[3].occurred_at - stored.declared_at),
        "T+1h05m"
    );
}

async fn fifty_concurrent_updates_are_all_recorded(backend: Backend) {
    let t = service(backend, test_config("")).await;
    t.ok("declare sev2 Queue backlog").await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let service = t.app.service.clone();
        tasks.push(tokio::spawn(async move {
            let actor = Actor::new(Source::Discord, format!("{i}"), format!("responder-{i}"));
            let cmd = firebreak::incident::Command::on(
                IncidentNumber(1),
                firebreak::incident::command::Change::Update {
                    text: format!("update number {i}"),
                    next: None,
                },
            );
            service.apply(cmd, &actor).await
        }));
    }
    for task in tasks {
        task.await
            .unwrap()
            .expect("every concurrent update succeeds");
    }
    let inc = t
        .app
        .store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        inc.version, 51,
        "each update was a separate compare-and-set"
    );
    let timeline = t.app.store.timeline(&inc.id).await.unwrap();
    let mut texts: Vec<String> = timeline
        .iter()
        .filter(|e| e.kind == EntryKind::Update)
        .map(|e| e.text.clone())
        .collect();
    texts.sort();
    let mut want: Vec<String> = (0..50).map(|i| format!("update number {i}")).collect();
    want.sort();
    assert_eq!(texts, want);
}

async fn two_concurrent_resolves_one_wins(backend: Backend) {
    let t = service(backend, test_config("")).await;
    t.ok("declare sev2 Login failures").await;
    let (a, b) = tokio::join!(
        t.run("resolve INC-1 fixed by A"),
        t.run("resolve INC-1 fixed by B")
    );
    let results = [a, b];
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "exactly one resolve wins");
    let loser = results.into_iter().find_map(|r| r.err()).unwrap();
    assert!(
        matches!(loser, ServiceError::User(UserError::AlreadyResolved)),
        "{loser}"
    );
    assert_eq!(loser.user_message(), "The incident is already resolved.");
    let (_, timeline) = incident_timeline(&t.app.store, 1).await;
    assert_eq!(
        timeline
            .iter()
            .filter(|e| e.kind == EntryKind::Resolved)
            .count(),
        1
    );
}

/// Two replicas on one database declaring at once and in turn: on SQLite each predicts its
/// next `INC-n` from the last one it handed out, which the other replica keeps making stale;
/// every declaration still gets its own number, in order, with nothing lost or doubled.
async fn two_replicas_declaring_at_once_hand_out_every_number_once(backend: Backend) {
    let t = service(backend, test_config("")).await;
    let other =
        firebreak::app::App::with_store(test_config(""), t.db.store().await, Default::default())
            .expect("a second replica");
    let declare = |app: &firebreak::app::App, title: String| {
        let service = app.service.clone();
        async move {
            let outcome = declare_on(&service, &title).await.expect("declared");
            outcome.reply.incident().unwrap().number.0
        }
    };
    let mut numbers = Vec::new();
    for round in 0..6 {
        let here = declare(&t.app, format!("here {round}"));
        let there = declare(&other, format!("there {round}"));
        let (a, b) = tokio::join!(here, there);
        numbers.extend([a, b]);
        // And one on each in turn, so each replica's last number is the other's stale one.
        numbers.push(declare(&t.app, format!("turn {round}")).await);
        numbers.push(declare(&other, format!("turn' {round}")).await);
    }
    let mut sorted = numbers.clone();
    sorted.sort();
    assert_eq!(sorted, (1..=24).collect::<Vec<i64>>(), "{numbers:?}");
    assert_written_up_to(&t.app.store, 24).await;
}

/// `declare sev2 <title>` through `service`, as Alice.
async fn declare_on(
    service: &firebreak::incident::IncidentService,
    title: &str,
) -> Result<firebreak::incident::Outcome, ServiceError> {
    let line = format!("declare sev2 {title}");
    let cmd = firebreak::incident::command::parse_line(&line, Default::default()).unwrap();
    service.apply(cmd, &alice()).await
}

/// INC-1 to INC-`last` are all written, and nothing after them.
async fn assert_written_up_to(store: &firebreak::store::Store, last: i64) {
    for n in 1..=last {
        let incident = store.incident_by_number(IncidentNumber(n)).await.unwrap();
        let incident = incident.unwrap_or_else(|| panic!("INC-{n} was handed out but not written"));
        assert_eq!(incident.number, IncidentNumber(n));
    }
    let after = store.incident_by_number(IncidentNumber(last + 1)).await;
    assert!(after.unwrap().is_none(), "INC-{} was written", last + 1);
}

/// Ten declarations, each submitted twice at once (a double click, a platform's retry racing
/// the original): twenty transactions that share group commits on SQLite, where every copy
/// predicts a number and the loser of each pair finds its prediction stale. Each delivery
/// declares exactly one incident, the other copy is told it is a duplicate, and the
/// numbers run 1 to 10 with nothing skipped.
async fn double_submits_at_once_declare_each_incident_once(backend: Backend) {
    use firebreak::store::Delivery;

    let t = service(backend, test_config("")).await;
    let submit = |n: usize| {
        let service = t
            .app
            .service
            .for_delivery(Delivery::new("slack-command", format!("trigger-{n}")));
        async move { declare_on(&service, &format!("Double submit {n}")).await }
    };
    let copies = (0..10).flat_map(|n| [submit(n), submit(n)]);
    let outcomes = futures::future::join_all(copies).await;
    let mut numbers = Vec::new();
    for (i, pair) in outcomes.chunks(2).enumerate() {
        let declared: Vec<i64> = pair
            .iter()
            .filter_map(|o| o.as_ref().ok())
            .map(|o| o.reply.incident().unwrap().number.0)
            .collect();
        assert_eq!(declared.len(), 1, "delivery {i}: {pair:?}");
        let duplicate = pair.iter().find_map(|o| o.as_ref().err()).unwrap();
        assert!(matches!(duplicate, ServiceError::Duplicate), "{duplicate}");
        numbers.extend(declared);
    }
    numbers.sort();
    assert_eq!(numbers, (1..=10).collect::<Vec<i64>>());
    assert_written_up_to(&t.app.store, 10).await;
    let next = t.ok("declare sev3 After the storm").await;
    assert_eq!(next.reply.incident().unwrap().number, IncidentNumber(11));
}

async fn bad_input_is_rejected_and_changes_nothing(backend: Backend) {
    let hook = "https://hooks.invalid/T0/B0/x";
    let t = service(backend, test_config(&webhook("general", hook, "SEV4"))).await;
    t.ok("declare sev2 Search is slow").await;
    t.ok("status INC-1 mitigated").await;
    let before = snapshot(&t).await;

    let cases = [
        ("severity INC-1 sev7", "not a severity"),
        ("declare sev0 Nope", "not a severity"),
        ("delcare sev1 typo", "Did you mean `declare`?"),
        (
            "status INC-1 identified",
            "allowed: investigating, monitoring, resolved",
        ),
        ("status INC-1 mitigated", "already mitigated"),
        ("update INC-99 hello", "There is no incident INC-99."),
        ("update hello", "Name the incident"),
        ("assign INC-1 boss bob", "not a role"),
    ];
    for (line, expected) in cases {
        let err = t.run(line).await.expect_err(line);
        assert!(matches!(err, ServiceError::User(_)), "{line}: {err}");
        assert!(
            err.user_message().contains(expected),
            "{line}: {}",
            err.user_message()
        );
    }
    assert_eq!(
        snapshot(&t).await,
        before,
        "rejected commands changed nothing"
    );
}

async fn refused_commands_are_recorded_and_change_nothing(backend: Backend) {
    let config = test_config(
        "[permissions]\ndeclare = [\"slack:U_ALICE\"]\nresolve = [\"slack:U_ALICE\"]\n",
    );
    let t = service(backend, config).await;
    let mallory = Actor::new(Source::Slack, "U_MALLORY", "mallory");
    let err = t
        .run_as(&mallory, "declare sev1 Fake outage")
        .await
        .unwrap_err();
    assert!(
        err.user_message().contains("not allowed to declare"),
        "{}",
        err.user_message()
    );
    let audit = t.app.store.audit_log(10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].kind, EntryKind::Refused);
    assert!(audit[0].text.contains("slack:U_MALLORY"));
    assert!(
        t.app
            .store
            .list_incidents(false, 10)
            .await
            .unwrap()
            .is_empty()
    );

    t.ok("declare sev1 Real outage").await;
    let before = snapshot(&t).await;
    let err = t
        .run_as(&mallory, "status INC-1 resolved")
        .await
        .unwrap_err();
    assert!(err.user_message().contains("not allowed to resolve"));
    let inc = t
        .app
        .store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inc.status, Status::Investigating);
    assert_eq!(inc.version, before.1);
    let timeline = t.app.store.timeline(&inc.id).await.unwrap();
    assert_eq!(timeline.last().unwrap().kind, EntryKind::Refused);
    // The CLI is trusted by default.
    let cli = Actor::new(Source::Cli, "ops", "ops");
    t.run_as(&cli, "resolve INC-1").await.unwrap();
}

async fn stale_version_gets_a_conflict(backend: Backend) {
    let t = service(backend, test_config("")).await;
    t.ok("declare sev3 Flaky builds").await;
    t.ok("assign INC-1 commander bob").await;
    let cmd = firebreak::incident::Command::on(
        IncidentNumber(1),
        firebreak::incident::command::Change::Resolve { summary: None },
    );
    let err = t
        .app
        .service
        .apply_checked(cmd, &alice(), Some(1))
        .await
        .unwrap_err();
    let ServiceError::User(UserError::Conflict { seen, current, .. }) = err else {
        panic!("{err}")
    };
    assert_eq!((seen, current), (1, 2));
    let inc = t
        .app
        .store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        inc.status,
        Status::Investigating,
        "the stale writer changed nothing"
    );
}

async fn timeline_is_append_only_in_the_database(backend: Backend) {
    let t = service(backend, test_config("")).await;
    t.ok("declare sev4 Typo on status page").await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&t.db.url).await.unwrap();
    for sql in [
        "UPDATE timeline_entries SET text = 'rewritten'",
        "DELETE FROM timeline_entries",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    pool.close().await;
}

/// (timeline length, incident version, status, effects count): what a rejected command must not change.
async fn snapshot(t: &TestService) -> (usize, i64, Status, usize) {
    let (inc, timeline) = incident_timeline(&t.app.store, 1).await;
    let effects = t.app.store.list_effects(false, 1000).await.unwrap();
    (timeline.len(), inc.version, inc.status, effects.len())
}

async fn overdue_updates_are_nudged_once_per_promise(backend: Backend) {
    let t = service(backend, test_config("")).await;
    t.ok("declare sev1 Checkout down").await;
    t.clock.advance(Duration::minutes(29));
    assert_eq!(
        t.app.service.remind_overdue().await.unwrap(),
        0,
        "not due yet"
    );
    t.clock.advance(Duration::minutes(2));
    assert_eq!(t.app.service.remind_overdue().await.unwrap(), 1);
    assert_eq!(
        t.app.service.remind_overdue().await.unwrap(),
        0,
        "one nudge per promise"
    );
    t.ok("update INC-1 Still on it --next 10m").await;
    t.clock.advance(Duration::minutes(11));
    assert_eq!(
        t.app.service.remind_overdue().await.unwrap(),
        1,
        "a broken new promise is nudged again"
    );
    t.ok("resolve INC-1").await;
    t.clock.advance(Duration::hours(5));
    assert_eq!(
        t.app.service.remind_overdue().await.unwrap(),
        0,
        "resolved incidents are left alone"
    );
    let inc = t
        .app
        .store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    let nudges: Vec<String> = t
        .app
        .store
        .timeline(&inc.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::UpdateOverdue)
        .map(|e| e.text)
        .collect();
    assert_eq!(nudges.len(), 2);
    assert!(
        nudges[0].starts_with("Status update overdue by 1m"),
        "{}",
        nudges[0]
    );
}

/// 55 open incidents, the SEV1s the oldest: the list (capped at 50) shows every SEV1 first
/// and says how many there are in all, rather than "50 incidents, 50 open".
async fn a_long_list_keeps_the_oldest_sev1s_and_says_what_it_leaves_out(backend: Backend) {
    let t = service(backend, test_config("")).await;
    for n in 0..5 {
        t.ok(&format!("declare sev1 Region outage part {n}")).await;
    }
    for n in 0..50 {
        t.ok(&format!("declare sev4 Small thing {n}")).await;
    }
    t.ok("resolve INC-6 Fixed").await;
    let listed = t.ok("list").await;
    assert_eq!(
        listed.reply.text,
        "55 incidents, 54 open; showing the 50 most severe open ones."
    );
    let ReplyBody::List { incidents } = &listed.reply.body else {
        panic!("{:?}", listed.reply.body)
    };
    assert_eq!(incidents.len(), 50);
    let first: Vec<i64> = incidents[..5].iter().map(|i| i.number.0).collect();
    assert_eq!(first, [5, 4, 3, 2, 1], "open SEV1s first, newest first");
    assert!(incidents.iter().all(|i| i.status.is_open()));
}
