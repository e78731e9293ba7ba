//! The merge-freeze page (`GET /freezes`): per target, what is wanted and what GitHub had
//! as last read, who holds the freeze and why, the exemptions granted in it, the last error
//! with its next retry, and GitHub's rate-limit headroom. What is current is decided by the
//! same view model as `/api/freeze` and `freeze status` (`incident::freeze_view`); this
//! module only turns it into lines to show.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::{Header, PagesState, header_of, internal, page, utc};
use crate::github::client::RateState;
use crate::http::guard::SessionCaller;
use crate::incident::freeze_view::{covering, enforced, status_summary, target_view};
use crate::read::FreezeView;
use crate::store::{Exemption, FreezeHold, FreezeScope, FreezeTarget};

/// One hold on a scope: who holds it, why and since when.
struct HoldLine {
    holder: String,
    /// `/incidents/INC-3` when an incident holds it.
    href: Option<String>,
    reason: Option<String>,
    since: String,
    expires: Option<String>,
    drill: bool,
}

/// A scope something is wanted on, with its holds.
struct ScopeCard {
    scope: String,
    drill: bool,
    since: String,
    holds: Vec<HoldLine>,
}

/// A pull request let through the freeze.
struct ExemptionLine {
    pr: String,
    state: String,
    allowed_by: String,
    reason: Option<String>,
    outcome: Option<String>,
}

/// One target (a repository or owner the freeze is applied to).
struct TargetCard {
    target: String,
    scope: String,
    wanted: &'static str,
    actual: String,
    blocking: bool,
    read_at: String,
    /// The current error, with whether it is retried and when.
    error: Option<String>,
    retrying: bool,
    error_at: Option<String>,
    next_retry: Option<String>,
    past_error: Option<String>,
    held_by: Vec<String>,
    exemptions: Vec<ExemptionLine>,
}

#[derive(Template)]
#[template(path = "pages/freezes.html")]
struct FreezesPage {
    header: Option<Header>,
    summary: String,
    rate: String,
    scopes: Vec<ScopeCard>,
    targets: Vec<TargetCard>,
}

/// `GET /freezes`.
pub(super) async fn freezes_page(
    State(pages): State<PagesState>,
    caller: Option<Extension<SessionCaller>>,
) -> Response {
    let view = match pages.read.freeze().await {
        Ok(view) => view,
        Err(e) => return internal("reading the freeze for its page", e),
    };
    let wanted: Vec<&str> = view
        .targets
        .iter()
        .filter(|t| covering(&view.scopes, t).is_some())
        .map(|t| t.target.as_str())
        .collect();
    let exemptions = match pages.store.exemptions_for(&wanted).await {
        Ok(found) => found,
        Err(e) => return internal("reading exemptions for the freezes page", e),
    };
    let rate = pages.github.as_ref().map(|c| c.rate());
    page(&FreezesPage {
        header: header_of(caller),
        summary: status_summary(&view.scopes, &view.targets),
        rate: rate_sentence(pages.github.is_some(), rate),
        scopes: scope_cards(&view),
        targets: target_cards(&view, &exemptions),
    })
}

/// GitHub's rate-limit headroom as last answered, in a sentence.
fn rate_sentence(configured: bool, rate: Option<RateState>) -> String {
    if !configured {
        return "GitHub is not configured on this server.".into();
    }
    let Some(remaining) = rate.and_then(|r| r.remaining) else {
        return "Not known yet: GitHub has not answered this server since it started.".into();
    };
    let reset = rate
        .and_then(|r| r.reset_at)
        .and_then(|secs| DateTime::<Utc>::from_timestamp(secs, 0));
    match reset {
        Some(at) => format!(
            "{remaining} requests left until the limit resets at {}.",
            utc(at)
        ),
        None => format!("{remaining} requests left."),
    }
}

/// The frozen scopes (real freezes first, then drills), each with its holds.
fn scope_cards(view: &FreezeView) -> Vec<ScopeCard> {
    let mut frozen: Vec<&FreezeScope> = view.scopes.iter().filter(|s| s.frozen).collect();
    frozen.sort_by_key(|s| (s.drill, s.scope.to_lowercase()));
    frozen
        .into_iter()
        .map(|s| ScopeCard {
            scope: s.scope.clone(),
            drill: s.drill,
            since: utc(s.updated_at),
            holds: view
                .holds
                .iter()
                .filter(|h| h.scope == s.scope)
                .map(hold_line)
                .collect(),
        })
        .collect()
}

