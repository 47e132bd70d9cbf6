//! The dashboard over a million stored answers: server time of the loop
//! health page (`/insights`, 90 days, by region) and of a two-dimension
//! score table (`/insights/scores?by=region&then=touchpoint`), measured from
//! a client on loopback against `closeloop serve` (release), an ops session.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use crate::support::{quantile, spread, Service};
use crate::Bench;

/// Stored answers.
pub const ANSWERS: usize = 1_000_000;
const REQUESTS: usize = 20;

pub struct Dashboard {
    pub loop_ms: Vec<f64>,
    pub scores_ms: Vec<f64>,
    pub loop_p90_ms: Vec<f64>,
    pub scores_p90_ms: Vec<f64>,
    /// Two dimensions the roll-up does not pair.
    pub pairs_ms: Vec<f64>,
    pub events: i64,
    pub cases: i64,
    /// Share of cases acknowledged (some also called and resolved).
    pub worked_share: f64,
    /// `None`: the database was loaded by an earlier run.
    pub load_seconds: Option<f64>,
}

/// Managers at work, by SQL: of the cases, 70 % acknowledged, 55 % called,
/// 45 % resolved with a root cause, at business times spread from minutes
/// to days (a case's own hash picks its share and times).
const WORK_CASES: &str = "
    WITH p AS (SELECT id, abs(hashtext(id::text)) % 100 AS r FROM cases)
    UPDATE cases c SET
        status = CASE WHEN p.r < 45 THEN 'resolved' WHEN p.r < 55 THEN 'contacted'
                      WHEN p.r < 70 THEN 'acknowledged' ELSE c.status END,
        acknowledged_at = CASE WHEN p.r < 70 THEN c.created_at + make_interval(mins => 5 + p.r * 11) END,
        ack_business_seconds = CASE WHEN p.r < 70 THEN (5 + p.r * 11) * 60 END,
        first_contact_at = CASE WHEN p.r < 55 THEN c.created_at + make_interval(mins => 30 + p.r * 23) END,
        contact_business_seconds = CASE WHEN p.r < 55 THEN (30 + p.r * 23) * 60 END,
        resolved_at = CASE WHEN p.r < 45 THEN c.created_at + make_interval(hours => 2 + p.r) END,
        resolve_business_seconds = CASE WHEN p.r < 45 THEN (2 + p.r) * 3600 END,
        root_cause = CASE WHEN p.r < 45 THEN (ARRAY['delivery_delay', 'product_defect', 'staff_behaviour',
                                                    'price', 'stock'])[1 + p.r % 5] END,
        recovered_at = CASE WHEN p.r < 9 THEN c.created_at + interval '5 days' END
    FROM p WHERE p.id = c.id";

