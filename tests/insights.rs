//! Ops and leadership in the web app: loop health and scores from every
//! angle, on generated answers, in headless Chromium; the figures checked
//! against an independent count of the same answers, the CSV against the
//! API, and a regional manager's view against his region alone.

use std::collections::BTreeMap;
use std::time::Duration;

use closeloop_tests::browser::{Browser, Device};
use closeloop_tests::{eventually, post_json, Options, TestEnv};
use reqwest::header::COOKIE;
use serde_json::Value;

fn single_node() -> Options {
    Options {
        single_node: true,
        kafka: Some("127.0.0.1:1".into()),
        ..Options::default()
    }
}

/// 600 generated answers of the last 20 days, stored over HTTP.
async fn store_answers(env: &TestEnv) -> Vec<Value> {
    let options = closeloop_gen::Options {
        base: (chrono::Utc::now() - chrono::Duration::hours(1)).fixed_offset(),
        days: 20,
        ..closeloop_gen::Options::new(600, 5)
    };
    let events: Vec<Value> = closeloop_gen::lines(options)
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    let client = reqwest::Client::new();
    for chunk in events.chunks(200) {
        let (status, body) =
            post_json(&client, env.api("/v1/events"), &Value::from(chunk.to_vec())).await;
        assert_eq!(status, 202, "{body}");
    }
    events
}

