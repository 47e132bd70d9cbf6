//! The case page linked from alert emails: everything a manager needs to
//! call the customer back, the history, and buttons that call the API.

use std::fmt::Write as _;

use closeloop_store::CaseDetail;

/// HTML-escape `text` for the pages of this crate.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Render the page for one case. With `auth_required`, the buttons send the
/// manager's API token (kept in this browser) instead of a typed name.
pub fn render(detail: &CaseDetail, root_causes: &[String], auth_required: bool) -> String {
    let case = &detail.case;
    let event = &case.event;
    let mut rows = vec![
        ("Status", case.status.to_string()),
        ("Severity", case.severity.to_string()),
        ("Owner", format!("{} ({})", case.owner_name, case.owner_id)),
        ("Rules", case.rule_ids.join(", ")),
        ("Customer", event.customer.display_name().to_owned()),
    ];
    if let Some(email) = &event.customer.email {
        rows.push(("Email", email.clone()));
    }
    if let Some(phone) = &event.customer.phone {
        rows.push(("Phone", phone.clone()));
    }
    rows.push(("Scores", event.scores.summary()));
    rows.push((
        "Store",
        event
            .location
            .store_id
            .clone()
            .unwrap_or_else(|| "-".into()),
    ));
    rows.push(("Touchpoint", event.journey.touchpoint.clone()));
    rows.push(("Opened", case.created_at.to_rfc3339()));
    if let Some(sla) = &case.sla {
        let d = &sla.deadlines;
        let done = |at: Option<chrono::DateTime<chrono::Utc>>| {
            at.map(|t| format!(" (done {})", t.to_rfc3339()))
                .unwrap_or_default()
        };
        rows.push((
            "Acknowledge by",
            format!(
                "{}{}",
                d.acknowledge.due_at.to_rfc3339(),
                done(case.acknowledged_at)
            ),
        ));
        rows.push((
            "First contact by",
            format!(
                "{}{}",
                d.first_contact.due_at.to_rfc3339(),
                done(case.first_contact_at)
            ),
        ));
        rows.push((
            "Resolve by",
            format!(
                "{}{}",
                d.resolve.due_at.to_rfc3339(),
                done(case.resolved_at)
            ),
        ));
        if let Some(since) = sla.overdue_since {
            rows.push(("Overdue since", since.to_rfc3339()));
        }
        if let Some(paused) = sla.paused_at {
            rows.push(("Clocks paused since", paused.to_rfc3339()));
        }
    }

    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Case {id}</title><style>body{{font-family:sans-serif;max-width:40em;margin:1em auto;padding:0 1em}}\
         th{{text-align:left;padding-right:1em}}blockquote{{background:#f4f4f4;padding:.5em 1em}}button{{margin:.2em;padding:.5em}}</style>\
         </head><body><h1>Customer call-back</h1><table>",
        id = case.id
    );
    for (label, value) in rows {
        let _ = write!(
            html,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(label),
            escape(&value)
        );
    }
    html.push_str("</table>");
    if let Some(comment) = &event.comment {
        let _ = write!(
            html,
            "<h2>The customer wrote</h2><blockquote>{}</blockquote>",
            escape(comment)
        );
    }
    html.push_str(if auth_required {
        "<h2>Act</h2><p><label>Your access token <input id=\"token\" type=\"password\" autocomplete=\"off\"></label><br>\
        <small>Kept in this browser. Or use the buttons of the email: they need no token.</small></p>"
    } else {
        "<h2>Act</h2><p><label>Your name <input id=\"actor\" required></label></p>"
    });
    html.push_str(
        "<p><label>Note <input id=\"note\" size=\"40\"></label></p>\
        <button onclick=\"act('acknowledge',{})\">I'm on it</button>\
        <button onclick=\"act('contact-attempts',{outcome:'reached'})\">Customer reached</button>\
        <button onclick=\"act('contact-attempts',{outcome:'voicemail'})\">Voicemail</button>\
        <button onclick=\"act('contact-attempts',{outcome:'no_answer'})\">No answer</button>\
        <p><select id=\"cause\">",
    );
    for cause in root_causes {
        let _ = write!(html, "<option>{}</option>", escape(cause));
    }
    let _ = write!(
        html,
        "</select><button onclick=\"act('resolve',{{root_cause:document.getElementById('cause').value}})\">Resolve</button></p>\
         <p id=\"result\"></p><h2>History</h2><ol>"
    );
    for entry in &detail.history {
        let _ = write!(
            html,
            "<li>{} — {} by {}: {} → {}{}</li>",
            escape(&entry.at.to_rfc3339()),
            escape(&entry.action),
            escape(&entry.actor),
            escape(entry.from_status.as_deref().unwrap_or("-")),
            escape(&entry.to_status),
            entry
                .note
                .as_deref()
                .map(|n| format!(" — {}", escape(n)))
                .unwrap_or_default()
        );
    }
    // Who acts: the token (its name is recorded) or, without auth, a name.
    let who = if auth_required {
        "const field = document.getElementById('token');\
         if (!field.value) { field.value = localStorage.getItem('closeloop-token') || ''; }\
         const token = field.value.trim();\
         if (!token) { document.getElementById('result').textContent = 'Please enter your access token.'; return; }\
         localStorage.setItem('closeloop-token', token);\
         const headers = {'content-type':'application/json', 'authorization':'Bearer ' + token};\
         const who = {};"
    } else {
        "const actor = document.getElementById('actor').value.trim();\
         if (!actor) { document.getElementById('result').textContent = 'Please enter your name.'; return; }\
         const headers = {'content-type':'application/json'};\
         const who = {actor};"
    };
    let _ = write!(
        html,
        concat!(
            "</ol><script>async function act(action, extra) {{{who}",
            "const note = document.getElementById('note').value.trim();\
             const body = Object.assign(who, extra, note ? {{note}} : {{}});\
             const r = await fetch('/v1/cases/{id}/' + action, {{method:'POST', headers, body: JSON.stringify(body)}});\
             if (r.ok) {{ location.reload(); }} else {{ document.getElementById('result').textContent = (await r.json()).error; }}\
             }}</script></body></html>"
        ),
        who = who,
        id = case.id
    );
    html
}
