//! The post-mortem's timeline chart: status phases as labelled bands, the impact before the
//! declaration, the merge-freeze window, status updates against the times they were
//! promised, a time axis with ticks at round intervals, and a legend. It is standalone SVG
//! with a `viewBox` (it scales to the page, phone to print) and carries no user text: the
//! only words in it are status names and fixed labels.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use crate::incident::timeline::format_offset;

/// Everything the chart draws, in milliseconds from its origin (the impact start when it
/// came before the declaration, else the declaration).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chart {
    pub span_ms: i64,
    /// Where the declaration falls (T+0 on the axis).
    pub declared_ms: i64,
    /// (status, from, to).
    pub phases: Vec<(String, i64, i64)>,
    pub freeze: Vec<(i64, i64)>,
    /// Status updates: (posted at, promised by, whether on time).
    pub updates: Vec<Update>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update {
    pub at: i64,
    pub due: Option<i64>,
}

impl Update {
    fn late(&self) -> bool {
        self.due.is_some_and(|due| self.at > due)
    }
}

/// Milliseconds from `origin` (never negative).
pub fn offset(origin: DateTime<Utc>, t: DateTime<Utc>) -> i64 {
    (t - origin).num_milliseconds().max(0)
}

const WIDTH: f64 = 960.0;
const LEFT: f64 = 10.0;
const RIGHT: f64 = 950.0;
const BAND_Y: f64 = 34.0;
const BAND_H: f64 = 34.0;
const FREEZE_Y: f64 = 74.0;
const AXIS_Y: f64 = 96.0;
const LEGEND_Y: f64 = 132.0;
const HEIGHT: f64 = 146.0;

/// The phase name of the impact before the declaration.
pub const IMPACT: &str = "impact before declaration";
const FREEZE: &str = "merge freeze";

fn colour(status: &str) -> &'static str {
    match status {
        IMPACT => "#9ca3af",
        "investigating" => "#dc2626",
        "identified" => "#ea580c",
        "monitoring" => "#a16207",
        "mitigated" => "#2563eb",
        _ => "#16a34a",
    }
}

/// A round tick interval giving at most eight ticks over `span_ms`.
pub fn tick_step(span_ms: i64) -> i64 {
    const STEPS_S: [i64; 18] = [
        10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800,
        345_600, 604_800, 1_209_600,
    ];
    STEPS_S
        .iter()
        .map(|s| s * 1000)
        .find(|step| span_ms / step <= 8)
        .unwrap_or(2_419_200_000)
}

impl Chart {
    fn x(&self, ms: i64) -> f64 {
        LEFT + (ms as f64 / self.span_ms.max(1) as f64 * (RIGHT - LEFT)).clamp(0.0, RIGHT - LEFT)
    }