/// Answers per region, counted here from the answers themselves: all
/// answers, and for NPS (answers with one, promoters, detractors).
fn answers_by_region(events: &[Value]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for event in events {
        let region = event["location"]["region"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        *out.entry(region).or_default() += 1;
    }
    out
}

fn nps_by_region(events: &[Value], only: Option<&str>) -> BTreeMap<String, (i64, i64, i64)> {
    let mut out: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for event in events {
        let region = event["location"]["region"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if only.is_some_and(|o| o != region) {
            continue;
        }
        let Some(nps) = event["scores"]["nps"].as_i64() else {
            continue;
        };
        let entry = out.entry(region).or_default();
        entry.0 += 1;
        if nps >= 9 {
            entry.1 += 1;
        }
        if nps <= 6 {
            entry.2 += 1;
        }
    }
    out
}

fn nps_of((answers, promoters, detractors): (i64, i64, i64)) -> String {
    format!(
        "{:.1}",
        100.0 * (promoters - detractors) as f64 / answers as f64
    )
}

/// The rows of a CSV body, header included.
fn csv_rows(body: &str) -> Vec<Vec<String>> {
    body.lines()
        .map(|l| {
            l.split(',')
                .map(|c| c.trim_matches('"').to_owned())
                .collect()
        })
        .collect()
}

async fn session_cookie(browser: &Browser) -> String {
    let cookie = browser
        .client
        .get_named_cookie("closeloop_session")
        .await
        .unwrap();
    format!("closeloop_session={}", cookie.value())
}

async fn get_text(url: &str, cookie: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(url)
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_read_loop_health_and_scores_that_match_the_answers() {
    let env = TestEnv::new(single_node()).await;
    let _service = env.start_service().await;
    let mut events = store_answers(&env).await;
    let token = env.cli(&["tokens", "create", "--name", "ops.board", "--role", "ops"]);

    // Ops sign in with their API token; the browser keeps only the cookie.
    let browser = Browser::start(Device::Desktop).await;
    browser.goto(&env.api("/signin?lang=en")).await;
    browser.click("details summary").await;
    browser.fill("#token", token.trim()).await;
    browser
        .click_to_page("form[action='/signin/token'] button")
        .await;
    let cookie = session_cookie(&browser).await;

    // Loop health: the cases opened are the stored cases of the period.
    browser.goto(&env.api("/insights?period=30d")).await;
    let page = browser.text().await;
    let opened = env.count("SELECT count(*) FROM cases").await;
    assert!(opened > 50, "{opened} cases");
    assert!(page.contains(&format!("{opened}\ncases opened")), "{page}");
    assert!(page.contains("Who closes loops, and how fast"), "{page}");
    browser.screenshot("insights-en-desktop").await;
    let violations = browser.serious_a11y_violations().await;
    assert!(violations.is_empty(), "insights: {violations:?}");

    // The regions' table in CSV: one row per region, its cases counted.
    let (status, body) = get_text(&env.api("/insights.csv?period=30d&by=region"), &cookie).await;
    assert_eq!(status, 200, "{body}");
    let rows = csv_rows(&body);
    assert_eq!(rows[0][0], "Region");
    for row in &rows[1..] {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM cases WHERE region = $1")
            .bind(&row[0])
            .fetch_one(&env.db)
            .await
            .unwrap();
        assert_eq!(row[1], n.to_string(), "{row:?}");
    }

    // Drill down: a region, its stores, a store's cases, a case.
    browser
        .click_to_page("table.figures tbody a[href*='region=FR-ARA']")
        .await;
    let stores = browser.text().await;
    assert!(
        stores.contains("LYON-01") || stores.contains("LYON-02"),
        "{stores}"
    );
    assert!(!stores.contains("PARIS-"), "only FR-ARA's stores: {stores}");
    browser
        .click_to_page("table.figures tbody a[href^='/inbox?store=']")
        .await;
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/inbox");
    let store = url
        .query_pairs()
        .find(|(k, _)| k == "store")
        .unwrap()
        .1
        .into_owned();
    browser.click_to_page("a.case-link").await;
    let case = browser.text().await;
    assert!(case.contains(&store), "{case}");

    // Scores by region: the figures of the answers, counted independently,
    // in the page, the CSV and the API alike.
    browser
        .goto(&env.api("/insights/scores?by=region&period=30d"))
        .await;
    let scores = browser.text().await;
    let expected = nps_by_region(&events, None);
    let answers = answers_by_region(&events);
    for (region, counts) in &expected {
        let row = format!("{region} {} {}", answers[region], nps_of(*counts));
        assert!(scores.contains(&row), "{row} in {scores}");
    }
    browser.screenshot("scores-en-desktop").await;
    let violations = browser.serious_a11y_violations().await;
    assert!(violations.is_empty(), "scores: {violations:?}");
    let (_, body) = get_text(
        &env.api("/insights/scores.csv?by=region&period=30d"),
        &cookie,
    )
    .await;
    let rows = csv_rows(&body);
    let api: Value =
        reqwest::get(env.api("/v1/metrics/scores?group_by=region&from=2000-01-01T00:00:00Z"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    for row in &rows[1..] {
        let counts = expected[&row[0]];
        assert_eq!(row[2], nps_of(counts), "NPS of {}", row[0]);
        assert_eq!(row[1], answers[&row[0]].to_string(), "{row:?}");
        let group = api["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group"] == row[0].as_str())
            .unwrap();
        assert_eq!(group["nps_responses"], counts.0, "{row:?}");
        assert_eq!(group["promoters"], counts.1);
        assert_eq!(group["detractors"], counts.2);
        assert_eq!(format!("{:.1}", group["nps"].as_f64().unwrap()), row[2]);
    }
    // Two dimensions at once, and a trend by week.
    browser
        .goto(&env.api("/insights/scores?by=region&then=touchpoint&period=30d"))
        .await;
    assert!(browser.text().await.contains("Touchpoint"));
    browser
        .goto(&env.api("/insights/scores?by=week&period=30d&lang=fr"))
        .await;
    let weeks = browser.text().await;
    assert!(weeks.contains("NPS dans le temps"), "{weeks}");
    browser.screenshot("scores-trend-fr-desktop").await;
    // By day over 7 days: the 7 days before are drawn beside, dashed.
    browser
        .goto(&env.api("/insights/scores?by=day&period=7d"))
        .await;
    for line in ["svg.trend polyline.now", "svg.trend polyline.before"] {
        assert!(
            browser
                .client
                .find(fantoccini::Locator::Css(line))
                .await
                .is_ok(),
            "{line} on the daily trend"
        );
    }
    browser.screenshot("scores-days-fr-desktop").await;

    // Operations: a webhook refused for good is dead; ops send it again.
    let settled = || async {
        (env.count("SELECT count(*) FROM outbox WHERE status = 'pending'")
            .await
            == 0)
            .then_some(())
    };
    eventually(
        "the answers' notifications sent",
        Duration::from_secs(60),
        settled,
    )
    .await;
    env.webhooks.fail_next(400);
    let story = closeloop_tests::story_event("ops-dead-1", "C-DEAD");
    let (status, _) = post_json(&reqwest::Client::new(), env.api("/v1/events"), &story).await;
    assert_eq!(status, 202);
    // Counted with the others from now on.
    events.push(story);
    let dead = || async {
        sqlx::query_scalar::<_, uuid::Uuid>(
            "SELECT o.id FROM outbox o JOIN cases c ON c.id = o.case_id
             WHERE c.event_id = 'ops-dead-1' AND o.channel = 'webhook' AND o.status = 'dead'",
        )
        .fetch_optional(&env.db)
        .await
        .unwrap()
    };
    let dead_id = eventually("a dead webhook delivery", Duration::from_secs(30), dead).await;
    browser.goto(&env.api("/insights/operations?lang=en")).await;
    let ops = browser.text().await;
    assert!(
        ops.contains("Notifications that failed") && ops.contains("receiver answered HTTP 400"),
        "{ops}"
    );
    browser.screenshot("operations-en-desktop").await;
    let violations = browser.serious_a11y_violations().await;
    assert!(violations.is_empty(), "operations: {violations:?}");
    browser
        .click_to_page(&format!(
            "form[action='/insights/operations/replay'] input[value='{dead_id}'] ~ button"
        ))
        .await;
    assert!(browser.text().await.contains("Queued again"));
    let sent = || async {
        let status: String = sqlx::query_scalar("SELECT status FROM outbox WHERE id = $1")
            .bind(dead_id)
            .fetch_one(&env.db)
            .await
            .unwrap();
        (status == "sent").then_some(())
    };
    eventually("the replayed delivery sent", Duration::from_secs(30), sent).await;
    // A silence from the page, then ended from it.
    browser.fill("#matcher", "store == \"LYON-02\"").await;
    browser.fill("#reason", "inventory day").await;
    browser
        .click_to_page("form[action='/insights/operations/silence'] button")
        .await;
    let silenced = browser.text().await;
    assert!(
        silenced.contains("Silence created.") && silenced.contains("inventory day"),
        "{silenced}"
    );
    browser
        .click_to_page("form[action='/insights/operations/expire'] button")
        .await;
    assert!(browser.text().await.contains("Silence ended."));
    assert_eq!(
        env.count("SELECT count(*) FROM silences WHERE expired_at IS NOT NULL")
            .await,
        1
    );
    browser.close().await;

    // A regional manager (FR-ARA) sees his region's figures only.
    let phone = Browser::start(Device::Phone).await;
    phone.goto(&env.api("/signin")).await;
    phone.fill("#email", "julien.faure@closeloop.local").await;
    phone.click_to_page("form[action='/signin'] button").await;
    let link = eventually("Julien's sign-in link", Duration::from_secs(30), || async {
        env.smtp.emails().iter().find_map(|e| {
            let start = e.text.find(&format!("{}/signin/", env.base_url))?;
            let rest = &e.text[start..];
            Some(rest[..rest.find(char::is_whitespace).unwrap_or(rest.len())].to_owned())
        })
    })
    .await;
    phone.goto(&link).await;
    phone.click_to_page("main form button").await;
    phone
        .goto(&env.api("/insights/scores?by=region&period=30d"))
        .await;
    let his = phone.text().await;
    assert!(his.contains("FR-ARA"), "{his}");
    for other in expected.keys().filter(|r| *r != "FR-ARA") {
        assert!(
            !his.contains(other.as_str()),
            "{other} in Julien's scores: {his}"
        );
    }
    let mine = nps_by_region(&events, Some("FR-ARA"));
    assert!(his.contains(&nps_of(mine["FR-ARA"])), "{his}");
    phone.screenshot("scores-fr-phone").await;
    phone.goto(&env.api("/insights?period=30d")).await;
    let loop_page = phone.text().await;
    let his_cases = env
        .count("SELECT count(*) FROM cases WHERE region = 'FR-ARA'")
        .await;
    assert!(
        loop_page.contains(&format!("{his_cases}\ndossiers ouverts")),
        "{loop_page}"
    );
    phone.screenshot("insights-fr-phone").await;
    // Operations are for ops: a regional manager is told so.
    phone.goto(&env.api("/insights/operations")).await;
    assert!(phone.text().await.contains("réservée aux équipes ops"));
    phone.close().await;
}