fn hold_line(h: &FreezeHold) -> HoldLine {
    HoldLine {
        holder: h.holder_title(),
        href: h
            .incident_id
            .as_ref()
            .map(|_| format!("/incidents/{}", h.holder)),
        reason: h.reason.clone(),
        since: utc(h.started_at),
        expires: h.expires_at.map(utc),
        drill: h.drill,
    }
}

/// Every target: ones with a current error first, then ones being blocked, then the rest,
/// each group by name.
fn target_cards(view: &FreezeView, exemptions: &[Exemption]) -> Vec<TargetCard> {
    let mut cards: Vec<TargetCard> = view
        .targets
        .iter()
        .map(|t| target_card(view, t, exemptions))
        .collect();
    cards.sort_by_key(|c| (c.error.is_none(), !c.blocking, c.target.to_lowercase()));
    cards
}

fn target_card(view: &FreezeView, t: &FreezeTarget, exemptions: &[Exemption]) -> TargetCard {
    let v = target_view(&view.scopes, t);
    let deciding = covering(&view.scopes, t);
    let held_by = deciding.map_or_else(Vec::new, |s| {
        view.holds
            .iter()
            .filter(|h| h.scope == s.scope)
            .map(FreezeHold::holder_title)
            .collect()
    });
    let exemptions = deciding.map_or_else(Vec::new, |s| {
        exemptions
            .iter()
            .filter(|e| e.repo.eq_ignore_ascii_case(&t.target) && granted_now(e, s))
            .map(|e| ExemptionLine {
                pr: format!("#{}", e.pr_number),
                state: e.state.replace('_', " "),
                allowed_by: e.allowed_by.clone(),
                reason: e.reason.clone(),
                outcome: e.outcome.clone(),
            })
            .collect()
    });
    TargetCard {
        target: v.target,
        scope: t.scope.clone(),
        wanted: v.wanted,
        blocking: enforced(&v.actual),
        actual: v.actual,
        read_at: v
            .read_at
            .as_deref()
            .map_or_else(|| "never".into(), readable),
        retrying: v.retryable == Some(true),
        error_at: v.error_at.as_deref().map(readable),
        next_retry: v.next_retry.as_deref().map(readable),
        error: v.error,
        past_error: v.past_error,
        held_by,
        exemptions,
    }
}

/// Whether exemption `e` belongs to the freeze `s` is now (granted in it, or still being
/// carried out), not to an earlier one.
fn granted_now(e: &Exemption, s: &FreezeScope) -> bool {
    let same_freeze = e
        .scope
        .as_deref()
        .is_some_and(|scope| scope.eq_ignore_ascii_case(&s.scope))
        && e.frozen_since == s.frozen_since;
    e.in_progress() || same_freeze
}

/// An RFC 3339 time from the view model, as the pages write times.
fn readable(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| utc(t.with_timezone(&Utc)))
        .unwrap_or_else(|_| rfc3339.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(name: &str, frozen_since: i64) -> FreezeScope {
        FreezeScope {
            scope: name.into(),
            frozen: true,
            generation: 3,
            incident_id: None,
            reason: Some("release".into()),
            drill: false,
            requested_by: "cli:ops".into(),
            updated_at: Utc::now(),
            frozen_since: Some(frozen_since),
        }
    }

    fn exemption(state: &str, frozen_since: i64) -> Exemption {
        Exemption {
            repo: "Acme/API".into(),
            pr_number: 7,
            allowed_by: "cli:ops".into(),
            reason: None,
            attempt: 1,
            state: state.into(),
            outcome: None,
            sha: None,
            scope: Some("acme/api".into()),
            frozen_since: Some(frozen_since),
            effect_key: None,
        }
    }

    #[test]
    fn only_exemptions_of_this_freeze_or_still_running_are_shown() {
        let s = scope("acme/api", 5);
        assert!(granted_now(&exemption("merged", 5), &s));
        assert!(!granted_now(&exemption("merged", 2), &s));
        assert!(granted_now(&exemption("pending", 2), &s));
    }

    #[test]
    fn the_rate_limit_says_what_is_known() {
        assert_eq!(
            rate_sentence(false, None),
            "GitHub is not configured on this server."
        );
        let unknown = RateState {
            remaining: None,
            reset_at: None,
        };
        assert!(rate_sentence(true, Some(unknown)).starts_with("Not known yet"));
        let known = RateState {
            remaining: Some(4321),
            reset_at: Some(1_800_000_000),
        };
        assert_eq!(
            rate_sentence(true, Some(known)),
            "4321 requests left until the limit resets at 2027-01-15 08:00:00 UTC."
        );
    }

    #[test]
    fn times_from_the_view_read_as_utc() {
        assert_eq!(readable("2026-11-30T14:00:05Z"), "2026-11-30 14:00:05 UTC");
    }
}
