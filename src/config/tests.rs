//! Parsing, validation and the environment's settings, checked on their own.

use std::ffi::OsString;
use std::time::Duration;

use super::runtime::{check_database_url, data_home, sqlite_url_for};
use super::secrets::{ordinal, secret_list_value, secret_value};
use crate::incident::model::Severity;
use crate::incident::rules::UpdateCadence;

#[test]
fn repository_names_follow_githubs_rules() {
    use super::check_repo;
    for ok in ["acme/api", "Acme-2/web.site_v2", "a/b", "acme/.github"] {
        assert_eq!(check_repo(ok, false), Ok(()), "{ok}");
    }
    assert_eq!(check_repo("acme/*", true), Ok(()));
    for bad in [
        "not a repo",
        "acme",
        "acme/",
        "/api",
        "acme/api/x",
        "-acme/api",
        "acme-/api",
        "ac_me/api",
        "acme/a pi",
        "acme/..",
        "acme/*",
    ] {
        let err = check_repo(bad, false).unwrap_err();
        assert!(err.contains(&format!("\"{bad}\"")), "{err}");
    }
    assert!(check_repo(&format!("{}/x", "a".repeat(40)), false).is_err());
    assert!(check_repo(&format!("a/{}", "x".repeat(101)), false).is_err());
}

#[test]
fn urls_must_be_http_or_https() {
    use super::check_url;
    assert_eq!(check_url("https://firebreak.example.com/"), Ok(()));
    assert_eq!(check_url("http://127.0.0.1:8080"), Ok(()));
    assert!(
        check_url("ftp://example.com")
            .unwrap_err()
            .contains("not ftp")
    );
    assert!(
        check_url("firebreak.example.com")
            .unwrap_err()
            .contains("is not a URL")
    );
    assert!(check_url("mailto:ops@example.com").is_err());
}

use super::*;

#[test]
fn a_webhook_name_with_a_line_break_is_refused() {
    let config =
        Config::parse("[[notify.webhook]]\nname = \"a\\nb\"\nurl = \"http://127.0.0.1:1/h\"\n")
            .unwrap();
    let err = config.webhook_urls().unwrap_err();
    assert!(err.0.contains("control characters"), "{err}");
}

#[test]
fn database_urls_other_than_sqlite_and_postgres_are_refused_without_their_secrets() {
    for ok in ["sqlite:///x.db", "postgres://u@h/db", "postgresql://h/db"] {
        assert!(check_database_url(ok, DatabaseFrom::Env).is_ok(), "{ok}");
    }
    let err = check_database_url("mysql://root:hunter2@db/x", DatabaseFrom::Env).unwrap_err();
    assert!(
        err.0.starts_with("FIREBREAK_DATABASE_URL is a mysql: URL;"),
        "{err}"
    );
    assert!(!err.0.contains("hunter2"), "{err}");
    let err = check_database_url("firebreak.db", DatabaseFrom::File).unwrap_err();
    assert!(err.0.starts_with("database.url is not a URL;"), "{err}");
    for memory in [
        "sqlite::memory:",
        "sqlite:",
        "sqlite://",
        "sqlite://x.db?mode=memory",
    ] {
        let err = check_database_url(memory, DatabaseFrom::Env).unwrap_err();
        assert!(err.0.contains("in-memory SQLite"), "{memory}: {err}");
    }
}

#[test]
fn unknown_keys_are_named_with_their_line() {
    let err = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\n\n[effects]\nmax_atempts = 3\n")
        .unwrap_err();
    assert!(err.0.starts_with("5: "), "{err}");
    assert!(err.0.contains("max_atempts"), "{err}");
}

#[test]
fn a_templates_dir_that_is_not_a_directory_is_refused() {
    let config = Config::parse("[postmortem]\ntemplates_dir = \"/no/such/templates\"\n").unwrap();
    let err = config.validate().unwrap_err();
    assert!(
        err.0.contains("/no/such/templates is not a directory"),
        "{err}"
    );
    let here = std::env::temp_dir();
    let ok = format!(
        "[postmortem]\ntemplates_dir = {:?}\n",
        here.display().to_string()
    );
    Config::parse(&ok).unwrap().validate().unwrap();
}

#[test]
fn the_example_config_parses() {
    let text = include_str!("../../firebreak.example.toml");
    let config = Config::parse(text).unwrap();
    assert_eq!(
        config.incident.update_cadence.cadence(Severity::Sev1),
        Duration::from_secs(1800)
    );
}

