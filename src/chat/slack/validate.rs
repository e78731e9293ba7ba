//! Slack's published Block Kit limits as a checker: walks a message or modal as JSON and
//! names every field over its limit. The builder ([`super::blocks::Blocks`]) keeps within
//! these by construction; tests (and the fake Slack) use this to prove it.

use serde_json::Value;

use super::mrkdwn::{char_count, limit};

/// Problems with a message: its `text` and its `blocks` (either may be absent).
pub fn message(payload: &Value) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(text) = payload.get("text").and_then(Value::as_str) {
        max(&mut v, "text", text, limit::MESSAGE_TEXT);
    }
    if let Some(blocks) = payload.get("blocks") {
        check_blocks(&mut v, blocks, limit::MESSAGE_BLOCKS);
    }
    v
}

/// Problems with a bare list of message blocks.
pub fn message_blocks(blocks: &Value) -> Vec<String> {
    let mut v = Vec::new();
    check_blocks(&mut v, blocks, limit::MESSAGE_BLOCKS);
    v
}

/// Problems with a modal view.
pub fn modal(view: &Value) -> Vec<String> {
    let mut v = Vec::new();
    for key in ["title", "submit", "close"] {
        if let Some(t) = view.get(key) {
            text_object(&mut v, key, t, limit::MODAL_TITLE, Some("plain_text"));
        }
    }
    if view.get("title").is_none() {
        v.push("modal has no title".into());
    }
    if let Some(m) = view.get("private_metadata").and_then(Value::as_str) {
        max(&mut v, "private_metadata", m, limit::PRIVATE_METADATA);
    }
    if let Some(id) = view.get("callback_id").and_then(Value::as_str) {
        max(&mut v, "callback_id", id, limit::ID);
    }
    check_blocks(
        &mut v,
        view.get("blocks").unwrap_or(&Value::Null),
        limit::MODAL_BLOCKS,
    );
    v
}

/// Every mrkdwn string in a payload (mrkdwn text objects and the message `text`), for
/// checking what is live in them.
pub fn mrkdwn_strings(payload: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = payload.get("text").and_then(Value::as_str) {
        out.push(t.to_string());
    }
    collect_mrkdwn(payload.get("blocks").unwrap_or(payload), &mut out);
    out
}

fn collect_mrkdwn(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("mrkdwn") {
                if let Some(t) = map.get("text").and_then(Value::as_str) {
                    out.push(t.to_string());
                }
            }
            map.values().for_each(|x| collect_mrkdwn(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| collect_mrkdwn(x, out)),
        _ => {}
    }
}

/// Every `<…>` in mrkdwn: the things Slack turns into mentions, links, channels and dates.
pub fn live_tokens(mrkdwn: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = mrkdwn;
    while let Some(start) = rest.find('<') {
        let after = &rest[start..];
        match after.find('>') {
            Some(end) => {
                out.push(&after[..=end]);
                rest = &after[end + 1..];
            }
            None => {
                out.push(after);
                break;
            }
        }
    }
    out
}

fn max(v: &mut Vec<String>, what: &str, text: &str, limit: usize) {
    let n = char_count(text);
    if n > limit {
        v.push(format!("{what}: {n} characters, over Slack's {limit}"));
    }
}

fn count(v: &mut Vec<String>, what: &str, items: &[Value], limit: usize) {
    if items.len() > limit {
        v.push(format!(
            "{what}: {} items, over Slack's {limit}",
            items.len()
        ));
    }
}

fn text_object(v: &mut Vec<String>, what: &str, t: &Value, limit: usize, only: Option<&str>) {
    let kind = t.get("type").and_then(Value::as_str).unwrap_or("");
    if !matches!(kind, "plain_text" | "mrkdwn") {
        v.push(format!("{what}: not a text object ({t})"));
        return;
    }
    if let Some(only) = only.filter(|o| *o != kind) {
        v.push(format!("{what}: must be {only}, is {kind}"));
    }
    let text = t.get("text").and_then(Value::as_str).unwrap_or("");
    if text.is_empty() {
        v.push(format!("{what}: empty text"));
    }
    max(v, what, text, limit);
}

fn str_field(v: &mut Vec<String>, what: &str, obj: &Value, key: &str, limit: usize) {
    if let Some(s) = obj.get(key).and_then(Value::as_str) {
        max(v, &format!("{what}.{key}"), s, limit);
    }
}

