//! One incident's page (`GET /incidents/{number}`): severity, status, roles, the forms that
//! post an update, change the status and resolve (`forms`), links to its chat channels, the
//! merge freeze it holds per repository, and the timeline with UTC times and T+ offsets,
//! kept live by `live` (each entry is `pages/entry.html`, here and there).
//!
//! A long incident's page is mostly its timeline: it is read with the narrow
//! [`Store::timeline_shown`](crate::store::Store::timeline_shown), each actor is named once,
//! and times are written without a format string, so 10,000 entries render well under 50 ms.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Datelike, Timelike, Utc};

use super::forms::new_form_id;
use super::{Header, PagesState, age, header_of, internal, plain, utc};
use crate::http::guard::SessionCaller;
use crate::incident::freeze_view::{covering, enforced, for_incident, target_view};
use crate::incident::timeline::format_offset;
use crate::incident::{Incident, IncidentNumber, Status, TimelineEntry};
use crate::people::Names;
use crate::read::FreezeView;
use crate::store::{ChatRef, FreezeHold, FreezeTarget, ShownEntry};

/// One timeline line on the incident page (and in the live stream).
pub(super) struct Line {
    pub id: i64,
    pub at: String,
    pub offset: String,
    /// Shared by every line of the same actor.
    pub actor: Arc<str>,
    pub kind: &'static str,
    pub text: String,
}

impl Line {
    /// `entry` as a line of the timeline of an incident declared at `declared_at`.
    pub fn of(entry: TimelineEntry, declared_at: DateTime<Utc>, names: &Names) -> Self {
        Self {
            id: entry.id,
            at: utc_fast(entry.occurred_at),
            offset: entry.offset_from(declared_at),
            actor: names.name(&entry.actor).into(),
            kind: entry.kind.as_str(),
            text: entry.text,
        }
    }
}

/// The page's lines: each actor's name looked up once and shared.
fn lines_of(entries: Vec<ShownEntry>, declared_at: DateTime<Utc>, names: &Names) -> Vec<Line> {
    let mut named: HashMap<String, Arc<str>> = HashMap::new();
    entries
        .into_iter()
        .map(|e| {
            let at = DateTime::from_timestamp_millis(e.occurred_ms).unwrap_or_default();
            let actor = match named.get(&e.actor) {
                Some(name) => Arc::clone(name),
                None => {
                    let name: Arc<str> = names.name(&e.actor).into();
                    named.insert(e.actor, Arc::clone(&name));
                    name
                }
            };
            Line {
                id: e.id,
                at: utc_fast(at),
                offset: format_offset(at - declared_at),
                actor,
                kind: e.kind.as_str(),
                text: e.text,
            }
        })
        .collect()
}

/// [`utc`] (`2026-11-30 14:00:05 UTC`) written digit by digit, without a format string
/// parsed per call (the incident page writes one per timeline entry).
fn utc_fast(at: DateTime<Utc>) -> String {
    if !(0..=9999).contains(&at.year()) {
        return utc(at);
    }
    let mut out = String::with_capacity(23);
    let mut push = |n: u32, width: usize, after: &str| {
        let digits = [n / 1000 % 10, n / 100 % 10, n / 10 % 10, n % 10];
        for d in &digits[4 - width..] {
            out.push(char::from(b'0' + *d as u8));
        }
        out.push_str(after);
    };
    push(at.year() as u32, 4, "-");
    push(at.month(), 2, "-");
    push(at.day(), 2, " ");
    push(at.hour(), 2, ":");
    push(at.minute(), 2, ":");
    push(at.second(), 2, " UTC");
    out
}

/// One `<li>` of the timeline, alone (what the live stream sends).
#[derive(Template)]
#[template(path = "pages/entry.html")]
pub(super) struct EntryItem {
    pub l: Line,
}

/// What the forms show: nothing yet, or what was sent when one was refused.
#[derive(Debug, Clone, Default)]
pub(super) struct IncidentDraft {
    pub text: String,
    pub summary: String,
    pub status: Option<Status>,
}