pub async fn bench_dashboard(ctx: &mut Bench) -> anyhow::Result<Dashboard> {
    let file = ctx.work.join(format!("dashboard-{ANSWERS}.jsonl"));
    if !file.exists() {
        let options = closeloop_gen::Options {
            base: chrono::Utc::now().fixed_offset(),
            days: 80,
            repeat_rate: 0.0,
            tag: Some("dash".into()),
            ..closeloop_gen::Options::new(ANSWERS, 31)
        };
        let mut text = String::new();
        for line in closeloop_gen::lines(options) {
            text.push_str(&line);
            text.push('\n');
        }
        std::fs::write(&file, text)?;
    }
    let (db, reuse) = match &ctx.args.dashboard_db {
        Some(name) => (name.clone(), true),
        None => {
            let db = ctx.name("db");
            ctx.databases.push(db.clone());
            (db, false)
        }
    };
    let url = format!("{}/{db}", ctx.admin_url);
    let env = vec![
        ("CLOSELOOP__DATABASE__URL".to_owned(), url.clone()),
        (
            "CLOSELOOP__INTAKE__MODE".to_owned(),
            "single-node".to_owned(),
        ),
        ("CLOSELOOP__AUTH__REQUIRED".to_owned(), "false".to_owned()),
        ("CLOSELOOP__REPORTS__WEEKLY".to_owned(), "false".to_owned()),
    ];
    let loaded = reuse && stored_answers(&ctx.admin_url, &db).await >= ANSWERS as i64;
    let mut load_seconds = None;
    if !loaded {
        // Stored through the intake path, without a dispatcher running.
        let started = Instant::now();
        let status = std::process::Command::new(&ctx.args.binary)
            .args(["--config", "config/closeloop.toml", "publish"])
            .arg(&file)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .status()
            .context("closeloop publish")?;
        if !status.success() {
            bail!("closeloop publish failed: {status}");
        }
        load_seconds = Some(started.elapsed().as_secs_f64());
    }
    let pool = crate::service_db(&url).await?;
    if !loaded {
        // Nothing to deliver while measuring: the notifications count as sent.
        sqlx::query("UPDATE outbox SET status = 'sent', sent_at = now() WHERE status = 'pending'")
            .execute(&pool)
            .await?;
        sqlx::query(WORK_CASES).execute(&pool).await?;
    }
    // The page alone is measured: the SLA scheduler, which would first catch
    // up on the reminders of a freshly loaded backlog (every case at once),
    // finds nothing due.
    sqlx::query("UPDATE cases SET next_sla_at = NULL WHERE next_sla_at IS NOT NULL")
        .execute(&pool)
        .await?;
    sqlx::query("VACUUM ANALYZE").execute(&pool).await?;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM feedback_events")
        .fetch_one(&pool)
        .await?;
    let (cases, acknowledged): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(acknowledged_at) FROM cases")
            .fetch_one(&pool)
            .await?;
    let token = format!("bench-{}", uuid::Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO web_sessions (id, token_hash, role, owner_id, name, locale, csrf_token,
                                   created_at, expires_at, last_seen_at)
         VALUES ($1, $2, 'ops', NULL, 'bench.ops', 'en', 'x', now(), now() + interval '1 day', now())",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(Sha256::digest(token.as_bytes()).to_vec())
    .execute(&pool)
    .await?;
    let service = Service::start(&ctx.args.binary, &ctx.work, &env).await?;
    let base = format!("http://{}", service.http);
    let client = reqwest::Client::new();
    let cookie = format!("closeloop_session={token}");
    let time = |path: &'static str| {
        let (client, base, cookie) = (&client, &base, &cookie);
        async move {
            let mut times = Vec::new();
            for i in 0..REQUESTS + 3 {
                let started = Instant::now();
                let answer = client
                    .get(format!("{base}{path}"))
                    .header("cookie", cookie)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await?;
                if !answer.status().is_success() {
                    bail!("{path}: {}", answer.status());
                }
                answer.text().await?;
                if i >= 3 {
                    times.push(started.elapsed().as_secs_f64() * 1000.0);
                }
            }
            Ok::<Vec<f64>, anyhow::Error>(times)
        }
    };
    let mut result = Dashboard {
        loop_ms: vec![],
        scores_ms: vec![],
        loop_p90_ms: vec![],
        scores_p90_ms: vec![],
        pairs_ms: vec![],
        events,
        cases,
        worked_share: acknowledged as f64 / cases.max(1) as f64,
        load_seconds,
    };
    for _ in 0..ctx.args.runs {
        let loop_times = time("/insights?period=90d&by=region").await?;
        let score_times = time("/insights/scores?by=region&then=touchpoint&period=90d").await?;
        result.loop_ms.push(spread(&loop_times).median);
        result.loop_p90_ms.push(quantile(&loop_times, 0.9));
        result.scores_ms.push(spread(&score_times).median);
        result.scores_p90_ms.push(quantile(&score_times, 0.9));
        let pair_times = time("/insights/scores?by=touchpoint&then=channel&period=90d").await?;
        result.pairs_ms.push(spread(&pair_times).median);
    }
    service.stop();
    Ok(result)
}

/// Answers stored in `db` (0 when it does not exist yet: it is created).
async fn stored_answers(admin_url: &str, db: &str) -> i64 {
    let exists = async {
        let admin = crate::service_db(admin_url).await?;
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
        )
        .bind(db)
        .fetch_one(&admin)
        .await
        .map_err(anyhow::Error::from)
    };
    if !exists.await.unwrap_or(false) {
        return 0;
    }
    let Ok(pool) = crate::service_db(&format!("{admin_url}/{db}")).await else {
        return 0;
    };
    sqlx::query_scalar("SELECT count(*) FROM feedback_events")
        .fetch_one(&pool)
        .await
        .unwrap_or(0)
}
