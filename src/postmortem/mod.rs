//! Post-mortems: a view model built from the stored record ([`view`]), rendered to Markdown
//! and to a standalone HTML page with an SVG timeline chart ([`render`]) through the askama
//! templates in `templates/`.

pub mod chart;
pub mod markdown;
pub mod overrides;
pub mod render;
pub mod sentences;
pub mod view;

use anyhow::Context;

use crate::incident::IncidentNumber;
use crate::store::Store;

/// Loads everything stored about an incident and builds its post-mortem.
pub async fn load(
    store: &Store,
    number: IncidentNumber,
) -> anyhow::Result<Option<view::PostmortemView>> {
    let Some(incident) = store.incident_by_number(number).await? else {
        return Ok(None);
    };
    let timeline = store
        .timeline(&incident.id)
        .await
        .context("loading the timeline")?;
    let promises = store.promises(&incident.id).await?;
    let fields = store.postmortem_fields(&incident.id).await?;
    let actions = store.action_items(&incident.id).await?;
    let authors = store.postmortem_authors(&incident.id).await?;
    let review = store.postmortem_review(&incident.id).await?;
    let runbook = store.runbook(&incident.id).await?;
    let milestones = match &runbook {
        Some(_) => store.runbook_milestones(&incident.id).await?,
        None => Default::default(),
    };
    let owners = actions.iter().filter_map(|a| a.owner.as_deref());
    let people = owners
        .chain(authors.iter().map(String::as_str))
        .chain(review.1.iter().map(String::as_str))
        .chain(runbook.iter().flat_map(crate::runbook::report::people));
    let names = store
        .names(crate::people::named_in(&incident, &timeline, people))
        .await?;
    let facts = view::Facts {
        incident: &incident,
        timeline: &timeline,
        promises: &promises,
        fields: &fields,
        actions: &actions,
        authors: &authors,
        review: &review,
        names: &names,
        runbook: runbook.as_ref().map(|rb| (rb, &milestones)),
    };
    Ok(Some(view::build(&facts)))
}
