//! The runbooks a deployment has: every `*.toml` in the configured directory, read once at
//! start, and which one an incident gets (pure).

use std::path::Path;
use std::sync::Arc;

use super::spec::{self, Runbook, SpecError};
use crate::incident::model::Severity;

/// Every runbook, by name.
#[derive(Debug, Clone, Default)]
pub struct Runbooks {
    list: Vec<Arc<Runbook>>,
}

impl Runbooks {
    /// Reads every `*.toml` in `dir` (sorted by name). Every bad file is reported, not only
    /// the first.
    pub fn load(dir: &Path) -> Result<Self, Vec<SpecError>> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            vec![SpecError {
                file: dir.display().to_string(),
                line: 0,
                message: format!("the runbook directory cannot be read: {e}"),
            }]
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let (mut list, mut errors) = (Vec::new(), Vec::new());
        for path in paths {
            let read = std::fs::read_to_string(&path).map_err(|e| SpecError {
                file: path.display().to_string(),
                line: 0,
                message: format!("cannot be read: {e}"),
            });
            match read.and_then(|text| spec::parse(&path, &text)) {
                Ok(rb) => list.push(Arc::new(rb)),
                Err(e) => errors.push(e),
            }
        }
        match errors.is_empty() {
            true => Ok(Self { list }),
            false => Err(errors),
        }
    }

    /// From runbooks already read (tests, benchmarks).
    pub fn from_list(list: Vec<Runbook>) -> Self {
        Self {
            list: list.into_iter().map(Arc::new).collect(),
        }
    }

    pub fn all(&self) -> &[Arc<Runbook>] {
        &self.list
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn named(&self, name: &str) -> Option<&Arc<Runbook>> {
        self.list.iter().find(|r| r.name == name)
    }

    /// The runbook for a new incident: among those listing its severity, one whose
    /// `services` has a word of the title beats a general one; ties go to the first by name.
    pub fn choose(&self, severity: Severity, title: &str) -> Option<&Arc<Runbook>> {
        let words: Vec<String> = title
            .split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let for_severity = || {
            self.list
                .iter()
                .filter(move |r| r.severities.contains(&severity))
        };
        for_severity()
            .find(|r| r.services.iter().any(|s| words.contains(s)))
            .or_else(|| for_severity().find(|r| r.services.is_empty()))
    }

    /// The names, for an error that says which exist.
    pub fn names(&self) -> String {
        match self.list.is_empty() {
            true => "none are configured".into(),
            false => self
                .list
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::spec::{Action, Owner, Step};

    fn runbook(name: &str, severities: &[Severity], services: &[&str]) -> Runbook {
        Runbook {
            name: name.into(),
            title: name.into(),
            severities: severities.to_vec(),
            services: services.iter().map(|s| s.to_string()).collect(),
            recovery_objective: None,
            steps: vec![Step {
                id: "a".into(),
                title: "a".into(),
                at: std::time::Duration::ZERO,
                owner: Owner::Commander,
                action: Action::Manual,
            }],
        }
    }

    #[test]
    fn a_service_match_beats_a_general_runbook_and_severity_must_match() {
        let books = Runbooks::from_list(vec![
            runbook("general", &[Severity::Sev1, Severity::Sev2], &[]),
            runbook("region", &[Severity::Sev1], &["us-east-1", "region"]),
        ]);
        let pick = |sev, title| books.choose(sev, title).map(|r| r.name.clone());
        assert_eq!(
            pick(Severity::Sev1, "us-east-1 is down").as_deref(),
            Some("region")
        );
        assert_eq!(
            pick(Severity::Sev1, "Checkout 502").as_deref(),
            Some("general")
        );
        assert_eq!(
            pick(Severity::Sev2, "us-east-1 is down").as_deref(),
            Some("general")
        );
        assert_eq!(pick(Severity::Sev3, "anything"), None);
    }

    #[test]
    fn every_bad_file_in_a_directory_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), "title = 1").unwrap();
        std::fs::write(dir.path().join("b.toml"), "nonsense = true").unwrap();
        std::fs::write(dir.path().join("notes.md"), "ignored").unwrap();
        let errors = Runbooks::load(dir.path()).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].file.ends_with("a.toml"));
        assert!(
            errors[1].message.starts_with("nonsense: unknown key"),
            "{}",
            errors[1]
        );
    }
}
