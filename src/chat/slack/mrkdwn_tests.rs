//! Unit tests for [`super`] (`mrkdwn.rs`).

use super::*;

#[test]
fn escapes_the_three_characters_slack_reserves() {
    assert_eq!(escape("R&D <b> down > 5"), "R&amp;D &lt;b&gt; down &gt; 5");
    assert_eq!(escape("<!channel>"), "&lt;!channel&gt;");
    assert_eq!(
        escape("<https://evil.example|click>"),
        "&lt;https://evil.example|click&gt;"
    );
    assert_eq!(escape("<@U024BE7LH>"), "&lt;@U024BE7LH&gt;");
    assert_eq!(
        escape("&amp;"),
        "&amp;amp;",
        "text that looks escaped is text"
    );
    assert_eq!(escape("plain ✅ text"), "plain ✅ text");
}

#[test]
fn bare_broadcast_words_are_broken_invisibly() {
    assert_eq!(escape("@here now"), "@\u{2060}here now");
    assert_eq!(escape("hi @Channel."), "hi @\u{2060}Channel.");
    assert_eq!(escape("@everyone"), "@\u{2060}everyone");
    assert_eq!(escape("@heresy @alice"), "@heresy @alice");
}

#[test]
fn mentions_only_from_slack_ids() {
    assert_eq!(mention("U024BE7LH"), "<@U024BE7LH>");
    assert_eq!(mention("slack:U024BE7LH"), "<@U024BE7LH>");
    assert_eq!(mention("<@U024BE7LH|bob>"), "<@U024BE7LH>");
    assert_eq!(mention("W024BE7LH"), "<@W024BE7LH>");
    assert_eq!(mention("bob"), "bob");
    assert_eq!(
        mention("cli:alice"),
        "alice",
        "another platform shows by name"
    );
    assert_eq!(mention("<!channel>"), "&lt;!channel&gt;");
    assert_eq!(mention("slack:<!here>"), "slack:&lt;!here&gt;");
    assert_eq!(mention("<@U1|x> <!here>"), "&lt;@U1|x&gt; &lt;!here&gt;");
    assert_eq!(mention("slack:u024be7lh"), "slack:u024be7lh");
}

#[test]
fn channels_dates_and_links_are_built_from_checked_values() {
    assert_eq!(Mrkdwn::channel("C0123ABC").as_str(), "<#C0123ABC>");
    assert_eq!(Mrkdwn::channel("<!here>").as_str(), "&lt;!here&gt;");
    assert_eq!(
        Mrkdwn::link(
            "https://fb.example/incidents/INC-1/postmortem.html?a=1&b=2",
            "x<y"
        )
        .as_str(),
        "<https://fb.example/incidents/INC-1/postmortem.html?a=1&amp;b=2|x&lt;y>"
    );
    assert_eq!(
        Mrkdwn::link("javascript:alert(1)", "x").as_str(),
        "x (javascript:alert(1))"
    );
    let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    assert_eq!(
        Mrkdwn::date(t).as_str(),
        "<!date^1700000000^{date_short_pretty} {time}|2023-11-14 22:13 UTC>"
    );
}

#[test]
fn short_text_is_left_alone() {
    assert_eq!(truncate_plain("abc", 3), None);
    assert_eq!(truncate_mrkdwn("", 0), None);
    assert_eq!(fit_plain("héllo", 5), "héllo");
}

#[test]
fn truncation_counts_characters_and_ends_with_an_ellipsis() {
    let cut = truncate_plain(&"é".repeat(200), 150).unwrap();
    assert_eq!(char_count(&cut), 150);
    assert!(cut.ends_with("é…"));
    let cut = truncate_plain("one two three", 8).unwrap();
    assert_eq!(cut, "one two…", "trailing space trimmed before the mark");
    assert_eq!(truncate_plain("abcdef", 1).unwrap(), "…");
}

#[test]
fn truncation_never_splits_a_grapheme() {
    // A family emoji: four people joined by ZWJs, seven scalar values, one grapheme.
    let family = "👨\u{200d}👩\u{200d}👧\u{200d}👦";
    let text = format!("ab{family}cd");
    let cut = truncate_plain(&text, 6).unwrap();
    assert_eq!(cut, "ab…", "the family does not fit in 5, so it goes whole");
    let cut = truncate_plain(&text, 10).unwrap();
    assert_eq!(cut, format!("ab{family}…"));
    // A thumbs-up with a skin tone, a flag, and e + combining acute.
    for unit in ["👍🏽", "🇫🇷", "e\u{301}", "1\u{fe0f}\u{20e3}"] {
        let text = unit.repeat(100);
        for max in 1..40 {
            let cut = truncate_plain(&text, max).unwrap();
            assert!(char_count(&cut) <= max, "{cut}");
            let body = cut.strip_suffix('…').unwrap();
            assert_eq!(body.len() % unit.len(), 0, "{max}: {body:?} split {unit:?}");
        }
    }
}

#[test]
fn mrkdwn_truncation_keeps_entities_and_markup_whole() {
    let m = Mrkdwn::text("a<b");
    assert_eq!(m.as_str(), "a&lt;b");
    for max in 1..7 {
        let (cut, was) = m.clone().truncated(max);
        assert!(char_count(cut.as_str()) <= max);
        assert_eq!(was, max < 6);
        assert!(!cut.as_str().contains("&l…"), "{cut}");
        assert!(
            ["…", "a…", "a&lt;…", "a&lt;b"].contains(&cut.as_str()),
            "{max}: {cut}"
        );
    }
    let mut m = Mrkdwn::text("owner ");
    m.push(Mrkdwn::user("U024BE7LH")).push_text(" and more");
    let (cut, _) = m.truncated(12);
    assert_eq!(
        cut.as_str(),
        "owner…",
        "the mention is kept whole or dropped"
    );
}

#[test]
fn user_text_cannot_forge_markup_even_after_truncation() {
    let hostile = "<!channel> <!here> <https://evil.example|click> <@U0EVIL> &lt;!here&gt;";
    let m = Mrkdwn::text(&hostile.repeat(50));
    for max in [10, 99, 1000, 3000] {
        let (cut, _) = m.clone().truncated(max);
        assert!(!cut.as_str().contains('<'), "{cut}");
    }
}