    /// The chart as SVG.
    pub fn svg(&self) -> String {
        let mut s = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" class="chart" role="img" aria-label="Incident timeline: status phases, merge freeze and status updates" font-family="system-ui, sans-serif" font-size="13">"#
        );
        self.draw_phases(&mut s);
        self.draw_freeze(&mut s);
        self.draw_updates(&mut s);
        self.draw_axis(&mut s);
        self.draw_legend(&mut s);
        s.push_str("</svg>");
        s
    }

    fn draw_phases(&self, s: &mut String) {
        for (status, from, to) in &self.phases {
            let (x0, x1) = (self.x(*from), self.x(*to));
            let w = (x1 - x0).max(1.0);
            let _ = write!(
                s,
                r#"<rect x="{x0:.1}" y="{BAND_Y}" width="{w:.1}" height="{BAND_H}" fill="{}"><title>{status}</title></rect>"#,
                colour(status)
            );
            // A label inside the band when it fits (about 7 px a character at 13 px).
            if w >= status.len() as f64 * 7.5 + 8.0 {
                let _ = write!(
                    s,
                    r##"<text x="{:.1}" y="{:.1}" fill="#ffffff">{status}</text>"##,
                    x0 + 4.0,
                    BAND_Y + BAND_H / 2.0 + 4.5
                );
            }
        }
    }

    fn draw_freeze(&self, s: &mut String) {
        for (from, to) in &self.freeze {
            let (x0, x1) = (self.x(*from), self.x(*to));
            let _ = write!(
                s,
                r##"<rect x="{x0:.1}" y="{FREEZE_Y}" width="{:.1}" height="10" fill="#6366f1"><title>{FREEZE}</title></rect>"##,
                (x1 - x0).max(1.0)
            );
        }
    }

    /// Each update as a triangle above the bands (red when later than promised), and the
    /// time it was promised by as a hollow mark joined to it.
    fn draw_updates(&self, s: &mut String) {
        for u in &self.updates {
            let x = self.x(u.at);
            let fill = if u.late() { "#b91c1c" } else { "#111827" };
            if let Some(due) = u.due {
                let xd = self.x(due);
                let _ = write!(
                    s,
                    r##"<line x1="{xd:.1}" y1="20" x2="{x:.1}" y2="20" stroke="{fill}" stroke-dasharray="3 2"/><circle cx="{xd:.1}" cy="20" r="4" fill="none" stroke="{fill}" stroke-width="1.5"><title>update promised</title></circle>"##
                );
            }
            let state = match u.due {
                Some(_) if u.late() => "late",
                Some(_) => "on time",
                None => "no promise on record",
            };
            let _ = write!(
                s,
                r#"<path d="M{:.1} 14 L{:.1} 14 L{x:.1} 28 Z" fill="{fill}"><title>status update ({state})</title></path>"#,
                x - 6.0,
                x + 6.0
            );
        }
    }

    fn draw_axis(&self, s: &mut String) {
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{AXIS_Y}" x2="{RIGHT}" y2="{AXIS_Y}" stroke="#6b7280"/>"##
        );
        let step = tick_step(self.span_ms);
        // Ticks fall on round offsets from the declaration, on both sides of it.
        let first = -(self.declared_ms / step) * step;
        let mut t = first;
        while self.declared_ms + t <= self.span_ms {
            let x = self.x(self.declared_ms + t);
            let anchor = if x > RIGHT - 30.0 { "end" } else { "middle" };
            let label = format_offset(chrono::Duration::milliseconds(t));
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" y1="{AXIS_Y}" x2="{x:.1}" y2="{:.1}" stroke="#6b7280"/><text x="{x:.1}" y="{:.1}" fill="#374151" text-anchor="{anchor}">{label}</text>"##,
                AXIS_Y + 5.0,
                AXIS_Y + 19.0
            );
            t += step;
        }
    }

    fn draw_legend(&self, s: &mut String) {
        let mut entries: Vec<(&str, &str)> = Vec::new();
        for (status, _, _) in &self.phases {
            if !entries.iter().any(|(name, _)| name == status) {
                entries.push((status, colour(status)));
            }
        }
        if !self.freeze.is_empty() {
            entries.push((FREEZE, "#6366f1"));
        }
        let mut x = LEFT;
        for (name, fill) in entries {
            let _ = write!(
                s,
                r##"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{fill}"/><text x="{:.1}" y="{LEGEND_Y}" fill="#111827">{name}</text>"##,
                LEGEND_Y - 10.5,
                x + 16.0
            );
            x += 16.0 + name.len() as f64 * 7.5 + 14.0;
        }
        if !self.updates.is_empty() {
            let _ = write!(
                s,
                r##"<path d="M{:.1} {:.1} L{:.1} {:.1} L{:.1} {LEGEND_Y} Z" fill="#111827"/><text x="{:.1}" y="{LEGEND_Y}" fill="#111827">update (red: late; ○ promised)</text>"##,
                x,
                LEGEND_Y - 11.0,
                x + 12.0,
                LEGEND_Y - 11.0,
                x + 6.0,
                x + 16.0
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart {
        Chart {
            span_ms: 3_600_000,
            declared_ms: 600_000,
            phases: vec![
                (IMPACT.into(), 0, 600_000),
                ("investigating".into(), 600_000, 1_800_000),
                ("mitigated".into(), 1_800_000, 3_600_000),
            ],
            freeze: vec![(700_000, 3_000_000)],
            updates: vec![
                Update {
                    at: 1_200_000,
                    due: Some(1_000_000),
                },
                Update {
                    at: 2_000_000,
                    due: Some(3_000_000),
                },
            ],
        }
    }

    #[test]
    fn ticks_are_round_and_few() {
        assert_eq!(tick_step(3_600_000), 600_000, "an hour: every 10 minutes");
        assert_eq!(tick_step(90_000), 30_000);
        assert_eq!(tick_step(3 * 86_400_000), 43_200_000);
        assert!(tick_step(1) >= 1);
    }

    #[test]
    fn the_chart_has_a_legend_labels_ticks_and_scales() {
        let svg = chart().svg();
        assert!(svg.contains(r#"viewBox="0 0 960 146""#) && !svg.contains("width=\"960\""));
        for label in [
            "investigating",
            "mitigated",
            "merge freeze",
            "impact before declaration",
        ] {
            assert!(
                svg.contains(&format!(">{label}</text>")),
                "{label} in the legend"
            );
        }
        for tick in ["T-10m", "T+0s", "T+10m", "T+50m"] {
            assert!(
                svg.contains(&format!(">{tick}</text>")),
                "tick {tick}: {svg}"
            );
        }
        assert!(svg.contains("status update (late)") && svg.contains("status update (on time)"));
        quick_xml_free_check(&svg);
    }

    /// Balanced tags, without pulling an XML parser into the library's tests.
    fn quick_xml_free_check(svg: &str) {
        assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    }
}