/// Each form's one-time id (its idempotency key, see `forms`).
struct FormIds {
    update: String,
    status: String,
    resolve: String,
}

/// One of the incident's chat channels (or threads): a link when its address is known.
#[derive(Debug, PartialEq, Eq)]
struct ChatLink {
    label: String,
    href: Option<String>,
}

/// Where the chat links point: the Slack workspace and the Discord server, when known.
#[derive(Debug, Clone, Copy)]
struct ChatHomes<'a> {
    slack_team: Option<&'a str>,
    discord_guild: Option<&'a str>,
}

/// `role` of the chat refs that are an incident's own room: a Slack channel, a Discord
/// channel or forum thread (`chat::slack::effects::channel`, `chat::discord::effects::channel`).
const ROOM: &str = "channel";

/// A link to `r` when it is an incident room whose address can be written: Slack's
/// `app_redirect` (which opens the app), Discord's channel URL when the server is known.
/// Ids that do not look like the platform's ids are shown as text, never put in a URL.
fn chat_link(r: &ChatRef, homes: ChatHomes) -> Option<ChatLink> {
    if r.role != ROOM {
        return None;
    }
    let slack_id = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    let snowflake = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let channel = r.channel_id.as_str();
    match r.platform.as_str() {
        "slack" => Some(ChatLink {
            label: format!("Slack channel {channel}"),
            href: slack_id(channel).then(|| match homes.slack_team.filter(|t| slack_id(t)) {
                Some(team) => {
                    format!("https://slack.com/app_redirect?channel={channel}&team={team}")
                }
                None => format!("https://slack.com/app_redirect?channel={channel}"),
            }),
        }),
        "discord" => Some(ChatLink {
            label: format!("Discord channel {channel}"),
            href: homes
                .discord_guild
                .filter(|g| snowflake(g) && snowflake(channel))
                .map(|guild| format!("https://discord.com/channels/{guild}/{channel}")),
        }),
        _ => None,
    }
}

/// One hold on a scope the incident's repositories are frozen by.
struct HoldLine {
    scope: String,
    holder: String,
    /// `/incidents/INC-3` when an incident holds it.
    href: Option<String>,
    /// Its own reason (not one repeating the incident's headline).
    reason: Option<String>,
    since: String,
}

/// One repository (or owner) the incident's freeze concerns, as `/freezes` decides it.
struct RepoLine {
    target: String,
    wanted: &'static str,
    actual: String,
    blocking: bool,
    read_at: String,
    error: Option<String>,
    retrying: bool,
    next_retry: Option<String>,
    holds: Vec<HoldLine>,
}

/// The repositories of the freeze `incident` holds, real errors first, each with the holds
/// of the scope that decides it now (or of its own scope once nothing is wanted on it).
fn repo_lines(view: &FreezeView, incident: &Incident) -> Vec<RepoLine> {
    let mine = for_incident(&view.scopes, &view.targets, &view.holds, &incident.id);
    let mut lines: Vec<RepoLine> = mine
        .targets
        .iter()
        .map(|t| repo_line(view, &mine.holds, t))
        .collect();
    lines.sort_by_key(|l| (l.error.is_none(), l.target.to_lowercase()));
    lines
}

fn repo_line(view: &FreezeView, holds: &[&FreezeHold], t: &FreezeTarget) -> RepoLine {
    let v = target_view(&view.scopes, t);
    let scope = covering(&view.scopes, t).map_or(t.scope.as_str(), |s| s.scope.as_str());
    let retrying = v.retryable == Some(true);
    RepoLine {
        blocking: enforced(&v.actual),
        read_at: t.verified().map_or_else(|| "never".into(), utc),
        next_retry: t.next_retry().filter(|_| retrying).map(utc),
        holds: holds
            .iter()
            .filter(|h| h.scope.eq_ignore_ascii_case(scope))
            .map(|h| HoldLine {
                scope: h.scope.clone(),
                holder: h.holder_title(),
                href: h
                    .incident_id
                    .as_ref()
                    .map(|_| format!("/incidents/{}", h.holder)),
                reason: h.own_reason().map(str::to_string),
                since: utc(h.started_at),
            })
            .collect(),
        target: v.target,
        wanted: v.wanted,
        actual: v.actual,
        error: v.error,
        retrying,
    }
}

