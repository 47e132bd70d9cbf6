//! The inbox of a regional manager with 5,000 open cases: server time of
//! `GET /inbox` (the scope's query with its counts, and the page rendered),
//! measured from a client on loopback against `closeloop serve` (release,
//! single-node mode, a fresh database).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use crate::support::{spread, Service, Spread};
use crate::Bench;

/// Open cases of the regional manager's region.
pub const CASES: usize = 5_000;
/// Requests timed per run (after 5 warm-up requests).
const REQUESTS: usize = 50;

pub struct Inbox {
    pub median_ms: Vec<f64>,
    pub p90_ms: Vec<f64>,
    pub cases: i64,
    pub cards: usize,
}

/// 5,000 detractors from new customers at the two Lyon stores (region
/// FR-ARA, Julien Faure's).
fn events() -> Vec<serde_json::Value> {
    let options = closeloop_gen::Options {
        repeat_rate: 0.0,
        tag: Some("inbox".into()),
        ..closeloop_gen::Options::new(CASES, 21)
    };
    closeloop_gen::lines(options)
        .enumerate()
        .map(|(i, line)| {
            let mut event: serde_json::Value = serde_json::from_str(&line).expect("generated JSON");
            let store = if i % 2 == 0 { "LYON-01" } else { "LYON-02" };
            event["location"] =
                serde_json::json!({"store_id": store, "region": "FR-ARA", "country": "FR"});
            event["scores"] = serde_json::json!({"nps": 2});
            event
        })
        .collect()
}

pub async fn bench_inbox(ctx: &mut Bench) -> anyhow::Result<Inbox> {
    let db = ctx.name("db");
    ctx.databases.push(db.clone());
    let url = format!("{}/{db}", ctx.admin_url);
    let env = vec![
        ("CLOSELOOP__DATABASE__URL".to_owned(), url.clone()),
        (
            "CLOSELOOP__INTAKE__MODE".to_owned(),
            "single-node".to_owned(),
        ),
        ("CLOSELOOP__AUTH__REQUIRED".to_owned(), "false".to_owned()),
    ];
    let service = Service::start(&ctx.args.binary, &ctx.work, &env).await?;
    let base = format!("http://{}", service.http);
    let client = reqwest::Client::new();
    for chunk in events().chunks(250) {
        let answer = client
            .post(format!("{base}/v1/events"))
            .json(&chunk)
            .send()
            .await?;
        if !answer.status().is_success() {
            bail!(
                "storing events: {} {}",
                answer.status(),
                answer.text().await?
            );
        }
    }
    let pool = crate::service_db(&url).await?;
    let cases: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM cases WHERE region = 'FR-ARA' AND status = 'open'",
    )
    .fetch_one(&pool)
    .await?;
    // A session of the regional manager, as a sign-in link would open it.
    let token = format!("bench-{}", uuid::Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO web_sessions (id, token_hash, role, owner_id, name, locale, csrf_token,
                                   created_at, expires_at, last_seen_at)
         VALUES ($1, $2, 'manager', 'rm-fr-ara', 'rm-fr-ara', 'fr-FR', 'x', now(), now() + interval '1 day', now())",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(Sha256::digest(token.as_bytes()).to_vec())
    .execute(&pool)
    .await?;
    let cookie = format!("closeloop_session={token}");
    let mut median_ms = Vec::new();
    let mut p90_ms = Vec::new();
    let mut cards = 0;
    for _ in 0..ctx.args.runs {
        let mut times = Vec::new();
        for i in 0..REQUESTS + 5 {
            let started = Instant::now();
            let page = client
                .get(format!("{base}/inbox"))
                .header("cookie", &cookie)
                .timeout(Duration::from_secs(10))
                .send()
                .await?
                .text()
                .await
                .context("the inbox page")?;
            let took = started.elapsed().as_secs_f64() * 1000.0;
            cards = page.matches("class=\"case ").count();
            if i >= 5 {
                times.push(took);
            }
        }
        let s: Spread = spread(&times);
        median_ms.push(s.median);
        p90_ms.push(crate::support::quantile(&times, 0.9));
    }
    service.stop();
    Ok(Inbox {
        median_ms,
        p90_ms,
        cases,
        cards,
    })
}