#[test]
fn webhooks_need_exactly_one_url_source() {
    let c = Config::parse("[[notify.webhook]]\nname = \"a\"\n").unwrap();
    assert!(
        c.webhook_urls()
            .unwrap_err()
            .0
            .contains("exactly one of url or url_env")
    );
    let c = Config::parse("[[notify.webhook]]\nurl = \"ftp://x\"\n").unwrap();
    assert!(c.webhook_urls().unwrap_err().0.contains("http or https"));
    let c = Config::parse(
        "[[notify.webhook]]\nurl = \"https://hooks.example/x\"\nmin_severity = \"SEV1\"\n",
    )
    .unwrap();
    assert_eq!(
        c.notice_routes()[0],
        NoticeRoute {
            name: "webhook-1".into(),
            min_severity: Severity::Sev1
        }
    );
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let c =
        Config::parse("[[notify.webhook]]\nurl = \"https://hooks.example/T000/SECRET\"\n").unwrap();
    assert!(!format!("{c:?}").contains("SECRET"));
}

#[test]
fn an_empty_entry_in_a_secret_list_is_refused_by_name_and_position() {
    let name = "GITHUB_WEBHOOK_SECRET";
    let err = |v: &str| secret_list_value(name, Some(v.into())).unwrap_err();
    assert_eq!(
        err("s3cret,"),
        "GITHUB_WEBHOOK_SECRET has an empty entry (the 2nd); remove the stray comma."
    );
    assert!(err(",s3cret").contains("(the 1st)"));
    assert!(err("old, ,new").contains("(the 2nd)"));
    assert!(err("a,b,").contains("(the 3rd)"));
    for v in ["", "  "] {
        assert_eq!(
            err(v),
            "GITHUB_WEBHOOK_SECRET is set but empty; give it a value, or unset it"
        );
    }
    for v in ["s3cret,", ",s3cret", "s3cret, ,other"] {
        assert!(!err(v).contains("s3cret"), "the value is never shown");
    }
    let ok = secret_list_value(name, Some("old, new".into())).unwrap();
    let ok: Vec<&str> = ok.iter().map(|s| s.expose_secret()).collect();
    assert_eq!(ok, ["old", "new"]);
    assert!(secret_list_value(name, None).unwrap().is_empty());
}

#[test]
fn a_single_secret_set_but_empty_is_refused_by_name() {
    for v in ["", " ", "\t\n"] {
        let err = secret_value("SLACK_SIGNING_SECRET", Some(v.into())).unwrap_err();
        assert_eq!(
            err,
            "SLACK_SIGNING_SECRET is set but empty; give it a value, or unset it"
        );
    }
    assert!(secret_value("SLACK_BOT_TOKEN", None).unwrap().is_none());
    let set = secret_value("SLACK_BOT_TOKEN", Some("xoxb-1".into())).unwrap();
    assert_eq!(set.unwrap().expose_secret(), "xoxb-1");
}

#[test]
fn ordinals() {
    let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111]
        .into_iter()
        .map(ordinal)
        .collect();
    assert_eq!(
        got,
        [
            "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"
        ]
    );
}

#[test]
fn the_default_database_lives_under_the_xdg_data_home() {
    let os = |s: &str| Some(OsString::from(s));
    assert_eq!(
        data_home(os("/data"), os("/home/alice")),
        Some(PathBuf::from("/data"))
    );
    // Unset, empty or relative: the XDG spec says to ignore it.
    for xdg in [None, os(""), os("relative/dir")] {
        assert_eq!(
            data_home(xdg, os("/home/alice")),
            Some(PathBuf::from("/home/alice/.local/share"))
        );
    }
    assert_eq!(data_home(None, None), None);
    assert_eq!(data_home(None, os("")), None);
}

#[test]
fn a_default_path_survives_the_trip_through_a_url() {
    for path in [
        "/home/alice/.local/share/firebreak/firebreak.db",
        "/tmp/with space/50% done?#/firebreak.db",
    ] {
        let url = sqlite_url_for(path);
        assert!(url.starts_with("sqlite:///"), "{url}");
        assert_eq!(sqlite_path(&url), Some(PathBuf::from(path)), "{url}");
    }
    assert_eq!(sqlite_path("sqlite::memory:"), None);
    assert_eq!(sqlite_path("postgres://u:p@h/db"), None);
    let relative = sqlite_path("sqlite://firebreak.db?mode=rwc").unwrap();
    assert!(relative.is_absolute() && relative.ends_with("firebreak.db"));
    assert!(sqlite_creates("sqlite:///x.db"));
    assert!(sqlite_creates("sqlite:///x.db?mode=rwc"));
    assert!(!sqlite_creates("sqlite:///x.db?mode=ro"));
}

#[test]
fn the_database_url_may_be_in_the_file_but_is_kept_secret() {
    let c = Config::parse("[database]\nurl = \"postgres://u:hunter2@db/firebreak\"\n").unwrap();
    assert_eq!(
        c.database.url.as_ref().unwrap().expose_secret(),
        "postgres://u:hunter2@db/firebreak"
    );
    assert!(!format!("{c:?}").contains("hunter2"));
    assert!(Config::parse("[database]\nurl = \"sqlite:///x.db\"\npath = \"x\"\n").is_err());
}