#[derive(Template)]
#[template(path = "pages/incident.html")]
struct IncidentPage {
    header: Option<Header>,
    error: Option<String>,
    key: String,
    title: String,
    severity: String,
    status: String,
    open: bool,
    drill: bool,
    declared_at: String,
    since: String,
    roles: Vec<(&'static str, String)>,
    summary: Option<String>,
    chats: Vec<ChatLink>,
    repos: Vec<RepoLine>,
    lines: Vec<Line>,
    /// The highest entry id shown: the live stream starts after it.
    last_id: i64,
    form_ids: FormIds,
    /// Each status with whether it is the one selected.
    statuses: Vec<(&'static str, bool)>,
    draft: IncidentDraft,
}

/// `GET /incidents/{number}`: one incident.
pub(super) async fn incident_page(
    State(pages): State<PagesState>,
    caller: Option<Extension<SessionCaller>>,
    Path(number): Path<String>,
) -> Response {
    let Some(n) = IncidentNumber::parse(&number, true) else {
        return plain(
            StatusCode::NOT_FOUND,
            format!("\"{number}\" is not an incident number like INC-42."),
        );
    };
    let header = header_of(caller);
    match incident_html(&pages, header, n, IncidentDraft::default(), None).await {
        Ok(Some(html)) => Html(html).into_response(),
        Ok(None) => plain(StatusCode::NOT_FOUND, format!("There is no incident {n}.")),
        Err(e) => internal("loading an incident for its page", e),
    }
}

/// The incident's rooms on every chat platform, as links.
async fn chat_links(pages: &PagesState, incident: &Incident) -> anyhow::Result<Vec<ChatLink>> {
    let homes = ChatHomes {
        slack_team: pages.slack_team_id.as_deref(),
        discord_guild: pages.discord_guild_id.as_deref(),
    };
    let mut links = Vec::new();
    for platform in ["slack", "discord"] {
        let refs = pages.store.chat_refs(&incident.id, platform).await?;
        links.extend(refs.iter().filter_map(|r| chat_link(r, homes)));
    }
    Ok(links)
}

/// Incident `n`'s page (`None`: there is no such incident), with `error` above forms that
/// still hold `draft`. The timeline is read narrowly from the store (not through
/// `ReadModel::incident`, whose full entries the page does not need); the people, the
/// freeze and the chat rooms come from the same reads the API and `/freezes` use.
pub(super) async fn incident_html(
    pages: &PagesState,
    header: Option<Header>,
    n: IncidentNumber,
    draft: IncidentDraft,
    error: Option<String>,
) -> anyhow::Result<Option<String>> {
    let Some(i) = pages.store.incident_by_number(n).await? else {
        return Ok(None);
    };
    let entries = pages.store.timeline_shown(&i.id).await?;
    let actors: std::collections::HashSet<&str> =
        entries.iter().map(|e| e.actor.as_str()).collect();
    let names = pages
        .store
        .names(crate::people::named_in(&i, &[], actors))
        .await?;
    let freeze = pages.read.freeze().await?;
    let chats = chat_links(pages, &i).await?;
    let role = |who: &Option<String>| {
        who.as_deref()
            .map_or_else(|| "nobody yet".into(), |w| names.name(w))
    };
    let roles = vec![
        ("Commander", role(&i.commander)),
        ("Comms", role(&i.comms)),
        ("Scribe", role(&i.scribe)),
        ("Declared by", names.name(&i.declared_by)),
    ];
    let lines = lines_of(entries, i.declared_at, &names);
    let chosen = draft.status.unwrap_or(i.status);
    let template = IncidentPage {
        header,
        error,
        key: i.number.to_string(),
        severity: i.severity.to_string(),
        status: i.status.to_string(),
        open: i.status != Status::Resolved,
        drill: i.drill,
        declared_at: utc(i.declared_at),
        since: age(i.declared_at, Utc::now()),
        roles,
        chats,
        repos: repo_lines(&freeze, &i),
        last_id: lines.iter().map(|l| l.id).max().unwrap_or(0),
        lines,
        form_ids: FormIds {
            update: new_form_id(),
            status: new_form_id(),
            resolve: new_form_id(),
        },
        statuses: Status::ALL
            .into_iter()
            .map(|s| (s.as_str(), s == chosen))
            .collect(),
        draft,
        title: i.title,
        summary: i.summary,
    };
    let mut html = String::with_capacity(4096 + template.lines.len() * 240);
    template.render_into(&mut html)?;
    Ok(Some(html))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(platform: &str, role: &str, channel: &str) -> ChatRef {
        ChatRef {
            incident_id: "i1".into(),
            platform: platform.into(),
            role: role.into(),
            channel_id: channel.into(),
            message_id: None,
        }
    }

    const HOMES: ChatHomes = ChatHomes {
        slack_team: Some("T0TEAM"),
        discord_guild: Some("4242"),
    };

    #[test]
    fn rooms_link_to_their_apps() {
        let slack = chat_link(&room("slack", "channel", "C0ROOM"), HOMES).unwrap();
        assert_eq!(
            slack.href.as_deref(),
            Some("https://slack.com/app_redirect?channel=C0ROOM&team=T0TEAM")
        );
        let discord = chat_link(&room("discord", "channel", "777"), HOMES).unwrap();
        assert_eq!(
            discord.href.as_deref(),
            Some("https://discord.com/channels/4242/777")
        );
        let unknown = ChatHomes {
            slack_team: None,
            discord_guild: None,
        };
        let slack = chat_link(&room("slack", "channel", "C0ROOM"), unknown).unwrap();
        assert_eq!(
            slack.href.as_deref(),
            Some("https://slack.com/app_redirect?channel=C0ROOM")
        );
        let discord = chat_link(&room("discord", "channel", "777"), unknown).unwrap();
        assert_eq!(discord.href, None);
        assert_eq!(discord.label, "Discord channel 777");
    }

    #[test]
    fn only_rooms_with_plausible_ids_become_links() {
        assert_eq!(chat_link(&room("slack", "notice", "C0ANN"), HOMES), None);
        assert_eq!(chat_link(&room("slack", "card", "C0ROOM"), HOMES), None);
        let odd = chat_link(&room("slack", "channel", "C1&x=\"y"), HOMES).unwrap();
        assert_eq!(odd.href, None);
        let odd = chat_link(&room("discord", "channel", "12/../3"), HOMES).unwrap();
        assert_eq!(odd.href, None);
        let bad_team = ChatHomes {
            slack_team: Some("T1&evil=1"),
            discord_guild: None,
        };
        let slack = chat_link(&room("slack", "channel", "C0ROOM"), bad_team).unwrap();
        assert_eq!(
            slack.href.as_deref(),
            Some("https://slack.com/app_redirect?channel=C0ROOM")
        );
    }

    #[test]
    fn fast_times_read_as_the_pages_write_them() {
        let mut ms: i64 = -86_400_000 * 365;
        while ms < 4_102_444_800_000 {
            let at = DateTime::from_timestamp_millis(ms).unwrap();
            assert_eq!(utc_fast(at), utc(at), "{ms}");
            ms += 7_777_777_777 + 1_234;
        }
        let far = DateTime::from_timestamp(253_402_300_800 + 86_400, 0).unwrap();
        assert_eq!(utc_fast(far), utc(far));
    }
}