fn array<'a>(obj: &'a Value, key: &str) -> &'a [Value] {
    obj.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn check_blocks(v: &mut Vec<String>, blocks: &Value, most: usize) {
    let Some(blocks) = blocks.as_array() else {
        v.push("blocks: not an array".into());
        return;
    };
    count(v, "blocks", blocks, most);
    for (i, b) in blocks.iter().enumerate() {
        let kind = b.get("type").and_then(Value::as_str).unwrap_or("");
        let what = format!("blocks[{i}] ({kind})");
        str_field(v, &what, b, "block_id", limit::ID);
        match kind {
            "header" => text_object(
                v,
                &what,
                b.get("text").unwrap_or(&Value::Null),
                limit::HEADER_TEXT,
                Some("plain_text"),
            ),
            "section" => {
                let fields = array(b, "fields");
                match b.get("text") {
                    Some(t) => {
                        text_object(v, &format!("{what}.text"), t, limit::SECTION_TEXT, None)
                    }
                    None if fields.is_empty() => v.push(format!("{what}: no text and no fields")),
                    None => {}
                }
                count(v, &format!("{what}.fields"), fields, limit::SECTION_FIELDS);
                for (j, f) in fields.iter().enumerate() {
                    text_object(
                        v,
                        &format!("{what}.fields[{j}]"),
                        f,
                        limit::SECTION_FIELD,
                        None,
                    );
                }
                if let Some(a) = b.get("accessory") {
                    element(v, &format!("{what}.accessory"), a);
                }
            }
            "context" => {
                let elements = array(b, "elements");
                count(
                    v,
                    &format!("{what}.elements"),
                    elements,
                    limit::CONTEXT_ELEMENTS,
                );
                if elements.is_empty() {
                    v.push(format!("{what}: no elements"));
                }
                for (j, e) in elements.iter().enumerate() {
                    if e.get("type").and_then(Value::as_str) != Some("image") {
                        text_object(
                            v,
                            &format!("{what}.elements[{j}]"),
                            e,
                            limit::TEXT_OBJECT,
                            None,
                        );
                    }
                }
            }
            "actions" => {
                let elements = array(b, "elements");
                count(
                    v,
                    &format!("{what}.elements"),
                    elements,
                    limit::ACTION_ELEMENTS,
                );
                for (j, e) in elements.iter().enumerate() {
                    element(v, &format!("{what}.elements[{j}]"), e);
                }
            }
            "input" => {
                text_object(
                    v,
                    &format!("{what}.label"),
                    b.get("label").unwrap_or(&Value::Null),
                    limit::INPUT_LABEL,
                    Some("plain_text"),
                );
                if let Some(h) = b.get("hint") {
                    text_object(
                        v,
                        &format!("{what}.hint"),
                        h,
                        limit::INPUT_LABEL,
                        Some("plain_text"),
                    );
                }
                element(
                    v,
                    &format!("{what}.element"),
                    b.get("element").unwrap_or(&Value::Null),
                );
            }
            "divider" | "image" | "rich_text" => {}
            other => v.push(format!("{what}: unknown block type {other:?}")),
        }
    }
}

fn element(v: &mut Vec<String>, what: &str, e: &Value) {
    let kind = e.get("type").and_then(Value::as_str).unwrap_or("");
    str_field(v, what, e, "action_id", limit::ID);
    if let Some(p) = e.get("placeholder") {
        text_object(
            v,
            &format!("{what}.placeholder"),
            p,
            limit::PLACEHOLDER,
            Some("plain_text"),
        );
    }
    match kind {
        "button" => {
            text_object(
                v,
                &format!("{what}.text"),
                e.get("text").unwrap_or(&Value::Null),
                limit::BUTTON_TEXT,
                Some("plain_text"),
            );
            str_field(v, what, e, "value", limit::BUTTON_VALUE);
            str_field(v, what, e, "url", 3_000);
            if let Some(c) = e.get("confirm") {
                let part = |k: &str| c.get(k).unwrap_or(&Value::Null);
                text_object(
                    v,
                    &format!("{what}.confirm.title"),
                    part("title"),
                    limit::CONFIRM_TITLE,
                    Some("plain_text"),
                );
                text_object(
                    v,
                    &format!("{what}.confirm.text"),
                    part("text"),
                    limit::CONFIRM_TEXT,
                    None,
                );
                text_object(
                    v,
                    &format!("{what}.confirm.confirm"),
                    part("confirm"),
                    limit::CONFIRM_BUTTON,
                    Some("plain_text"),
                );
                text_object(
                    v,
                    &format!("{what}.confirm.deny"),
                    part("deny"),
                    limit::CONFIRM_BUTTON,
                    Some("plain_text"),
                );
            }
        }
        "plain_text_input" => {
            for key in ["max_length", "min_length"] {
                if let Some(n) = e.get(key).and_then(Value::as_u64) {
                    if n as usize > limit::TEXT_INPUT {
                        v.push(format!(
                            "{what}.{key}: {n}, over Slack's {}",
                            limit::TEXT_INPUT
                        ));
                    }
                }
            }
        }
        "static_select" => {
            let options = array(e, "options");
            count(v, &format!("{what}.options"), options, 100);
            for (j, o) in options.iter().chain(e.get("initial_option")).enumerate() {
                text_object(
                    v,
                    &format!("{what}.options[{j}].text"),
                    o.get("text").unwrap_or(&Value::Null),
                    limit::OPTION_TEXT,
                    Some("plain_text"),
                );
                str_field(
                    v,
                    &format!("{what}.options[{j}]"),
                    o,
                    "value",
                    limit::OPTION_VALUE,
                );
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_each_field_over_its_limit() {
        let long = "x".repeat(151);
        let payload = json!({
            "text": "y".repeat(40_001),
            "blocks": [
                { "type": "header", "text": { "type": "plain_text", "text": long } },
                { "type": "section", "text": { "type": "mrkdwn", "text": "z".repeat(3_001) } },
                { "type": "section", "fields": [{ "type": "mrkdwn", "text": "f".repeat(2_001) }] },
                { "type": "actions", "elements": [{ "type": "button", "action_id": "a", "value": "v",
                    "text": { "type": "plain_text", "text": "b".repeat(76) } }] },
                { "type": "header", "text": { "type": "mrkdwn", "text": "ok" } },
            ]
        });
        let problems = message(&payload);
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(problems[0].starts_with("text: 40001 characters"));
        assert!(problems[1].contains("(header): 151 characters, over Slack's 150"));
        assert!(problems.iter().any(|p| p.contains("must be plain_text")));
    }

    #[test]
    fn counts_blocks_and_finds_live_tokens() {
        let blocks = Value::Array(vec![json!({ "type": "divider" }); 51]);
        assert_eq!(message_blocks(&blocks).len(), 1);
        assert!(modal(&json!({ "type": "modal", "title": { "type": "plain_text", "text": "t" }, "blocks": blocks })).is_empty());
        assert_eq!(
            live_tokens("a <@U1> &lt;!here&gt; <!date^1^{time}|x> <#C1"),
            ["<@U1>", "<!date^1^{time}|x>", "<#C1"]
        );
    }
}
